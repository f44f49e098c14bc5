"""rpmnet.evaluate on whole DAVIS-layout folders, against the literal oracle (tests/davis_reference.py)."""
import re
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import davis_reference as ref
from rpmnet import evaluate
from rpmnet.bench.eval import blob_video, write_layout
from rpmnet.cli import main
from rpmnet.data import davis
from rpmnet.errors import InputError


@pytest.fixture(scope="module")
def layout(tmp_path_factory):
    """Three sequences of the sizes DAVIS has, with the protocol's corner cases built in."""
    rng = np.random.default_rng(7)
    a_gt, a_pred = blob_video(rng, 5, (480, 854), 3)
    a_gt[0][a_gt[0] == 2] = 0            # id 2 absent from the first frame, still evaluated (N = 3)
    assert np.where(a_gt[0] == davis.VOID, 0, a_gt[0]).max() == 3
    a_gt[2, 10:40, 10:60] = 4            # an id above N later on: ignored
    a_pred[3][a_pred[3] == 1] = 0        # object 1 predicted absent in one frame
    b_gt, b_pred = blob_video(rng, 4, (480, 910), 2)
    b_gt[1, 200:300, :] = davis.VOID     # a void slab: plain background in semi-supervised
    c_gt, c_pred = blob_video(rng, 6, (240, 427), 2)
    c_pred[c_pred == 2] = 0              # the result never has id 2: it scores as an empty mask
    assert (b_gt[0] == 2).any() and (c_gt[0] == 2).any()
    root = tmp_path_factory.mktemp("davis")
    results = tmp_path_factory.mktemp("results")
    write_layout(root, {"alpha": (a_gt, a_pred), "bravo": (b_gt, b_pred), "charlie": (c_gt, c_pred)},
                 results=results)
    for name in ("00000.png", "00004.png"):  # first and last result frames are never read
        (results / "alpha" / name).unlink()
    return root, results


def test_every_number_and_csv_agrees_with_the_oracle(layout):
    root, results = layout
    for name in ("global_results-val.csv", "per-sequence_results-val.csv"):  # stale files: recomputed
        (results / name).write_text("J&F-Mean\n9\n")
    scores = evaluate.score_split(root, results, workers=1)
    g_ref, o_ref, frames_ref = ref.evaluate(root, results)
    assert [s.name for s in scores] == ["alpha", "bravo", "charlie"]
    for s in scores:
        J_ref, F_ref = frames_ref[s.name]
        np.testing.assert_allclose(s.J, J_ref, atol=1e-6)
        np.testing.assert_allclose(s.F, F_ref, atol=1e-6)
    assert [s.J.shape for s in scores] == [(3, 3), (2, 2), (2, 4)]
    assert scores[0].frame_ids == ["00001", "00002", "00003"]
    # The corner cases really happen: an absent object scores 0, an empty one against nothing 1.
    assert scores[0].J[0, 2] == 0 and (scores[2].J[1] == 0).all()

    global_df, per_object = evaluate.evaluate_davis(root, results, workers=1)
    assert list(global_df.columns) == evaluate.GLOBAL_COLUMNS and len(global_df) == 1
    assert list(per_object["Sequence"]) == list(o_ref["Sequence"]) == [
        "alpha_1", "alpha_2", "alpha_3", "bravo_1", "bravo_2", "charlie_1", "charlie_2"]
    for column in evaluate.MEASURES:
        np.testing.assert_allclose(per_object[column], o_ref[column], atol=1e-6)
    np.testing.assert_allclose(global_df.to_numpy(), g_ref[evaluate.GLOBAL_COLUMNS].to_numpy(), atol=1e-6)
    # Object-weighted: the global mean is over the 7 objects, not over the 3 sequences.
    assert global_df["J-Mean"].iloc[0] == pytest.approx(per_object["J-Mean"].mean())
    row = global_df.iloc[0]
    assert row["J&F-Mean"] == pytest.approx((row["J-Mean"] + row["F-Mean"]) / 2)

    lines = (results / "global_results-val.csv").read_text().splitlines()
    assert lines[0] == "J&F-Mean,J-Mean,J-Recall,J-Decay,F-Mean,F-Recall,F-Decay" and len(lines) == 2
    expect = [f"{v:.3f}" for v in g_ref[evaluate.GLOBAL_COLUMNS].iloc[0]]
    assert lines[1].split(",") == expect
    lines = (results / "per-sequence_results-val.csv").read_text().splitlines()
    assert lines[0] == "Sequence,J-Mean,F-Mean"
    assert lines[1:] == [f"{r['Sequence']},{r['J-Mean']:.3f},{r['F-Mean']:.3f}" for _, r in o_ref.iterrows()]
    assert not [p for p in results.iterdir() if p.name.startswith(".")]  # no temporary files left

    # Two processes give the same tables; the per-frame table has one row per object and frame.
    g2, o2 = evaluate.evaluate_davis(root, results, workers=2, write_csv=False)
    pd.testing.assert_frame_equal(g2, global_df)
    pd.testing.assert_frame_equal(o2, per_object)
    table = evaluate.per_frame_table(scores)
    assert list(table.columns) == ["sequence", "object", "frame", "J", "F"] and len(table) == 9 + 4 + 8
    text = evaluate.format_tables(global_df, per_object)
    assert "Global results for val" in text and "charlie_2" in text


