"""Notebook 01: Table 1 measured from the code, parameters per module, how a deformable
convolution samples, and its speed."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..config import BACKBONES
from ..ops import deform_conv2d, tap_grid
from .style import figure

SIZES = ((256, 256), (480, 854))     # a square crop and a DAVIS 480p frame


def _size(hw) -> str:
    return f"{hw[0]}x{hw[1]}"


def measure_table1(backbones=BACKBONES, sizes=SIZES) -> dict:
    """{(backbone, (H, W)): rpmnet.architecture_table(...)}: one forward pass per entry."""
    from ..model.table1 import architecture_table

    return {(b, hw): architecture_table(b, *hw) for b in backbones for hw in sizes}


def table1(tables: dict, backbone: str = "resnet101"):
    """Table 1 for one backbone, the paper's shape beside the measured one at every size."""
    sizes = [hw for b, hw in tables if b == backbone]
    first = tables[backbone, sizes[0]]
    out = first[["number", "description"]].copy()
    for hw in sizes:
        t = tables[backbone, hw]
        out[f"paper {_size(hw)}"] = t["paper_shape"]
        out[f"measured {_size(hw)}"] = t["output_shape"]
    out["params"] = first["params"]
    return out.set_index("number")


def plot_table1_check(tables: dict):
    """Every row group x (backbone, size): the measured shape, green where it equals the paper's."""
    keys = list(tables)
    numbers = list(tables[keys[0]]["number"])
    ok = np.array([[bool(m) for m in tables[k]["match"]] for k in keys]).T
    fig = figure(2.0 + 1.45 * len(keys), 0.8 + 0.28 * len(numbers))
    ax = fig.add_subplot()
    ax.imshow(np.where(ok, 1.0, 0.0), cmap="RdYlGn", vmin=-0.6, vmax=1.6, aspect="auto")
    for j, k in enumerate(keys):
        for i, shape in enumerate(tables[k]["output_shape"]):
            ax.text(j, i, shape, ha="center", va="center", fontsize=6.5)
    ax.set_xticks(range(len(keys)), [f"{b}\n{_size(hw)}" for b, hw in keys], fontsize=7)
    ax.set_yticks(range(len(numbers)), numbers, fontsize=7)
    ax.xaxis.tick_top()
    ax.set_ylabel("Table 1 row")
    ax.set_title(f"Measured output shapes; green = equal to Table 1 ({ok.sum()} of {ok.size})",
                 fontsize=9)
    return fig


# Module groups for the parameter chart: row numbers of Table 1.
MODULES = {
    "rows 1-2 (stem)": ("1", "2"),
    "rows 3-11": ("3-11",),
    "rows 11-23": ("11-23",),
    "rows 24-92": ("24-92",),
    "rows 93-101": ("93-101",),
    "rows 102-105 (decoder)": ("102", "103", "104", "105"),
    "rows 106-108 (matching)": ("106", "107", "108"),
}


def parameter_counts(tables: dict):
    """Parameters per module group (rows) and backbone (columns), from the measured tables."""
    import pandas as pd

    counts = {}
    for (backbone, _), t in tables.items():
        params = dict(zip(t["number"], t["params"]))
        counts[backbone] = {name: sum(params[n] for n in rows) for name, rows in MODULES.items()}
    out = pd.DataFrame(counts)
    out.loc["total"] = out.sum()
    out.loc["rows 1-101 (ResNet trunk)"] = out.iloc[:5].sum()
    return out


def plot_parameter_counts(counts, paper_total: float | None = 43e6):
    """Grouped horizontal bars on a log axis (modules differ by four orders of magnitude), the
    trunk and the total below them, next to the 43M a later paper lists for RPM-Net."""
    groups = list(MODULES) + ["rows 1-101 (ResNet trunk)", "total"]
    backbones = list(counts.columns)
    fig = figure(9, 4.8)
    ax = fig.add_subplot()
    height = 0.8 / len(backbones)
    colours = ["#9ecae1", "#4292c6", "#2171b5", "#08306b"]
    ys = np.arange(len(groups)) + np.where(np.arange(len(groups)) >= len(MODULES), 0.5, 0)
    for k, backbone in enumerate(backbones):
        y = ys + (k - (len(backbones) - 1) / 2) * height
        ax.barh(y, counts.loc[groups, backbone], height=height, color=colours[k % 4],
                label=f"{backbone}: {counts.loc['total', backbone] / 1e6:.1f}M")
    ax.set_yticks(ys, groups)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("parameters")
    ax.grid(axis="x", which="major", alpha=0.3)
    ax.axhline(len(MODULES) - 0.25, color="0.6", lw=0.8)
    if paper_total:
        ax.axvline(paper_total, color="crimson", ls="--", lw=1,
                   label=f"{paper_total / 1e6:.0f}M: RPM-Net (ResNet-101)\nin a later paper's table")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1), title="total", title_fontsize=8)
    ax.set_title("Parameters per module (the matching module is tiny next to the embedding)",
                 fontsize=9)
    return fig


