"""Notebooks 03 and 05: Table 2 as heatmaps, paper against ours, and masks propagated over time.

Every function takes the tables of `rpmnet.ablation` and returns a `matplotlib.figure.Figure`
(no pyplot state); the notebook saves and shows it with `run.save(fig, name)`.
"""
from __future__ import annotations

import numpy as np
from matplotlib.ticker import MaxNLocator

from ..ablation import BASELINES
from ..analysis import grid_values, rank_agreement, scores, trained
from ..config import ModelConfig, table2
from ..data import davis
from .style import figure, overlay, show_png

# One colour per matching module (baselines grey), used by every figure here.
COLOURS = {"deformable": "#1f77b4", "standard": "#ff7f0e", "dilated": "#2ca02c",
           "copy-first": "0.45", "zero-flow": "0.7", "classical-flow": "0.2"}
MARKERS = {"resnet18": "o", "resnet34": "s", "resnet50": "^", "resnet101": "D"}


def cell_colour(cell) -> str:
    """A cell's colour: its matching module's, or the baseline's own."""
    return COLOURS[cell] if cell in BASELINES else COLOURS[ModelConfig.from_cell(cell).matching]


def _baseline_lines(ax, table, metric: str = "J&F", vertical: bool = False):
    """The model-free baselines that ran, as labelled lines across the score axis."""
    line = ax.axvline if vertical else ax.axhline
    for name, style in zip(BASELINES, ("--", ":", "-.")):
        hit = table.loc[table.cell == name, f"{metric}-Mean"]
        if len(hit):
            line(hit.iloc[0], color="black", linestyle=style, linewidth=1, label=f"{name} {hit.iloc[0]:.1f}")


def _row_label(index) -> list[str]:
    return [f"{m} {kd}, {n} layer{'s' if n > 1 else ''}" for m, kd, n in index]


def table2_heatmaps(table, metric: str = "J&F"):
    """Paper, ours and ours - paper on Table 2's 7x4 layout. Paper and ours each get their own
    colour scale (the data differ, the ranks are what can agree); cells not run are grey."""
    panels = [("paper", "paper (DAVIS-2017 val)", "viridis"), ("ours", "ours", "viridis"),
              ("difference", "ours - paper", "RdBu")]
    fig = figure(13, 3.6)
    axes = fig.subplots(1, 3, sharey=True)
    for ax, (source, title, cmap) in zip(axes, panels):
        values = grid_values(table, source, metric)
        v = values.to_numpy(float)
        ran = v[~np.isnan(v)]
        if source == "difference":  # symmetric, so white means "as in the paper"
            vmax = max(np.abs(ran).max(initial=0), 1e-6)
            vmin = -vmax
        else:
            vmin, vmax = (ran.min(), ran.max()) if ran.size else (0, 1)
        colormap = _cmap(cmap)
        image = ax.imshow(np.ma.masked_invalid(v), cmap=colormap, vmin=vmin, vmax=vmax, aspect="auto")
        for (i, j), x in np.ndenumerate(v):
            text = "–" if np.isnan(x) else (f"{x:+.1f}" if source == "difference" else f"{x:.1f}")
            shade = (0.85,) * 3 if np.isnan(x) else colormap(image.norm(x))[:3]
            ax.text(j, i, text, ha="center", va="center", fontsize=8,
                    color="white" if sum(shade) < 1.5 else "black")
        ax.set_xticks(range(v.shape[1]), [c.replace("FCN-", "") for c in values.columns], fontsize=8)
        ax.set_title(f"{title}: {metric} (%)", fontsize=9)
        fig.colorbar(image, ax=ax, shrink=0.8)
    axes[0].set_yticks(range(len(values)), _row_label(values.index), fontsize=8)
    return fig


def _cmap(name):
    import matplotlib

    return matplotlib.colormaps[name].with_extremes(bad="0.85")


