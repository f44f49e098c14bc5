"""The full RPM-Net at inference: propagation settings and the online updating module.

The WACV paper adds "an online updating module to refine the segmentation result by transferring
knowledge from the given first frame"; its details are unknown. This module offers two designs of
it, and the propagation switches a researcher expects, all as one frozen `Settings`. The default
Settings() is the paper's path (propagate.py: the t-1 soft map warped by row 109 at H/4), so
every switch is measured against it.

Propagation switches:
  mode        "flow": row 108's flow warps the references' maps (row 109), averaged over them.
              "affinity": a CRW-style readout of the embedding alone: each target pixel takes the
              labels of its top-k most similar reference pixels (L2-normalised features, dot
              product) within `radius` H/4 pixels, softmax-weighted with `temperature`. The
              matching module is not used: what the embedding alone can do.
  references  "previous" (t-1), "first+previous" (frame 0 and t-1; with mode "flow" the
              direct 0->t flow, ASSUMPTION 6's "previous+first"), "first+last" (frame 0 and the
              last `last_k` frames).
  carry       "soft" / "hard" (propagate.py's docstring).
  warp_at     "quarter" (the paper: the H/4 map is warped) or "full": the full-resolution map is
              warped with the flow upsampled to full size (scaled to full-size pixels).
Online updating module (`online`, off by default; "full" = the design kept for full RPM-Net):
  "readout" (design a, training-free): frame 0's annotation is read out at frame t through the
              embedding (the local affinity readout from frame 0 alone) and fused with the
              warped t-1 map: fusion "fixed" (weight `fusion_weight` on the readout) or "gate"
              (per pixel, each map weighted by its own confidence, so the readout takes over
              where the warp is unsure).
  "finetune"  (design b, test-time update): a copy of the matching module (rows 106-108) is
              fine-tuned for `finetune_steps` Adam steps on this sequence alone, then propagates
              it: each step one pair made by deforming frame 0 and its mask with a known random
              motion (loss: the warped mask against the deformed mask, and the colours), plus
              one pair of the sequence's own consecutive frames (the self-supervised
              reconstruction loss of training). Labels of later frames are never read. The
              model's own weights are never changed (the copy is dropped after the sequence).
  "readout+finetune"  both.

Where each hyperparameter comes from (never from DAVIS-2016 val): the built-in benchmark's TRAIN
split (profile cpu: its 6 train sequences, first 24 frames, 240x432), scored with the real-video
model checkpoints/cpu-davis/default, which never saw these videos (results/online_train_search.csv,
made by `search_csv`; J&F in %, the flow path 45.4):
  top-k 10, temperature 0.05   CRW's values, not searched.
  radius 6                     the affinity readout: 51.7 at radius 6, 49.4 at 12, 27.9 at 24.
  design (a) weight 0.7        at radius 6: 47.7 (0.7), 47.5 (0.5), 47.4 (0.3), gate 47.5. At
                               radius 12 weight 0.3 scores 48.3, but costs 1.6x the flow path per
                               frame (`rpmnet bench propagate`), above design (a)'s 1.5x budget;
                               radius 6 costs about 1.1x. So: the best row within the budget.
  design (b) 10 steps, lr 1e-4 48.4; lr 1e-3 scores 33.0. The rest of its grid (20 and 40 steps,
                               lr 3e-5 and 3e-4; GRIDS["b"]) did not run on the shared machine.
                               Crop 256 and motion +-3 H/4 pixels are fixed, not searched.
  "full" = design (a)          a and b are 0.7 apart on 6 sequences (not separable there; a + b
                               not measured); (a) is kept for being training-free with a bounded
                               cost per frame, not for its DAVIS-2016 val score.
The radius is in grid (H/4) pixels: 6 is 24 full-size pixels, a tenth of the benchmark's height
but a twentieth of DAVIS's 480 rows at native scale (cpu-davis propagates at scale 1): the search
fixes the grid distance, which is what a frame's motion at H/4 is measured in.
"""
from __future__ import annotations

import copy
import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .errors import InputError
from .ops import warp

MODES = ("flow", "affinity")
REFERENCES = ("previous", "first+previous", "first+last")
CARRIES = ("soft", "hard")
WARP_AT = ("quarter", "full")
ONLINE = ("off", "readout", "finetune", "readout+finetune", "full")
FUSIONS = ("fixed", "gate")
FULL = "readout"        # what online="full" turns on (the design kept; see the report)

