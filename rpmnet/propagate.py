"""Mask propagation (inference): the first frame's annotation, carried frame to frame by the flow.

Algorithm (ASSUMPTIONS 1, 2, 6):
  1. Frame 0's annotation (void 255 -> background) becomes a one-hot map: background + K objects,
     K = its largest id, area-averaged to the H/4 grid of the flow.
  2. Each next frame t is embedded ONCE; its features serve as the target now and as the
     reference at t+1. Row 108 predicts the flow (target = frame t, reference = frame t-1) and
     row 109 warps the carried map of t-1 with it.
  3. For writing, the warped map is upsampled to full size (bilinear) and arg-maxed to ids.

What is carried to the next step is a setting, `carry`:
  "soft" (default): the warped soft map at H/4, with the probability mass that the warp lost
     outside the image given to the background (content entering the frame is background).
     It keeps sub-pixel evidence and never rounds a thin object away at H/4.
  "hard": the written mask (full-size arg-max) shrunk back to H/4, i.e. the paper's "t-1
     segmentation mask" (Table 1, IM2). It re-sharpens every step instead of blurring.
`propagate_from="previous+first"` (ASSUMPTION 6's option) also warps frame 0's map with the
flow from frame 0 to frame t and averages the two.

Resolution (`scale`, a decision of ours, measured on DAVIS-2016 val with the cpu-davis model):
frames are embedded at native size by default (854x480 for DAVIS). Half size (scale 0.5) was 2.7x
faster per frame on 2 CPU cores and scored J&F 30.6 against 31.3: it keeps J (34.5 vs 33.7) and
loses 2.4 points of F; the masks are always written and scored at the annotation's size.

Honest limits: a warp only moves what is there. An object that leaves the image (or is covered
and loses its mass to its neighbours) cannot come back from t-1; "previous+first" can bring it
back only near where it was in frame 0. Ids missing from frame 0 are never predicted.

Baselines run the same loop: "zero-flow" is this exact path with the flow forced to zero (so it
pays the same H/4 resampling as the model); "classical-flow" replaces rows 1-108 by TV-L1 optical
flow (scikit-image) between the grey frames at H/4, warped by the same row 109: what a learned
matcher must beat; "copy-first" writes frame 0's annotation unchanged.
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .config import BASELINES, check_assumption, get_profile, resolve_device
from .data import davis
from .data.video import to_tensor
from .errors import InputError
from .fileio import atomic_dir, write_text
from .ops import warp

CARRIES = ("soft", "hard")


class ZeroFlow(torch.nn.Module):
    """The propagation path with row 108's flow forced to zero: embeds nothing, warps in place."""

    def embed(self, frames):
        h, w = frames.shape[-2:]
        return frames.new_zeros(frames.shape[0], 0, math.ceil(h / 4), math.ceil(w / 4))

    def match(self, target_feat, reference_feat, source_small):
        return warp(source_small, source_small.new_zeros(source_small.shape[0], 2, *source_small.shape[-2:]))


class ClassicalFlow(torch.nn.Module):
    """Rows 1-108 replaced by classical optical flow: TV-L1 (scikit-image) between the grey target
    and reference frames, computed on the H/4 grid where the model's flow lives (its units)."""

    # ITU-R 709 luma, scikit-image's rgb2gray weights
    LUMA = (0.2125, 0.7154, 0.0721)

    def embed(self, frames):
        h, w = frames.shape[-2:]
        grey = (frames * frames.new_tensor(self.LUMA)[:, None, None]).sum(1, keepdim=True)
        return F.interpolate(grey, size=(math.ceil(h / 4), math.ceil(w / 4)), mode="area")

    def match(self, target_feat, reference_feat, source_small):
        from skimage.registration import optical_flow_tvl1

        # optical_flow_tvl1(reference_image=target, moving_image=reference) is the (dy, dx) with
        # reference(p + v) ~ target(p): the flow row 109 samples the t-1 map with.
        flows = [optical_flow_tvl1(t[0].cpu().numpy(), r[0].cpu().numpy())
                 for t, r in zip(target_feat, reference_feat)]
        flow = torch.from_numpy(np.stack(flows)).to(source_small)
        return warp(source_small, flow)


