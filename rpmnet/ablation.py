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
from .config import BACKBONES, BASELINES, ModelConfig, get_profile, resolve_device, table2
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
           *LEARNED, "propagate_seconds", "parameters", "data", "benchmark", "device", "seed", "rpmnet_version",
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
        chosen &= table.cell.map(lambda c: ModelConfig.from_cell(c).module).isin(profile.ablation_matchings)
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


def _resolve(profile, davis_root=None):
    """A profile (by name or value) and the DAVIS root it is scored on; None: its built-in
    benchmark. A real-video profile finds DAVIS-2016 itself (rpmnet.data.sources)."""
    from .data.sources import davis_root_for

    profile = get_profile(profile) if isinstance(profile, str) else profile
    return profile, davis_root_for(profile, davis_root)


def benchmark_root(profile, davis_root=None, data_root="data") -> Path:
    """The data a grid is scored on (rpmnet.data.sources.evaluation_root)."""
    from .data.sources import evaluation_root

    return evaluation_root(profile, davis_root, data_root)


def data_label(profile, davis_root=None) -> str:
    return str(Path(davis_root).resolve()) if davis_root is not None else f"synthetic-{profile.data_name}"


def benchmark_id(profile, davis_root=None, data_root="data") -> str | None:
    """A fingerprint of the built-in benchmark's manifest (generator format and parameters), so
    results computed on an older generator's data are not reused; "-" for a DAVIS root, None if
    the benchmark is not there."""
    if davis_root is not None:
        return "-"
    from .data.synthetic import MANIFEST

    path = Path(data_root) / f"synthetic-{profile.data_name}" / MANIFEST
    if not path.is_file():
        return None
    manifest = json.dumps(json.loads(path.read_text()), sort_keys=True)
    return hashlib.sha1(manifest.encode()).hexdigest()[:12]


def _wanted(profile, cell, davis_root, seed, data_root) -> dict:
    """What identifies a cell's experiment; a stored cell or work folder is reused only if equal."""
    steps = 0 if cell in BASELINES else profile.steps_for(ModelConfig.from_cell(cell).backbone)
    return dict(train_steps=steps, data=data_label(profile, davis_root),
                benchmark=benchmark_id(profile, davis_root, data_root), seed=seed,
                settings=settings_id(profile))


def settings_id(profile) -> str:
    """A fingerprint of everything else that shapes a result: the profile's result fields
    (config.RESULT_FIELDS) and the assumptions' defaults, so a cell computed under other
    settings is never reused."""
    from .config import ASSUMPTIONS

    text = json.dumps(dict(profile=profile.fingerprint(),
                           assumptions={a.name: a.default for a in ASSUMPTIONS.values()}),
                      sort_keys=True, default=list)
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def _work(profile, cell, davis_root, seed, checkpoints_root, data_root) -> Path:
    """The cell's work folder (checkpoints, masks/), emptied first if another experiment left it:
    resuming a checkpoint of other data, benchmark, seed or steps would be wrong."""
    work = work_dir(profile.name, cell, checkpoints_root, seed)
    marker, wanted = work / "experiment.json", _wanted(profile, cell, davis_root, seed, data_root)
    if work.exists() and not marker.is_file() and any(work.iterdir()):  # not ours: never deleted
        raise InputError(f"{work}: holds files but no experiment.json of `rpmnet ablate`; move them "
                         f"or choose another --checkpoints-root")
    if work.exists() and marker.is_file() and _read_json(marker) != wanted:
        shutil.rmtree(work)
    if not marker.is_file():
        write_text(marker, json.dumps(wanted) + "\n")
    return work


def _train(cell, profile, davis_root, data_root, work, device, seed, steps=None) -> Path:
    """Train one Table 2 cell in `work`, resuming its last checkpoint; -> its final checkpoint.
    With the profile's shared warm start (ASSUMPTION 12), the cell starts from its column's."""
    from .train import TrainConfig, train

    final = work / "final.pt"
    if final.is_file():  # finished (the marker of _work pins the steps); its resume state may be gone
        return final
    from .data.sources import training_sources

    cfg = ModelConfig.from_cell(cell)
    init_from = None  # steps given: the warm start itself
    if steps is None and profile.warm_start:
        init_from = warm_start(profile, cfg.backbone, davis_root, data_root, work.parent, device, seed)
    data = training_sources(profile, davis_root, data_root)
    return train(TrainConfig(profile=profile.name, backbone=cfg.backbone, matching=cfg.matching,
                             layers=cfg.layers, dilation=cfg.dilation, data=data,
                             steps=steps or profile.steps_for(cfg.backbone), seed=seed,
                             device=str(device), out=str(work.resolve()),
                             init_from=None if init_from is None else str(init_from)),
                 resume=True)


