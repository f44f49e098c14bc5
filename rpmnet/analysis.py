"""What the Table 2 grid says: the paper's layout side by side with ours, rank agreement, whether
deformable matching wins each column, how well each cell learned, and the scores of a cell per
attribute, sequence and frame. Functions of tables: the merged table and the per-cell tables
that `rpmnet.experiment.Experiment` reads from the files `rpmnet.ablation` writes (per_object,
per_frame); scores are in %, the paper's unit."""
from __future__ import annotations

import warnings
from pathlib import Path

from .ablation import BASELINES
from .config import BACKBONES, ModelConfig, table2
from .data.synthetic import ATTRIBUTES  # the claim's four: the benchmark's columns, DAVIS's codes below
from .errors import InputError

BACKBONE_NAMES = {b: f"FCN-ResNet{b[len('resnet'):]}" for b in BACKBONES}
ROW_NAMES = ("matching", "kernel / dilation", "layers")


def _rows():
    """The 7 matching settings in the paper's order, as (label tuple, setting)."""
    t = table2().drop_duplicates(["matching", "kernel", "dilation", "layers"])
    return [((m.capitalize(), f"{k} / {d}", l), (m, d, l))
            for m, k, d, l in zip(t.matching, t.kernel, t.dilation, t.layers)]


def _layout(values: dict, fill=float("nan")):
    """{cell: value} -> 7x4 DataFrame in the paper's layout (rows: matching, columns: backbone)."""
    import pandas as pd

    rows = _rows()
    index = pd.MultiIndex.from_tuples([label for label, _ in rows], names=ROW_NAMES)
    data = [[values.get(ModelConfig(b, m, l, d).cell, fill) for b in BACKBONES] for _, (m, d, l) in rows]
    return pd.DataFrame(data, index=index, columns=[BACKBONE_NAMES[b] for b in BACKBONES])


def trained(table):
    """The rows of a merged table that are Table 2 cells (a model was trained), not baselines."""
    return table[~table.cell.isin(list(BASELINES))]


def scores(table, metric="J&F"):
    """Per Table 2 cell: paper and ours for J, F or J&F (%), and ours - paper. Baselines dropped."""
    import pandas as pd

    paper = table2().set_index("cell")
    paper = pd.DataFrame({"J": paper.paper_J, "F": paper.paper_F,
                          "J&F": (paper.paper_J + paper.paper_F) / 2})[metric]
    ours = trained(table).set_index("cell")[f"{metric}-Mean"]
    out = pd.DataFrame({"paper": paper, "ours": ours.reindex(paper.index)})
    out["difference"] = out.ours - out.paper
    return out


def grid_values(table, source="ours", metric="J&F"):
    """7x4 floats in the paper's layout: source paper, ours or difference (NaN = not run)."""
    return _layout(scores(table, metric)[source].to_dict())


def paper_layout(table, source="ours"):
    """Table 2 as the paper prints it: "J / F" strings; source paper, ours or difference."""
    j, f = scores(table, "J")[source], scores(table, "F")[source]
    form = "{:+.1f} / {:+.1f}" if source == "difference" else "{:.1f} / {:.1f}"
    text = {c: form.format(j[c], f[c]) for c in j.index[j.notna()]}
    return _layout(text, fill="–")


def side_by_side(table, all_backbones=False):
    """Paper, ours and ours - paper for each backbone column that ran (or all), "J / F" strings."""
    import pandas as pd

    ran = set(table.backbone.dropna())
    backbones = [BACKBONE_NAMES[b] for b in BACKBONES if all_backbones or b in ran]
    parts = {s: paper_layout(table, s)[backbones] for s in ("paper", "ours", "difference")}
    return pd.concat(parts, axis=1).swaplevel(axis=1)[pd.MultiIndex.from_product([backbones, list(parts)])]