def rank_scatter(table, metric: str = "J&F"):
    """Ours against the paper, one point per Table 2 cell that ran, with Spearman's rho."""
    s = scores(table, metric).join(table2().set_index("cell")[["backbone", "matching"]]).dropna()
    agreement = rank_agreement(table, metric)
    fig = figure(7.0, 4.2)
    ax = fig.add_subplot()
    for (backbone, matching), group in s.groupby(["backbone", "matching"], sort=False):
        ax.scatter(group.paper, group.ours, color=COLOURS[matching], marker=MARKERS[backbone],
                   s=40, label=f"{backbone} {matching}", edgecolor="black", linewidth=0.4)
    for cell, row in s.iterrows():
        ax.annotate(ModelConfig.from_cell(cell).module, (row.paper, row.ours), fontsize=6, xytext=(3, 2),
                    textcoords="offset points", color="0.3")
    _baseline_lines(ax, table, metric)
    rho = agreement["rho"]
    ax.set_title(f"{metric}: Spearman rho = {rho:.2f} over {agreement['n']} cells"
                 if rho == rho else f"{metric}: too few cells ({agreement['n']}) for a rank correlation",
                 fontsize=9)
    ax.set_xlabel(f"paper {metric} (%), DAVIS-2017 val")
    ax.set_ylabel(f"ours {metric} (%)")
    ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1), ncols=1)  # outside: no point hidden
    ax.margins(x=0.12)  # room for the labels of the rightmost points
    ax.grid(alpha=0.3)
    return fig


def cells_vs_baselines(table):
    """J&F of every cell that ran, with the model-free baselines that ran (copy-first, zero-flow,
    classical-flow: _baseline_lines draws each of BASELINES) as vertical lines."""
    cells = trained(table)
    fig = figure(6.5, 0.9 + 0.28 * max(len(cells), 1))
    ax = fig.add_subplot()
    y = np.arange(len(cells))[::-1]
    ax.barh(y, cells["J&F-Mean"], color=[COLOURS[m] for m in cells.matching])
    ax.set_yticks(y, cells.cell, fontsize=7)
    _baseline_lines(ax, table, vertical=True)
    for yi, v in zip(y, cells["J&F-Mean"]):
        ax.text(v, yi, f" {v:.1f}", va="center", fontsize=7)
    ax.set_xlabel("J&F-Mean (%), ours")
    ax.legend(fontsize=7, loc="lower left", bbox_to_anchor=(0, 1), ncols=2, frameon=False)
    ax.margins(x=0.12)
    return fig


def learning_vs_score(table):
    """J&F of every trained cell against how well it learned its training task: the loss of its
    last 10% of steps over the zero-flow loss on the same batches (1 = the flow did not help)."""
    cells = trained(table).dropna(subset=["loss_ratio", "J&F-Mean"])
    fig = figure(5.6, 4.2)
    ax = fig.add_subplot()
    for (backbone, matching), group in cells.groupby(["backbone", "matching"], sort=False):
        ax.scatter(group.loss_ratio, group["J&F-Mean"], color=COLOURS[matching],
                   marker=MARKERS[backbone], s=40, edgecolor="black", linewidth=0.4,
                   label=f"{backbone} {matching}")
    # Cells that did not learn pile up at a ratio of 1; colour and marker name them there.
    for _, row in cells[cells.loss_ratio < 0.98].iterrows():
        ax.annotate(ModelConfig.from_cell(row.cell).module, (row.loss_ratio, row["J&F-Mean"]), fontsize=6,
                    xytext=(3, 2), textcoords="offset points", color="0.3")
    _baseline_lines(ax, table)
    ax.axvline(1, color="0.5", linewidth=1)
    ax.set_xlabel("training loss / zero-flow loss, last 10% of steps (left = learned more)")
    ax.set_ylabel("J&F-Mean (%), ours")
    ax.legend(fontsize=6, loc="best", ncols=2)
    ax.grid(alpha=0.3)
    return fig