def first_labels(sequence) -> np.ndarray:
    """Frame 0's annotation with void removed; it must hold at least one object."""
    if not sequence.annotations:
        raise InputError(f"sequence {sequence.name}: no first-frame annotation to propagate")
    labels = sequence.label(0)
    labels = np.where(labels == davis.VOID, 0, labels).astype(np.uint8)
    if labels.max() == 0:
        raise InputError(f"{sequence.annotations[0]}: the first-frame annotation has no object "
                         f"(ids 1..255 other than void)")
    return labels


def one_hot(labels: np.ndarray, k: int, device) -> torch.Tensor:
    """HxW ids -> (1, K+1, H, W) float one-hot."""
    ids = torch.from_numpy(labels.astype(np.int64)).to(device)
    return F.one_hot(ids, k + 1).permute(2, 0, 1)[None].float()


def frame_tensor(sequence, i: int, device, scale: float = 1.0) -> torch.Tensor:
    """Frame i as (1, 3, H, W) in [0, 1]; area-resized by `scale` (propagation at a lower
    resolution: the masks are still written, and scored, at the annotation's size)."""
    # [None] after the conversion keeps the strides the embeddings were computed with (the CPU
    # convolution picks its kernel by them: a batch-first conversion changes the last bits).
    frame = to_tensor(sequence.frame(i), device)[None]
    if scale == 1:
        return frame
    size = [max(1, round(side * scale)) for side in frame.shape[-2:]]
    return F.interpolate(frame, size=size, mode="area")


def to_grid(source, small) -> torch.Tensor:
    """A full-size map area-averaged to the flow's grid (the grid of a scaled frame, too)."""
    return source if source.shape[-2:] == small else F.interpolate(source, size=tuple(small), mode="area")


def hard_labels(soft, full) -> np.ndarray:
    """A soft map at H/4 -> full-size ids: bilinear upsampling, then arg-max."""
    # Channels-last, so the arg-max runs over contiguous memory: 10x faster on CPU at 480p
    # than over the strided channel axis, and the same result (ties go to the lower id).
    soft = soft.contiguous(memory_format=torch.channels_last)
    up = F.interpolate(soft, size=tuple(full), mode="bilinear", align_corners=False)
    return up.permute(0, 2, 3, 1).argmax(-1)[0].to(torch.uint8).cpu().numpy()


def renormalise(warped):
    """Mass that came from outside the reference image goes to the background."""
    lost = (1 - warped.sum(1, keepdim=True)).clamp_min(0)
    return torch.cat([warped[:, :1] + lost, warped[:, 1:]], 1)


def _check_paper_switches(propagate_from: str, carry: str) -> None:
    check_assumption("propagate_from", propagate_from)
    if carry not in CARRIES:
        raise InputError(f"carry={carry!r} is not allowed; choices: {', '.join(CARRIES)}")


def _check_scale(scale: float) -> None:
    if not 0 < scale <= 1:
        raise InputError(f"scale={scale}: must be in (0, 1] (a fraction of the frame size)")


def _paper_switches(settings) -> tuple[str, str]:
    """The paper path's settings under their own names: (ASSUMPTION 6's propagate_from, carry)."""
    return "previous+first" if settings.references == "first+previous" else "previous", settings.carry