def rank_agreement(table, metric="J&F") -> dict:
    """Spearman rank correlation between paper and ours over the Table 2 cells that ran."""
    from scipy.stats import spearmanr

    s = scores(table, metric).dropna()
    if len(s) < 3 or s.ours.nunique() < 2:
        return dict(rho=float("nan"), pvalue=float("nan"), n=len(s))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = spearmanr(s.paper, s.ours)
    return dict(rho=float(result.statistic), pvalue=float(result.pvalue), n=len(s))


def rank_by_column(table, metric="J&F"):
    """Spearman's rho between paper and ours within each backbone column that ran (7 cells each),
    and over the matching modules' means across columns (by_module): the order of the modules
    without the differences between columns."""
    import pandas as pd

    s = scores(table, metric).dropna().join(table2().set_index("cell")[["backbone"]])
    rows = [{"over": BACKBONE_NAMES[b], "cells": len(g), "rho": _spearman(g.paper, g.ours)}
            for b, g in s.groupby("backbone", sort=False)]
    modules = by_module(table, metric)
    rows.append({"over": "module means", "cells": len(modules),
                 "rho": _spearman(modules.paper, modules.ours)})
    return pd.DataFrame(rows).set_index("over")


def _spearman(a, b) -> float:
    """Spearman's rho of two columns over their rows with both values; NaN if under 3 rows or
    if either side is constant."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy's ConstantInputWarning: rho is NaN then
        return float(a.corr(b, method="spearman", min_periods=3))


def deformable_wins(table, metric="J&F"):
    """Per backbone that ran: is deformable matching the best of its column, in the paper and
    in ours, and by how much it leads (or trails) the best other setting."""
    import pandas as pd

    s = scores(table, metric).join(table2().set_index("cell")[["backbone", "matching"]])
    rows = []
    for backbone, column in s.groupby("backbone", sort=False):
        column = column.dropna(subset=["ours"])
        if column.empty or "deformable" not in set(column.matching):
            continue
        row = dict(backbone=BACKBONE_NAMES[backbone], settings=len(column))
        for source in ("paper", "ours"):
            deformable = column.loc[column.matching == "deformable", source].iloc[0]
            others = column.loc[column.matching != "deformable", source]
            row[f"{source}_best"] = column[source].idxmax()
            row[f"{source}_margin"] = deformable - others.max() if len(others) else float("nan")
            row[f"{source}_deformable_wins"] = bool(len(others) and deformable > others.max())
        rows.append(row)
    return pd.DataFrame(rows)


def by_backbone(table):
    """Per backbone column that ran: training steps, minutes spent (training + propagation,
    summed over its cells), and the mean J&F of its cells, ours and the paper's."""
    import pandas as pd

    s = scores(table).join(table2().set_index("cell")[["backbone"]])
    models = trained(table).dropna(subset=["J&F-Mean"])
    rows = []
    for backbone, cells in models.groupby("backbone", sort=False):
        rows.append({"backbone": BACKBONE_NAMES[backbone], "cells": len(cells),
                     "train_steps": int(cells.train_steps.max()),
                     "minutes": round(float((cells.train_seconds + cells.propagate_seconds).sum()) / 60, 1),
                     "ours J&F (mean)": round(float(cells["J&F-Mean"].mean()), 1),
                     "paper J&F (mean)": round(float(s.loc[cells.cell, "paper"].mean()), 1),
                     "ours best": cells.loc[cells["J&F-Mean"].idxmax(), "cell"]})
    order = {BACKBONE_NAMES[b]: i for i, b in enumerate(BACKBONES)}
    return pd.DataFrame(rows).sort_values("backbone", key=lambda c: c.map(order)).reset_index(drop=True)