# ------------------------------------------------------------ how a deformable conv samples
def ramp_image(size: int = 9):
    """An image whose pixel (y, x) holds 10y + x. Bilinear sampling of a function linear in y
    and x is exact, so a tap read at (y', x') inside the image returns 10y' + x' (checkable)."""
    y, x = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    return (10 * y + x).float()


def hand_offsets(scale: float = 1.6, degrees: float = 25.0, shift=(0.3, 0.6)):
    """(9, 2) (dy, dx) per tap: the regular 3x3 grid scaled, rotated and shifted, minus itself."""
    grid = tap_grid(3)
    a = np.deg2rad(degrees)
    rotation = torch.tensor([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]], dtype=torch.float32)
    return scale * grid @ rotation.T + torch.tensor(shift) - grid


def sample_taps(image, offsets, y: int, x: int, backend: str = "auto"):
    """The 9 values a 3x3 deformable conv reads for output pixel (y, x), one row per tap.

    Read through rpmnet.ops.deform_conv2d itself: 9 output channels with one-hot kernels, so
    channel k is exactly tap k's bilinear sample. `scipy` is the independent check.
    """
    import pandas as pd
    from scipy.ndimage import map_coordinates

    h, w = image.shape
    field = offsets.reshape(1, 18, 1, 1).expand(1, 18, h, w)     # the same offsets everywhere
    one_hot = torch.eye(9).view(9, 1, 3, 3)
    with torch.no_grad():
        out = deform_conv2d(image[None, None], field, one_hot, padding=1, backend=backend)
    grid = tap_grid(3) + torch.tensor([y, x])
    where = grid + offsets
    scipy_value = map_coordinates(image.numpy().astype(np.float64), where.T.numpy(), order=1,
                                  mode="constant", cval=0.0)
    return pd.DataFrame(dict(
        tap=range(9), regular_y=grid[:, 0].int().numpy(), regular_x=grid[:, 1].int().numpy(),
        dy=offsets[:, 0].numpy().round(3), dx=offsets[:, 1].numpy().round(3),
        sample_y=where[:, 0].numpy().round(3), sample_x=where[:, 1].numpy().round(3),
        deform_conv2d=out[0, :, y, x].double().numpy().round(3), scipy_bilinear=scipy_value.round(3)))


def plot_deformable_sampling(image, taps):
    """The image, the regular 3x3 grid (hollow) and where the deformable conv read (filled)."""
    fig = figure(5.6, 5.2)
    ax = fig.add_subplot()
    h, w = image.shape
    ax.imshow(image, cmap="Blues", vmin=-40, vmax=3 * float(image.max()))
    for i in range(h):
        for j in range(w):
            ax.text(j, i, f"{image[i, j]:.0f}", ha="center", va="center", fontsize=6, color="0.55")
    ax.set_xticks(np.arange(-0.5, w), minor=True)
    ax.set_yticks(np.arange(-0.5, h), minor=True)
    ax.grid(which="minor", color="white", lw=0.8)
    ax.tick_params(which="minor", length=0)
    cy, cx = taps.regular_y[4], taps.regular_x[4]
    ax.scatter(taps.regular_x, taps.regular_y, s=110, facecolors="none", edgecolors="tab:blue",
               lw=1.5, label="regular 3x3 grid (zero offsets)")
    for t in taps.itertuples():
        ax.annotate("", (t.sample_x, t.sample_y), (t.regular_x, t.regular_y),
                    arrowprops=dict(arrowstyle="->", color="tab:blue", lw=1))
        ax.text(t.sample_x + 0.18, t.sample_y - 0.22, f"{t.deform_conv2d:.1f}", fontsize=8,
                color="darkred", weight="bold")
    ax.scatter(taps.sample_x, taps.sample_y, s=60, c="tab:orange", edgecolors="black", lw=1,
               zorder=3, label="deformed sampling points (value read)")
    ax.scatter([cx], [cy], s=70, marker="s", c="limegreen", edgecolors="black", zorder=4,
               label="output pixel")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.04), fontsize=7, ncol=2, frameon=False)
    ax.set_title("A 3x3 deformable conv reads 9 bilinear samples at grid + offset\n"
                 "(pixel value = 10y + x, so each sample names where it was read)", fontsize=9)
    ax.set_xticks(range(w))
    ax.set_yticks(range(h))
    return fig