# Internals of design (b), fixed (not searched): crop side of the fine-tuning pairs (full-size
# pixels; the whole frame when smaller), the largest displacement of the random motion (H/4
# pixels; a 3x3 grid of random vectors, bilinearly smoothed: shift, shear and bending).
FINETUNE_CROP = 256
FINETUNE_MOTION = 3.0


@dataclass(frozen=True)
class Settings:
    """One way of propagating. Defaults: the paper's path; readout and update values: see the
    module docstring for where each comes from."""

    mode: str = "flow"
    references: str = "previous"
    last_k: int = 3
    carry: str = "soft"
    warp_at: str = "quarter"
    topk: int = 10
    radius: int | None = 6
    temperature: float = 0.05
    online: str = "off"
    fusion: str = "fixed"
    fusion_weight: float = 0.7
    finetune_steps: int = 10
    finetune_lr: float = 1e-4
    seed: int = 0

    def __post_init__(self):
        for name, allowed in (("mode", MODES), ("references", REFERENCES), ("carry", CARRIES),
                              ("warp_at", WARP_AT), ("online", ONLINE), ("fusion", FUSIONS)):
            if getattr(self, name) not in allowed:
                raise InputError(f"{name}={getattr(self, name)!r} is not allowed; choices: "
                                 f"{', '.join(allowed)}")
        for name in ("last_k", "topk", "finetune_steps"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise InputError(f"{name}={value!r} must be an integer >= 1")
        if self.radius is not None and (not isinstance(self.radius, int) or self.radius < 0):
            raise InputError(f"radius={self.radius!r} must be an integer >= 0 (H/4 pixels), or "
                             f"None for the whole frame")
        if not (isinstance(self.temperature, (int, float)) and self.temperature > 0):
            raise InputError(f"temperature={self.temperature!r} must be > 0")
        if not (isinstance(self.fusion_weight, (int, float)) and 0 <= self.fusion_weight <= 1):
            raise InputError(f"fusion_weight={self.fusion_weight!r} must be in [0, 1]")
        if not (isinstance(self.finetune_lr, (int, float)) and self.finetune_lr > 0):
            raise InputError(f"finetune_lr={self.finetune_lr!r} must be > 0")
        if self.mode != "flow" and (self.warp_at != "quarter" or self.online != "off"):
            raise InputError(f"warp_at={self.warp_at!r} and online={self.online!r} apply to "
                             f"mode='flow' only (mode={self.mode!r} warps nothing)")

    @property
    def designs(self) -> set:
        """The online designs switched on: a subset of {"readout", "finetune"}."""
        online = FULL if self.online == "full" else self.online
        return set() if online == "off" else set(online.split("+"))

    @property
    def paper_path(self) -> bool:
        """True when propagate.py's own loop does exactly this (no switch of this module on)."""
        return (self.mode == "flow" and self.warp_at == "quarter" and not self.designs
                and self.references in ("previous", "first+previous"))

    def record(self) -> dict:
        """The settings that matter for this propagation (what propagation.json records): a
        readout's top-k when no readout runs, say, must not make two equal runs differ."""
        keep = ["mode", "references", "carry"]
        keep += ["last_k"] if self.references == "first+last" else []
        keep += ["warp_at"] if self.mode == "flow" else []
        readout = self.mode == "affinity" or "readout" in self.designs
        keep += ["topk", "radius", "temperature"] if readout else []
        if self.mode == "flow":
            keep += ["online"]
        if "readout" in self.designs:
            keep += ["fusion"] + (["fusion_weight"] if self.fusion == "fixed" else [])
        if "finetune" in self.designs:
            keep += ["finetune_steps", "finetune_lr", "seed"]
        record = {k: getattr(self, k) for k in keep}
        if self.online == "full":
            record["online"] = f"full ({FULL})"
        return record

    def replace(self, **changes) -> "Settings":
        return dataclasses.replace(self, **changes)


# Named settings: the rows of the comparison (bench, notebook, CLI --inference).
NAMED = {
    "flow": Settings(),
    "flow-hard": Settings(carry="hard"),
    "flow-full-res": Settings(warp_at="full"),
    "flow-first+last": Settings(references="first+last"),
    "affinity": Settings(mode="affinity", references="first+previous"),
    "online-a": Settings(online="readout"),
    "online-a-gate": Settings(online="readout", fusion="gate"),
    "online-b": Settings(online="finetune"),
    "full": Settings(online="full"),
}


def named(name: str) -> Settings:
    if name not in NAMED:
        raise InputError(f"unknown inference setting {name!r}; allowed: {', '.join(NAMED)}")
    return NAMED[name]


def resolve(settings, propagate_from: str = "previous", carry: str = "soft") -> Settings:
    """Fold propagate.py's own arguments (ASSUMPTION 6's propagate_from, carry) into Settings."""
    if settings is None:
        settings = Settings()
    elif isinstance(settings, str):
        settings = named(settings)
    elif not isinstance(settings, Settings):
        raise InputError(f"settings must be a Settings or a name ({', '.join(NAMED)}); "
                         f"got {type(settings).__name__}")
    changes = {}
    if propagate_from == "previous+first":
        if settings.references not in ("previous", "first+previous"):
            raise InputError(f"propagate_from='previous+first' contradicts "
                             f"references={settings.references!r}")
        changes["references"] = "first+previous"
    if carry != "soft":
        if settings.carry != "soft" and settings.carry != carry:
            raise InputError(f"carry={carry!r} contradicts the settings' carry={settings.carry!r}")
        changes["carry"] = carry
    return settings.replace(**changes) if changes else settings


# ------------------------------------------------------------------------ the affinity readout
# A score no candidate reaches (scores are cosines in [-1, 1]) for reference pixels off the image
# or outside the circle: finite, so the matrix products stay free of NaN, and its softmax weight
# is exactly 0 at any temperature below ~1e35.
FAR = -1e37


@dataclass(frozen=True)
class Reference:
    """One reference frame prepared for the readout, once (frame 0's once per sequence).

    Local (radius r): `keys` holds the reference's L2-normalised features padded by r, with one
    more channel that is FAR off the image, cut into overlapping row pieces of tile + 2r pixels
    ((h+2r) * n pieces, C+1, tile+2r; n = ceil(w / tile)): the block of `tile` target pixels at
    row y, piece j meets piece (y + dy) * n + j at vertical offset dy, so the whole window is
    (2r+1) contiguous slices and nothing is copied per offset. `labels`: the label map padded
    by r (L, h+2r, n*tile+2r); `low`/`high`: the smallest and largest label of each square
    (2r+1)^2 window (L, h, w): where they are one vector in every reference the readout is that
    vector (a convex combination of one vector), so only target pixels near a label edge are
    scored. Global (radius None): `keys` (C, h*w) and `labels` (L, h*w).
    """

    radius: int | None
    shape: tuple
    tile: int
    keys: torch.Tensor
    labels: torch.Tensor
    low: torch.Tensor | None = None
    high: torch.Tensor | None = None


def _tile(radius: int) -> int:
    """Target pixels per block: each block's matrix product scores tile x (tile + 2r) pairs of
    which tile x (2r+1) are in the window, so small tiles waste less and large ones run faster;
    2r+4 (16 at radius 6) measured fastest on a 120x214 grid (480x854 frames)."""
    return max(8, 2 * radius + 4)


def _window_max(x, r: int):
    """Max over each (2r+1)^2 square window, off-image ignored: two 1-D passes (separable)."""
    x = F.max_pool2d(x[None], (1, 2 * r + 1), 1, (0, r))
    return F.max_pool2d(x, (2 * r + 1, 1), 1, (r, 0))[0]


def prepare(feat, labels, radius: int | None = 6) -> Reference:
    """feat (1, C, h, w), labels (1, L, h, w) at the features' grid -> a Reference."""
    if not (isinstance(feat, torch.Tensor) and isinstance(labels, torch.Tensor) and feat.dim() == 4
            and labels.dim() == 4 and feat.shape[-2:] == labels.shape[-2:]):
        raise InputError(f"a readout reference needs features (1, C, h, w) and labels (1, L, h, w) "
                         f"of one grid; got {_dims(feat)} and {_dims(labels)}")
    k = F.normalize(feat[0].float(), dim=0)
    lab = labels[0].float()
    c, h, w = k.shape
    if radius is None:
        return Reference(None, (h, w), 0, k.reshape(c, -1), lab.reshape(lab.shape[0], -1))
    r, tile = radius, _tile(radius)
    n = math.ceil(w / tile)
    wq = n * tile
    kp = F.pad(torch.cat([k, torch.zeros(1, h, w, device=k.device)]), (r, r + wq - w, r, r))
    kp[c] = FAR
    kp[c, r:r + h, r:r + w] = 0
    pieces = kp.unfold(2, tile + 2 * r, tile).permute(1, 2, 0, 3)        # h+2r, n, C+1, T+2r
    return Reference(r, (h, w), tile, pieces.reshape(-1, c + 1, tile + 2 * r),
                     F.pad(lab, (r, r + wq - w, r, r)), -_window_max(-lab, r), _window_max(lab, r))


def _dims(t):
    return tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__


def readout(target_feat, ref_feats, ref_labels, topk: int = 10, radius: int | None = 6,
            temperature: float = 0.05, chunk: int = 4096):
    """Labels of the references transferred to the target through feature affinity.

    target_feat (1, C, h, w); ref_feats: list of (1, C, h, w); ref_labels: list of (1, L, h, w)
    (soft or one-hot maps at the features' grid). Every target pixel scores the reference
    pixels within `radius` (Euclidean, in grid pixels; None: all of them) of its own position
    in every reference by the dot product of L2-normalised features, keeps the top-k, and
    returns the softmax(score / temperature)-weighted mean of their labels, (1, L, h, w).
    read() does the same with references prepared once (frame 0's, per sequence).
    """
    Settings(mode="affinity", topk=topk, radius=radius, temperature=temperature)  # checks
    if not ref_feats or len(ref_feats) != len(ref_labels):
        raise InputError(f"readout needs as many reference labels as features (>= 1); got "
                         f"{len(ref_feats)} and {len(ref_labels)}")
    refs = [prepare(f, lab, radius) for f, lab in zip(ref_feats, ref_labels)]
    return read(target_feat, refs, topk, temperature, chunk)


def read(target_feat, refs, topk: int = 10, temperature: float = 0.05, chunk: int = 4096):
    """readout() of the target (1, C, h, w) against prepared References (one radius, one grid)."""
    if not refs or len({(r.radius, r.shape) for r in refs}) != 1 \
            or tuple(target_feat.shape[-2:]) != refs[0].shape:
        raise InputError(f"readout references must share one radius and the target's grid "
                         f"{tuple(target_feat.shape[-2:])}; got {[(r.radius, r.shape) for r in refs]}")
    q = F.normalize(target_feat[0].float(), dim=0)
    if refs[0].radius is None:
        return _global_readout(q, refs, topk, temperature, chunk)[None]
    return _local_readout(q, refs, topk, temperature)[None]


def _circle(radius: int, device):
    """The window's offsets (dy, dx) with dy^2 + dx^2 <= r^2, row-major: per dy, one run of dx."""
    d = torch.arange(-radius, radius + 1, device=device)
    dy, dx = torch.meshgrid(d, d, indexing="ij")
    inside = dy ** 2 + dx ** 2 <= radius ** 2
    return dy[inside], dx[inside]


def _local_readout(q, refs, topk, temperature):
    c, h, w = q.shape
    r, tile = refs[0].radius, refs[0].tile
    side, n = 2 * r + 1, math.ceil(w / tile)
    wq = n * tile
    # where the readout is a known constant (the window's labels are one vector in every
    # reference) it is written directly; only blocks holding another pixel are scored
    value = refs[0].low
    constant = torch.ones(h, w, dtype=torch.bool, device=q.device)
    for ref in refs:
        constant &= (ref.low == ref.high).all(0) & (ref.low == value).all(0)
    out = F.pad(value, (0, wq - w))
    todo = F.pad(~constant, (0, wq - w))
    blocks = todo.view(h, n, tile).any(-1).flatten().nonzero()[:, 0]
    if len(blocks) == 0:
        return out[:, :, :w]
    dense = len(blocks) == h * n
    qt = F.pad(torch.cat([q, torch.ones(1, h, w, device=q.device)]), (0, wq - w))
    qb = qt.reshape(c + 1, h * n, tile).permute(1, 2, 0)                     # blocks, T, C+1
    qb = qb.contiguous() if dense else qb[blocks]
    dys, dxs = _circle(r, q.device)
    scores = []
    for ref in refs:
        full = q.new_empty(side, len(blocks), tile, tile + 2 * r)            # dy, B, T, T+2r
        for i in range(side):                                                # dy = i - r
            keys = ref.keys[i * n:(i + h) * n] if dense else ref.keys[blocks + i * n]
            torch.bmm(qb, keys, out=full[i])
        # target pixel t of a block meets key t + r + dx of its piece: a diagonal band
        s = full.stride()
        for i in range(side):
            half = int(math.isqrt(r * r - (i - r) ** 2))
            scores.append(full[i].as_strided((len(blocks), tile, 2 * half + 1),
                                             (s[1], s[2] + 1, 1), full[i].storage_offset() + r - half))
    per_ref = len(dys)
    values, index = torch.cat(scores, 2).view(-1, per_ref * len(refs)).topk(
        min(topk, per_ref * len(refs)), dim=1)
    weights = torch.softmax(values / temperature, dim=1)                    # FAR -> 0
    # flat position of each chosen candidate in the stacked, r-padded reference label maps
    ref_i, offset = index // per_ref, index % per_ref
    hp, wp = h + 2 * r, wq + 2 * r
    y = (blocks // n).repeat_interleave(tile)[:, None]
    x = ((blocks % n)[:, None] * tile + torch.arange(tile, device=q.device)).flatten()[:, None]
    flat = ref_i * (hp * wp) + (y + r + dys[offset]) * wp + (x + r + dxs[offset])
    labels = torch.stack([ref.labels for ref in refs], 1).reshape(out.shape[0], -1)
    chosen = (labels[:, flat] * weights).sum(-1)                             # L, B*T
    pixel = (y * wq + x)[:, 0]
    keep = todo.flatten()[pixel]
    out = out.reshape(out.shape[0], -1)
    out[:, pixel[keep]] = chosen[:, keep]
    return out.view(-1, h, wq)[:, :, :w]


def _global_readout(q, refs, topk, temperature, chunk):
    c, h, w = q.shape
    kk = torch.cat([ref.keys for ref in refs], 1)                           # C, n_ref*h*w
    ll = torch.cat([ref.labels for ref in refs], 1)
    qq = q.reshape(c, -1).T
    out = []
    for start in range(0, qq.shape[0], chunk):
        values, index = (qq[start:start + chunk] @ kk).topk(min(topk, kk.shape[1]), dim=1)
        weights = torch.softmax(values / temperature, dim=1)         # (P, k)
        out.append((ll[:, index] * weights[None]).sum(-1))            # (L, P)
    return torch.cat(out, 1).view(-1, h, w)


def fuse(warped, first_readout, fusion: str = "fixed", weight: float = 0.5):
    """Design (a): the warped t-1 map and frame 0's readout, both (1, L, h, w) summing to 1.

    "fixed": (1 - weight) * warped + weight * readout. "gate": per pixel, each map weighted by
    its confidence (its top probability above uniform, normalised to [0, 1]), so the readout
    takes over where the warp is unsure and vice versa; equal weights where both are unsure.
    """
    if fusion == "fixed":
        return (1 - weight) * warped + weight * first_readout
    uniform = 1 / warped.shape[1]

    def confidence(m):
        return ((m.max(1, keepdim=True).values - uniform) / (1 - uniform)).clamp(0, 1)

    cw, cr = confidence(warped), confidence(first_readout)
    gate = (cr + 1e-6) / (cw + cr + 2e-6)
    return (1 - gate) * warped + gate * first_readout


# ------------------------------------------------------------- design (b): test-time update
class Tuned(torch.nn.Module):
    """A model whose matching module (rows 106-108) is a fine-tuned copy; the embedding and the
    original matching module are shared, untouched."""

    def __init__(self, model, matching):
        super().__init__()
        self.model, self.matching = model, matching

    def embed(self, frames):
        return self.model.embed(frames)

    def flow(self, target_feat, reference_feat):
        return self.matching(torch.cat([target_feat, reference_feat], 1))

    def match(self, target_feat, reference_feat, source_small):
        return warp(source_small, self.flow(target_feat, reference_feat))


def random_motion(generator, small, full, magnitude: float = FINETUNE_MOTION):
    """A known smooth motion: flow (1, 2, h, w) in H/4 pixels and the same at full size (1, 2,
    H, W) in full-size pixels; a 3x3 grid of vectors uniform in +-magnitude, bilinear between."""
    coarse = (torch.rand(1, 2, 3, 3, generator=generator) * 2 - 1) * magnitude
    flow_small = F.interpolate(coarse, size=tuple(small), mode="bilinear", align_corners=True)
    return flow_small, _to_full(flow_small, full)


def _to_full(flow_small, full):
    """A flow at H/4 (in H/4 pixels) -> at full size (in full-size pixels)."""
    h, w = flow_small.shape[-2:]
    up = F.interpolate(flow_small, size=tuple(full), mode="bilinear", align_corners=False)
    return up * torch.tensor([full[0] / h, full[1] / w], dtype=up.dtype, device=up.device).view(1, 2, 1, 1)


def _crop_box(rng, full, side, center=None):
    """A (y0, x0, ch, cw) crop of at most side x side (multiple of 4) inside the frame, around
    `center` (jittered by a quarter side) or anywhere."""
    ch, cw = (min(side, s) // 4 * 4 for s in full)
    if center is None:
        cy, cx = rng.uniform(0, full[0]), rng.uniform(0, full[1])
    else:
        cy, cx = center[0] + rng.uniform(-side / 4, side / 4), center[1] + rng.uniform(-side / 4, side / 4)
    y0 = int(np.clip(round(cy - ch / 2), 0, full[0] - ch))
    x0 = int(np.clip(round(cx - cw / 2), 0, full[1] - cw))
    return y0, x0, ch, cw


def finetune(model, sequence, first, device, steps: int = 10, lr: float = 1e-4, seed: int = 0,
             n_frames: int | None = None, scale: float = 1.0):
    """Design (b): a copy of `model.matching` fine-tuned on this sequence -> Tuned(model, copy).

    Each step: (1) frame 0 and its one-hot mask, cropped around the objects, deformed by a
    known random motion: the loss is L1 between the mask warped by the predicted flow and the
    deformed mask at H/4, plus the colour reconstruction of the deformed frame; (2) one pair of
    consecutive frames (t-1 -> t, t random within the first n_frames) of the same sequence,
    cropped: the self-supervised colour reconstruction loss of training (train.losses). The
    model stays in eval mode (BatchNorm statistics are not moved by one sequence) and only the
    copy receives gradients. With `scale` < 1 the frames (and frame 0's mask) are resized first,
    as propagation embeds them.
    """
    from .propagate import frame_tensor, one_hot, to_grid

    rng = np.random.default_rng(seed)
    generator = torch.Generator().manual_seed(seed)
    matching = copy.deepcopy(model.matching).eval()
    for p in matching.parameters():
        p.requires_grad_(True)
    tuned = Tuned(model, matching)
    optimizer = torch.optim.Adam(matching.parameters(), lr=lr)
    k = int(first.max())
    frame0 = frame_tensor(sequence, 0, device, scale)
    full = tuple(frame0.shape[-2:])
    mask0 = to_grid(one_hot(first, k, device), full)
    n = len(sequence) if n_frames is None else min(n_frames, len(sequence))
    ys, xs = np.nonzero(first)
    center = (ys.mean() * full[0] / first.shape[0], xs.mean() * full[1] / first.shape[1])
    def colours(img, small):
        return F.interpolate(img, size=small, mode="area")

    with torch.enable_grad():
        for _ in range(steps):
            y0, x0, ch, cw = _crop_box(rng, full, FINETUNE_CROP, center)
            ref_img = frame0[..., y0:y0 + ch, x0:x0 + cw]
            ref_mask = mask0[..., y0:y0 + ch, x0:x0 + cw]
            small = (math.ceil(ch / 4), math.ceil(cw / 4))
            flow_small, flow_full = random_motion(generator, small, (ch, cw))
            flow_full = flow_full.to(device)
            with torch.no_grad():
                tgt_img = warp(ref_img, flow_full)
                tgt_mask = warp(ref_mask, flow_full)
                tgt_mask = torch.cat([tgt_mask[:, :1] + (1 - tgt_mask.sum(1, keepdim=True)).clamp_min(0),
                                      tgt_mask[:, 1:]], 1)
                tf, rf = model.embed(torch.cat([tgt_img, ref_img])).chunk(2)
            flow = tuned.flow(tf, rf)
            source = torch.cat([colours(ref_mask, small), colours(ref_img, small)], 1)
            goal = torch.cat([colours(tgt_mask, small), colours(tgt_img, small)], 1)
            loss = F.l1_loss(warp(source, flow), goal)
            if n > 1:
                t = int(rng.integers(1, n))
                y0, x0, ch, cw = _crop_box(rng, full, FINETUNE_CROP)
                target = frame_tensor(sequence, t, device, scale)[..., y0:y0 + ch, x0:x0 + cw]
                reference = frame_tensor(sequence, t - 1, device, scale)[..., y0:y0 + ch, x0:x0 + cw]
                small = (math.ceil(ch / 4), math.ceil(cw / 4))
                with torch.no_grad():
                    tf, rf = model.embed(torch.cat([target, reference])).chunk(2)
                recon = warp(colours(reference, small), tuned.flow(tf, rf))
                loss = loss + F.l1_loss(recon, colours(target, small))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    for p in matching.parameters():
        p.requires_grad_(False)
    return tuned


# ------------------------------------------------------------------------------ the loop
def propagate(model, sequence, first, device, n: int, settings: Settings, stats: dict | None = None,
              scale: float = 1.0):
    """Yield one HxW uint8 id map per frame under `settings` (frame 0: its annotation).

    Each frame is embedded once (at `scale` of its size, as propagate.py does); the last
    max(1, last_k) frames' features and carried maps are kept as references. stats (a dict),
    if given, receives "finetune_seconds". "Full resolution" is the annotation's size.
    """
    from .propagate import frame_tensor, hard_labels, one_hot, renormalise, to_grid

    if not hasattr(model, "embed") or not hasattr(model, "flow"):
        raise InputError(f"settings {settings.record()} need a model (a checkpoint), not a baseline")
    designs = settings.designs
    if "finetune" in designs:
        began = time.perf_counter()
        model = Tuned(model, finetune(model, sequence, first, device, settings.finetune_steps,
                                      settings.finetune_lr, settings.seed, n, scale).matching)
        if stats is not None:
            stats["finetune_seconds"] = time.perf_counter() - began
    yield first
    k = int(first.max())
    full_res = settings.warp_at == "full"
    with torch.inference_mode():
        feat0 = model.embed(frame_tensor(sequence, 0, device, scale))
        small, full = feat0.shape[-2:], first.shape
        onehot0 = one_hot(first, k, device)
        map0_small = to_grid(onehot0, small)
        map0 = onehot0 if full_res else map0_small
        keep = settings.last_k if settings.references == "first+last" else 1
        readout_refs = settings.mode == "affinity" or "readout" in designs
        # frame 0 is prepared for the readout once per sequence; each later reference once
        ref0 = prepare(feat0, map0_small, settings.radius) if readout_refs else None
        history = [(feat0, map0, ref0)]        # (features, carried map, its readout Reference)
        for t in range(1, n):
            feat = model.embed(frame_tensor(sequence, t, device, scale))
            refs = history[-keep:]
            if settings.references != "previous" and refs[0][0] is not feat0:
                refs = [(feat0, map0, ref0)] + refs
            if settings.mode == "affinity":
                soft = read(feat, [r[2] for r in refs], settings.topk, settings.temperature)
            else:
                warped = []
                for ref_feat, carried, _ in refs:
                    flow = model.flow(feat, ref_feat)
                    warped.append(warp(carried, _to_full(flow, full) if full_res else flow))
                soft = renormalise(sum(warped) / len(warped))
                if "readout" in designs:
                    first_readout = read(feat, [ref0], settings.topk, settings.temperature)
                    if full_res:
                        first_readout = F.interpolate(first_readout, size=tuple(full), mode="bilinear",
                                                      align_corners=False)
                    soft = fuse(soft, first_readout, settings.fusion, settings.fusion_weight)
            labels = (soft.permute(0, 2, 3, 1).argmax(-1)[0].to(torch.uint8).cpu().numpy()
                      if full_res else hard_labels(soft, full))
            yield labels
            if settings.carry == "hard":
                hard = one_hot(labels, k, device)
                carried = hard if full_res else to_grid(hard, small)
            else:
                carried = soft
            ref = prepare(feat, to_grid(carried, small), settings.radius) \
                if settings.mode == "affinity" else None
            history = (history + [(feat, carried, ref)])[-keep:]



# ---------------------------------------------------------------- choosing the hyperparameters
class CachedEmbedding(torch.nn.Module):
    """A model whose embedding of a whole frame is computed once and reused: a grid of settings
    embeds each frame of a split once instead of once per setting (crops are not cached)."""

    def __init__(self, model):
        super().__init__()
        self.model, self.cache = model, {}

    @property
    def matching(self):
        return self.model.matching

    def embed(self, frames):
        key = (tuple(frames.shape), hash(frames.detach().cpu().numpy().tobytes()))
        if key not in self.cache:
            self.cache[key] = self.model.embed(frames)
        return self.cache[key]

    def flow(self, target_feat, reference_feat):
        return self.model.flow(target_feat, reference_feat)

    def match(self, target_feat, reference_feat, source_small):
        return self.model.match(target_feat, reference_feat, source_small)


def search(model, davis_root, grid: dict, split: str = "train", sequences=None, scale: float = 1.0,
           device="cpu", max_frames: int | None = None):
    """Score named Settings on a labelled split in memory -> one row per setting: J&F, J, F
    (DAVIS means over objects), seconds, the setting's record. Used on the built-in
    benchmark's TRAIN split to check this module's hyperparameters (module docstring)."""
    import json

    import pandas as pd

    from .data import davis
    from .evaluate import score_sequence, summarize
    from .propagate import propagate_sequence

    names = davis.sequence_names(davis_root, split)
    names = names if sequences is None else [n for n in names if n in sequences]
    seqs = [davis.open_sequence(davis_root, name, split=split) for name in names]
    model = model if isinstance(model, CachedEmbedding) else CachedEmbedding(model.eval())
    rows = []
    for label, settings in grid.items():
        began, scores, tuning = time.perf_counter(), [], 0.0
        for seq in seqs:
            stats = {}
            pred = list(propagate_sequence(model, seq, device, max_frames=max_frames, scale=scale,
                                           settings=settings, stats=stats))
            tuning += stats.get("finetune_seconds", 0.0)
            scores.append(score_sequence(seq.name, [seq.label(t) for t in range(len(pred))], pred,
                                         seq.frame_ids[:len(pred)]))
        global_df, _ = summarize(scores)
        rows.append({"setting": label, "J&F": global_df["J&F-Mean"][0], "J": global_df["J-Mean"][0],
                     "F": global_df["F-Mean"][0], "seconds": time.perf_counter() - began,
                     "finetune_seconds": tuning, "record": json.dumps(settings.record())})
    return pd.DataFrame(rows)

# The train-split grids run with search_csv (module docstring: which row chose what). Labels
# are the CSV's "setting" column; rows with the same label are replaced when run again.
GRIDS = {
    "a-r6": {f"a-fixed{w}-r6": Settings(online="readout", radius=6, fusion_weight=w) for w in (0.3, 0.5, 0.7)}
    | {"a-gate-r6": Settings(online="readout", radius=6, fusion="gate")},
    "b": {f"b-s{n}-lr{lr:g}": Settings(online="finetune", finetune_steps=n, finetune_lr=lr)
          for n in (10, 20, 40) for lr in (3e-5, 1e-4, 3e-4)},
}


def search_csv(checkpoint, davis_root, grid: dict, out="results/online_train_search.csv",
               max_frames: int | None = 24, scale: float = 1.0, device="cpu"):
    """search() of `grid` (label -> Settings) with a checkpoint's model on davis_root's TRAIN
    split; its rows are merged into `out` (same label: replaced) and the merged table returned.
    The committed CSV: the built-in benchmark's train split (data/synthetic-cpu, 6 sequences,
    first 24 frames, 240x432) with checkpoints/cpu-davis/default, which never saw it."""
    import pandas as pd

    from .checkpoint import load_model
    from .fileio import write_csv

    table = search(load_model(checkpoint, device), davis_root, grid, "train", scale=scale,
                   device=device, max_frames=max_frames)
    if Path(out).is_file():
        old = pd.read_csv(out)
        table = pd.concat([old[~old["setting"].isin(table["setting"])], table], ignore_index=True)
    write_csv(out, table, index=False)
    return table


# ------------------------------------------------------------------------------ command line
# flag -> (Settings field, parser); every value goes through Settings' own checks.
def _int_or_none(text):
    return None if str(text).lower() in ("none", "all", "global") else int(text)


FLAGS = {"--mode": ("mode", str), "--references": ("references", str),
         "--last-k": ("last_k", int), "--topk": ("topk", int), "--radius": ("radius", _int_or_none),
         "--temperature": ("temperature", float), "--warp-at": ("warp_at", str),
         "--online": ("online", str), "--fusion": ("fusion", str),
         "--fusion-weight": ("fusion_weight", float), "--finetune-steps": ("finetune_steps", int),
         "--finetune-lr": ("finetune_lr", float)}


def add_cli(parser):
    """The propagation switches of `rpmnet propagate` (see this module's docstring)."""
    group = parser.add_argument_group("inference settings (rpmnet.online)")
    group.add_argument("--inference", help=f"a named setting: {', '.join(NAMED)} (default: flow, "
                                           f"the paper's t-1 warp); the flags below override it")
    helps = {"--mode": "flow (row 109 warp) or affinity (embedding readout)",
             "--references": "previous, first+previous or first+last",
             "--last-k": "frames kept with first+last", "--radius": "readout radius in H/4 pixels, "
             "or none", "--warp-at": "quarter (the H/4 map) or full (upsampled flow)",
             "--online": "online updating: off, readout (a), finetune (b), readout+finetune, full",
             "--fusion": "design (a): fixed weight or gate"}
    for flag, (field, _) in FLAGS.items():
        group.add_argument(flag, dest=f"online_{field}", metavar=field.upper(),
                           help=helps.get(flag, field.replace("_", " ")))


def from_args(args) -> Settings:
    settings = named(args.inference) if getattr(args, "inference", None) else Settings()
    changes = {}
    for flag, (field, kind) in FLAGS.items():
        value = getattr(args, f"online_{field}", None)
        if value is None:
            continue
        try:
            changes[field] = kind(value)
        except ValueError:
            raise InputError(f"{flag}: bad value {value!r}") from None
    return settings.replace(**changes)
