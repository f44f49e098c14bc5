"""The DAVIS-2017 folder layout: read frames and palette annotations, write palette results.

    <root>/JPEGImages/<resolution>/<seq>/00000.jpg ...
    <root>/Annotations/<resolution>/<seq>/00000.png ...   palette PNG: 0 background, 1..N objects,
                                                           255 void
    <root>/ImageSets/2017/{train,val}.txt                  one sequence name per line

A results folder is <results>/<seq>/<frame>.png with the same frame names.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import InputError
from ..fileio import atomic_path

VOID = 255
RESOLUTIONS = ("480p", "Full-Resolution")


def _davis_palette() -> list[int]:
    """The palette of DAVIS annotations (the PASCAL VOC colour map): id -> RGB by bit interleaving."""
    palette = []
    for i in range(256):
        r = g = b = 0
        c = i
        for shift in range(7, -1, -1):
            r |= (c & 1) << shift
            g |= ((c >> 1) & 1) << shift
            b |= ((c >> 2) & 1) << shift
            c >>= 3
        palette += [r, g, b]
    return palette


PALETTE = _davis_palette()


@dataclass
class Sequence:
    """One video of a DAVIS-layout root: frame JPEGs and (optionally) annotation PNGs."""

    name: str
    frames: list[Path]
    annotations: list[Path]

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def frame_ids(self) -> list[str]:
        return [p.stem for p in self.frames]

    def frame(self, i: int) -> np.ndarray:
        return read_image(self.frames[i])

    def label(self, i: int) -> np.ndarray:
        return read_label(self.annotations[i])


def read_image(path) -> np.ndarray:
    """A frame as an HxWx3 uint8 RGB array."""
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except (OSError, ValueError) as err:
        raise InputError(f"{path}: cannot read image ({err})") from None


def read_label(path) -> np.ndarray:
    """An annotation or result PNG as an HxW uint8 array of ids (palette indices, not colours)."""
    try:
        with Image.open(path) as im:
            if im.mode not in ("P", "L"):
                raise InputError(f"{path}: a label PNG must be single-channel (palette 'P' or 'L'), "
                                 f"got mode {im.mode!r}")
            return np.asarray(im, dtype=np.uint8).copy()
    except InputError:
        raise
    except (OSError, ValueError) as err:
        raise InputError(f"{path}: cannot read label PNG ({err})") from None


def write_label(path, label: np.ndarray) -> Path:
    """Write an HxW id map as a DAVIS palette PNG, atomically (temporary name, then rename)."""
    label = np.asarray(label)
    if label.ndim != 2 or label.dtype.kind not in "biuf":
        raise InputError(f"{path}: a label map must be HxW of integer ids, got shape {label.shape} "
                         f"{label.dtype}")
    if label.dtype.kind == "f" and not (np.isfinite(label).all() and (label == np.round(label)).all()):
        raise InputError(f"{path}: a label map must hold whole ids, got non-integer values")
    if label.size and (label.min() < 0 or label.max() > 255):  # a PNG palette holds ids 0..255 only
        raise InputError(f"{path}: ids must lie in 0..255, got {label.min()}..{label.max()}")
    im = Image.fromarray(label.astype(np.uint8), mode="P")
    im.putpalette(PALETTE)
    with atomic_path(path) as tmp:
        im.save(tmp, format="PNG")
    return Path(path)


def write_image(path, image: np.ndarray, quality: int = 95) -> Path:
    """An HxWx3 uint8 frame as JPEG, atomically."""
    with atomic_path(path) as tmp:
        Image.fromarray(np.asarray(image, dtype=np.uint8)).save(tmp, format="JPEG", quality=quality)
    return Path(path)


def split_file(root, split: str) -> Path:
    return Path(root) / "ImageSets" / "2017" / f"{split}.txt"


def sequence_names(root, split: str = "val") -> list[str]:
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: DAVIS root folder does not exist")
    path = split_file(root, split)
    if not path.is_file():
        raise InputError(f"{path}: split file missing (is {root} a DAVIS-2017 root? split={split!r})")
    names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if not names:
        raise InputError(f"{path}: split file lists no sequences")
    return names


def open_sequence(root, name: str, resolution: str = "480p", annotations: bool = True) -> Sequence:
    root = Path(root)
    if resolution not in RESOLUTIONS:
        raise InputError(f"unknown resolution {resolution!r}; allowed: {', '.join(RESOLUTIONS)}")
    frame_dir = root / "JPEGImages" / resolution / name
    if not frame_dir.is_dir():
        raise InputError(f"{frame_dir}: sequence folder missing")
    frames = sorted(frame_dir.glob("*.jpg"))
    if not frames:
        raise InputError(f"{frame_dir}: no .jpg frames")
    labels = []
    if annotations:
        ann_dir = root / "Annotations" / resolution / name
        if not ann_dir.is_dir():
            raise InputError(f"{ann_dir}: annotation folder missing")
        labels = sorted(ann_dir.glob("*.png"))
        if not labels:
            raise InputError(f"{ann_dir}: no .png annotations")
    return Sequence(name, frames, labels)


def check_annotated(seq: Sequence) -> Sequence:
    """The sequence itself if it has an annotation PNG for every frame, else InputError."""
    if len(seq.annotations) < len(seq.frames):
        where = seq.annotations[0].parent if seq.annotations else seq.name
        raise InputError(f"{where}: {len(seq.annotations)} annotation PNGs for {len(seq.frames)} .jpg "
                         "frames; every frame must be annotated")
    return seq


def open_split(root, split: str = "val", resolution: str = "480p", annotations: bool = True):
    """All sequences of a split, in the split file's order."""
    return [open_sequence(root, n, resolution, annotations) for n in sequence_names(root, split)]
