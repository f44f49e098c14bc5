"""The built-in benchmark: deterministic bytes, DAVIS layout, visible and measurable attributes."""
import hashlib
import importlib.util

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from rpmnet.cli import main
from rpmnet.data import davis, synthetic
from rpmnet.errors import InputError

SMALL = dict(size=(64, 96), sequences=3, frames=6)
# Every attribute in both splits (4 sequences each: two complementary couples), default length.
ATTR = dict(size=(96, 160), sequences=8, frames=40)


def digest(root):
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    return synthetic.generate(tmp_path_factory.mktemp("small") / "bench", seed=0, **SMALL)


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    return synthetic.generate(tmp_path_factory.mktemp("attr") / "bench", seed=0, **ATTR)


def labels_of(root, name):
    seq = davis.open_sequence(root, name)
    return np.stack([seq.label(t) for t in range(len(seq))]), seq


def test_same_seed_same_bytes_other_seed_differs(small, tmp_path):
    again = synthetic.generate(tmp_path / "again", seed=0, **SMALL)
    other = synthetic.generate(tmp_path / "other", seed=1, **SMALL)
    assert digest(small) == digest(again)
    a, b = digest(small), digest(other)
    frames = [k for k in a if k.endswith(".jpg")]
    assert len(frames) == 18
    assert a.keys() != b.keys() or any(a[k] != b[k] for k in frames)


def test_layout_reads_back_through_davis(small):
    table = synthetic.attributes(small)
    assert list(table.columns[:7]) == ["sequence", "split", "n_objects", *synthetic.ATTRIBUTES]
    for split in ("train", "val"):
        sequences = davis.open_split(small, split)
        assert [s.name for s in sequences] == list(table.sequence[table.split == split])
        for seq in sequences:
            assert len(seq) == len(seq.annotations) == 6
            assert seq.frame(0).shape == (64, 96, 3)
            with Image.open(seq.annotations[0]) as im:
                assert im.mode == "P" and im.getpalette()[:9] == davis.PALETTE[:9]
            k = int(table.set_index("sequence").n_objects[seq.name])
            labels, _ = labels_of(small, seq.name)
            assert set(np.unique(labels[0])) - {0, davis.VOID} == set(range(1, k + 1))
            assert set(np.unique(labels)) <= set(range(k + 1)) | {davis.VOID}


def test_reuse_regenerate_and_refuse(small, tmp_path, monkeypatch):
    out = tmp_path / "bench"
    synthetic.generate(out, seed=3, **SMALL)
    before = digest(out)
    # Complete and same parameters: returned as is, nothing rendered.
    monkeypatch.setattr(synthetic, "_render", lambda *a, **k: pytest.fail("regenerated"))
    assert synthetic.generate(out, seed=3, **SMALL) == out
    monkeypatch.undo()
    # Incomplete: a missing frame -> regenerated, identical.
    next(out.rglob("*.jpg")).unlink()
    synthetic.generate(out, seed=3, **SMALL)
    assert digest(out) == before
    # Other parameters -> replaced cleanly, no leftovers beside it.
    synthetic.generate(out, seed=3, size=(64, 96), sequences=2, frames=4)
    assert len(list(out.rglob("*.jpg"))) == 8
    assert [p.name for p in tmp_path.iterdir()] == ["bench"]
    # A failure midway leaves the old benchmark and no temporary folder.
    calls, real = [], synthetic._render

    def failing(*args):
        calls.append(1)
        if len(calls) > 5:
            raise RuntimeError("disk full")
        return real(*args)

    monkeypatch.setattr(synthetic, "_render", failing)
    with pytest.raises(RuntimeError):
        synthetic.generate(out, seed=4, **SMALL)
    assert [p.name for p in tmp_path.iterdir()] == ["bench"] and len(list(out.rglob("*.jpg"))) == 8
    # A folder that is not ours is never overwritten.
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    with pytest.raises(InputError, match="mine"):
        synthetic.generate(tmp_path / "mine", **SMALL)


