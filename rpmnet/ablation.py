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
Scores are in %, the paper's unit. What notebooks 03 and 05 read from the merged table (the
paper's layout side by side, rank agreement, per attribute, sequence and frame) is
`rpmnet.analysis`; the notebooks and the command reach both through one
`rpmnet.experiment.Experiment`, which holds the profile, data, seed and roots.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

from . import __version__
from .config import (BACKBONES, BASELINES, REPO, ModelConfig, PROFILE_HELP, get_profile, processor,
                     resolve_device, table2)
from .errors import InputError
from .fileio import write_csv, write_text

# Propagation without a model: the floor every trained cell has to clear.
SCORES = ("J-Mean", "F-Mean", "J&F-Mean", "J-Recall", "J-Decay", "F-Recall", "F-Decay")
SETTING = ("cell", "backbone", "matching", "kernel", "dilation", "layers")
LOSSES = ("train_loss", "zero_flow_loss", "loss_ratio")    # the last 10% of training's log
# how well a cell learned: beside the loss ratio, the flow it predicts on val (rpmnet.learned),
# and the shared warm start it began from (steps and seconds, paid once per backbone)
LEARNED = ("val_flow", "warm_start_steps", "warm_start_seconds")
COLUMNS = (*SETTING, *SCORES, "paper_J", "paper_F", "train_steps", "train_seconds", *LOSSES,
           *LEARNED, "propagate_seconds", "parameters", "data", "benchmark", "device", "processor", "seed",
           "rpmnet_version", "git_commit")


# ------------------------------------------------------------------------------- the cells
def grid(profile, cells=None, backbones=None) -> list[str]:
    """The cells to run: the baselines, then Table 2 (paper order) for the profile's backbones.

    `cells` (ids) or `backbones` narrow it; an unknown id or backbone is an InputError."""
    profile = get_profile(profile)
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
        chosen &= table.cell.map(lambda c: ModelConfig.from_cell(c).module).isin(profile.ablation_matchings)
    return [*BASELINES, *table.cell[chosen]]


def run_name(profile_name: str, seed: int = 0) -> str:
    """A grid's name in paths: the profile's for seed 0, "<profile>-seed<N>" otherwise, so that
    rerunning a grid with another seed adds to the seed-0 results instead of replacing them."""
    return profile_name if seed == 0 else f"{profile_name}-seed{seed}"


# Every function below takes the Experiment (rpmnet.experiment) first: it holds the profile, the
# DAVIS root, the seed, the device and the results, checkpoints and data roots.
def folder(exp) -> Path:
    return exp.results_root / "table2" / exp.name


def result_path(exp, cell: str, kind="json") -> Path:
    """<cell>.json (the row, the "done" marker), <cell>.objects.csv, <cell>.frames.csv, and
    <cell>.train.csv (the training log: loss and zero-flow loss per step)."""
    suffix = {"json": ".json", "objects": ".objects.csv", "frames": ".frames.csv",
              "train": ".train.csv"}[kind]
    return folder(exp) / f"{cell}{suffix}"


def merged_path(exp) -> Path:
    """results/table2_<profile>.csv (table2_<profile>-seed<N>.csv for another seed)."""
    return exp.results_root / f"table2_{exp.name}.csv"


def grid_dir(exp) -> Path:
    """checkpoints/table2/<name>/: the cells' work folders and the columns' warm starts."""
    return exp.checkpoints_root / "table2" / exp.name


def work_dir(exp, cell: str) -> Path:
    """Training checkpoints (train's out) and masks/ of one cell."""
    return grid_dir(exp) / cell


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 else "unknown"


def benchmark_root(exp) -> Path:
    """The data a grid is scored on (rpmnet.data.sources.evaluation_root)."""
    from .data.sources import evaluation_root

    return evaluation_root(exp.profile, exp.davis_root, exp.data_root)


def data_label(exp) -> str:
    if exp.davis_root is not None:
        from .data.sources import data_id

        return data_id(exp.davis_root)
    return f"synthetic-{exp.profile.data_name}"


