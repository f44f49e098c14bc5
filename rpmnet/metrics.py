"""DAVIS region similarity J, contour accuracy F and their Mean/Recall/Decay statistics.

Exactly the definitions of the official DAVIS-2017 evaluation (github.com/davisvideochallenge/
davis2017-evaluation @ ac7c43f: db_eval_iou, f_measure, _seg2bmap, db_statistics), made fast.
Every function takes one HxW mask or a (T,H,W) stack and then returns one value per frame.

F matches boundaries without dilating images: a boundary pixel is matched iff a boundary pixel of
the other mask lies in the disk {dy^2 + dx^2 <= r^2}, which is what dilating with that disk
decides. The disk is looked up row by row with integer half-widths, so the result is exact.
The one deviation: Decay bin edges are plain ints, where the official uint8 ones wrap at 256 frames.
"""
from __future__ import annotations

import math

import numpy as np

from .errors import InputError

BOUND_TH = 0.008  # F tolerance as a fraction of the image diagonal (official default)


def _mask(a, what: str) -> np.ndarray:
    """A boolean mask; numbers only if every one is 0 or 1. A label map (ids 0..N) or NaN would
    cast to True wherever it is non-zero: two different label maps would score J = 1."""
    a = np.asarray(a)
    if a.dtype == bool:
        return a
    if a.dtype.kind not in "iuf":
        raise InputError(f"{what} mask must be boolean, got dtype {a.dtype}")
    if a.dtype.kind == "f" and np.isnan(a).any():
        raise InputError(f"{what} mask contains NaN; a mask must be boolean")
    binary = (a == 0) | (a == 1)
    if not binary.all():
        raise InputError(f"{what} mask must be boolean (or 0/1), got the value {a[~binary].flat[0]}; "
                         f"for a label map compare with one object id first (labels == k)")
    return a.astype(bool)


def _stack(pred, gt, void=None):
    """Boolean (T,H,W) versions of the masks, void pixels removed (as the official code does)."""
    pred, gt = _mask(pred, "predicted"), _mask(gt, "ground-truth")
    if pred.shape != gt.shape or pred.ndim not in (2, 3):
        raise InputError(f"masks must both be HxW or TxHxW of equal shape, got {pred.shape} and {gt.shape}")
    if void is not None:
        void = _mask(void, "void")
        if void.shape != pred.shape:
            raise InputError(f"void mask shape {void.shape} differs from the mask shape {pred.shape}")
        pred, gt = pred & ~void, gt & ~void
    return (pred[None], gt[None]) if pred.ndim == 2 else (pred, gt)


def j_measure(pred, gt, void=None):
    """Region similarity |S&G\\V| / |(S|G)\\V|, 1 where that union is empty. Float or (T,) array."""
    single = np.ndim(pred) == 2
    pred, gt = _stack(pred, gt, void)
    # Per frame: count_nonzero over a whole frame is much faster than with an axis argument.
    inter = np.array([np.count_nonzero(p & g) for p, g in zip(pred, gt)])
    union = np.array([np.count_nonzero(p | g) for p, g in zip(pred, gt)])
    j = np.where(union == 0, 1.0, inter / np.maximum(union, 1))
    return float(j[0]) if single else j


def boundary(mask):
    """The official `_seg2bmap` boundary of a (...,H,W) mask.

    A pixel is on the boundary iff it differs from one of its E, S, SE neighbours that lie inside
    the image: the last row compares E only, the last column S only, the bottom-right pixel never.
    So the image border is no boundary and a full-image mask has none.
    """
    m = np.asarray(mask, dtype=bool)
    b = np.zeros_like(m)
    b[..., :, :-1] |= m[..., :, :-1] ^ m[..., :, 1:]  # E
    b[..., :-1, :] |= m[..., :-1, :] ^ m[..., 1:, :]  # S
    b[..., :-1, :-1] |= m[..., :-1, :-1] ^ m[..., 1:, 1:]  # SE
    return b


def tolerance(height: int, width: int, bound_th: float = BOUND_TH) -> int:
    """Matching radius in pixels: ceil(bound_th * image diagonal), or bound_th itself if >= 1."""
    if bound_th >= 1:
        if bound_th != int(bound_th):
            raise InputError(f"bound_th >= 1 is a radius in pixels and must be whole, got {bound_th}")
        return int(bound_th)
    if bound_th <= 0:
        raise InputError(f"bound_th must be > 0, got {bound_th}")
    return math.ceil(bound_th * math.hypot(height, width))


def _box(rows, cols):
    """Slices of the bounding box of the True rows/cols plus one pixel each side (clipped).

    A boundary pixel lies at most one pixel up/left of a mask pixel and a pixel outside the box
    sees only zeros, so boundaries taken inside the box are exactly those of the whole image.
    """
    ys, xs = np.flatnonzero(rows), np.flatnonzero(cols)
    if ys.size == 0:
        return None
    return slice(max(ys[0] - 1, 0), ys[-1] + 2), slice(max(xs[0] - 1, 0), xs[-1] + 2)