def test_photos_are_bundled_with_scikit_image():
    # Only images inside the wheel: no pooch download on a machine without network.
    for name in [*synthetic.PHOTOS.values(), *synthetic.SILHOUETTE_FILES]:
        assert synthetic.skimage_file(name).is_file()
    assert all(synthetic.photo(p).ndim == 3 for p in synthetic.PHOTOS)
    assert len(synthetic._coins()) > 10


def test_default_schedule_has_every_attribute_in_both_splits():
    for seed in range(5):
        rows = synthetic.schedule(seed, 12, 0.5)
        for split in ("train", "val"):
            part = [r for r in rows if r["split"] == split]
            assert len(part) == 6
            pairs = {tuple(a for a in synthetic.ATTRIBUTES if r[a]) for r in part}
            assert len(pairs) == 6  # every pair of attributes once
            assert all(r["n_objects"] >= 2 for r in part if r["occlusion"])


@pytest.mark.skipif(importlib.util.find_spec("rpmnet.evaluate") is None, reason="rpmnet.evaluate not there yet")
def test_val_split_against_itself_scores_one(small, tmp_path):
    from rpmnet.evaluate import evaluate_davis

    for seq in davis.open_split(small, "val"):
        for path in seq.annotations:
            label = davis.read_label(path)
            label[label == davis.VOID] = 0  # void is background for J and F; results hold ids only
            davis.write_label(tmp_path / seq.name / path.name, label)
    global_df, per_object = evaluate_davis(small, tmp_path, "val", workers=1, write_csv=False)
    assert global_df["J-Mean"][0] == pytest.approx(1.0) and global_df["F-Mean"][0] == pytest.approx(1.0)
    assert len(per_object) == synthetic.attributes(small).query("split == 'val'").n_objects.sum()


# ------------------------------------------------------------------ attributes, measured in the data
def test_attributes_in_both_splits(bench):
    table = synthetic.attributes(bench)
    for a in synthetic.ATTRIBUTES:
        assert set(table.split[table[a] == 1]) == {"train", "val"}, a
    assert set(table.void) == {0, 1}


def camera_shifts(frames):
    """Frame-to-frame shift of the image content (mostly background), in pixels."""
    from skimage.registration import phase_cross_correlation

    gray = frames.astype(float).mean(-1)
    return np.array([phase_cross_correlation(a, b, upsample_factor=4)[0] for a, b in zip(gray, gray[1:])])


def whole(lab, k):
    """Object k is fully in view and clear of the others (so its mask is its whole shape)."""
    m = lab == k
    others = (lab > 0) & (lab != k) & (lab != davis.VOID)
    border = m[0].any() or m[-1].any() or m[:, 0].any() or m[:, -1].any()
    return m.any() and not border and not (ndimage.binary_dilation(m, iterations=3) & others).any()


def test_camera_shake_is_background_jitter(bench):
    # A smooth pan changes its shift slowly; a shaking camera changes it every frame.
    for row in synthetic.attributes(bench).to_dict("records"):
        labels, seq = labels_of(bench, row["sequence"])
        shifts = camera_shifts(np.stack([seq.frame(t) for t in range(16)]))
        jitter = np.median(np.abs(np.diff(shifts, axis=0)))
        assert (jitter > 0.5) == bool(row["camera_shake"]), (row["sequence"], jitter)


def test_occlusion_hides_an_object_that_comes_back(bench):
    for row in synthetic.attributes(bench).to_dict("records"):
        labels, _ = labels_of(bench, row["sequence"])
        counts = np.array([[(lab == k).sum() for k in range(1, row["n_objects"] + 1)] for lab in labels])
        gone_and_back = any(np.any(c == 0) and c[-1] > 0 for c in counts.T)
        assert gone_and_back == bool(row["occlusion"]), row["sequence"]
        if row["occlusion"]:  # and another object is partly covered while in view
            assert (counts.min(0) / counts[0] < 0.8).sum() >= 2


