"""Mask propagation: the command line end to end, baselines, limits and bad input."""
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from rpmnet import checkpoint, propagate
from rpmnet.cli import main
from rpmnet.data import davis
from rpmnet.model.rpmnet import RPMNet


def write_davis(root, sequences: dict, split="val", other_split="train"):
    """sequences: name -> (frames [T,H,W,3] uint8, labels [T,H,W] uint8)."""
    root = Path(root)
    for name, (frames, labels) in sequences.items():
        for t, (frame, label) in enumerate(zip(frames, labels)):
            davis.write_image(root / "JPEGImages/480p" / name / f"{t:05d}.jpg", frame)
            davis.write_label(root / "Annotations/480p" / name / f"{t:05d}.png", label)
    for s in (split, other_split):
        (root / "ImageSets/2017").mkdir(parents=True, exist_ok=True)
        (root / "ImageSets/2017" / f"{s}.txt").write_text("".join(n + "\n" for n in sequences))
    return root


def moving_squares(size=(70, 100), frames=5, step=2, seed=0):
    """A textured background and two objects, one moving right by `step` px per frame; void band."""
    rng = np.random.default_rng(seed)
    h, w = size
    background = (rng.random((h, w, 3)) * 255).astype(np.uint8)
    images, labels = [], []
    for t in range(frames):
        label = np.zeros(size, np.uint8)
        label[8:28, 10 + step * t:30 + step * t] = 1
        label[36:60, 56:84] = 3          # ids need not be contiguous: 2 is simply absent
        image = background.copy()
        image[label == 1] = (230, 40, 40)
        image[label == 3] = (40, 200, 60)
        label[35, 56:84] = davis.VOID
        images.append(image)
        labels.append(label)
    return np.stack(images), np.stack(labels)


def static_blocks(size=(64, 96), frames=4):
    """Nothing moves; object edges on the 4-pixel grid of the flow, so H/4 loses nothing."""
    images, labels = moving_squares(size, frames, step=0)
    labels[:] = 0
    labels[:, 8:28, 12:32] = 1
    labels[:, 36:60, 56:84] = 2
    return images, labels


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    model = RPMNet("resnet18")
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    checkpoint.save(path, model=model, model_config=model.config, step=0)
    return path


def test_cli_end_to_end_every_frame_palette_ids(tmp_path, tiny_checkpoint, capsys):
    root = write_davis(tmp_path / "davis", {"squares": moving_squares(), "other": moving_squares(seed=1)})
    runs = {"zero-flow": (["--baseline", "zero-flow", "--evaluate"], 5),
            "tiny": (["--checkpoint", str(tiny_checkpoint), "--max-frames", "4", "--evaluate"], 4),
            "copy-first": (["--baseline", "copy-first"], 5)}
    for name, (method, frames) in runs.items():
        out = tmp_path / name
        assert main(["propagate", *method, "--davis-root", str(root), "--out", str(out),
                     "--device", "cpu"]) == 0
        for seq in ("squares", "other"):
            pngs = sorted((out / seq).glob("*.png"))
            assert [p.name for p in pngs] == [f"{t:05d}.png" for t in range(frames)]
            for p in pngs:
                with Image.open(p) as im:
                    assert im.mode == "P" and im.getpalette()[:12] == davis.PALETTE[:12]
                    assert im.size == (100, 70)
                assert set(np.unique(davis.read_label(p))) <= {0, 1, 3}
            first = davis.read_label(out / seq / "00000.png")
            gt = davis.read_label(root / "Annotations/480p" / seq / "00000.png")
            assert np.array_equal(first, np.where(gt == davis.VOID, 0, gt))
        assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary folders left
        if "--evaluate" in method:
            assert "J&F-Mean" in capsys.readouterr().out
            assert (out / "global_results-val.csv").is_file()
    assert main(["evaluate", "--davis-root", str(root), "--results", str(tmp_path / "copy-first")]) == 0
    assert "J&F-Mean" in capsys.readouterr().out


