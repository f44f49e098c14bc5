"""The full RPM-Net at inference, measured: named inference settings (rpmnet.online.NAMED) of one
trained model, each propagated over a split, scored with the official protocol, and stored

    results/inference/<profile>/<setting>.json          J, F, J&F, seconds per frame, fine-tuning
    results/inference/<profile>/<setting>.objects.csv   the official per-object CSV
    checkpoints/inference/<profile>/<setting>/          the masks (not committed)

A stored setting is reused only if it was made from the same weights (their SHA-1), data and
setting; otherwise it is computed again. Notebook 06 reads these.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path

from . import online
from .errors import InputError
from .fileio import write_csv, write_text


def weights_id(path) -> str:
    """SHA-1 of a checkpoint's weights (names, shapes, values): the same model trained again gives
    the same id, whatever else the file records (a newer code's extra training settings, say)."""
    from .checkpoint import load

    digest = hashlib.sha1()
    for name, tensor in sorted(load(path)["model"].items()):
        digest.update(f"{name}{tuple(tensor.shape)}{tensor.dtype}".encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:12]


def result_path(exp, setting: str, kind: str = "json") -> Path:
    """<results>/inference/<profile>/<setting>.json (or .<kind>.csv) of an Experiment."""
    suffix = ".json" if kind == "json" else f".{kind}.csv"
    return exp.results_root / "inference" / exp.profile.name / f"{setting}{suffix}"


def masks_dir(exp, setting: str) -> Path:
    return exp.checkpoints_root / "inference" / exp.profile.name / setting


def run_setting(exp, checkpoint, setting: str, split: str = "val", max_frames=None,
                sequences=None) -> dict:
    """Propagate, score and store one named setting on the Experiment's data (or read it back if
    current); -> its row."""
    from .propagate import evaluate_propagated, propagate_davis

    settings = online.named(setting)  # an unknown name fails before anything is written
    root = exp.benchmark_root()
    from .data.sources import data_id

    key = dict(weights=weights_id(checkpoint), data=data_id(root), split=split,
               setting=settings.record(), max_frames=max_frames, sequences=sequences)
    path = result_path(exp, setting)
    if path.is_file():
        try:
            row = json.loads(path.read_text())
        except ValueError:
            raise InputError(f"{path}: not a readable inference result (delete it to recompute)") from None
        if row.get("key") == key:
            return row
    out = masks_dir(exp, setting)
    if out.exists():  # our own masks of another checkpoint or setting: made again
        shutil.rmtree(out)
    began = time.perf_counter()
    propagate_davis(str(checkpoint), root, split, out, exp.device, max_frames, sequences,
                    settings=settings)
    seconds = time.perf_counter() - began
    global_df, objects = evaluate_propagated(root, out, split, max_frames, sequences)
    frames = sum(len(list(p.glob("*.png"))) for p in out.iterdir() if p.is_dir())
    tuned = out / "finetune_seconds.csv"
    scores = {k: round(100 * float(global_df[k].iloc[0]), 2) for k in ("J-Mean", "F-Mean", "J&F-Mean")}
    row = dict(setting=setting, key=key, **scores,
               seconds=round(seconds, 1), frames=frames, seconds_per_frame=round(seconds / frames, 4),
               finetune_seconds_per_sequence=(round(float(_mean_seconds(tuned)), 2) if tuned.is_file() else None))
    write_csv(result_path(exp, setting, "objects"), objects, float_format="%.6f")
    write_text(path, json.dumps(row, indent=1) + "\n")
    return row


def _mean_seconds(path) -> float:
    import pandas as pd

    return pd.read_csv(path)["seconds"].mean()


def run_settings(exp, checkpoint, settings):
    """run_setting for each name on the Experiment's val data (all of a DAVIS root; the profile's
    first sequences and frames of its built-in benchmark, as the Table 2 grid scores them);
    -> one row per setting (DataFrame)."""
    import pandas as pd
    from tqdm import tqdm

    limits = {}
    if exp.davis_root is None:
        limits = dict(max_frames=exp.profile.max_frames, sequences=exp.profile.val_sequences)
    rows = [run_setting(exp, checkpoint, name, **limits)
            for name in tqdm(list(settings), desc="inference settings", unit="setting", disable=None)]
    return pd.DataFrame(rows).drop(columns="key").set_index("setting")


def objects(exp, setting: str):
    """A stored setting's per-object table (J, F, J&F in %), like analysis.per_object."""
    from .compare import objects_from_csv

    path = result_path(exp, setting, "objects")
    if not path.is_file():
        raise InputError(f"{path}: missing; run notebook 06 or rpmnet.inference.run_setting")
    return objects_from_csv(path)


def settings_table(settings):
    """What each named setting switches on (the record propagation.json keeps), one row each."""
    import pandas as pd

    records = {name: online.named(name).record() for name in settings}
    return pd.DataFrame.from_dict(records, orient="index").fillna("")
