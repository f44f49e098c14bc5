"""The official DAVIS-2017 semi-supervised evaluation of a results folder.

    rpmnet evaluate --davis-root DAVIS --results RESULTS [--split val]

Protocol (github.com/davisvideochallenge/davis2017-evaluation @ ac7c43f, the code behind the
DAVIS-2017 servers; a DAVIS-2016 root is scored the same way with its one object, id 1, as the
2016 toolkit also leaves the first and the last frame out): object k = (label == k) for k = 1..N, N = the largest id of the first
annotation frame; void (255) is plain background; the first and the last frame are not scored;
J, F per frame -> Mean/Recall/Decay per object; the global numbers are means over ALL objects
(not over sequences). The official tool's two CSVs are written into the results folder, always
recomputed.

Stricter than the official tool (which prints and exits with status 0, or crashes): a result id
above N, a missing or wrongly sized result frame, an RGB PNG, a sequence of fewer than 3 frames
or with fewer annotations than frames, or a first frame without objects raise InputError naming
the file. The Decay bins use plain integers, so sequences of >= 256 frames get a real Decay.

In memory (no files): `summarize([score_sequence(name, annotations, predictions), ...])`.
"""
from __future__ import annotations

import contextlib
import glob
import signal
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import fileio
from .data import davis
from .errors import InputError
from .guard import clean_leftovers, sequence_pairs
from .metrics import BOUND_TH, object_scores, statistics

MEASURES = ["J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay"]
GLOBAL_COLUMNS = ["J&F-Mean", "J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay"]
SEQUENCE_COLUMNS = ["Sequence", "J-Mean", "F-Mean"]  # the official per-sequence CSV (one row per object)


@dataclass
class SequenceScores:
    """J and F of every evaluated frame (all but the first and the last) of every object."""

    name: str
    frame_ids: list[str]
    J: np.ndarray  # (objects, frames)
    F: np.ndarray

    def records(self) -> list[dict]:
        """One row per object `<seq>_<k>` with its Mean/Recall/Decay of J and F."""
        rows = []
        for k, (j, f) in enumerate(zip(self.J, self.F), start=1):
            jm, jr, jd = statistics(j)
            fm, fr, fd = statistics(f)
            rows.append({"Sequence": f"{self.name}_{k}", "J-Mean": jm, "J-Recall": jr, "J-Decay": jd,
                         "F-Mean": fm, "F-Recall": fr, "F-Decay": fd})
        return rows

    def per_frame(self):
        """Long table: sequence, object, frame, J, F (one row per object and evaluated frame)."""
        import pandas as pd

        n_objects, n_frames = self.J.shape
        return pd.DataFrame({
            "sequence": self.name,
            "object": np.repeat(np.arange(1, n_objects + 1), n_frames),
            "frame": np.tile(self.frame_ids, n_objects),
            "J": self.J.ravel(),
            "F": self.F.ravel(),
        })


def _ground_truth(seq: davis.Sequence):
    """(T,H,W) annotation ids with void -> 0, and N = the largest id of the first frame."""
    davis.check_annotated(seq)
    if len(seq.annotations) < 3:
        raise InputError(f"{seq.annotations[0].parent}: {len(seq.annotations)} annotated frames; the "
                         "first and the last are not scored, so a sequence needs at least 3")
    labels = _read_stack(seq.annotations)
    if seq.binary:  # DAVIS-2016: one object, any value > 0 (no void)
        labels = (labels > 0).astype(np.uint8)
    labels[labels == davis.VOID] = 0
    return labels, _n_objects(labels[0], seq.annotations[0])


def _n_objects(first_frame, where) -> int:
    """N = the largest id of the first annotation frame (void already removed)."""
    n_objects = int(first_frame.max())
    if n_objects == 0:
        raise InputError(f"{where}: the first annotation frame has no object to propagate")
    return n_objects