def by_module(table, metric="J&F"):
    """Per matching module (a row of Table 2): its mean over the backbone columns that ran, paper
    and ours, its rank in each (1 = best), and over how many columns each mean runs (`columns`).
    Where every module ran in every column, averaging takes out depth (and any per-backbone step
    budget), leaving the comparison the paper's claim is about; with unequal `columns` it does not."""
    import pandas as pd

    s = scores(table, metric).dropna()
    rows = {ModelConfig(BACKBONES[0], m, n, d).module: label for label, (m, d, n) in _rows()}
    module = s.index.map(lambda cell: rows[ModelConfig.from_cell(cell).module])   # its Table 2 row
    means = s.groupby(module.values).agg({"paper": "mean", "ours": "mean", "difference": "size"})
    means = means.rename(columns={"difference": "columns"})
    means.index = pd.MultiIndex.from_tuples(means.index, names=ROW_NAMES)
    for source in ("paper", "ours"):
        means[f"{source} rank"] = means[source].rank(ascending=False, method="min").astype(int)
    return means.sort_values("paper rank")


def deformable_lead(modules) -> dict:
    """From by_module: deformable matching's rank (ours, paper), its lead over the best other
    module in our means (negative: it trails), and over how many columns the means run."""
    deformable = modules.xs("Deformable", level="matching").iloc[0]
    others = modules.drop("Deformable", level="matching")
    return dict(rank=int(deformable["ours rank"]), paper_rank=int(deformable["paper rank"]),
                lead=float(deformable["ours"] - others["ours"].max()), columns=int(deformable["columns"]))


def near(table, level: float, width: float) -> int:
    """How many trained cells score within `width` J&F points of `level` (on either side)."""
    models = trained(table)
    return int(((models["J&F-Mean"] - level).abs() < width).sum())


def below_baseline(table, baseline="zero-flow"):
    """The trained cells whose J&F does not beat a baseline's, with how well they learned their
    training task (loss_ratio) and for how many steps."""
    level = table.set_index("cell").loc[baseline, "J&F-Mean"]
    models = trained(table)
    below = models[models["J&F-Mean"] <= level]
    return below.set_index("cell")[["J&F-Mean", "loss_ratio", "train_steps"]]


# A cell "learned" its training task if its loss ratio ends below this. In the cpu grid the cells
# fall on either side of a gap: 0.60-0.87 (all beat zero-flow) and 0.93-1.00 (none beats it by
# more than 0.3 J&F points).
LEARNED_BELOW = 0.9


def compare_grids(table, other, names=("grid", "longer"),
                  picked=("train_steps", "loss_ratio", "J&F-Mean"), baseline="zero-flow"):
    """The trained cells two merged grids share, side by side (`picked` columns of each, under
    `names`), with the second's J&F gain and whether it learned and beats the baseline (from
    `table`: baselines do not train). Both must be scored on the same data, or it is refused."""
    import pandas as pd

    for key in ("data", "benchmark"):
        ours, theirs = set(table[key].dropna()), set(other[key].dropna())
        if ours != theirs:
            raise InputError(f"the {names[1]} grid was scored on other {key} "
                             f"({', '.join(map(str, theirs))}) than the {names[0]} grid "
                             f"({', '.join(map(str, ours))})")
    level = table.set_index("cell").loc[baseline, "J&F-Mean"]
    grid, again = (trained(t).set_index("cell") for t in (table, other))
    cells = [c for c in grid.index if c in again.index]
    out = pd.concat({names[0]: grid.loc[cells, [p for p in picked if p in grid]],
                     names[1]: again.loc[cells, list(picked)]}, axis=1)
    second = out[names[1]]
    out[(names[1], "J&F gain")] = second["J&F-Mean"] - out[(names[0], "J&F-Mean")]
    out[(names[1], f"beats {baseline}")] = second["J&F-Mean"] > level
    out[(names[1], "learned")] = second["loss_ratio"] < LEARNED_BELOW
    return out


def longer_training(table, longer, baseline="zero-flow"):
    """The cells of a merged grid (`table`) that a "<profile>-steps<N>" grid (`longer`, merged)
    trained again for longer: steps, loss ratio and J&F (%) of both runs (compare_grids)."""
    return compare_grids(table, longer, ("grid", "longer"), baseline=baseline)


