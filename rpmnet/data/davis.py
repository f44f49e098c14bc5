"""DAVIS roots as distributed, both layouts, told apart by their split files.

DAVIS-2017:
    <root>/JPEGImages/<resolution>/<seq>/00000.jpg ...
    <root>/Annotations/<resolution>/<seq>/00000.png ...   palette PNG: 0 background, 1..N objects,
                                                           255 void
    <root>/ImageSets/2017/{train,val}.txt                  one sequence name per line
DAVIS-2016:
    <root>/JPEGImages/480p/<seq>/00000.jpg ...
    <root>/Annotations/480p/<seq>/00000.png ...           8-bit grayscale: 0 background, 255 (any
                                                           value > 0) the one object, read as id 1
    <root>/ImageSets/480p/{train,val}.txt                  lines "/JPEGImages/480p/<seq>/<f>.jpg
                                                           /Annotations/480p/<seq>/<f>.png"
Either may carry the toolkit's sequence info (attributes, set): Annotations/db_info.yml.

A results folder is <results>/<seq>/<frame>.png with the same frame names (palette ids).
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
    """One video of a DAVIS-layout root: frame JPEGs and (optionally) annotation PNGs.
    binary: DAVIS-2016 masks (any value > 0 is object 1; there is no void)."""

    name: str
    frames: list[Path]
    annotations: list[Path]
    binary: bool = False

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def frame_ids(self) -> list[str]:
        return [p.stem for p in self.frames]

    def frame(self, i: int) -> np.ndarray:
        return read_image(self.frames[i])

    def label(self, i: int) -> np.ndarray:
        label = read_label(self.annotations[i])
        return (label > 0).astype(np.uint8) if self.binary else label


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


LAYOUTS = {"2017": ("ImageSets", "2017"), "2016": ("ImageSets", "480p")}


def layout(root) -> str:
    """"2017" or "2016", from the split-file folders the root has; InputError if neither."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: DAVIS root folder does not exist")
    for name, parts in LAYOUTS.items():
        if root.joinpath(*parts).is_dir():
            return name
    raise InputError(f"{root}: not a DAVIS root (looked for ImageSets/2017/ of DAVIS-2017 and "
                     f"ImageSets/480p/ of DAVIS-2016)")


def split_file(root, split: str) -> Path:
    """The split file of either layout (the DAVIS-2017 path when the root is neither)."""
    root = Path(root)
    folder = next((root.joinpath(*p) for p in LAYOUTS.values() if root.joinpath(*p).is_dir()),
                  root.joinpath(*LAYOUTS["2017"]))
    return folder / f"{split}.txt"


def _read_split(root: Path, split: str) -> list[str]:
    path = split_file(root, split)
    if not path.is_file():
        raise InputError(f"{path}: split file missing (split={split!r} of the DAVIS-{layout(root)} "
                         f"root {root})")
    lines = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if not lines:
        raise InputError(f"{path}: split file lists no sequences")
    return lines


def _frame_pairs(root: Path, split: str) -> dict[str, list[tuple[Path, Path]]]:
    """A DAVIS-2016 split file: sequence -> its listed (frame, annotation) paths, in order."""
    path, pairs = split_file(root, split), {}
    for n, line in enumerate(_read_split(root, split), start=1):
        fields = line.split()
        if len(fields) != 2:
            raise InputError(f"{path}:{n}: expected '/JPEGImages/480p/<seq>/<f>.jpg "
                             f"/Annotations/480p/<seq>/<f>.png', got {line!r}")
        frame, annotation = (root / f.lstrip("/") for f in fields)
        pairs.setdefault(frame.parent.name, []).append((frame, annotation))
    return pairs


def sequence_names(root, split: str = "val") -> list[str]:
    root = Path(root)
    if layout(root) == "2016":
        return list(_frame_pairs(root, split))
    return _read_split(root, split)