def _read_stack(paths, shape=None, n_objects=None, source=None):
    """Label PNGs -> (T,H,W) uint8; each must be HxW = shape (the first one's if None) and hold
    ids <= n_objects (if given)."""
    stack = None
    for t, path in enumerate(paths):
        label = davis.read_label(path)
        if stack is None:
            shape = label.shape if shape is None else shape
            stack = np.empty((len(paths), *shape), dtype=np.uint8)
        if label.shape != shape:
            raise InputError(f"{path}: size {label.shape[1]}x{label.shape[0]}, expected "
                             f"{shape[1]}x{shape[0]} like {source or paths[0]}")
        if n_objects is not None and label.max() > n_objects:
            raise InputError(f"{path}: object id {label.max()} but the first annotation frame "
                             f"({source}) has only {n_objects} object(s)")
        stack[t] = label
    return stack


def score_sequence(name: str, gt_labels, pred_labels, frame_ids=None,
                   bound_th: float = BOUND_TH) -> SequenceScores:
    """Evaluate one sequence in memory: annotation and predicted id maps, both (T,H,W) with all
    T frames (the first and the last are ignored, as in the official protocol)."""
    gt_labels, pred_labels = np.array(gt_labels, dtype=np.uint8), np.asarray(pred_labels)
    if gt_labels.ndim != 3 or pred_labels.shape != gt_labels.shape or len(gt_labels) < 3:
        raise InputError(f"{name}: annotations and predictions must both be (T,H,W) with T >= 3, "
                         f"got {gt_labels.shape} and {pred_labels.shape}")
    gt_labels[gt_labels == davis.VOID] = 0
    n_objects = _n_objects(gt_labels[0], name)
    frame_ids = [f"{t:05d}" for t in range(len(gt_labels))] if frame_ids is None else list(frame_ids)
    over = np.flatnonzero(pred_labels[1:-1].reshape(len(gt_labels) - 2, -1).max(axis=1) > n_objects)
    if over.size:
        raise InputError(f"{name}: frame {frame_ids[over[0] + 1]} predicts object id "
                         f"{pred_labels[over[0] + 1].max()} but the first frame has {n_objects} object(s)")
    J, F = object_scores(pred_labels[1:-1], gt_labels[1:-1], n_objects, bound_th)
    return SequenceScores(name, frame_ids[1:-1], J, F)


def evaluate_sequence(davis_root, results_dir, name: str, resolution: str = "480p",
                      split: str | None = None) -> SequenceScores:
    """Evaluate `<results_dir>/<name>/<frame>.png` against the annotations of one sequence."""
    seq = davis.open_sequence(davis_root, name, resolution, split=split)
    gt, n_objects = _ground_truth(seq)
    ids = [p.stem for p in seq.annotations][1:-1]
    paths = [Path(results_dir) / name / f"{i}.png" for i in ids]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise InputError(f"{missing[0]}: result frame missing ({len(missing)} of the {len(paths)} "
                         "evaluated frames of this sequence; all but the first and the last are needed)")
    pred = _read_stack(paths, gt.shape[1:], n_objects, seq.annotations[0])
    J, F = object_scores(pred, gt[1:-1], n_objects)
    return SequenceScores(name, ids, J, F)


def _evaluate_one(job):
    return evaluate_sequence(*job)


def score_split(davis_root, results_dir, split: str = "val", resolution: str = "480p",
                workers: int = 2) -> list[SequenceScores]:
    """Per-frame scores of every sequence of a split, in the split file's order.

    workers > 1 evaluates sequences in that many processes; 1 runs in this process.
    """
    from tqdm import tqdm

    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise InputError(f"{results_dir}: results folder does not exist")
    if int(workers) < 1:
        raise InputError(f"workers must be >= 1, got {workers}")
    # Check the layout up front, so a bad root fails before any work starts.
    seqs = davis.open_split(davis_root, split, resolution)
    for seq in seqs:  # frames and annotations must agree, or the wrong frames would be scored
        sequence_pairs(seq, every_frame=True)
    jobs = [(davis_root, results_dir, seq.name, resolution, split) for seq in seqs]
    bar = dict(total=len(jobs), desc=f"evaluate {split}", unit="seq", disable=None, file=sys.stderr)
    if workers == 1 or len(jobs) == 1:
        return list(tqdm(map(_evaluate_one, jobs), **bar))
    pool = ProcessPoolExecutor(min(int(workers), len(jobs)), initializer=_worker_init)
    try:
        with _sigint_blocked():  # workers are forked here: none may see a Ctrl-C before it ignores it
            results = pool.map(_evaluate_one, jobs)
        return list(tqdm(results, **bar))
    except KeyboardInterrupt:
        # Ctrl-C reaches the whole process group; workers ignore it (no worker traceback) and
        # are stopped here, so the command ends with its one line at once.
        for process in list((pool._processes or {}).values()):
            process.terminate()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    finally:
        pool.shutdown(cancel_futures=True)