def benchmark_id(exp) -> str | None:
    """A fingerprint of the built-in benchmark's manifest (generator format and parameters), so
    results computed on an older generator's data are not reused; "-" for a DAVIS root, None if
    the benchmark is not there."""
    if exp.davis_root is not None:
        return "-"
    from .data.synthetic import MANIFEST

    path = exp.data_root / f"synthetic-{exp.profile.data_name}" / MANIFEST
    if not path.is_file():
        return None
    manifest = json.dumps(json.loads(path.read_text()), sort_keys=True)
    return hashlib.sha1(manifest.encode()).hexdigest()[:12]


def _wanted(exp, cell) -> dict:
    """What identifies a cell's experiment; a stored cell or work folder is reused only if equal."""
    steps = 0 if cell in BASELINES else exp.profile.steps_for(ModelConfig.from_cell(cell).backbone)
    return dict(train_steps=steps, data=exp.data_label, benchmark=benchmark_id(exp), seed=exp.seed,
                settings=settings_id(exp.profile))


def settings_id(profile) -> str:
    """A fingerprint of everything else that shapes a result: the profile's result fields
    (config.RESULT_FIELDS) and the assumptions' defaults, so a cell computed under other
    settings is never reused."""
    from .config import ASSUMPTIONS

    text = json.dumps(dict(profile=profile.fingerprint(),
                           assumptions={a.name: a.default for a in ASSUMPTIONS.values()}),
                      sort_keys=True, default=list)
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def _work(exp, cell) -> Path:
    """The cell's work folder (checkpoints, masks/), emptied first if another experiment left it:
    resuming a checkpoint of other data, benchmark, seed or steps would be wrong."""
    work = work_dir(exp, cell)
    marker, wanted = work / "experiment.json", _wanted(exp, cell)
    if work.exists() and not marker.is_file() and any(work.iterdir()):  # not ours: never deleted
        raise InputError(f"{work}: holds files but no experiment.json of `rpmnet ablate`; move them "
                         f"or choose another --checkpoints-root")
    if work.exists() and marker.is_file() and _read_json(marker) != wanted:
        shutil.rmtree(work)
    if not marker.is_file():
        write_text(marker, json.dumps(wanted) + "\n")
    return work


def _train(exp, cell, work, steps=None) -> Path:
    """Train one Table 2 cell in `work`, resuming its last checkpoint; -> its final checkpoint.
    With the profile's shared warm start (ASSUMPTION 12), the cell starts from its column's."""
    from .train import TrainConfig, train

    final = work / "final.pt"
    if final.is_file():  # finished (the marker of _work pins the steps); its resume state may be gone
        return final
    profile, cfg = exp.profile, ModelConfig.from_cell(cell)
    init_from = None  # steps given: the warm start itself
    if steps is None and profile.warm_start:
        init_from = warm_start(exp, cfg.backbone)
    data = exp.training_sources()
    return train(TrainConfig(profile=profile.name, backbone=cfg.backbone, matching=cfg.matching,
                             layers=cfg.layers, dilation=cfg.dilation, data=data,
                             steps=steps or profile.steps_for(cfg.backbone), seed=exp.seed,
                             device=str(resolve_device(exp.device)), out=str(work.resolve()),
                             threads=profile.threads,
                             init_from=None if init_from is None else str(init_from)),
                 resume=True)


def warm_start(exp, backbone) -> Path:
    """The shared warm start of a backbone column (ASSUMPTION 12): the embedding trained for
    profile.warm_start steps with the profile's warm_start_cell matching module, once per
    (profile, backbone, seed), in <grid>/warm-start-<backbone>; -> its final checkpoint."""
    profile = exp.profile
    cell = f"{backbone}-{profile.warm_start_cell}"
    work = grid_dir(exp) / f"warm-start-{backbone}"
    marker = work / "experiment.json"
    wanted = dict(_wanted(exp, cell), train_steps=profile.warm_start)
    if work.exists() and marker.is_file() and _read_json(marker) != wanted:
        shutil.rmtree(work)
    if not marker.is_file():
        write_text(marker, json.dumps(wanted) + "\n")
    _log(f"warm start: {cell}, {profile.warm_start} steps (shared by the {backbone} column)")
    return _train(exp, cell, work, steps=profile.warm_start)


def _builtin(exp) -> bool:
    return exp.davis_root is None