def test_baseline_scores_on_static_sequence(tmp_path):
    """Nothing moves: copy-first is perfect, and zero-flow matches it up to its H/4 resampling
    (bilinear upsampling rounds off the objects' convex corners, one pixel each), with no drift."""
    from rpmnet.metrics import f_measure, j_measure

    root = write_davis(tmp_path / "davis", {"still": static_blocks()})
    seq = davis.open_split(root, "val")[0]
    copy = list(propagate.propagate_sequence("copy-first", seq))
    zero = list(propagate.propagate_sequence("zero-flow", seq))
    assert len(copy) == len(zero) == len(seq)
    corners = {(8, 12), (8, 31), (27, 12), (27, 31), (36, 56), (36, 83), (59, 56), (59, 83)}
    for t, (c, z) in enumerate(zip(copy, zero)):
        gt = seq.label(t)
        for k in (1, 2):
            assert j_measure(c == k, gt == k) == 1.0 and f_measure(c == k, gt == k) == 1.0
        assert np.array_equal(z, zero[1] if t else c)
        assert {tuple(p) for p in np.argwhere(z != c)} == (corners if t else set())


class CountingModel(torch.nn.Module):
    """Counts embeddings per frame: each frame must be embedded exactly once."""

    def __init__(self, model):
        super().__init__()
        self.model, self.frames = model, []

    def embed(self, frames):
        self.frames.append(frames.sum().item())
        return self.model.embed(frames)

    def match(self, *args):
        return self.model.match(*args)


@pytest.mark.parametrize("propagate_from,carry", [("previous", "soft"), ("previous+first", "hard")])
def test_each_frame_embedded_once(tmp_path, propagate_from, carry):
    root = write_davis(tmp_path / "davis", {"squares": moving_squares(frames=4)})
    seq = davis.open_split(root, "val")[0]
    torch.manual_seed(0)
    model = CountingModel(RPMNet("resnet18"))
    labels = list(propagate.propagate_sequence(model, seq, propagate_from=propagate_from, carry=carry))
    assert len(labels) == 4 and all(lab.shape == (70, 100) and lab.dtype == np.uint8 for lab in labels)
    expected = [torch.from_numpy(np.array(seq.frame(t))).float().div(255).sum().item() for t in range(4)]
    assert model.frames == pytest.approx(expected)


def test_zero_flow_goes_through_the_warp(tmp_path):
    """zero-flow is the model's path with zero flow: the warp of a soft map by zero is itself (to rounding)."""
    soft = torch.rand(1, 3, 5, 7)
    model = propagate.ZeroFlow()
    assert torch.allclose(model.match(None, None, soft), soft, atol=1e-6)
    # and a model whose flow is zero (RPMNet at initialisation) propagates exactly like it
    root = write_davis(tmp_path / "davis", {"squares": moving_squares(frames=3)})
    seq = davis.open_split(root, "val")[0]
    torch.manual_seed(0)
    ours = list(propagate.propagate_sequence(RPMNet("resnet18"), seq))
    base = list(propagate.propagate_sequence("zero-flow", seq))
    assert all(np.array_equal(a, b) for a, b in zip(ours, base))


def test_failed_sequence_leaves_nothing(tmp_path):
    root = write_davis(tmp_path / "davis", {"a": moving_squares(frames=4)})

    class Broken(propagate.ZeroFlow):
        calls = 0

        def embed(self, frames):
            Broken.calls += 1
            if Broken.calls == 3:
                raise RuntimeError("stopped")
            return super().embed(frames)

    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match="stopped"):
        propagate.propagate_davis(Broken(), root, out=out, device="cpu")
    assert [p.name for p in out.iterdir()] == [propagate.RUN_FILE]  # no half-written sequence


def test_object_leaving_and_max_frames(tmp_path):
    """An object sliding out of the image: frames stay valid, ids only from frame 0."""
    images, labels = moving_squares(frames=6, step=20)
    root = write_davis(tmp_path / "davis", {"leaves": (images, labels)})
    out = propagate.propagate_davis("zero-flow", root, out=tmp_path / "out", max_frames=4,
                                    propagate_from="previous+first")
    assert len(list((out / "leaves").glob("*.png"))) == 4