def describe_longer(comparison, baseline_level: float, baseline="zero-flow") -> list[str]:
    """One sentence per cell of longer_training: steps, loss ratio and J&F before and after."""
    lines = []
    for cell, row in comparison.iterrows():
        grid, again = row["grid"], row["longer"]
        learned = "learned" if again["learned"] else f"still did not learn (ratio >= {LEARNED_BELOW})"
        beats = "beats" if again[f"beats {baseline}"] else "does not beat"
        lines.append(f"{cell}: {int(grid.train_steps)} -> {int(again.train_steps)} steps; loss ratio "
                     f"{grid.loss_ratio:.2f} -> {again.loss_ratio:.2f} ({learned}); J&F "
                     f"{grid['J&F-Mean']:.1f} -> {again['J&F-Mean']:.1f} ({again['J&F gain']:+.1f}), "
                     f"{beats} {baseline} ({baseline_level:.1f})")
    return lines


def longer_summary(comparison, baseline="zero-flow") -> dict:
    """From longer_training: which cells had not learned in the grid, which of them learned and
    beat the baseline with more steps, and what more steps gave the cells that had learned."""
    before = comparison[("grid", "loss_ratio")] < LEARNED_BELOW
    slow = comparison[~before]
    gains = comparison.loc[before, ("longer", "J&F gain")]
    return dict(not_learned=list(slow.index), now_learned=list(slow.index[slow[("longer", "learned")]]),
                now_beat=list(slow.index[slow[("longer", f"beats {baseline}")]]),
                slow_gain=[float(g) for g in slow[("longer", "J&F gain")]],
                controls=list(gains.index), control_gain=[float(g) for g in gains])


def best_cell(table) -> str:
    """The Table 2 cell with the highest J&F of ours."""
    cells = trained(table).dropna(subset=["J&F-Mean"])
    if cells.empty:
        raise InputError("no trained cell in the table; run the grid first")
    return cells.loc[cells["J&F-Mean"].idxmax(), "cell"]


def representatives(table) -> dict:
    """{label: cell}: the best cell of each matching module (by J&F), then the baselines."""
    cells = trained(table).dropna(subset=["J&F-Mean"])
    picked = {}
    for matching, label in (("deformable", "deformable"), ("standard", "best standard"),
                            ("dilated", "best dilated")):
        group = cells[cells.matching == matching]
        if not group.empty:
            picked[label] = group.loc[group["J&F-Mean"].idxmax(), "cell"]
    return picked | {b: b for b in BASELINES if b in set(table.cell)}


def summary(table, metric="J&F") -> dict:
    """The numbers notebook 03's discussion quotes, measured from a merged table."""
    s = scores(table, metric).dropna()
    wins = deformable_wins(table, metric)
    models = trained(table).dropna(subset=["J&F-Mean"])
    baseline = table.set_index("cell")["J&F-Mean"].reindex(list(BASELINES))
    below = models[models["J&F-Mean"] <= baseline["zero-flow"]]
    below_models = [ModelConfig.from_cell(c) for c in below.cell]
    paper = scores(table, metric).paper
    best = best_cell(table)
    return dict(
        cells=len(s), backbones=len(set(models.backbone)), best_cell=best,
        best=float(models.set_index("cell").loc[best, "J&F-Mean"]),
        worst_cell=models.loc[models["J&F-Mean"].idxmin(), "cell"], worst=float(models["J&F-Mean"].min()),
        spread=float(models["J&F-Mean"].max() - models["J&F-Mean"].min()),
        paper_best_cell=paper.idxmax(), paper_best=float(paper.max()), paper_worst=float(s.paper.min()),
        paper_spread=float(s.paper.max() - s.paper.min()),
        mean_difference=float(s.difference.mean()),
        **{f"rank_{k}": v for k, v in rank_agreement(table, metric).items()},
        columns=len(wins), ours_wins=int(wins.ours_deformable_wins.sum()) if len(wins) else 0,
        paper_wins=int(wins.paper_deformable_wins.sum()) if len(wins) else 0,
        copy_first=float(baseline["copy-first"]), zero_flow=float(baseline["zero-flow"]),
        above_copy_first=int((models["J&F-Mean"] > baseline["copy-first"]).sum()),
        above_zero_flow=int((models["J&F-Mean"] > baseline["zero-flow"]).sum()),
        below_zero_flow=list(below.cell),
        below_kinds=[kind for kind, shown in (("one-layer", [m.layers == 1 for m in below_models]),
                                              ("dilated", [m.matching == "dilated" for m in below_models]))
                     if any(shown)],
        largest_parameters=int(models.parameters.max()),
        largest_cell=models.loc[models.parameters.idxmax(), "cell"],
        learning_rho=_spearman(models.loss_ratio, models["J&F-Mean"]),
        train_minutes=float(models.train_seconds.sum() / 60),
        steps=sorted(set(models.train_steps.astype(int))))