def zero_offset_check(seed: int = 0, dilation: int = 1):
    """Zero offsets make a deformable conv a standard conv: (outputs, max |difference| per
    backend), on a random input, weights and bias."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(1, 8, 24, 24, generator=g)
    weight = torch.randn(4, 8, 3, 3, generator=g)
    bias = torch.randn(4, generator=g)
    zeros = torch.zeros(1, 18, 24, 24)
    with torch.no_grad():
        conv = F.conv2d(x, weight, bias, padding=dilation, dilation=dilation)
        deform = {b: deform_conv2d(x, zeros, weight, bias, padding=dilation, dilation=dilation,
                                   backend=b) for b in ("fast", "torchvision")}
    diffs = {b: float((d - conv).abs().max()) for b, d in deform.items()}
    return conv, deform, diffs


def plot_zero_offsets(conv, deform: dict, diffs: dict):
    """Output channel 0 of the standard conv, of the zero-offset deformable conv, the difference."""
    fast = deform["fast"]
    fig = figure(10, 3.2)
    axes = fig.subplots(1, 3)
    lim = float(conv[0, 0].abs().max())
    for ax, img, title in ((axes[0], conv[0, 0], "F.conv2d"),
                           (axes[1], fast[0, 0], "rpmnet.ops.deform_conv2d, offsets = 0")):
        im = ax.imshow(img, cmap="RdBu_r", vmin=-lim, vmax=lim)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    fig.colorbar(im, ax=axes[:2], shrink=0.8)
    diff = (fast - conv)[0, 0].abs()
    im = axes[2].imshow(diff, cmap="magma")
    axes[2].set_title("|difference| (max over all channels:\n"
                      + ", ".join(f"{b} {d:.1e}" for b, d in diffs.items()) + ")", fontsize=8)
    axes[2].axis("off")
    fig.colorbar(im, ax=axes[2], shrink=0.8, format="%.1e")
    return fig


# ------------------------------------------------------------ speed
def ops_speed(run):
    """(table, where it comes from): results_dir/bench_ops.csv when `rpmnet bench ops` wrote one;
    else measured now: the full benchmark, or in the smoke profile only row 106 at 32x32."""
    import pandas as pd

    from ..bench import ops as bench

    path = run.results_dir / "bench_ops.csv"
    if path.is_file():
        table = pd.read_csv(path)
        return table, (f"read from {path.parent.name}/{path.name} (written by `rpmnet bench ops` "
                       f"on {table.device[0]}, {_threads(table.threads[0])}, load average "
                       f"{table.load_average[0]})")
    if run.profile.name != "smoke":
        return bench.run(device=str(run.device)), "measured in this notebook by rpmnet.bench.ops.run"
    cin, cout, size = bench.CHANNELS[0] + (32,)
    inputs = bench.layer_inputs(cin, cout, size, run.device)
    row = dict(shape=f"{bench.BATCH}x{cin}x{size}x{size}->{cout}")
    for name, fn in bench.IMPLEMENTATIONS.items():
        row[f"{name}_s"] = bench.median_seconds(bench.forward_backward(fn, inputs), 1, 1, run.device)
    table = pd.DataFrame([row])
    table["speedup_vs_torchvision"] = table.torchvision_s / table.ours_s
    return table, ("measured in this notebook (smoke profile: row 106 at 32x32 only, one timed "
                   "call after one warm-up, with rpmnet.bench.ops's inputs and timing)")


def _threads(n) -> str:
    return f"{n} thread" + ("s" if n != 1 else "")


def plot_ops_speed(table):
    """Forward+backward seconds per layer shape: ours, torchvision's, and a plain conv."""
    names = {"ours_s": "rpmnet.ops.deform_conv2d", "torchvision_s": "torchvision deform_conv2d",
             "conv_s": "plain F.conv2d (same shape)"}
    colours = {"ours_s": "tab:blue", "torchvision_s": "tab:orange", "conv_s": "0.6"}
    fig = figure(1.6 + 1.5 * len(table), 3.8)
    ax = fig.add_subplot()
    x = np.arange(len(table))
    for k, (column, label) in enumerate(names.items()):
        ax.bar(x + (k - 1) * 0.27, table[column], width=0.27, color=colours[column], label=label)
    for i, row in table.iterrows():
        ax.text(i - 0.27, row.ours_s, f"{row.speedup_vs_torchvision:.1f}x", ha="center",
                va="bottom", fontsize=7, color="tab:blue")
    ax.set_yscale("log")
    ax.set_xticks(x, table["shape"], fontsize=7, rotation=20)
    ax.set_ylabel("seconds, forward + backward")
    measured = (f"; {_threads(table.threads[0])}, load average {table.load_average[0]}"
                if "threads" in table and "load_average" in table else "")
    ax.set_title("Deformable convolution at the matching module's shapes "
                 f"(labels: speed-up over torchvision{measured})", fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(axis="y", alpha=0.3, which="both")
    return fig