def _near(queries, keys, width):
    """Does a key lie within `width` of each query (keys sorted)? Looks at the two neighbours."""
    i = np.searchsorted(keys, queries)
    right = keys[np.minimum(i, keys.size - 1)]
    left = keys[np.maximum(i - 1, 0)]
    return (np.abs(right - queries) <= width) | (np.abs(queries - left) <= width)


def _matched(points, others, r: int, stride: int):
    """For boundary pixels coded as row * stride + column: is an `others` pixel within r?

    Within r = in some row y+dy at |dx| <= isqrt(r^2 - dy^2): the disk split into rows. Rows are
    `stride` > width + r apart, so a key difference of at most r can only come from the same row.
    Most pixels match in their own row; only the rest are looked up in the other 2r rows.
    """
    hit = np.zeros(points.size, dtype=bool)
    if points.size == 0 or others.size == 0:
        return hit
    hit = _near(points, others, r)
    rest = points[~hit]
    dy = np.array([d for d in range(-r, r + 1) if d != 0])[:, None]
    width = np.array([math.isqrt(r * r - d * d) for d in dy[:, 0]])[:, None]
    hit[~hit] = _near(rest[None, :] + dy * stride, others, width).any(axis=0)
    return hit


def _precision_recall(pred, gt, r: int):
    """Boundary precision and recall per frame of boolean (T,H,W) stacks.

    Boundaries are taken per frame inside the union's box and coded as one sorted key per pixel,
    frames r+1 rows apart so that no disk reaches into another frame.
    """
    n, h, w = pred.shape
    frame_rows, stride = h + r + 1, w + r + 1
    rows, cols = pred.any(axis=2) | gt.any(axis=2), pred.any(axis=1) | gt.any(axis=1)
    keys = {"pred": [], "gt": []}
    for t in range(n):
        box = _box(rows[t], cols[t])
        if box is None:
            continue
        for name, masks in (("pred", pred), ("gt", gt)):
            b = boundary(masks[t][box])
            y, x = np.divmod(np.flatnonzero(b), b.shape[1])  # faster than a 2-D nonzero
            keys[name].append((t * frame_rows + box[0].start + y) * stride + box[1].start + x)
    kp, kg = (np.concatenate(keys[k]) if keys[k] else np.zeros(0, dtype=np.int64) for k in ("pred", "gt"))
    per_frame = lambda k: np.bincount(k // (frame_rows * stride), minlength=n)  # noqa: E731
    n_p, n_g = per_frame(kp), per_frame(kg)
    hit_p, hit_g = per_frame(kp[_matched(kp, kg, r, stride)]), per_frame(kg[_matched(kg, kp, r, stride)])
    # An empty boundary has P (or R) = 1; the other side then matches nothing and scores 0.
    precision = np.where(n_p == 0, 1.0, hit_p / np.maximum(n_p, 1))
    recall = np.where(n_g == 0, 1.0, hit_g / np.maximum(n_g, 1))
    return precision, recall


def f_measure(pred, gt, void=None, bound_th: float = BOUND_TH):
    """Contour accuracy 2PR/(P+R) (0 when P+R = 0). Float for HxW masks, (T,) array for stacks."""
    single = np.ndim(pred) == 2
    pred, gt = _stack(pred, gt, void)
    p, r = _precision_recall(pred, gt, tolerance(*pred.shape[1:], bound_th))
    f = np.where(p + r == 0, 0.0, 2 * p * r / np.where(p + r == 0, 1.0, p + r))
    return float(f[0]) if single else f


def object_scores(pred_labels, gt_labels, n_objects: int, bound_th: float = BOUND_TH):
    """J and F, each (n_objects, T): object k is (label == k) in two (T,H,W) label stacks."""
    pred_labels, gt_labels = np.asarray(pred_labels), np.asarray(gt_labels)
    J = np.ones((n_objects, len(gt_labels)))
    F = np.ones((n_objects, len(gt_labels)))
    for k in range(1, n_objects + 1):
        pred, gt = pred_labels == k, gt_labels == k
        J[k - 1], F[k - 1] = j_measure(pred, gt), f_measure(pred, gt, bound_th=bound_th)
    return J, F


def decay_edges(n: int) -> list[int]:
    """The 5 bin edges round-half-up(linspace(1, n, 5)) - 1 of the official Decay, in plain ints.

    The official code keeps them as uint8, which wraps for n >= 256; this is the only deviation.
    """
    return [(k * (n - 1) + 2) // 4 for k in range(5)]


def statistics(x) -> tuple[float, float, float]:
    """(Mean, Recall, Decay) of a per-frame series, as the official db_statistics.

    Recall is the fraction of frames strictly above 0.5 (NaN counts as a failure); Decay is the
    mean of the first quarter minus the mean of the last, over 4 bins sharing their edge frames.
    """
    x = np.asarray(x, dtype=float)
    if x.ndim != 1 or x.size == 0:
        raise InputError(f"statistics need a non-empty 1-D series, got shape {x.shape}")
    e = decay_edges(x.size)
    mean = float(np.nanmean(x))
    recall = float(np.mean(x > 0.5))
    decay = float(np.nanmean(x[e[0]:e[1] + 1]) - np.nanmean(x[e[3]:e[4] + 1]))
    return mean, recall, decay