def propagate_sequence(method, sequence, device="cpu", propagate_from: str = "previous",
                       carry: str = "soft", max_frames: int | None = None, scale: float = 1.0,
                       settings=None, stats: dict | None = None):
    """Yield one HxW uint8 id map per frame (frame 0: its annotation, void removed).

    scale: the frames are embedded at this fraction of their size (e.g. 0.5: 427x240 for DAVIS
    480p); the soft map is upsampled straight to the annotation's size before the arg-max.

    method: an RPMNet (put in eval mode), or a baseline name (BASELINES).
    settings: an rpmnet.online.Settings (or its name) for the switches beyond the paper's path
    (affinity readout, references, full-size warp, the online updating module); stats: a dict
    that receives the online module's timings.
    """
    from . import online

    _check_paper_switches(propagate_from, carry)
    first = first_labels(sequence)
    n = len(sequence) if max_frames is None else min(max_frames, len(sequence))
    if first.shape != sequence.frame(0).shape[:2]:
        raise InputError(f"{sequence.annotations[0]}: annotation is {first.shape}, "
                         f"frame is {sequence.frame(0).shape[:2]}")
    settings = online.resolve(settings, propagate_from, carry)
    if not settings.paper_path:
        if isinstance(method, str):
            raise InputError(f"baseline {method!r} takes no inference settings (got {settings.record()})")
        _check_scale(scale)
        return online.propagate(method.eval(), sequence, first, torch.device(device), n, settings,
                                stats, scale)
    propagate_from, carry = _paper_switches(settings)
    if method == "copy-first":
        return (first for _ in range(n))
    if isinstance(method, str):
        if method not in BASELINES:
            raise InputError(f"unknown baseline {method!r}; allowed: {', '.join(BASELINES)}")
        method = ClassicalFlow() if method == "classical-flow" else ZeroFlow()
    _check_scale(scale)
    return _warp_path(method.eval(), sequence, first, torch.device(device), n, propagate_from, carry,
                      scale)


@torch.inference_mode()
def _warp_path(model, sequence, first, device, n, propagate_from, carry, scale=1.0):
    yield first
    k = int(first.max())
    feat0 = reference_feat = model.embed(frame_tensor(sequence, 0, device, scale))
    small, full = feat0.shape[-2:], first.shape
    map0 = carried = to_grid(one_hot(first, k, device), small)
    for t in range(1, n):
        target_feat = model.embed(frame_tensor(sequence, t, device, scale))
        warped = model.match(target_feat, reference_feat, carried)
        if propagate_from == "previous+first":
            warped = (warped + model.match(target_feat, feat0, map0)) / 2
        soft = renormalise(warped)
        labels = hard_labels(soft, full)
        yield labels
        carried = soft if carry == "soft" else to_grid(one_hot(labels, k, device), small)
        reference_feat = target_feat  # the next step's reference: never embedded twice


def _select(names: list, sequences, where) -> list:
    if sequences is None:
        return names
    if isinstance(sequences, int):
        return names[:sequences]
    unknown = [s for s in sequences if s not in names]
    if unknown:
        raise InputError(f"{where}: no sequence(s) {', '.join(unknown)} in the split")
    return list(sequences)


RUN_FILE = "propagation.json"


def _run_key(method, davis_root, split, names, max_frames, propagate_from, carry, scale=1.0,
             settings=None) -> dict:
    """What a folder of propagated masks was made from; an in-memory model has no name.
    Settings beyond the paper's path (rpmnet.online) are recorded under "inference"; the
    paper's path records none, so its folders read as they did before those switches."""
    method = method if isinstance(method, str) else "an in-memory model"
    key = dict(method=method, davis_root=str(Path(davis_root).resolve()), split=split,
               sequences=list(names), max_frames=max_frames, propagate_from=propagate_from,
               carry=carry, scale=scale)
    if settings is not None and not settings.paper_path:
        key["inference"] = settings.record()
    return key


# what a killed run leaves: a sequence's temporary folder, an old one being replaced (both
# fileio.atomic_dir's), and the atomic writes' temporaries (fileio) of the record and of the
# evaluation's CSVs
LEFTOVERS = (".*.tmp", ".*.old-*", ".propagation.*.tmp.json", ".finetune_seconds.*.tmp.csv",
             ".global_results-*.tmp.csv", ".per-sequence_results-*.tmp.csv")


