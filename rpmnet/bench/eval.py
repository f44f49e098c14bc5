"""`rpmnet bench eval`: seconds per 480p sequence of our DAVIS evaluation, against the official tool.

The data has the shape the official timing was taken on (about 2.8 s per 480p sequence of about 75
frames with 1-3 objects): smooth blobs that move, turn, change size, occlude one another and leave
the frame, annotations with a void band, and a "result" that is the ground truth drawn slightly
wrong (drifting, a different outline, a stray blob, sometimes lost). Everything lives in a
temporary folder. Rows: workers = 1 and 2; wall-clock seconds per sequence (median of --repeats),
CPU seconds per sequence (robust when other jobs share the cores) and the speed-up over 2.8 s.
"""
from __future__ import annotations

import functools
import math
import os
import tempfile
from pathlib import Path

import numpy as np

OFFICIAL_SECONDS = 2.8  # davis2017-evaluation per 480p sequence of ~75 frames, 1-3 objects, this machine


def _blob(shape, center, radius, angle, harmonics):
    """Boolean mask of a star-shaped blob: radius * (1 + sum a_i sin(i * theta + phase_i))."""
    h, w = shape
    reach = radius * (1 + sum(a for _, a, _ in harmonics))
    y0, y1 = max(int(center[0] - reach), 0), min(int(center[0] + reach) + 2, h)
    x0, x1 = max(int(center[1] - reach), 0), min(int(center[1] + reach) + 2, w)
    mask = np.zeros(shape, dtype=bool)
    if y0 >= y1 or x0 >= x1:
        return mask
    y, x = np.mgrid[y0:y1, x0:x1]
    dy, dx = y - center[0], x - center[1]
    theta = np.arctan2(dy, dx) - angle
    edge = radius * (1 + sum(a * np.sin(i * theta + p) for i, a, p in harmonics))
    mask[y0:y1, x0:x1] = dy * dy + dx * dx <= edge * edge
    return mask


def blob_video(rng, frames: int, shape, n_objects: int):
    """(annotations, result): (T,H,W) uint8 id maps of moving blobs and a perturbed prediction."""
    h, w = shape
    gt = np.zeros((frames, h, w), dtype=np.uint8)
    pred = np.zeros_like(gt)
    t = np.arange(frames)
    for k in range(1, n_objects + 1):
        # A smooth path that may leave the frame near the end; size and angle drift slowly.
        start = rng.uniform([0.25 * h, 0.2 * w], [0.75 * h, 0.8 * w])
        velocity = rng.normal(0, [0.004 * h, 0.006 * w])
        wobble = rng.uniform(0.02, 0.06) * min(h, w)
        radius = rng.uniform(0.08, 0.2) * min(h, w) * (1 + 0.2 * np.sin(t / rng.uniform(8, 20)))
        harmonics = [(i, rng.uniform(0, 0.25 / i), rng.uniform(0, 2 * math.pi)) for i in range(2, 6)]
        spin = rng.normal(0, 0.02)
        drift = rng.normal(0, 0.03 * min(h, w), size=2) / frames  # the prediction slowly slides off
        lost = set(rng.choice(frames, size=frames // 15, replace=False)) if k > 1 else set()
        for i in t:
            center = start + velocity * i + wobble * np.array([np.sin(i / 9), np.cos(i / 13)])
            mask = _blob(shape, center, radius[i], spin * i, harmonics)
            gt[i][mask] = k  # later objects occlude earlier ones
            if i in lost:
                continue
            shaky = [(j, a * rng.uniform(0.8, 1.2), p + rng.normal(0, 0.1)) for j, a, p in harmonics]
            guess = _blob(shape, center + drift * i + rng.normal(0, 1.5, 2),
                          radius[i] * rng.uniform(0.93, 1.05), spin * i, shaky)
            pred[i][guess] = k
        stray = rng.integers(frames)  # one frame with a wrong blob of this object elsewhere
        pred[stray][_blob(shape, rng.uniform([0, 0], [h, w]), 0.03 * min(h, w), 0, [])] = k
    # Void: a thin band around every object boundary in the annotations, as DAVIS draws it.
    edges = np.zeros_like(gt, dtype=bool)
    edges[:, :, 1:] |= gt[:, :, 1:] != gt[:, :, :-1]
    edges[:, 1:, :] |= gt[:, 1:, :] != gt[:, :-1, :]
    gt[edges & (rng.random(gt.shape) < 0.5)] = 255
    return gt, pred


def write_layout(root, videos: dict, split: str = "val", results=None):
    """A DAVIS-2017 layout under root from {name: (annotations, result)} id maps; results (if a
    folder is given) as <results>/<name>/<frame>.png. JPEG frames are the annotations in colour."""
    from ..data import davis

    root = Path(root)
    palette = np.array(davis.PALETTE, dtype=np.uint8).reshape(256, 3)
    for name, (gt, pred) in videos.items():
        for i, (label, guess) in enumerate(zip(gt, pred)):
            davis.write_image(root / "JPEGImages" / "480p" / name / f"{i:05d}.jpg", palette[label])
            davis.write_label(root / "Annotations" / "480p" / name / f"{i:05d}.png", label)
            if results is not None:
                davis.write_label(Path(results) / name / f"{i:05d}.png", guess)
    (root / "ImageSets" / "2017").mkdir(parents=True, exist_ok=True)
    (root / "ImageSets" / "2017" / f"{split}.txt").write_text("".join(f"{n}\n" for n in videos))
    return root


def add_cli(parser):
    parser.add_argument("--sequences", type=int, default=6,
                        help="sequences of 1, 2, 3, 1, ... objects (default: 6)")
    parser.add_argument("--frames", type=int, default=75, help="frames per sequence (default: 75)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per setting (after one warm-up); "
                        "the median counts")
    parser.add_argument("--seed", type=int, default=0)


def cli(args) -> int:
    import pandas as pd

    from ..errors import InputError
    from ..evaluate import evaluate_davis
    from ..fileio import write_csv
    from ._timing import median_seconds

    if args.sequences < 1 or args.frames < 3 or args.repeats < 1:
        raise InputError("--sequences and --repeats must be >= 1 and --frames >= 3")
    rng = np.random.default_rng(args.seed)
    objects = [1 + i % 3 for i in range(args.sequences)]
    videos = {f"blobs{i}": blob_video(rng, args.frames, (480, 854), n) for i, n in enumerate(objects)}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = write_layout(Path(tmp) / "davis", videos, results=Path(tmp) / "results")
        for workers in (1, 2):
            run = functools.partial(evaluate_davis, root, Path(tmp) / "results", workers=workers)
            # CPU seconds (this process and its finished pool) do not grow when others share the cores.
            before = os.times()
            global_df, _ = run()
            cpu = sum(os.times()[:4]) - sum(before[:4])
            per_sequence = median_seconds(run, args.repeats, warmup=0) / args.sequences  # warm already
            rows.append(dict(workers=workers, sequences=args.sequences, frames=args.frames,
                             objects=sum(objects), seconds_per_sequence=round(per_sequence, 4),
                             cpu_seconds_per_sequence=round(cpu / args.sequences, 4),
                             official_seconds_per_sequence=OFFICIAL_SECONDS,
                             speedup=round(OFFICIAL_SECONDS / per_sequence, 2),
                             j_and_f=round(float(global_df["J&F-Mean"].iloc[0]), 4),
                             load_average=round(os.getloadavg()[0], 2)))  # other work on the machine
    table = pd.DataFrame(rows)
    write_csv(args.out, table)
    print(table.to_string(index=False))
    return 0
