"""Does a stored Table 2 cell reproduce? Retrain it from scratch and compare.

    rpmnet ablate --profile cpu-davis-fair --cells resnet18-dilated-l3-d6 --verify --davis-root ...

The cell is retrained with its seed (its column's warm start too) in a scratch copy of the grid
under <checkpoints>/verify/, propagated and scored as the grid does, then compared with the stored
cell: the J&F difference, whether every logged loss is the same, whether the per-object CSV is
the same file, and whether the stored per-object scores are what `rpmnet evaluate` (the official
protocol) computes for the retrained masks. One row per check is added to
results/verify_<grid>.csv, with the processors of both trainings: a retraining is bit for bit only
on the processor (and thread count) that trained the cell, and elsewhere it is one more draw of the
training noise.
"""
from __future__ import annotations

from . import ablation
from .config import BASELINES, processor
from .errors import InputError
from .fileio import write_csv

TOLERANCE = 0.1  # J&F points: the bar for "the committed J&F, reproduced"
COLUMNS = ("cell", "seed", "stored", "retrained", "difference", "within", "same_losses",
           "same_objects", "same_as_evaluate", "stored_processor", "processor", "train_seconds",
           "propagate_seconds", "git_commit")


def scratch(exp):
    """The same experiment with its results and checkpoints under <checkpoints>/verify/, so that
    a check never touches the stored cell."""
    root = exp.checkpoints_root / "verify"
    return exp.replace(results_root=root / "results", checkpoints_root=root / "checkpoints")


def verify_cell(exp, cell) -> dict:
    """Retrain `cell` in scratch(exp) (resuming an interrupted check) and compare it with the
    stored cell; -> the check's row (COLUMNS)."""
    stored = ablation.finished(exp, cell)
    if stored is None:
        raise InputError(f"{ablation.result_path(exp, cell)}: no finished cell to verify; run "
                         f"`{exp.command([cell])}` first")
    again = scratch(exp)
    row = ablation.finished(again, cell) or ablation.run_cell(again, cell)
    difference = row["J&F-Mean"] - stored["J&F-Mean"]
    return dict(cell=cell, seed=exp.seed, stored=stored["J&F-Mean"], retrained=row["J&F-Mean"],
                difference=round(difference, 2), within=abs(difference) <= TOLERANCE + 1e-9,
                same_losses=_same_losses(exp, again, cell),
                same_objects=(ablation.result_path(exp, cell, "objects").read_bytes() ==
                              ablation.result_path(again, cell, "objects").read_bytes()),
                same_as_evaluate=_same_as_evaluate(exp, again, cell),
                stored_processor=stored.get("processor") or "", processor=processor(exp.device),
                train_seconds=row["train_seconds"], propagate_seconds=row["propagate_seconds"],
                git_commit=ablation.git_commit())


def _same_losses(exp, again, cell) -> bool:
    """Every logged loss and zero-flow loss of the two trainings equal (True for a baseline)."""
    if cell in BASELINES:
        return True
    mine, theirs = ablation.training_log(again, cell), ablation.training_log(exp, cell)
    return mine is not None and theirs is not None and ablation.same_losses(mine, theirs)


def _same_as_evaluate(exp, again, cell) -> bool:
    """Are the stored per-object scores what `rpmnet evaluate` (the official protocol) computes for
    the retrained masks? (Bit-equal masks give equal scores; this checks the stored CSV too.)"""
    import numpy as np
    import pandas as pd

    from .evaluate import evaluate_davis

    _, official = evaluate_davis(ablation.benchmark_root(exp), ablation.work_dir(again, cell) / "masks",
                                 workers=1, write_csv=False)
    mine = pd.read_csv(ablation.result_path(exp, cell, "objects"))
    return list(official.Sequence) == list(mine.Sequence) and all(
        np.allclose(official[k].to_numpy(float), mine[k].to_numpy(float), rtol=0, atol=1e-12)
        for k in ("J-Mean", "F-Mean", "J-Recall", "F-Recall", "J-Decay", "F-Decay"))


def checks_path(exp):
    return exp.results_root / f"verify_{exp.name}.csv"


def verify(exp, cells) -> "pandas.DataFrame":
    """verify_cell for each cell; each row is appended to results/verify_<grid>.csv as it
    finishes (the file is rewritten atomically); -> this run's rows."""
    import pandas as pd

    if not cells:
        raise InputError("--verify needs --cells: the stored cells to retrain")
    rows = []
    for cell in cells:
        rows.append(verify_cell(exp, cell))
        path = checks_path(exp)
        earlier = pd.read_csv(path) if path.is_file() else pd.DataFrame(columns=COLUMNS)
        write_csv(path, pd.concat([earlier, pd.DataFrame(rows[-1:])], ignore_index=True)[list(COLUMNS)])
        r = rows[-1]
        ablation._log(f"verify {cell}: J&F {r['retrained']:.2f} retrained, {r['stored']:.2f} stored "
                      f"({r['difference']:+.2f}; losses {'the same' if r['same_losses'] else 'differ'}, "
                      f"per-object CSV {'the same' if r['same_objects'] else 'differs'})")
    return pd.DataFrame(rows, columns=COLUMNS)