def test_bad_inputs_exit_2(tmp_path, tiny_checkpoint, capsys):
    images, labels = moving_squares(frames=3)
    empty = labels.copy()
    empty[0] = np.where(empty[0] == davis.VOID, davis.VOID, 0)  # only void in frame 0
    root = write_davis(tmp_path / "davis", {"empty": (images, empty)})
    args = ["propagate", "--baseline", "zero-flow", "--davis-root", str(root), "--out", str(tmp_path / "o")]
    assert main(args) == 2
    assert "Annotations/480p/empty/00000.png" in capsys.readouterr().err
    assert main(args + ["--split", "test-dev"]) == 2
    assert "test-dev.txt" in capsys.readouterr().err
    missing = tmp_path / "nope.pt"
    assert main(["propagate", "--checkpoint", str(missing), "--davis-root", str(root)]) == 2
    assert str(missing) in capsys.readouterr().err
    assert main(["propagate", "--baseline", "zero-flow", "--davis-root", str(tmp_path / "absent")]) == 2
    assert not (tmp_path / "o" / "empty").exists()


def test_labels_equal_a_plain_argmax_including_ties():
    import torch.nn.functional as F

    from rpmnet.propagate import hard_labels

    soft = torch.rand(1, 4, 30, 53, generator=torch.Generator().manual_seed(0))
    soft[..., :5, :5] = 0.25                     # ties: the lower id wins, as in argmax
    full = (119, 211)
    plain = F.interpolate(soft, size=full, mode="bilinear", align_corners=False).argmax(1)[0]
    assert np.array_equal(hard_labels(soft, full), plain.to(torch.uint8).numpy())


@pytest.mark.parametrize("kwargs, message", [(dict(max_frames=2), "at least 3 frames"),
                                             (dict(sequences=0), "at least 1")])
def test_propagate_rejects_empty_work(tmp_path, kwargs, message):
    from rpmnet.errors import InputError

    with pytest.raises(InputError, match=message):
        propagate.propagate_davis("copy-first", tmp_path, out=tmp_path / "out", **kwargs)


def test_one_output_folder_holds_one_propagation(tmp_path):
    """Masks of two runs in one folder would be scored together: the second run is refused."""
    from rpmnet.errors import InputError

    images, labels = moving_squares(frames=4)
    root = write_davis(tmp_path / "davis", {"a": (images, labels), "b": (images, labels)})
    out = tmp_path / "out"
    propagate.propagate_davis("zero-flow", root, out=out, sequences=["a"])
    stamp = (out / "a" / "00000.png").stat().st_mtime_ns
    propagate.propagate_davis("zero-flow", root, out=out, sequences=["a"])  # the same run again
    with pytest.raises(InputError, match=r"out holds masks of another propagation \(different method\)"):
        propagate.propagate_davis("copy-first", root, out=out, sequences=["a"])
    with pytest.raises(InputError, match="different sequences"):
        propagate.propagate_davis("zero-flow", root, out=out)
    assert (out / "a" / "00000.png").stat().st_mtime_ns >= stamp and not (out / "b").exists()


def test_default_output_folder_names_the_checkpoints_run(tmp_path, tiny_checkpoint, monkeypatch):
    """Two profiles' default models (checkpoints/<profile>/default/final.pt) get two folders."""
    images, labels = moving_squares(frames=3)
    root = write_davis(tmp_path / "davis", {"a": (images, labels)})
    monkeypatch.chdir(tmp_path)
    for profile in ("quick", "cpu"):
        checkpoint = tmp_path / "checkpoints" / profile / "default" / "final.pt"
        checkpoint.parent.mkdir(parents=True)
        checkpoint.write_bytes(Path(tiny_checkpoint).read_bytes())
        assert main(["propagate", "--checkpoint", str(checkpoint), "--davis-root", str(root),
                     "--device", "cpu"]) == 0
        assert (tmp_path / "runs" / "propagate" / f"{profile}-default-final" / "a").is_dir()
    assert main(["propagate", "--baseline", "copy-first", "--davis-root", str(root)]) == 0
    assert (tmp_path / "runs" / "propagate" / "copy-first-davis" / "a").is_dir()