# ------------------------------------------------------------------- per attribute / sequence
# DAVIS's own attribute codes (db_info.yaml of the DAVIS-2016/2017 toolkits) for the four claims.
DAVIS_CODES = {"CS": "camera_shake", "FM": "fast_motion", "DEF": "deformation", "OCC": "occlusion"}


def sequence_attributes(root):
    """(DataFrame sequence -> bool attribute columns, where they came from), or (None, reason).

    The four of the robustness claim come first (camera_shake, fast_motion, deformation,
    occlusion); a DAVIS root's db_info.yml adds its other attribute codes (AC, BC, ... SV) after
    them. The built-in benchmark has attributes.csv; without either there is nothing to split by."""
    from .data import davis

    root = Path(root)
    if (root / "attributes.csv").is_file():
        from .data.synthetic import attributes

        table = attributes(root).set_index("sequence")[list(ATTRIBUTES)].astype(bool)
        return table, "attributes.csv of the built-in benchmark"
    info = davis.db_info(root)
    if info is not None and len(info):
        codes = [c for c in info.columns if c != "set"]
        named = info.reindex(columns=list(DAVIS_CODES)).fillna(False).astype(bool).rename(columns=DAVIS_CODES)
        others = info[[c for c in codes if c not in DAVIS_CODES]].astype(bool)
        return named.join(others), f"DAVIS {info.attrs['source']}"
    return None, (f"{root} has neither attributes.csv nor DAVIS's db_info.yml, so scores cannot be "
                  f"split by camera shake, fast motion, deformation and occlusion")


def per_sequence(objects):
    """J, F and J&F (%) per val sequence from a per-object table: the mean over its objects."""
    return objects.groupby("sequence", sort=False)[["J-Mean", "F-Mean", "J&F-Mean"]].mean()


def frames_in_percent(frames):
    """A stored per-frame table (J and F as fractions, the evaluator's unit) in %, the paper's."""
    frames = frames.copy()
    frames[["J", "F"]] = 100 * frames[["J", "F"]]
    return frames


def attribute_scores(methods: dict, root):
    """J&F (%) per attribute for each cell of `methods` ({cell: per-object table}): the mean over
    the objects of the val sequences of `root` that show it (and "none": sequences with none of
    the four). -> (attribute x cell DataFrame, the attributes' source), or (None, why not)."""
    from . import compare

    attrs, source = sequence_attributes(root)
    if attrs is None:
        return None, source
    flags = attrs.assign(none=~attrs[list(ATTRIBUTES)].any(axis=1), all=True)
    table = compare.by_attribute(methods, flags, list(flags.columns)).dropna(how="all", subset=list(methods))
    # How many scored sequences show each attribute: the weight behind each bar.
    counts = table.pop("sequences")
    table.attrs["sequences"] = {a: int(counts[a]) for a in attrs.columns if a in counts.index}
    return table, source