def _claim(out: Path, key: dict) -> None:
    """Refuse to mix two runs' masks in one folder (an evaluation of it would score both), and
    to write into a folder that holds anything but this propagation (a new or empty one is
    claimed); then clean what a killed run of it left."""
    from .guard import clean_leftovers, output_folder

    names = output_folder(out, "propagated masks")
    record = out / RUN_FILE
    if names and not record.is_file():
        raise InputError(f"{out}: holds {', '.join(names[:4])}{' ...' if len(names) > 4 else ''} "
                         f"but no {RUN_FILE} of `rpmnet propagate`; choose a new or empty --out")
    if record.is_file():
        try:
            old = json.loads(record.read_text())
        except ValueError:
            old = None
        if old != key:
            changed = sorted(k for k in key if not isinstance(old, dict) or old.get(k) != key[k])
            raise InputError(f"{out} holds masks of another propagation (different "
                             f"{', '.join(changed)}); choose another --out or delete it")
    out.mkdir(parents=True, exist_ok=True)
    clean_leftovers(out, LEFTOVERS)
    write_text(record, json.dumps(key, indent=1) + "\n")


def propagate_davis(method, davis_root, split: str = "val", out="runs/propagate", device="auto",
                    max_frames: int | None = None, sequences=None, propagate_from: str = "previous",
                    carry: str = "soft", scale: float = 1.0, settings=None) -> Path:
    """Propagate every sequence of a DAVIS-layout split; write out/<seq>/<frame_id>.png.

    method: a checkpoint path, an RPMNet, or a baseline name (BASELINES).
    sequences: None (all), N (the first N of the split) or a list of names. Each sequence is
    written into a temporary folder and renamed into place once complete.
    settings: rpmnet.online.Settings or its name (recorded in propagation.json); a test-time
    update (design b) also writes finetune_seconds.csv (seconds per sequence).
    """
    from . import online
    from tqdm import tqdm

    from .checkpoint import load_model

    if max_frames is not None and max_frames < 3:
        # the evaluation leaves out the first and the last frame: fewer than 3 scores nothing
        raise InputError(f"max_frames={max_frames}: need at least 3 frames (or None for all)")
    _check_scale(scale)
    if isinstance(sequences, int) and sequences < 1:
        raise InputError(f"sequences={sequences}: need at least 1 (or None for all)")
    from .guard import outside_root, sequence_pairs

    # every setting is checked before the folder is claimed (a claimed folder refuses other settings)
    _check_paper_switches(propagate_from, carry)
    device = resolve_device(device)
    split_file = davis.split_file(davis_root, split)
    names = _select(davis.sequence_names(davis_root, split), sequences, split_file)
    outside_root(out, davis_root)  # once the root is known to be one
    seqs = [davis.open_sequence(davis_root, name, split=split) for name in names]
    for seq in seqs:
        sequence_pairs(seq, every_frame=False)
    key_method = method
    if isinstance(method, (str, Path)) and str(method) not in BASELINES:
        key_method = str(Path(method).resolve())
        method = load_model(method, device)
    elif isinstance(method, torch.nn.Module):
        method = method.to(device)
    out = Path(out)
    settings = online.resolve(settings, propagate_from, carry)
    if settings.paper_path:  # recorded as before: ASSUMPTION 6's name and the carry
        propagate_from, carry = _paper_switches(settings)
    _claim(out, _run_key(key_method, davis_root, split, names, max_frames, propagate_from, carry, scale,
                         settings))
    finetune_seconds = []
    total = sum(len(s) if max_frames is None else min(max_frames, len(s)) for s in seqs)
    with tqdm(total=total, desc="propagate", unit="frame", disable=None) as bar:
        for seq in seqs:
            bar.set_postfix(sequence=seq.name)
            stats = {}
            with atomic_dir(out / seq.name, "propagated masks") as tmp:
                for frame_id, labels in zip(seq.frame_ids, propagate_sequence(
                        method, seq, device, propagate_from, carry, max_frames, scale, settings, stats)):
                    davis.write_label(tmp / f"{frame_id}.png", labels)
                    bar.update()
            if "finetune_seconds" in stats:
                finetune_seconds.append(f"{seq.name},{stats['finetune_seconds']:.3f}\n")
                write_text(out / "finetune_seconds.csv", "sequence,seconds\n" + "".join(finetune_seconds))
    return out