def _val_sequences(exp, root) -> list[str]:
    """The val sequences a grid scores: the profile's first N on its own benchmark; every one of
    a DAVIS root (the official evaluation needs every frame of every val sequence)."""
    from .data.davis import sequence_names

    names = sequence_names(root, "val")
    n = exp.profile.val_sequences
    return names[:n] if _builtin(exp) and n else names


def _val_flow(exp, model, root, device) -> float:
    """The mean flow the cell predicts on its val sequences (rpmnet.learned)."""
    from .data.davis import open_sequence
    from .learned import mean_flow

    return mean_flow(model, (open_sequence(root, name, split="val")
                             for name in _val_sequences(exp, root)), device)


def _propagate(exp, method, root, out, device) -> Path:
    from .propagate import propagate_davis

    return propagate_davis(method, root, split="val", out=out, device=device,
                           sequences=_val_sequences(exp, root),
                           max_frames=exp.profile.max_frames if _builtin(exp) else None)


def masks(exp, cell) -> Path:
    """The cell's propagated val masks (<seq>/<frame>.png), propagated again if a sequence is
    missing (training first, or resuming, if the cell has no final checkpoint)."""
    device, root = resolve_device(exp.device), benchmark_root(exp)
    work = _work(exp, cell)
    masks = work / "masks"
    if not all((masks / name).is_dir() for name in _val_sequences(exp, root)):
        method = cell if cell in BASELINES else _train(exp, cell, work)
        masks = _propagate(exp, method, root, masks, device)
    if not same_training(exp, cell):
        import warnings

        warnings.warn(f"{cell}: these masks come from a retraining whose losses differ from the "
                      f"committed cell's (bit-for-bit needs the same processor and thread count): "
                      f"figures show these masks, the scores are the committed cell's", stacklevel=2)
    return masks


def same_training(exp, cell) -> bool:
    """Did the work folder's training log the very losses the stored cell's log has? (A cell
    retrained on another processor drifts from step 0 in the 5th digit.) True for baselines and
    where either log is missing: nothing to compare."""
    import pandas as pd

    log, stored = work_dir(exp, cell) / "log.csv", training_log(exp, cell)
    if stored is None or not log.is_file():
        return True
    return same_losses(pd.read_csv(log), stored)


def same_losses(log, other) -> bool:
    """Two training logs with the very same steps, losses and zero-flow losses (bit for bit)."""
    columns = ["step", "loss", "zero_flow_loss"]
    return log[columns].equals(other[columns])


def run_cell(exp, cell) -> dict:
    """Train (unless a baseline), propagate on val, evaluate; write the cell's files; -> its row."""
    from .checkpoint import load, load_model
    from .evaluate import per_frame_table, score_split, summarize

    device, root = resolve_device(exp.device), benchmark_root(exp)
    work = _work(exp, cell)
    row = dict(cell=cell, **_wanted(exp, cell), train_seconds=0.0, parameters=0)
    method = cell
    if cell not in BASELINES:
        setting = table2().set_index("cell").loc[cell]
        row.update({k: setting[k] for k in (*SETTING[1:], "paper_J", "paper_F")})
        method = _train(exp, cell, work)
        state = load(method)  # seconds: summed over every resumed part of the training
        model = load_model(method)
        row.update(train_steps=int(state["step"]), train_seconds=round(float(state["seconds"]), 1),
                   parameters=model.parameter_counts()["total"],
                   val_flow=round(_val_flow(exp, model, root, device), 4))
        if state["train_config"].get("init_from"):
            warm = load(state["train_config"]["init_from"])
            row.update(warm_start_steps=int(warm["step"]),
                       warm_start_seconds=round(float(warm["seconds"]), 1))
        keep_log(exp, cell)
    began = time.perf_counter()
    out = _propagate(exp, method, root, work / "masks", device)
    row["propagate_seconds"] = round(time.perf_counter() - began, 1)
    sequences = score_split(root, out, split="val")
    scores, objects = summarize(sequences)
    row.update({k: round(100 * float(scores[k].iloc[0]), 2) for k in SCORES})
    row.update(device=str(device), processor=processor(device), rpmnet_version=__version__,
               git_commit=git_commit())
    path = partial(result_path, exp, cell)
    write_csv(path(kind="objects"), objects)
    write_csv(path(kind="frames"), per_frame_table(sequences))
    write_text(path(), json.dumps(_plain(row), indent=1) + "\n")
    # The resume state (weights + Adam moments, 3x final.pt) only serves an unfinished cell; the
    # cpu grid kept 12 GB of them (final.pt: 4 GB). final.pt stays for the notebooks.
    (work / "last.pt").unlink(missing_ok=True)
    return row


