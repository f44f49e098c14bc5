"""The test oracle: a literal, slow re-implementation of the official DAVIS-2017 semi-supervised
evaluation (davisvideochallenge/davis2017-evaluation @ ac7c43f), written from a written
specification of that code (the project's EVALUATION.md, sections 2-7) with plain loops.

It follows the official code's structure as that document describes it (boundary by neighbour
arrays then row/column overrides, dilation with the disk kernel, if-chains for the empty cases,
float linspace for the Decay edges), so that it shares no shortcut with rpmnet.metrics.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image


def iou(seg, gt, void=None):
    seg, gt = seg.astype(bool), gt.astype(bool)
    keep = np.ones_like(gt) if void is None else ~void.astype(bool)
    inters = int(np.sum(seg & gt & keep))
    union = int(np.sum((seg | gt) & keep))
    if union == 0:
        return 1.0
    return inters / union


def seg2bmap(seg):
    seg = seg.astype(bool)
    h, w = seg.shape
    e = np.zeros_like(seg)
    s = np.zeros_like(seg)
    se = np.zeros_like(seg)
    e[:, :-1] = seg[:, 1:]
    s[:-1, :] = seg[1:, :]
    se[:-1, :-1] = seg[1:, 1:]
    b = (seg ^ e) | (seg ^ s) | (seg ^ se)
    b[-1, :] = seg[-1, :] ^ e[-1, :]
    b[:, -1] = seg[:, -1] ^ s[:, -1]
    b[-1, -1] = 0
    return b


def disk_offsets(r):
    return [(dy, dx) for dy in range(-r, r + 1) for dx in range(-r, r + 1) if dy * dy + dx * dx <= r * r]


def dilate(b, r):
    """Dilation by the disk with zero outside the image: OR of the shifted map per kernel offset."""
    h, w = b.shape
    out = np.zeros_like(b)
    for dy, dx in disk_offsets(r):
        # out[y, x] |= b[y + dy, x + dx] where that source pixel is inside the image
        ys, yd = (slice(dy, h), slice(0, h - dy)) if dy >= 0 else (slice(0, h + dy), slice(-dy, h))
        xs, xd = (slice(dx, w), slice(0, w - dx)) if dx >= 0 else (slice(0, w + dx), slice(-dx, w))
        out[yd, xd] |= b[ys, xs]
    return out


def bound_pix(shape, bound_th):
    if bound_th >= 1:
        return int(bound_th)
    return int(np.ceil(bound_th * np.linalg.norm(shape)))


def f_frame(fg, gt, void=None, bound_th=0.008):
    fg, gt = fg.astype(bool), gt.astype(bool)
    if void is not None:
        fg = fg & ~void.astype(bool)
        gt = gt & ~void.astype(bool)
    r = bound_pix(fg.shape, bound_th)
    fg_b, gt_b = seg2bmap(fg), seg2bmap(gt)
    fg_match = fg_b & dilate(gt_b, r)
    gt_match = gt_b & dilate(fg_b, r)
    n_fg, n_gt = int(fg_b.sum()), int(gt_b.sum())
    if n_fg == 0 and n_gt > 0:
        precision, recall = 1, 0
    elif n_fg > 0 and n_gt == 0:
        precision, recall = 0, 1
    elif n_fg == 0 and n_gt == 0:
        precision, recall = 1, 1
    else:
        precision = int(fg_match.sum()) / n_fg
        recall = int(gt_match.sum()) / n_gt
    if precision + recall == 0:
        return 0.0
    return 2 * precision * recall / (precision + recall)


def db_statistics(x, index_dtype=int):
    """Mean, Recall, Decay; index_dtype=np.uint8 reproduces the official wrap for n >= 256."""
    x = np.asarray(x, dtype=float)
    mean = np.nanmean(x)
    recall = np.nanmean(x > 0.5)
    ids = (np.round(np.linspace(1, len(x), 5) + 1e-10) - 1).astype(index_dtype)
    with warnings.catch_warnings():  # uint8 edges wrap; an empty bin gives NaN, as officially
        warnings.simplefilter("ignore", RuntimeWarning)
        bins = [x[ids[i]:ids[i + 1] + 1] for i in range(4)]
        decay = np.nanmean(bins[0]) - np.nanmean(bins[3])
    return float(mean), float(recall), float(decay)


def _read(path):
    return np.array(Image.open(path))


def evaluate(davis_root, results_dir, split="val", resolution="480p"):
    """(global DataFrame, per-object DataFrame, {seq: (J (N,n), F (N,n))}) of a results folder."""
    davis_root, results_dir = Path(davis_root), Path(results_dir)
    names = [s.strip() for s in (davis_root / "ImageSets" / "2017" / f"{split}.txt").read_text().splitlines()]
    records, per_frame = [], {}
    for seq in [n for n in names if n]:
        pngs = sorted((davis_root / "Annotations" / resolution / seq).glob("*.png"))
        gts = []
        for p in pngs:
            label = _read(p)
            label[label == 255] = 0
            gts.append(label)
        n_obj = int(gts[0].max())
        ids = [p.stem for p in pngs][1:-1]
        gts = gts[1:-1]
        preds = [_read(results_dir / seq / f"{i}.png") for i in ids]
        n_res = max(int(p.max()) for p in preds)
        assert n_res <= n_obj
        J = np.zeros((n_obj, len(ids)))
        F = np.zeros((n_obj, len(ids)))
        for k in range(1, n_obj + 1):
            for t in range(len(ids)):
                J[k - 1, t] = iou(preds[t] == k, gts[t] == k)
                F[k - 1, t] = f_frame(preds[t] == k, gts[t] == k)
            jm, jr, jd = db_statistics(J[k - 1])
            fm, fr, fd = db_statistics(F[k - 1])
            records.append({"Sequence": f"{seq}_{k}", "J-Mean": jm, "J-Recall": jr, "J-Decay": jd,
                            "F-Mean": fm, "F-Recall": fr, "F-Decay": fd})
        per_frame[seq] = (J, F)
    per_object = pd.DataFrame(records)
    measures = ["J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay"]
    g = {c: float(np.mean(per_object[c])) for c in measures}
    g["J&F-Mean"] = (g["J-Mean"] + g["F-Mean"]) / 2
    cols = ["J&F-Mean", "J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay"]
    return pd.DataFrame([[g[c] for c in cols]], columns=cols), per_object, per_frame