def evaluate_propagated(davis_root, out, split="val", max_frames=None, sequences=None):
    """DAVIS J/F of a propagate_davis run: the official evaluation (and its CSVs in `out`) when
    every frame of the split was propagated, else the same scores on the frames that were."""
    from .evaluate import evaluate_davis, score_sequence, summarize, write_tables

    if max_frames is None and sequences is None:
        return evaluate_davis(davis_root, out, split=split)
    names = _select(davis.sequence_names(davis_root, split), sequences, davis.split_file(davis_root, split))
    scores = []
    for seq in (davis.open_sequence(davis_root, name, split=split) for name in names):
        ids = seq.frame_ids[:max_frames]
        pred = [davis.read_label(Path(out) / seq.name / f"{i}.png") for i in ids]
        scores.append(score_sequence(seq.name, [seq.label(t) for t in range(len(ids))], pred, ids))
    global_df, per_object = summarize(scores)
    write_tables(out, split, global_df, per_object)
    return global_df, per_object


# ------------------------------------------------------------------------------ command line
def add_cli(parser):
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--checkpoint", help="a checkpoint written by rpmnet train")
    which.add_argument("--baseline", choices=list(BASELINES), help="propagate without a model")
    parser.add_argument("--davis-root", help="DAVIS-2016 or DAVIS-2017 root as distributed (default: "
                                             "the built-in benchmark of --profile; DAVIS-2016 for cpu-davis)")
    parser.add_argument("--profile", default="quick", help="profile of the built-in benchmark "
                                                            "(and its frame/sequence limits)")
    parser.add_argument("--split", default="val")
    parser.add_argument("--out", help="results folder (default: runs/propagate/<profile>-<run>-<checkpoint> "
                        "or <baseline>-<data>); one folder holds one propagation")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--max-frames", type=int, help="propagate only the first N frames")
    parser.add_argument("--sequences", nargs="+", help="sequence names, or N for the first N")
    parser.add_argument("--propagate-from", default="previous", help="previous or previous+first")
    parser.add_argument("--carry", default="soft", choices=CARRIES,
                        help="what goes to the next step: the soft map or the hard mask")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="embed the frames at this fraction of their size (masks are still "
                             "written at the annotation's size); default 1")
    parser.add_argument("--evaluate", action="store_true", help="also score with rpmnet evaluate")
    from . import online

    online.add_cli(parser)


def cli(args) -> int:
    max_frames, sequences = args.max_frames, args.sequences
    if sequences and len(sequences) == 1 and sequences[0].isdigit():
        sequences = int(sequences[0])
    from .data.sources import davis_root_for

    profile = get_profile(args.profile)
    davis_root = davis_root_for(profile, args.davis_root)
    if davis_root is None:  # the built-in benchmark, at the profile's scale
        from .data.synthetic import ensure_benchmark

        davis_root = ensure_benchmark(profile.name)
        max_frames = profile.max_frames if max_frames is None else max_frames
        sequences = profile.val_sequences if sequences is None else sequences
    from . import online

    settings = online.from_args(args)
    method = args.baseline or args.checkpoint
    # Default folder: the checkpoint's last two folders and name (e.g. cpu-default-final), so
    # models trained under different profiles do not share one.
    checkpoint = Path(args.checkpoint or "").resolve()
    name = (f"{args.baseline}-{Path(davis_root).name}" if args.baseline
            else "-".join([*checkpoint.parent.parts[-2:], checkpoint.stem]))
    out = propagate_davis(method, davis_root, args.split, args.out or Path("runs/propagate") / name,
                          args.device, max_frames, sequences, args.propagate_from, args.carry,
                          args.scale, settings)
    print(out)
    if args.evaluate:
        from .evaluate import format_tables

        global_df, per_object = evaluate_propagated(davis_root, out, args.split, max_frames, sequences)
        print(format_tables(global_df, per_object, args.split))
    sys.stdout.flush()
    return 0