def keep_log(exp, cell) -> bool:
    """Copy a trained cell's log.csv beside its results (checkpoints are not committed, the loss
    curves are); False if there is no log to copy."""
    log = work_dir(exp, cell) / "log.csv"
    if not log.is_file():
        return False
    write_text(result_path(exp, cell, "train"), log.read_text())
    return True


def training_losses(exp, cell) -> dict:
    """The cell's final training losses (runfolder.final_losses of its stored log); NaN if none."""
    from .runfolder import final_losses

    log = training_log(exp, cell)
    return dict.fromkeys(LOSSES, float("nan")) if log is None else final_losses(log)


def training_log(exp, cell):
    """The cell's stored training log (step, loss, zero_flow_loss, ...), or None if it has none."""
    import pandas as pd

    path = result_path(exp, cell, "train")
    return None if cell in BASELINES or not path.is_file() else pd.read_csv(path)


def _plain(row: dict) -> dict:
    """numpy scalars -> Python, so the row is JSON."""
    return {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}


def _read_json(path: Path) -> dict:
    """A JSON object written by this module; a damaged one (a merge conflict, a cut copy) is an
    InputError naming the file."""
    try:
        value = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise InputError(f"{path}: damaged ({str(err).splitlines()[0][:120]}); restore it "
                         f"(e.g. git checkout {path}) or delete it to recompute") from None
    if not isinstance(value, dict):
        raise InputError(f"{path}: damaged (not a JSON object); restore it or delete it to recompute")
    return value


def finished(exp, cell) -> dict | None:
    """The stored row of a cell if it was computed with this profile's steps, data and seed
    (a damaged row file is an InputError naming it)."""
    path = result_path(exp, cell)
    if not path.is_file():
        return None
    row = _read_json(path)
    return row if all(row.get(k) == v for k, v in _wanted(exp, cell).items()) else None


def _finished_or_warn(exp, cell) -> dict | None:
    """finished(), with a damaged row file named on stderr and left out: listing and merging
    the other cells still works."""
    try:
        return finished(exp, cell)
    except InputError as err:
        _log(f"left out: {err}")
        return None


def plan(exp, cells=None, backbones=None):
    """The grid as a table: each cell's setting, training steps, and whether it is finished."""
    import pandas as pd

    rows = []
    for cell in grid(exp.profile, cells, backbones):
        backbone = None if cell in BASELINES else ModelConfig.from_cell(cell).backbone
        rows.append(dict(cell=cell, backbone=backbone or "-",
                         train_steps=exp.profile.steps_for(backbone) if backbone else 0,
                         finished=_finished_or_warn(exp, cell) is not None))
    return pd.DataFrame(rows)


def run_ablation(exp, cells=None, backbones=None):
    """Run every cell of the grid that is not finished yet; -> DataFrame of the grid's rows."""
    import pandas as pd
    from tqdm import tqdm

    todo = grid(exp.profile, cells, backbones)
    benchmark_root(exp)  # (re)generated first: its id is in the key
    rows = []
    bar = tqdm(todo, desc=f"ablate {exp.profile.name}", unit="cell", disable=None, file=sys.stderr)
    for cell in bar:
        bar.set_postfix(cell=cell)
        row = finished(exp, cell)
        if row is not None:
            _log(f"{cell}: skipped (finished: {result_path(exp, cell)})")
        else:
            began = time.perf_counter()
            row = run_cell(exp, cell)
            _log(f"{cell}: J&F {row['J&F-Mean']:.1f} (J {row['J-Mean']:.1f}, F {row['F-Mean']:.1f}) "
                 f"in {time.perf_counter() - began:.0f} s")
        rows.append(row)
    return _typed(pd.DataFrame(rows))