def longer_learning(logs: dict, window: int = 60):
    """For cells trained twice (the grid's length and longer): training loss over zero-flow loss
    along the steps, each a `window`-step mean of both (the ratio of means, as loss_ratio is).
    `logs` is {cell: {run name: its training log}}, the grid's run first; one panel per cell.
    The grid's run is drawn wide and pale under the longer one: with the same seed, batches and
    constant learning rate the longer run passes through it, so the two coincide up to its end."""
    fig = figure(3.3 * min(len(logs), 4), 3.2)
    axes = np.atleast_1d(fig.subplots(1, len(logs), sharey=True, squeeze=False)[0])
    mean = lambda v: v.rolling(window, min_periods=1).mean()  # noqa: E731
    for ax, (cell, runs) in zip(axes, logs.items()):
        for (name, log), (width, alpha) in zip(runs.items(), ((5, 0.3), (1.3, 1.0))):
            ratio = mean(log["loss"]) / mean(log["zero_flow_loss"])
            ax.plot(log["step"], ratio, color=cell_colour(cell), lw=width, alpha=alpha, label=f"{name}: {len(log)} steps")
        ax.axvline(len(next(iter(runs.values()))), color="0.3", ls=":", lw=1)  # where the grid stopped
        ax.axhline(1, color="0.5", lw=1)
        ax.set_title(cell, fontsize=8)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6, loc="lower left")
    axes[0].set_ylabel(f"loss / zero-flow loss ({window}-step means)")
    return fig


# ---------------------------------------------------------------------- masks over time
def _contour(ax, mask, colour):
    if mask.any() and not mask.all():
        ax.contour(mask.astype(float), levels=[0.5], colors=[colour], linewidths=1.0)


def _overlay(ax, seq, masks_dir, frame_id: str):
    """One frame: the propagated mask tinted and outlined, the ground truth as white lines."""
    t = seq.frame_ids.index(frame_id)
    ax.imshow(overlay(seq.frame(t), davis.read_label(masks_dir / seq.name / f"{frame_id}.png"),
                      alpha=0.45))
    gt = seq.label(t)
    for k in np.unique(gt[(gt > 0) & (gt != davis.VOID)]):
        _contour(ax, gt == k, "white")
    ax.set_axis_off()


def _propagated(masks_dir, seq) -> list[str]:
    return sorted(p.stem for p in (masks_dir / seq.name).glob("*.png"))


def mask_overlays(root, masks_dir, sequences, frames: int = 6, frame_scores=None):
    """Rows: val sequences; columns: evenly spaced frames. Tint and outline: the propagated
    mask (DAVIS colours); white line: the ground truth. With `frame_scores` (Experiment.per_frame),
    each scored frame shows its J (mean over objects)."""
    opened = [davis.open_sequence(root, name) for name in sequences]
    H, W = opened[0].frame(0).shape[:2]
    frames = min(frames, min(len(_propagated(masks_dir, seq)) for seq in opened))
    fig = figure(1.9 * frames, 0.35 + 1.9 * H / W * len(opened))
    axes = fig.subplots(len(opened), frames, squeeze=False)
    for r, seq in enumerate(opened):
        ids = _propagated(masks_dir, seq)
        for c, t in enumerate(np.linspace(0, len(ids) - 1, frames).round().astype(int)):
            _overlay(axes[r, c], seq, masks_dir, ids[t])
            label = f"{seq.name} {ids[t]}" if c == 0 else ids[t]
            if frame_scores is not None:
                hit = frame_scores[(frame_scores.sequence == seq.name) & (frame_scores.frame == ids[t])]
                if len(hit):
                    label += f"  J {hit.J.mean():.0f}"
            axes[r, c].set_title(label, fontsize=7)
    return fig


def per_frame_curves(frame_scores, sequences=None):
    """J and F (%) over time for every object of the chosen sequences (one line each)."""
    data = frame_scores if sequences is None else frame_scores[frame_scores.sequence.isin(sequences)]
    fig = figure(10, 3.4)
    axes = fig.subplots(1, 2, sharey=True)
    for (name, k), group in data.groupby(["sequence", "object"], sort=False):
        t = group.frame.astype(int)
        for ax, measure in zip(axes, ("J", "F")):
            ax.plot(t, group[measure], marker=".", markersize=3, linewidth=1, label=f"{name}_{k}")
    for ax, measure in zip(axes, ("J (region similarity)", "F (contour accuracy)")):
        ax.set_title(measure + " per frame", fontsize=9)
        ax.set_xlabel("frame")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylim(-2, 102)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("%")
    axes[1].legend(fontsize=6, ncols=2, loc="lower left")
    return fig