def rival(table, picked: dict) -> str:
    """What the deformable cell is held against per attribute: the best other matching module
    (by overall J&F), or, in a grid of the deformable cell alone, the best model-free baseline."""
    others = {c for label, c in picked.items() if label.startswith("best ")}
    pool = others or (set(BASELINES) & set(table.cell))
    scored = table[table.cell.isin(pool)].dropna(subset=["J&F-Mean"])
    return scored.loc[scored["J&F-Mean"].idxmax(), "cell"]


def frame_trend(frames) -> dict:
    """J (%) on the first and the last scored frame, averaged over objects: what drift costs."""
    ends = frames.groupby(["sequence", "object"]).J.agg(["first", "last"])
    return dict(objects=len(ends), first=float(ends["first"].mean()), last=float(ends["last"].mean()))


def object_motion(root, splits=("train", "val"), stride: int = 4) -> dict:
    """How far annotated objects move between consecutive frames, in pixels of the H/4 feature
    grid on which the matching module works (the centroid of each object id; a frame where the
    object is absent is skipped). Sets the scale a matching module has to resolve."""
    import numpy as np

    from .data import davis

    steps = []
    for split in [s for s in splits if davis.split_file(root, s).is_file()]:  # DAVIS-2016 here: val only
        for seq in davis.open_split(root, split):
            previous = {}
            for t in range(len(seq)):
                label = seq.label(t)
                current = {k: np.argwhere(label == k).mean(axis=0) for k in np.unique(label)
                           if k not in (0, davis.VOID)}
                steps += [np.hypot(*(c - previous[k])) / stride for k, c in current.items() if k in previous]
                previous = current
    if not steps:
        raise InputError(f"{root}: no object appears in two consecutive annotated frames")
    steps = np.array(steps)
    return dict(moves=len(steps), median=float(np.median(steps)), mean=float(steps.mean()),
                p90=float(np.percentile(steps, 90)), below_3=float((steps < 3).mean()))


def protocol_comparison(old, new, names, objects, baseline="zero-flow"):
    """The cells two protocols trained on the same data (merged tables `old`, `new` of the
    profiles `names`): each one's steps, loss ratio and J&F, the new run's mean val flow, and
    per cell the new J&F minus the old and minus the baseline (of the new grid), each with its
    paired bootstrap interval over sequences (rpmnet.compare.paired). `objects(profile, cell)`
    gives a cell's per-object table (Experiment.per_object)."""
    import pandas as pd

    from . import compare

    table = compare_grids(old, new, names, picked=("train_steps", "loss_ratio", "val_flow", "J&F-Mean"),
                          baseline=baseline)
    floor = objects(names[1], baseline)
    margins = {}
    for cell in table.index:
        ours = objects(names[1], cell)
        for label, other in (("old", objects(names[0], cell)), (baseline, floor)):
            d = compare.paired(ours, other)
            margins[cell] = {**margins.get(cell, {}),
                             **{(f"- {label}", k): d[k] for k in ("mean", "low", "high", "sequences")},
                             (f"- {label}", "verdict"): compare.verdict(d["low"], d["high"])}
    return pd.concat([table, pd.DataFrame.from_dict(margins, orient="index")], axis=1)


# ------------------------------------------------------------------ intervals on Table 2's claims
def _seed_summary(seeds, cell) -> dict:
    """Seed runs of one cell (ablation.seed_runs): how many, their mean and range; empty if one."""
    if seeds is None or seeds.empty or cell not in seeds.index:
        return {}
    runs = seeds.loc[cell].drop(["mean", "range"]).dropna()
    return dict(seeds=len(runs), seed_mean=float(runs.mean()), seed_range=float(runs.max() - runs.min()))