def _log(text: str) -> None:
    from tqdm import tqdm

    tqdm.write(f"rpmnet ablate: {text}", file=sys.stderr)


def merge(exp, write: bool = True):
    """The finished cells of one experiment (profile, data, seed) -> results/table2_<profile>.csv
    (baselines first, then the paper's order; not written with write=False); -> that DataFrame.
    Cells stored from other data, seed or step counts are left out (and named)."""
    import pandas as pd

    order = [*BASELINES, *table2().cell]
    stored = [p.stem for p in sorted(folder(exp).glob("*.json"))]
    rows = {c: _finished_or_warn(exp, c) for c in order if c in stored}
    other = [c for c, r in rows.items() if r is None]
    if other:
        _log(f"merge: left out {', '.join(other)} (stored from other data, benchmark, seed or steps)")
    rows = [r for r in rows.values() if r is not None]
    for row in rows:  # a log left in checkpoints/ by a run of older code is kept now
        if write and row["cell"] not in BASELINES and not result_path(exp, row["cell"], "train").is_file():
            keep_log(exp, row["cell"])
        row.update({k: round(v, 6) for k, v in training_losses(exp, row["cell"]).items()})
    if not rows:
        raise InputError(f"{folder(exp)}: no finished cells for {exp.data_label}, seed {exp.seed}; "
                         f"run `{exp.command()}` first")
    table = _typed(pd.DataFrame(rows))
    if write:
        write_csv(merged_path(exp), table)
    return table


def seeds_run(exp) -> list[int]:
    """The seeds with a results folder for this profile: 0 (table2/<profile>) and every
    table2/<profile>-seed<N>."""
    tagged = (exp.results_root / "table2").glob(f"{exp.profile.name}-seed*")
    found = {int(p.name.rsplit("-seed", 1)[1]) for p in tagged if p.name.rsplit("-seed", 1)[1].isdigit()}
    return sorted({0} | found)


def longer_runs(exp) -> list[str]:
    """The "<profile>-steps<N>" grids merged beside this profile's for this seed
    (results/table2_<profile>-steps<N>[-seed<S>].csv), shortest first: cells trained again for longer."""
    found = {}
    for path in exp.results_root.glob(f"table2_{exp.profile.name}-steps*.csv"):
        steps, _, tag = path.stem.rsplit("-steps", 1)[1].partition("-seed")
        if steps.isdigit() and tag == (str(exp.seed) if exp.seed else ""):
            found[int(steps)] = f"{exp.profile.name}-steps{steps}"
    return [found[n] for n in sorted(found)]


def seed_runs(exp):
    """J&F (%) of every cell that finished under more than one seed: one column per seed, plus their
    mean and range (max - min); empty when only one seed ran. How far a retraining alone moves a
    cell is the yardstick for differences between cells."""
    import pandas as pd

    values = {}
    for seed in seeds_run(exp):
        other = exp.replace(seed=seed)
        for path in sorted(folder(other).glob("*.json")):
            row = _finished_or_warn(other, path.stem)
            if row is not None and path.stem not in BASELINES:
                values.setdefault(path.stem, {})[f"seed {seed}"] = row["J&F-Mean"]
    table = pd.DataFrame.from_dict({c: v for c, v in values.items() if len(v) > 1}, orient="index")
    if not table.empty:
        runs = table.copy()
        table["mean"], table["range"] = runs.mean(axis=1), runs.max(axis=1) - runs.min(axis=1)
    return table


# Cells retrained on another processor: the first training's files are kept here, under the same
# layout (<root>/table2/<grid>/), so that the two trainings of one cell and seed can be compared.
# Its rows predate the `processor` field, so the folder names the processor (session records).
EARLIER_PROCESSOR = "amd-epyc"
EARLIER_PROCESSOR_NAME = "AMD EPYC"