def per_sequence_bars(sequence_scores):
    """J and F (%) per val sequence (the mean over its objects)."""
    fig = figure(1.2 + 0.9 * len(sequence_scores), 3.2)
    ax = fig.add_subplot()
    x = np.arange(len(sequence_scores))
    for offset, measure, colour in ((-0.2, "J-Mean", "#4c72b0"), (0.2, "F-Mean", "#dd8452")):
        bars = ax.bar(x + offset, sequence_scores[measure], width=0.4, color=colour,
                      label=measure[0])
        ax.bar_label(bars, fmt="%.0f", fontsize=6)
    ax.set_xticks(x, sequence_scores.index, rotation=30, ha="right", fontsize=7)
    ax.set_ylabel("%")
    ax.set_ylim(0, 105)
    ax.legend(fontsize=7)
    return fig


def attribute_bars(attribute_table, picked: dict):
    """J&F (%) per attribute for the representatives {label: cell} (analysis.representatives)."""
    rows = list(attribute_table.index)
    fig = figure(1.5 + 1.3 * len(rows), 3.6)
    ax = fig.add_subplot()
    width = 0.8 / max(len(picked), 1)
    x = np.arange(len(rows))
    counts = attribute_table.attrs.get("sequences", {})
    for i, (label, cell) in enumerate(picked.items()):
        ax.bar(x - 0.4 + width * (i + 0.5), attribute_table[cell].reindex(rows), width,
               color=cell_colour(cell), label=f"{label} ({cell})" if label != cell else cell,
               edgecolor="black", linewidth=0.3)
    names = [f"{r.replace('_', ' ')}\n({counts[r]} seq)" if r in counts else r for r in rows]
    ax.set_xticks(x, names, fontsize=8)
    ax.set_ylabel("J&F-Mean (%)")
    ax.legend(fontsize=7, ncols=2, loc="upper center", bbox_to_anchor=(0.5, -0.18))
    ax.grid(axis="y", alpha=0.3)
    return fig


# ---------------------------------------------------------------------------- widgets
def explore_table2(table, interactive: bool):
    """Heatmaps for the chosen measure (J, F, J&F) when interactive (Jupyter), else None."""
    if not interactive:
        return None
    import ipywidgets as widgets

    measure = widgets.ToggleButtons(options=["J&F", "J", "F"], description="measure")
    output = widgets.Output()
    measure.observe(lambda change: show_png(table2_heatmaps(table, change.new), output), names="value")
    show_png(table2_heatmaps(table, measure.value), output)
    return widgets.VBox([measure, output])


def explore_masks(root, cells, masks, interactive: bool):
    """Sequence, frame and two cells side by side when interactive (Jupyter), else None.

    `masks(cell) -> masks folder` (ablation.masks) is called only for the cells shown."""
    if not interactive:
        return None
    import functools

    import ipywidgets as widgets

    cells = list(dict.fromkeys(cells))
    masks = functools.cache(masks)
    names = sorted(p.name for p in masks(cells[0]).iterdir() if p.is_dir())
    c = dict(sequence=widgets.Dropdown(options=names, description="sequence"),
             frame=widgets.IntSlider(0, min=0, max=1, description="frame"),
             left=widgets.Dropdown(options=cells, value=cells[0], description="left"),
             right=widgets.Dropdown(options=cells, value=cells[-1], description="right"))
    output = widgets.Output()

    def update(change=None):
        seq = davis.open_sequence(root, c["sequence"].value)
        ids = _propagated(masks(c["left"].value), seq)
        c["frame"].max = len(ids) - 1
        frame_id = ids[min(c["frame"].value, len(ids) - 1)]
        fig = figure(9, 3.2)
        for ax, side in zip(fig.subplots(1, 2), ("left", "right")):
            _overlay(ax, seq, masks(c[side].value), frame_id)
            ax.set_title(f"{c[side].value}: {seq.name} {frame_id}", fontsize=8)
        show_png(fig, output)

    for control in c.values():
        control.observe(update, names="value")
    update()
    return widgets.VBox([widgets.HBox([c["sequence"], c["frame"]]),
                         widgets.HBox([c["left"], c["right"]]), output])