@contextlib.contextmanager
def _sigint_blocked():
    """Hold a Ctrl-C back (it arrives once this ends) while the workers are being forked."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _worker_init():
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the main process stops the workers itself
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def summarize(scores: list[SequenceScores]):
    """-> (global DataFrame, one row; per-object DataFrame: Sequence = `<seq>_<k>` + MEASURES).

    The global numbers are means over all objects (object-weighted), J&F-Mean = (J + F) / 2.
    """
    import pandas as pd

    per_object = pd.DataFrame([r for s in scores for r in s.records()], columns=["Sequence", *MEASURES])
    means = {m: float(np.mean(per_object[m])) for m in MEASURES}
    means["J&F-Mean"] = (means["J-Mean"] + means["F-Mean"]) / 2
    return pd.DataFrame([means], columns=GLOBAL_COLUMNS), per_object


def per_frame_table(scores: list[SequenceScores]):
    """All sequences' per-frame J and F as one long table (sequence, object, frame, J, F)."""
    import pandas as pd

    return pd.concat([s.per_frame() for s in scores], ignore_index=True)


def evaluate_davis(davis_root, results_dir, split: str = "val", resolution: str = "480p",
                   workers: int = 2, write_csv: bool = True):
    """Official DAVIS-2017 semi-supervised evaluation of a results folder.

    -> (global DataFrame, per-object DataFrame). With write_csv, also writes the official
    `global_results-<split>.csv` and `per-sequence_results-<split>.csv` into the results folder
    (only once everything is evaluated, each atomically; existing ones are never read).
    """
    global_df, per_object = summarize(score_split(davis_root, results_dir, split, resolution, workers))
    if write_csv:
        # the atomic writes' temporaries of a killed evaluation of this folder (fileio)
        clean_leftovers(results_dir, [f".{name}_results-{glob.escape(split)}.*.tmp.csv"
                                      for name in ("global", "per-sequence")])
        write_tables(results_dir, split, global_df, per_object)
    return global_df, per_object


def write_tables(results_dir, split: str, global_df, per_object) -> list[Path]:
    """The official CSV files, %.3f, no index."""
    results_dir = Path(results_dir)
    return [
        fileio.write_csv(results_dir / f"global_results-{split}.csv", global_df[GLOBAL_COLUMNS],
                         float_format="%.3f"),
        fileio.write_csv(results_dir / f"per-sequence_results-{split}.csv", per_object[SEQUENCE_COLUMNS],
                         float_format="%.3f"),
    ]


def format_tables(global_df, per_object, split: str = "val") -> str:
    """The two tables as the official tool prints them."""
    fmt = "{:.3f}".format
    return "\n".join([
        f"--------------------------- Global results for {split} ---------------------------",
        global_df[GLOBAL_COLUMNS].to_string(index=False, float_format=fmt),
        "",
        f"---------- Per sequence results for {split} ----------",
        per_object[SEQUENCE_COLUMNS].to_string(index=False, float_format=fmt),
    ])


def add_cli(parser):
    parser.add_argument("--davis-root", required=True,
                        help="DAVIS-2016 or DAVIS-2017 root as distributed (JPEGImages, Annotations, ImageSets)")
    parser.add_argument("--results", required=True, help="results folder: <results>/<seq>/<frame>.png")
    parser.add_argument("--split", default="val", help="split file ImageSets/2017/<split>.txt or ImageSets/480p/<split>.txt (default: val)")
    parser.add_argument("--resolution", default="480p", choices=davis.RESOLUTIONS)
    parser.add_argument("--workers", type=int, default=2, help="processes over sequences (default: 2)")


def cli(args) -> int:
    global_df, per_object = evaluate_davis(args.davis_root, args.results, args.split, args.resolution,
                                           args.workers)
    print(format_tables(global_df, per_object, args.split))
    return 0