def test_in_memory_scores_equal_the_folder_scores(layout):
    root, results = layout
    seq = davis.open_sequence(root, "bravo")
    gt = np.stack([davis.read_label(p) for p in seq.annotations])
    pred = np.stack([davis.read_label(results / "bravo" / f"{i}.png") for i in seq.frame_ids])
    mine = evaluate.score_sequence("bravo", gt, pred)
    folder = evaluate.evaluate_sequence(root, results, "bravo")
    np.testing.assert_array_equal(mine.J, folder.J)
    np.testing.assert_array_equal(mine.F, folder.F)
    pred[2, 0, 0] = 9
    with pytest.raises(InputError, match="frame 00002 predicts object id 9"):
        evaluate.score_sequence("bravo", gt, pred)


def test_ground_truth_as_result_scores_one(layout, tmp_path):
    root, _ = layout
    for seq in davis.open_split(root):
        n_objects = np.where(seq.label(0) == davis.VOID, 0, seq.label(0)).max()
        for t, path in enumerate(seq.annotations):
            label = seq.label(t)  # as the result: void and ids above N are background
            davis.write_label(tmp_path / seq.name / path.name, np.where(label > n_objects, 0, label))
    global_df, per_object = evaluate.evaluate_davis(root, tmp_path, workers=1)
    row = global_df.iloc[0]
    assert row["J&F-Mean"] == row["J-Mean"] == row["F-Mean"] == row["J-Recall"] == row["F-Recall"] == 1
    assert row["J-Decay"] == row["F-Decay"] == 0
    assert (per_object[evaluate.MEASURES[:2]] == 1).all().all()


@pytest.fixture
def small(tmp_path):
    """A tiny valid layout (two sequences of 4 frames, 30x40) and its results, to break."""
    rng = np.random.default_rng(1)
    videos = {name: blob_video(rng, 4, (30, 40), 2) for name in ("a", "b")}
    for gt, pred in videos.values():
        gt[0, 5:10, 5:10], gt[0, 20:25, 20:25] = 1, 2  # both objects in the first frame
        np.minimum(pred, 2, out=pred)
    root = write_layout(tmp_path / "davis", videos, results=tmp_path / "results")
    return root, tmp_path / "results"


def _write_rgb(path):
    Image.fromarray(np.zeros((30, 40, 3), np.uint8)).save(path)


def _short_sequence(root):
    for t in range(2):
        davis.write_image(root / "JPEGImages/480p/short" / f"{t:05d}.jpg", np.zeros((30, 40, 3), np.uint8))
        davis.write_label(root / "Annotations/480p/short" / f"{t:05d}.png", np.ones((30, 40), np.uint8))
    with open(root / "ImageSets/2017/val.txt", "a") as f:
        f.write("short\n")
    return root / "Annotations/480p/short"


def _ghost(root):
    with open(root / "ImageSets/2017/val.txt", "a") as f:
        f.write("ghost\n")
    return root / "JPEGImages/480p/ghost"