def retrained(exp, earlier_root=None):
    """J&F (%) of every cell trained twice with the same seed and settings, once on an earlier
    processor (its files under `earlier_root`, default <results>/amd-epyc) and once here: one row
    per (cell, seed) with the two scores, their processors and the difference (here - earlier);
    empty if none. A float-level difference in the kernels grows through training, so this is
    one more draw of the training noise, beside the seed runs."""
    import pandas as pd

    earlier = exp.replace(results_root=Path(earlier_root or exp.results_root / EARLIER_PROCESSOR))
    rows = []
    for seed in seeds_run(exp):
        now, then = exp.replace(seed=seed), earlier.replace(seed=seed)
        for path in sorted(folder(then).glob("*.json")):
            first, second = _finished_or_warn(then, path.stem), _finished_or_warn(now, path.stem)
            if first is None or second is None or path.stem in BASELINES:
                continue
            rows.append(dict(cell=path.stem, seed=seed, earlier=first["J&F-Mean"], here=second["J&F-Mean"],
                             earlier_processor=first.get("processor") or (
                                 EARLIER_PROCESSOR_NAME if earlier_root is None else ""),
                             processor=second.get("processor") or ""))
    table = pd.DataFrame(rows, columns=["cell", "seed", "earlier", "here", "earlier_processor", "processor"])
    return table.assign(difference=table.here - table.earlier)


def _typed(table):
    """The columns in COLUMNS order; the settings stay integers where baselines leave them empty."""
    table = table.reindex(columns=COLUMNS)
    return table.astype({k: "Int64" for k in ("kernel", "dilation", "layers")})


# ---------------------------------------------------------------------------- command line
def _ids(text, flag):
    """'a,b' -> [a, b]; None -> None (all); '' or 'a,,b' is a mistake, not "the whole grid"."""
    if text is None:
        return None
    ids = [t.strip() for t in text.split(",")]
    if not all(ids):
        raise InputError(f"{flag} {text!r}: empty id; give comma-separated ids (see --list)")
    return ids


def add_cli(parser):
    parser.add_argument("--profile", default="quick", help=PROFILE_HELP)
    parser.add_argument("--davis-root", help="a DAVIS-2016 or DAVIS-2017 root as distributed "
                        "(default: the profile's data)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--cells", help="comma-separated cell ids (see --list)")
    which.add_argument("--backbones", help="comma-separated backbones (default: the profile's)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--merge", action="store_true",
                        help="only merge finished cells into results/table2_<profile>.csv")
    parser.add_argument("--list", action="store_true", help="list the grid's cells and their state")
    parser.add_argument("--markdown", action="store_true",
                        help="print the finished cells with their intervals and seed runs as Markdown "
                             "(the README's tables); computes nothing")
    parser.add_argument("--verify", action="store_true",
                        help="retrain the finished --cells from scratch in a scratch folder and compare "
                             "them with the stored ones (results/verify_<profile>.csv); exit 1 if a "
                             "J&F differs by more than 0.1")
    parser.add_argument("--results-root", default="results")
    parser.add_argument("--checkpoints-root", default="checkpoints")
    parser.add_argument("--data-root", default="data")


def cli(args) -> int:
    from .experiment import Experiment

    profile = get_profile(args.profile)
    cells, backbones = _ids(args.cells, "--cells"), _ids(args.backbones, "--backbones")
    if args.seed < 0:
        raise InputError(f"--seed {args.seed}: must be at least 0")
    if args.davis_root is not None:
        from .guard import outside_root

        for flag in ("--results-root", "--checkpoints-root"):
            outside_root(getattr(args, flag[2:].replace("-", "_")), args.davis_root, flag)
    experiment = Experiment(profile, args.davis_root, args.seed, args.device, args.results_root,
                            args.checkpoints_root, args.data_root)
    if args.list:
        print(experiment.plan(cells, backbones).to_string(index=False))
        return 0
    if args.markdown:
        print(experiment.markdown() or f"no finished cell of {experiment.name} under {args.results_root}")
        return 0
    if args.verify:
        from .verify import checks_path, verify

        checks = verify(experiment, cells)
        print(checks.to_string(index=False))
        print(f"{checks_path(experiment)}: {int(checks.within.sum())} of {len(checks)} within 0.1 J&F")
        return 0 if checks.within.all() else 1
    if not args.merge:
        experiment.run_grid(cells, backbones)
    table = experiment.merge()
    print(f"{experiment.merged_path}: {len(table)} cells")
    return 0