def warm_start(profile, backbone, davis_root, data_root, grid_dir, device, seed) -> Path:
    """The shared warm start of a backbone column (ASSUMPTION 12): the embedding trained for
    profile.warm_start steps with the profile's warm_start_cell matching module, once per
    (profile, backbone, seed), in <grid>/warm-start-<backbone>; -> its final checkpoint."""
    cell = f"{backbone}-{profile.warm_start_cell}"
    work = Path(grid_dir) / f"warm-start-{backbone}"
    marker = work / "experiment.json"
    wanted = dict(_wanted(profile, cell, davis_root, seed, data_root), train_steps=profile.warm_start)
    if work.exists() and marker.is_file() and _read_json(marker) != wanted:
        shutil.rmtree(work)
    if not marker.is_file():
        write_text(marker, json.dumps(wanted) + "\n")
    _log(f"warm start: {cell}, {profile.warm_start} steps (shared by the {backbone} column)")
    return _train(cell, profile, davis_root, data_root, work, device, seed, steps=profile.warm_start)


def _val_sequences(profile, root, builtin: bool) -> list[str]:
    """The val sequences a grid scores: the profile's first N on its own benchmark; every one of
    a DAVIS root (the official evaluation needs every frame of every val sequence)."""
    from .data.davis import sequence_names

    names = sequence_names(root, "val")
    return names[:profile.val_sequences] if builtin and profile.val_sequences else names


def _val_flow(model, profile, root, builtin: bool, device) -> float:
    """The mean flow the cell predicts on its val sequences (rpmnet.learned)."""
    from .data.davis import open_sequence
    from .learned import mean_flow

    return mean_flow(model, (open_sequence(root, name, split="val")
                             for name in _val_sequences(profile, root, builtin)), device)


def _propagate(method, profile, root, out, device, builtin: bool) -> Path:
    from .propagate import propagate_davis

    return propagate_davis(method, root, split="val", out=out, device=device,
                           sequences=_val_sequences(profile, root, builtin),
                           max_frames=profile.max_frames if builtin else None)


def masks(profile, cell, davis_root=None, device="auto", seed=0, checkpoints_root="checkpoints",
          data_root="data") -> Path:
    """The cell's propagated val masks (<seq>/<frame>.png), propagated again if a sequence is
    missing (training first, or resuming, if the cell has no final checkpoint)."""
    profile, davis_root = _resolve(profile, davis_root)
    device = resolve_device(device)
    root = benchmark_root(profile, davis_root, data_root)
    work = _work(profile, cell, davis_root, seed, checkpoints_root, data_root)
    if all((work / "masks" / name).is_dir() for name in _val_sequences(profile, root, davis_root is None)):
        return work / "masks"
    method = cell if cell in BASELINES else _train(cell, profile, davis_root, data_root, work, device, seed)
    return _propagate(method, profile, root, work / "masks", device, davis_root is None)


def run_cell(cell, profile, davis_root=None, device="auto", seed=0, results_root="results",
             checkpoints_root="checkpoints", data_root="data") -> dict:
    """Train (unless a baseline), propagate on val, evaluate; write the cell's files; -> its row."""
    from .checkpoint import load, load_model
    from .evaluate import per_frame_table, score_split, summarize

    profile, davis_root = _resolve(profile, davis_root)
    device = resolve_device(device)
    root = benchmark_root(profile, davis_root, data_root)
    work = _work(profile, cell, davis_root, seed, checkpoints_root, data_root)
    row = dict(cell=cell, **_wanted(profile, cell, davis_root, seed, data_root), train_seconds=0.0,
               parameters=0)
    method = cell
    if cell not in BASELINES:
        setting = table2().set_index("cell").loc[cell]
        row.update({k: setting[k] for k in (*SETTING[1:], "paper_J", "paper_F")})
        method = _train(cell, profile, davis_root, data_root, work, device, seed)
        state = load(method)  # seconds: summed over every resumed part of the training
        model = load_model(method)
        row.update(train_steps=int(state["step"]), train_seconds=round(float(state["seconds"]), 1),
                   parameters=model.parameter_counts()["total"],
                   val_flow=round(_val_flow(model, profile, root, davis_root is None, device), 4))
        if state["train_config"].get("init_from"):
            warm = load(state["train_config"]["init_from"])
            row.update(warm_start_steps=int(warm["step"]),
                       warm_start_seconds=round(float(warm["seconds"]), 1))
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
    # The resume state (weights + Adam moments, 3x final.pt) only serves an unfinished cell; the
    # cpu grid kept 12 GB of them (final.pt: 4 GB). final.pt stays for the notebooks.
    (work / "last.pt").unlink(missing_ok=True)
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
    """The cell's final training losses (runfolder.final_losses of its stored log); NaN if none."""
    from .runfolder import final_losses

    log = training_log(profile_name, cell, results_root, seed)
    return dict.fromkeys(LOSSES, float("nan")) if log is None else final_losses(log)