def test_fast_motion_is_large_centroid_steps(bench):
    # Steps of whole objects (DAVIS: centroid distance), beyond 0.11 H only where flagged.
    H = ATTR["size"][0]
    for row in synthetic.attributes(bench).to_dict("records"):
        labels, _ = labels_of(bench, row["sequence"])
        steps = [0.0]
        for k in range(1, row["n_objects"] + 1):
            for t in range(len(labels) - 1):
                if whole(labels[t], k) and whole(labels[t + 1], k):
                    move = np.argwhere(labels[t + 1] == k).mean(0) - np.argwhere(labels[t] == k).mean(0)
                    steps.append(np.hypot(*move) / H)
        assert (max(steps) > 0.11) == bool(row["fast_motion"]), (row["sequence"], max(steps))


def eccentricity(mask):
    from skimage.measure import moments_central, moments_hu, moments_normalized

    hu = moments_hu(moments_normalized(moments_central(mask.astype(float)), 3))
    return np.sqrt(hu[1]) / hu[0]


def test_deformation_changes_shape_beyond_rigid_motion(bench):
    # Eccentricity from Hu moments ignores shift, rotation and scale: constant for rigid motion.
    # Measured on whole objects large enough that pixel steps do not swamp the shape.
    seen = set()
    for row in synthetic.attributes(bench).to_dict("records"):
        labels, _ = labels_of(bench, row["sequence"])
        spread = []
        for k in range(1, row["n_objects"] + 1):
            values = [eccentricity(lab == k) for lab in labels if (lab == k).sum() >= 300 and whole(lab, k)]
            if len(values) >= 4:
                spread.append(np.ptp(values))
        if spread:
            seen.add(row["deformation"])
            assert (max(spread) > 0.06) == bool(row["deformation"]), (row["sequence"], spread)
    assert seen == {0, 1}


def test_void_band_on_borders_only_where_flagged(bench):
    for row in synthetic.attributes(bench).to_dict("records"):
        labels, _ = labels_of(bench, row["sequence"])
        void = labels == davis.VOID
        assert void.any() == bool(row["void"])
        objects = (labels > 0) & ~void  # void is a thin band along the objects' outlines
        assert (void <= ndimage.binary_dilation(objects, np.ones((1, 3, 3), bool))).all()


# ------------------------------------------------------------------ entry points
def test_ensure_benchmark_uses_the_profile(tmp_path):
    root = synthetic.ensure_benchmark("smoke", root=tmp_path)
    assert root == tmp_path / "synthetic-smoke"
    assert len(davis.sequence_names(root, "train")) + len(davis.sequence_names(root, "val")) == 4
    assert davis.open_sequence(root, davis.sequence_names(root, "val")[0]).frame(0).shape == (64, 96, 3)
    stamp = (root / synthetic.MANIFEST).stat().st_mtime_ns
    assert synthetic.ensure_benchmark("smoke", root=tmp_path) == root
    assert (root / synthetic.MANIFEST).stat().st_mtime_ns == stamp


def test_cli(tmp_path, capsys):
    assert synthetic.parse_size("480x854") == (480, 854)
    out = tmp_path / "b"
    assert main(["synth", "--out", str(out), "--size", "64x96", "--sequences", "2", "--frames", "3"]) == 0
    assert str(out) in capsys.readouterr().out
    assert main(["synth", "--out", str(tmp_path / "c"), "--size", "banana"]) == 2
    assert "banana" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()


@pytest.mark.parametrize("kwargs, word", [(dict(size=(16, 96)), "16x96"), (dict(sequences=1), "sequences"),
                                          (dict(frames=2), "frames"), (dict(val_fraction=1.0), "val_fraction")])
def test_bad_parameters(tmp_path, kwargs, word):
    with pytest.raises(InputError, match=word):
        synthetic.generate(tmp_path / "x", **{**SMALL, **kwargs})