def open_sequence(root, name: str, resolution: str = "480p", annotations: bool = True,
                  split: str | None = None) -> Sequence:
    """One sequence; of a DAVIS-2016 root, the frames its split file lists (all splits searched
    when split is None), each checked to exist."""
    root = Path(root)
    if resolution not in RESOLUTIONS:
        raise InputError(f"unknown resolution {resolution!r}; allowed: {', '.join(RESOLUTIONS)}")
    if layout(root) == "2016":
        return _open_2016(root, name, annotations, split)
    frames = _listed(root / "JPEGImages" / resolution / name, ".jpg", "sequence", "frames")
    labels = (_listed(root / "Annotations" / resolution / name, ".png", "annotation", "annotations")
              if annotations else [])
    return Sequence(name, frames, labels)


def _listed(folder: Path, suffix: str, kind: str, items: str) -> list[Path]:
    """The sorted `suffix` files of a 2017-layout sequence folder; InputError if it has none."""
    if not folder.is_dir():
        raise InputError(f"{folder}: {kind} folder missing")
    files = sorted(folder.glob(f"*{suffix}"))
    if not files:
        raise InputError(f"{folder}: no {suffix} {items}")
    return files


def _open_2016(root: Path, name: str, annotations: bool, split: str | None) -> Sequence:
    splits = [split] if split else sorted(p.stem for p in split_file(root, "x").parent.glob("*.txt"))
    for s in splits:
        pairs = _frame_pairs(root, s).get(name)
        if pairs:
            break
    else:
        raise InputError(f"{split_file(root, split or 'val').parent}: no split file lists sequence {name!r}")
    for frame, annotation in pairs:
        for path in (frame, annotation) if annotations else (frame,):
            if not path.is_file():
                raise InputError(f"{split_file(root, s)}: lists {path}, which does not exist")
    frames, labels = [f for f, _ in pairs], [a for _, a in pairs] if annotations else []
    return Sequence(name, frames, labels, binary=True)


def check_annotated(seq: Sequence) -> Sequence:
    """The sequence itself if it has an annotation PNG for every frame, else InputError."""
    if len(seq.annotations) < len(seq.frames):
        where = seq.annotations[0].parent if seq.annotations else seq.name
        raise InputError(f"{where}: {len(seq.annotations)} annotation PNGs for {len(seq.frames)} .jpg "
                         "frames; every frame must be annotated")
    return seq


def open_split(root, split: str = "val", resolution: str = "480p", annotations: bool = True):
    """All sequences of a split, in the split file's order."""
    return [open_sequence(root, n, resolution, annotations, split) for n in sequence_names(root, split)]


def db_info(root):
    """The toolkit's sequence info (Annotations/db_info.yml, or .yaml, or at the root) as a
    DataFrame indexed by sequence: one bool column per DAVIS attribute code (CS, FM, DEF, OCC,
    ...) and `set`; None when the root has none."""
    import pandas as pd
    import yaml

    root = Path(root)
    for path in (root / "Annotations" / "db_info.yml", root / "Annotations" / "db_info.yaml",
                 root / "db_info.yml", root / "db_info.yaml"):
        if path.is_file():
            break
    else:
        return None
    try:
        info = yaml.safe_load(path.read_text()) or {}
        sequences = info.get("sequences") or []
        # the toolkit lists the codes at the top; without that list, those the sequences carry
        codes = list(info.get("attributes") or dict.fromkeys(
            c for seq in sequences for c in (seq.get("attributes") or [])))
        rows = {s["name"]: {**{c: c in (s.get("attributes") or []) for c in codes},
                            "set": s.get("set")}
                for s in sequences}
    except (yaml.YAMLError, AttributeError, KeyError, TypeError) as err:
        raise InputError(f"{path}: not a DAVIS db_info file ({type(err).__name__})") from None
    table = pd.DataFrame.from_dict(rows, orient="index", columns=[*codes, "set"])
    table.attrs["source"] = str(path.relative_to(root))
    return table