def training_log(profile_name, cell, results_root="results", seed=0):
    """The cell's stored training log (step, loss, zero_flow_loss, ...), or None if it has none."""
    import pandas as pd

    path = result_path(profile_name, cell, results_root, "train", seed)
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


def finished(profile, cell, davis_root=None, seed=0, results_root="results",
             data_root="data") -> dict | None:
    """The stored row of a cell if it was computed with this profile's steps, data and seed
    (a damaged row file is an InputError naming it)."""
    profile, davis_root = _resolve(profile, davis_root)
    path = result_path(profile.name, cell, results_root, seed=seed)
    if not path.is_file():
        return None
    row = _read_json(path)
    wanted = _wanted(profile, cell, davis_root, seed, data_root)
    return row if all(row.get(k) == v for k, v in wanted.items()) else None


def _finished_or_warn(*args) -> dict | None:
    """finished(), with a damaged row file named on stderr and left out: listing and merging
    the other cells still works."""
    try:
        return finished(*args)
    except InputError as err:
        _log(f"left out: {err}")
        return None


def plan(profile, cells=None, backbones=None, davis_root=None, seed=0, results_root="results",
         data_root="data"):
    """The grid as a table: each cell's setting, training steps, and whether it is finished."""
    import pandas as pd

    profile, davis_root = _resolve(profile, davis_root)
    rows = []
    for cell in grid(profile, cells, backbones):
        backbone = None if cell in BASELINES else ModelConfig.from_cell(cell).backbone
        rows.append(dict(cell=cell, backbone=backbone or "-",
                         train_steps=profile.steps_for(backbone) if backbone else 0,
                         finished=_finished_or_warn(profile, cell, davis_root, seed, results_root,
                                                    data_root) is not None))
    return pd.DataFrame(rows)


def run_ablation(profile, davis_root=None, cells=None, backbones=None, device="auto", seed=0,
                 results_root="results", checkpoints_root="checkpoints", data_root="data"):
    """Run every cell of the grid that is not finished yet; -> DataFrame of the grid's rows."""
    import pandas as pd
    from tqdm import tqdm

    profile, davis_root = _resolve(profile, davis_root)
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

    profile, davis_root = _resolve(profile, davis_root)
    order = [*BASELINES, *table2().cell]
    stored = [p.stem for p in sorted(folder(profile.name, results_root, seed).glob("*.json"))]
    rows = {c: _finished_or_warn(profile, c, davis_root, seed, results_root, data_root)
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


def seeds_run(profile_name: str, results_root="results") -> list[int]:
    """The seeds with a results folder for this profile: 0 (table2/<profile>) and every
    table2/<profile>-seed<N>."""
    tagged = Path(results_root, "table2").glob(f"{profile_name}-seed*")
    found = {int(p.name.rsplit("-seed", 1)[1]) for p in tagged if p.name.rsplit("-seed", 1)[1].isdigit()}
    return sorted({0} | found)


def longer_runs(profile_name: str, results_root="results", seed: int = 0) -> list[str]:
    """The "<profile>-steps<N>" grids merged beside this profile's for this seed
    (results/table2_<profile>-steps<N>[-seed<S>].csv), shortest first: cells trained again for longer."""
    found = {}
    for path in Path(results_root).glob(f"table2_{profile_name}-steps*.csv"):
        steps, _, tag = path.stem.rsplit("-steps", 1)[1].partition("-seed")
        if steps.isdigit() and tag == (str(seed) if seed else ""):
            found[int(steps)] = f"{profile_name}-steps{steps}"
    return [found[n] for n in sorted(found)]


def seed_runs(profile, results_root="results", davis_root=None, data_root="data"):
    """J&F (%) of every cell that finished under more than one seed: one column per seed, plus their
    mean and range (max - min); empty when only one seed ran. How far a retraining alone moves a
    cell is the yardstick for differences between cells."""
    import pandas as pd

    profile, davis_root = _resolve(profile, davis_root)
    values = {}
    for seed in seeds_run(profile.name, results_root):
        for path in sorted(folder(profile.name, results_root, seed).glob("*.json")):
            row = _finished_or_warn(profile, path.stem, davis_root, seed, results_root, data_root)
            if row is not None and path.stem not in BASELINES:
                values.setdefault(path.stem, {})[f"seed {seed}"] = row["J&F-Mean"]
    table = pd.DataFrame.from_dict({c: v for c, v in values.items() if len(v) > 1}, orient="index")
    if not table.empty:
        runs = table.copy()
        table["mean"], table["range"] = runs.mean(axis=1), runs.max(axis=1) - runs.min(axis=1)
    return table


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
    if not args.merge:
        experiment.run_grid(cells, backbones)
    table = experiment.merge()
    print(f"{experiment.merged_path}: {len(table)} cells")
    return 0