# name -> (breaks the layout, returns the path the message must name; a word it must say)
BREAKS = {
    "id above N": (lambda root, res: davis.write_label(res / "a/00001.png", np.full((30, 40), 3, np.uint8)),
                   "object id 3"),
    "missing frame": (lambda root, res: (res / "b/00002.png").unlink() or res / "b/00002.png", "missing"),
    "wrong size": (lambda root, res: davis.write_label(res / "a/00002.png", np.zeros((30, 41), np.uint8)),
                   "41x30"),
    "RGB PNG": (lambda root, res: _write_rgb(res / "b/00001.png") or res / "b/00001.png", "single-channel"),
    "unreadable result": (lambda root, res: (res / "a/00001.png").write_bytes(b"not a png")
                          and res / "a/00001.png", "cannot read"),
    "unreadable annotation": (lambda root, res: (root / "Annotations/480p/b/00002.png").write_bytes(b"junk")
                              and root / "Annotations/480p/b/00002.png", "cannot read"),
    "fewer masks than frames": (lambda root, res: (root / "Annotations/480p/a/00003.png").unlink()
                                or root / "Annotations/480p/a", "every frame"),
    "missing split file": (lambda root, res: (root / "ImageSets/2017/val.txt").unlink()
                           or root / "ImageSets/2017/val.txt", "split"),
    "listed sequence absent": (lambda root, res: _ghost(root), "missing"),
    "fewer than 3 frames": (lambda root, res: _short_sequence(root), "at least 3"),
    "no results folder": (lambda root, res: shutil.rmtree(res) or res, "does not exist"),
    "first frame empty": (lambda root, res: davis.write_label(root / "Annotations/480p/b/00000.png",
                                                              np.zeros((30, 40), np.uint8)), "no object"),
}


@pytest.mark.parametrize("case", list(BREAKS))
def test_bad_input_names_the_path_and_writes_nothing(small, case, capsys):
    root, results = small
    brk, word = BREAKS[case]
    path = brk(root, results)
    with pytest.raises(InputError, match=re.escape(str(path))) as err:
        evaluate.evaluate_davis(root, results, workers=1)
    assert word in str(err.value)
    code = main(["evaluate", "--davis-root", str(root), "--results", str(results), "--workers", "2"])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.err.count("\n") == 1 and str(path) in captured.err and "Traceback" not in captured.err
    assert not (results.is_dir() and list(results.glob("*.csv")))


def test_cli_prints_the_tables_and_writes_the_csvs(small, capsys):
    root, results = small
    assert main(["evaluate", "--davis-root", str(root), "--results", str(results), "--workers", "1"]) == 0
    out = capsys.readouterr().out
    assert "Global results for val" in out and "a_2" in out and "b_1" in out
    assert sorted(p.name for p in results.glob("*.csv")) == ["global_results-val.csv",
                                                            "per-sequence_results-val.csv"]


def test_python_m_rpmnet_evaluate_exits_2_on_bad_input(small):
    root, results = small
    (results / "a/00002.png").unlink()
    run = subprocess.run([sys.executable, "-m", "rpmnet", "evaluate", "--davis-root", str(root),
                          "--results", str(results)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 2
    assert run.stderr.count("\n") == 1 and str(results / "a/00002.png") in run.stderr
    assert not list(results.glob("*.csv"))


def test_bad_arguments():
    with pytest.raises(InputError, match="workers"):
        evaluate.score_split(".", ".", workers=0)
    with pytest.raises(InputError, match="T >= 3"):
        evaluate.score_sequence("x", np.ones((2, 4, 4)), np.ones((2, 4, 4)))


def test_a_2017_sequence_missing_its_files_is_named(tmp_path):
    (tmp_path / "ImageSets" / "2017").mkdir(parents=True)
    (tmp_path / "ImageSets" / "2017" / "val.txt").write_text("cat\n")
    frames, annotations = tmp_path / "JPEGImages" / "480p" / "cat", tmp_path / "Annotations" / "480p" / "cat"
    for prepare, message in [
            (lambda: None, f"{frames}: sequence folder missing"),
            (lambda: frames.mkdir(parents=True), f"{frames}: no .jpg frames"),
            (lambda: davis.write_image(frames / "00000.jpg", np.zeros((8, 8, 3), np.uint8)),
             f"{annotations}: annotation folder missing"),
            (lambda: annotations.mkdir(parents=True), f"{annotations}: no .png annotations")]:
        prepare()
        with pytest.raises(InputError, match=re.escape(message)):
            davis.open_sequence(tmp_path, "cat")
    assert davis.open_sequence(tmp_path, "cat", annotations=False).frames == [frames / "00000.jpg"]