def column_margins(table, objects: dict, seeds=None):
    """"Deformable matching wins its column", measured: per backbone column that ran, the
    deformable cell minus the best other cell of the column (by J&F), with the paired bootstrap
    interval over sequences (rpmnet.compare.paired) and its verdict; beside it, where both
    cells ran under several seeds (ablation.seed_runs), each one's seed mean and range and the
    margin of the seed means. objects: {cell: per-object table} of the column's cells."""
    import pandas as pd

    from .compare import paired, verdict

    cells = trained(table).dropna(subset=["J&F-Mean"])
    rows = []
    for backbone, column in cells.groupby("backbone", sort=False):
        deformable = column[column.matching == "deformable"]
        others = column[column.matching != "deformable"]
        if deformable.empty or others.empty:
            continue
        d_cell = deformable.cell.iloc[0]
        rival = others.loc[others["J&F-Mean"].idxmax(), "cell"]
        d = paired(objects[d_cell], objects[rival])
        row = dict(backbone=BACKBONE_NAMES[backbone], deformable=d_cell, rival=rival,
                   **{"deformable J&F": float(deformable["J&F-Mean"].iloc[0]),
                      "rival J&F": float(others["J&F-Mean"].max())},
                   margin=d["mean"], low=d["low"], high=d["high"], sequences=d["sequences"],
                   verdict=verdict(d["low"], d["high"]))
        mine, theirs = _seed_summary(seeds, d_cell), _seed_summary(seeds, rival)
        row.update({f"deformable {k}": v for k, v in mine.items()})
        row.update({f"rival {k}": v for k, v in theirs.items()})
        if mine and theirs:
            row["seed-mean margin"] = mine["seed_mean"] - theirs["seed_mean"]
        rows.append(row)
    return pd.DataFrame(rows).set_index("backbone") if rows else pd.DataFrame()


def training_sd(seeds) -> dict:
    """How far retraining alone moves a cell: the pooled within-cell standard deviation of J&F over
    the cells that ran under several seeds (ablation.seed_runs), with how many cells and runs it
    rests on; empty if no cell has two seeds."""
    import numpy as np

    if seeds is None or seeds.empty:
        return {}
    runs = seeds.drop(columns=["mean", "range"], errors="ignore")
    deviations = runs.sub(runs.mean(axis=1), axis=0)
    freedom = int((runs.notna().sum(axis=1) - 1).clip(lower=0).sum())
    if freedom == 0:
        return {}
    return dict(sd=float(np.sqrt((deviations ** 2).sum().sum() / freedom)), cells=len(runs),
                runs=int(runs.notna().sum().sum()))


def processor_noise(pairs, tolerance: float = 0.1) -> dict:
    """How far retraining the same cell with the same seed on another processor moves its J&F
    (pairs: ablation.retrained). Both trainings are draws around the same expected score, so a
    difference has variance 2 sd^2: sd = sqrt(sum(d^2) / 2n) estimates one training's deviation
    (n degrees of freedom; its 95% interval from the chi-square distribution), comparable with
    training_sd's over seeds. Also the mean difference with its 95% t interval (a processor bias,
    if any), the largest |d|, and how many pairs agree within `tolerance`; empty without pairs."""
    import numpy as np
    from scipy import stats

    if pairs is None or len(pairs) == 0:
        return {}
    d = pairs["difference"].to_numpy(float)
    n = len(d)
    sd = float(np.sqrt((d ** 2).sum() / (2 * n)))
    half = (float(stats.t.ppf(0.975, n - 1) * d.std(ddof=1) / np.sqrt(n)) if n > 1 else float("nan"))
    return dict(pairs=n, sd=sd, sd_low=sd * float(np.sqrt(n / stats.chi2.ppf(0.975, n))),
                sd_high=sd * float(np.sqrt(n / stats.chi2.ppf(0.025, n))), mean=float(d.mean()),
                mean_low=float(d.mean()) - half, mean_high=float(d.mean()) + half,
                mean_abs=float(np.abs(d).mean()), max_abs=float(np.abs(d).max()),
                within=int((np.abs(d) <= tolerance + 1e-9).sum()), tolerance=tolerance)


