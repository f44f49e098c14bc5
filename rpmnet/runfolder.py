"""The folder of one training run: its files, its log, and whether it may be continued.

    <out>/log.csv      one row per logged step (LOG_COLUMNS)
    <out>/last.pt      the latest checkpoint a resume continues from (weights, optimiser, RNG)
    <out>/pending.pt   the next last.pt, until its weights proved to give a finite loss
    <out>/final.pt     the trained model
"""
from __future__ import annotations

import contextlib
import csv
from pathlib import Path

from .errors import InputError
from .fileio import write_text

LOG_COLUMNS = ("step", "loss", "zero_flow_loss", "lr", "seconds")
RUN_FILES = ("log.csv", "last.pt", "final.pt", "pending.pt")
# atomic writes' temporaries (fileio.atomic_path) of a run killed while writing
LEFTOVERS = (".log.*.tmp.csv", ".last.*.tmp.pt", ".final.*.tmp.pt", ".pending.*.tmp.pt")

# what a run from before the protocol settings existed used
BEFORE_PROTOCOL = dict(norm="batchnorm", lr_schedule="constant", flow_init="zero", init_from=None)


def run_folder(out: Path, resume: bool, force: bool) -> None:
    """A run folder is new, empty, or holds a run: continued with `resume`, replaced with
    `force`, else refused (starting over would truncate its log and replace its checkpoints)."""
    from .guard import output_folder

    names = [n for n in output_folder(out, "a training run") if not any(
        Path(n).match(p) for p in LEFTOVERS)]
    ours = [n for n in RUN_FILES if n in names]
    log = out / "log.csv"
    if log.is_file():
        with log.open(errors="replace") as f:
            header = f.readline().strip()
        if header != ",".join(LOG_COLUMNS):  # somebody else's log.csv: never truncated
            raise InputError(f"{log}: not the log of an rpmnet training run; choose another --out")
    if ours and not (resume or force):
        raise InputError(f"{out}: holds a training run ({', '.join(ours)}); use --resume to continue "
                         f"it, --force to replace it, or another --out")
    if names and not ours and not resume:
        raise InputError(f"{out}: holds {', '.join(names[:4])}{' ...' if len(names) > 4 else ''}, "
                         f"not a training run; choose a new or empty --out")


def check_resumable(path, state, settings: dict, must_match) -> None:
    """`state` (a loaded last.pt) can be continued with `settings` (a TrainConfig as a dict):
    it has the optimiser and RNG state, and the same value of every name in `must_match`."""
    saved = state.get("train_config")
    if not isinstance(saved, dict) or "optimizer" not in state or "rng" not in state:
        raise InputError(f"{path}: not a resumable training checkpoint (no optimiser/RNG state)")
    saved = {**BEFORE_PROTOCOL, **saved}  # a checkpoint from before these settings had their readings
    changed = [f"{k}: {saved.get(k)!r} -> {settings[k]!r}" for k in must_match if saved.get(k) != settings[k]]
    if changed:
        raise InputError(f"{path}: cannot resume with a different setup ({'; '.join(changed)})")


class CsvLog:
    """Append-only CSV: one row per logged step, flushed at once so a killed run keeps it.
    On resume, rows from the steps that will be redone are cut off first."""

    def __init__(self, path: Path, start: int):
        rows = []
        if start and path.is_file():
            with path.open(newline="") as f:
                rows = [r for r in csv.DictReader(f) if all(r.get(c) for c in LOG_COLUMNS)  # no torn row
                        and r["step"].isdigit() and int(r["step"]) < start]
        write_text(path, ",".join(LOG_COLUMNS) + "\n" + "".join(
            ",".join(r[c] for c in LOG_COLUMNS) + "\n" for r in rows))
        self.file = path.open("a", newline="")

    def write(self, **row):
        try:
            self.file.write(",".join(str(row[c]) for c in LOG_COLUMNS) + "\n")
            self.file.flush()
        except OSError as err:
            raise OSError(err.errno, err.strerror, self.file.name) from None

    def close(self):
        with contextlib.suppress(OSError):  # a full disk was reported by write(), with the name
            self.file.close()


def final_losses(log, share: float = 0.1) -> dict:
    """Mean loss and zero-flow loss over the last `share` of a log.csv's rows, and their ratio:
    what the flow achieved at the end of training (1 = no better than copying the reference)."""
    last = log.tail(max(1, round(len(log) * share)))
    loss, zero = float(last["loss"].mean()), float(last["zero_flow_loss"].mean())
    return dict(train_loss=loss, zero_flow_loss=zero, loss_ratio=loss / zero)
