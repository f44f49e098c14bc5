"""rpmnet.metrics against the literal oracle (tests/davis_reference.py) and the documented conventions."""
import math

import numpy as np
import pytest
from scipy import ndimage

import davis_reference as ref
from rpmnet import metrics
from rpmnet.errors import InputError

SIZES = [(480, 854), (480, 910), (240, 427), (37, 53)]


def random_masks(rng, shape, frames):
    """Smooth blobs, one blob inside a random box (so crops matter), sparse specks, empty/full."""
    out = []
    for t in range(frames):
        kind = t % 5
        z = ndimage.gaussian_filter(rng.standard_normal(shape), rng.uniform(2, 12))
        blobs = z > np.quantile(z, rng.uniform(0.4, 0.97))
        if kind == 1:
            y0, x0 = rng.integers(0, shape[0] // 2), rng.integers(0, shape[1] // 2)
            box = np.zeros(shape, bool)
            box[y0:y0 + rng.integers(2, shape[0] // 2), x0:x0 + rng.integers(2, shape[1] // 2)] = True
            blobs &= box
        elif kind == 3:
            blobs = rng.random(shape) < 0.002  # isolated pixels: probes the disk's exact shape
        elif kind == 4:
            blobs = np.zeros(shape, bool) if rng.random() < 0.5 else np.ones(shape, bool)
        out.append(blobs)
    return np.stack(out)


@pytest.mark.parametrize("shape", SIZES)
def test_j_and_f_agree_with_the_oracle(shape):
    rng = np.random.default_rng(sum(shape))
    frames = 6 if shape[0] > 100 else 30
    gt = random_masks(rng, shape, frames)
    # A prediction near the ground truth (so that matching distances sit around the tolerance)
    # and unrelated blobs.
    pred = np.stack([np.roll(g, tuple(rng.integers(-10, 11, 2)), (0, 1)) for g in gt])
    pred[::3] ^= rng.random(pred[::3].shape) < 0.001
    pred[1::4] = random_masks(rng, shape, frames)[1::4]
    void = rng.random(gt.shape) < 0.02
    for bound_th in (0.008,) if shape[0] > 100 else (0.008, 3, 0.02):  # the oracle is slow
        for v in (None, void):
            j, f = metrics.j_measure(pred, gt, v), metrics.f_measure(pred, gt, v, bound_th)
            assert j.shape == f.shape == (frames,)
            for t in range(frames):
                vt = None if v is None else v[t]
                j_ref, f_ref = ref.iou(pred[t], gt[t], vt), ref.f_frame(pred[t], gt[t], vt, bound_th)
                assert j[t] == pytest.approx(j_ref, abs=1e-6)
                assert f[t] == pytest.approx(f_ref, abs=1e-6)
                # The single-frame form gives the same numbers as floats.
                assert isinstance(metrics.f_measure(pred[t], gt[t], vt, bound_th), float)
                assert metrics.f_measure(pred[t], gt[t], vt, bound_th) == pytest.approx(f_ref, abs=1e-6)
                assert metrics.j_measure(pred[t], gt[t], vt) == pytest.approx(j_ref, abs=1e-6)
        assert not np.all(f == 1) and not np.all(f == 0)  # the data exercises both outcomes


def test_f_on_points_at_every_offset_of_the_disk():
    """Two single-pixel masks at every offset (dy, dx) within r+2: matched iff the official
    dilation says so (their boundaries are 2x2 blocks, so the decision is not just dy^2+dx^2)."""
    shape, r = (40, 40), 4
    for dy in range(-r - 2, r + 3):
        for dx in range(-r - 2, r + 3):
            pred, gt = np.zeros(shape, bool), np.zeros(shape, bool)
            pred[20, 20] = True
            gt[20 + dy, 20 + dx] = True
            assert metrics.f_measure(pred, gt, bound_th=r) == ref.f_frame(pred, gt, bound_th=r)


def test_boundary_is_offset_towards_the_origin_and_ignores_the_image_border():
    h, w = 6, 7
    dot = np.zeros((h, w), bool)
    dot[2, 3] = True
    assert {tuple(p) for p in np.argwhere(metrics.boundary(dot))} == {(2, 3), (1, 3), (2, 2), (1, 2)}
    bottom_row, last_column, corner = (np.zeros((h, w), bool) for _ in range(3))
    bottom_row[-1] = True
    last_column[:, -1] = True
    corner[-1, -1] = True
    expect_row = np.zeros((h, w), bool)
    expect_row[-2] = True  # the last row compares only with its E neighbour: no boundary there
    expect_col = np.zeros((h, w), bool)
    expect_col[:, -2] = True  # the last column compares only with its S neighbour
    expect_corner = np.zeros((h, w), bool)
    expect_corner[-2, -2] = expect_corner[-2, -1] = expect_corner[-1, -2] = True  # never the corner
    for mask, expect in ((bottom_row, expect_row), (last_column, expect_col), (corner, expect_corner)):
        assert np.array_equal(metrics.boundary(mask), expect)
        assert np.array_equal(ref.seg2bmap(mask), expect)
    assert not metrics.boundary(np.ones((h, w), bool)).any()  # a full-image mask has no boundary
    stack = np.stack([dot, bottom_row, corner])
    assert np.array_equal(metrics.boundary(stack), np.stack([ref.seg2bmap(m) for m in stack]))


def test_empty_and_full_mask_conventions():
    shape = (48, 64)
    empty, full = np.zeros(shape, bool), np.ones(shape, bool)
    half = np.zeros(shape, bool)
    half[:, :32] = True
    assert metrics.j_measure(empty, empty) == 1.0  # empty union
    assert metrics.f_measure(empty, empty) == 1.0  # both boundaries empty
    assert metrics.j_measure(empty, half) == 0.0 and metrics.f_measure(empty, half) == 0.0
    assert metrics.j_measure(half, empty) == 0.0 and metrics.f_measure(half, empty) == 0.0
    assert metrics.j_measure(full, full) == 1.0 and metrics.f_measure(full, full) == 1.0
    # A full-image prediction has no boundary: F = 0 against a mask with one, though J = 1/2.
    assert metrics.j_measure(full, half) == 0.5 and metrics.f_measure(full, half) == 0.0
    # Everything void: nothing left of either mask.
    assert metrics.j_measure(half, full, void=full) == 1.0 and metrics.f_measure(half, full, void=full) == 1.0


def test_f_is_zero_when_no_boundary_pixel_matches_and_one_at_exactly_r():
    shape = (100, 200)  # diagonal 223.6 -> r = ceil(1.79) = 2 at the default tolerance
    assert metrics.tolerance(*shape) == 2
    a, b = np.zeros(shape, bool), np.zeros(shape, bool)
    a[:, :50] = True
    for shift, expect in ((0, 1.0), (2, 1.0), (3, 0.0)):
        b[:] = False
        b[:, :50 + shift] = True  # vertical edges `shift` pixels apart
        assert metrics.f_measure(a, b) == expect == ref.f_frame(a, b)


@pytest.mark.parametrize("shape, r", [((480, 854), 8), ((240, 427), 4), ((480, 910), 9), ((480, 1152), 10),
                                      ((720, 1280), 12), ((1080, 1920), 18)])
def test_tolerance_as_documented(shape, r):
    assert metrics.tolerance(*shape) == r == ref.bound_pix(shape, 0.008)


def test_tolerance_in_pixels_and_bad_values():
    assert metrics.tolerance(480, 854, 3) == 3
    for bad in (1.5, 0, -0.1):
        with pytest.raises(InputError, match="bound_th"):
            metrics.tolerance(480, 854, bad)
    with pytest.raises(InputError, match="shape"):
        metrics.f_measure(np.zeros((4, 5)), np.zeros((4, 6)))
    with pytest.raises(InputError, match="void"):
        metrics.j_measure(np.zeros((4, 5)), np.zeros((4, 5)), void=np.zeros((5, 4)))


def test_object_scores_are_per_label_j_and_f():
    rng = np.random.default_rng(3)
    gt = rng.integers(0, 4, (4, 40, 60)).astype(np.uint8)
    gt = ndimage.median_filter(gt, size=(1, 9, 9))
    pred = np.roll(gt, 2, axis=2)
    J, F = metrics.object_scores(pred, gt, 3, bound_th=2)
    assert J.shape == F.shape == (3, 4)
    for k in (1, 2, 3):
        for t in range(4):
            assert J[k - 1, t] == ref.iou(pred[t] == k, gt[t] == k)
            assert F[k - 1, t] == pytest.approx(ref.f_frame(pred[t] == k, gt[t] == k, bound_th=2), abs=1e-12)


def test_statistics_decay_bins_for_48_frames():
    x = np.arange(48, dtype=float)
    assert metrics.decay_edges(48) == [0, 12, 24, 35, 47]
    mean, recall, decay = metrics.statistics(x)
    # bin_0 = x[0:13], bin_3 = x[35:48]
    assert decay == pytest.approx(np.mean(x[0:13]) - np.mean(x[35:48])) == -35.0
    assert (mean, recall, decay) == pytest.approx(ref.db_statistics(x))


def test_recall_is_strictly_above_one_half_and_nan_fails():
    x = np.array([0.5, 0.5000001, 0.9, 0.1, np.nan])
    mean, recall, _ = metrics.statistics(x)
    assert recall == pytest.approx(2 / 5)
    assert mean == pytest.approx(np.nanmean(x))


@pytest.mark.parametrize("n", list(range(1, 40)) + [75, 104, 255])
def test_statistics_match_the_official_uint8_indexing_below_256_frames(n):
    x = np.random.default_rng(n).random(n)
    assert metrics.statistics(x) == pytest.approx(ref.db_statistics(x, np.uint8), abs=1e-12)


@pytest.mark.parametrize("n", [256, 257, 300, 1000])
def test_decay_of_long_series_is_finite_where_the_official_wraps(n):
    x = np.linspace(1, 0, n) + np.random.default_rng(n).normal(0, 0.01, n)
    ours = metrics.statistics(x)
    assert all(math.isfinite(v) for v in ours)
    assert ours == pytest.approx(ref.db_statistics(x, int), abs=1e-12)
    if n in (257, 300):  # the documented deviation: the official uint8 edges give NaN here
        assert math.isnan(ref.db_statistics(x, np.uint8)[2])


def test_statistics_reject_empty_series():
    with pytest.raises(InputError):
        metrics.statistics([])