def twin_margins(table, objects: dict, seeds=None):
    """What the learned offsets add, measured: per backbone column that ran both, the deformable
    cell minus its standard twin (the same 3x3 module with the same layers and dilation, only
    without offsets), with the paired bootstrap interval over sequences; then, with two columns or
    more, the mean of that difference over those columns, bootstrapped over sequences (the columns
    share the val sequences, so each object's differences are averaged before resampling). Unlike
    column_margins' rival, the twin is fixed in advance, not picked on the val scores. Beside each,
    the paper's J&F margin between the same cells (DAVIS-2017 val). objects: {cell: per-object table}.

    The bootstrap resamples the val sequences, not the training. With seed runs (ablation.seed_runs)
    each row also gets a wider interval that adds the training noise: a difference of two cells
    trained once varies by sqrt(2) x training_sd, its mean over k columns by sqrt(2 / k) x that; the
    two variances add (a normal approximation: half-widths combine as sqrt(a^2 + b^2))."""
    import dataclasses

    import numpy as np
    import pandas as pd

    from .compare import bootstrap, paired, verdict

    ran = set(trained(table).dropna(subset=["J&F-Mean"]).cell)
    paper = table2().set_index("cell").eval("(paper_J + paper_F) / 2")
    rows, differences = [], []
    for backbone in BACKBONES:
        deformable = ModelConfig(backbone, "deformable")
        twin = dataclasses.replace(deformable, matching="standard")
        if not {deformable.cell, twin.cell} <= ran:
            continue
        d = paired(objects[deformable.cell], objects[twin.cell])
        left, right = (objects[c].set_index("Sequence")["J&F-Mean"] for c in (deformable.cell, twin.cell))
        differences.append(left - right.loc[left.index])
        rows.append(dict(backbone=BACKBONE_NAMES[backbone], deformable=deformable.cell, twin=twin.cell,
                         margin=d["mean"], low=d["low"], high=d["high"], sequences=d["sequences"],
                         verdict=verdict(d["low"], d["high"]),
                         paper=float(paper[deformable.cell] - paper[twin.cell])))
    if len(rows) > 1:
        pooled = pd.concat(differences, axis=1, join="inner").mean(axis=1)
        d = bootstrap(pooled.to_numpy(), pooled.index.str.rsplit("_", n=1).str[0])
        rows.append(dict(backbone=f"mean over {len(rows)} columns", deformable="deformable-l3-d1",
                         twin="standard-l3-d1", margin=d["mean"], low=d["low"], high=d["high"],
                         sequences=d["sequences"], verdict=verdict(d["low"], d["high"]),
                         paper=float(pd.Series([r["paper"] for r in rows]).mean())))
    noise = training_sd(seeds)
    if noise and rows:
        columns = len(differences)
        for row in rows:
            k = columns if row["backbone"].startswith("mean over") else 1
            half = np.hypot((row["high"] - row["low"]) / 2, 1.96 * noise["sd"] * np.sqrt(2 / k))
            row.update({"with training low": row["margin"] - half, "with training high": row["margin"] + half,
                        "training sd": noise["sd"], "seed cells": noise["cells"]})
            row["with training verdict"] = verdict(row["with training low"], row["with training high"])
    return pd.DataFrame(rows).set_index("backbone") if rows else pd.DataFrame()


def versus_baseline(table, objects: dict, baseline: str = "copy-first"):
    """Every trained cell minus a baseline, with the paired bootstrap interval over sequences and
    its verdict (ahead / behind / undecided); objects: {cell: per-object table}, the baseline's
    among them."""
    import pandas as pd

    from .compare import paired, verdict

    rows = {}
    for cell in trained(table).dropna(subset=["J&F-Mean"]).cell:
        d = paired(objects[cell], objects[baseline])
        rows[cell] = dict(d, verdict=verdict(d["low"], d["high"]))
    return pd.DataFrame.from_dict(rows, orient="index")
