"""Guards at the doors of the commands: never touch what this project did not make.

An output folder is written only if it is new, empty, or carries this project's own marker for
the same kind of output; an output never lies inside (or around) the DAVIS root it reads; a
DAVIS sequence whose frames and annotations disagree is refused before any work starts. Each
refusal is an InputError naming the folder or file and what it holds.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from .errors import InputError


def holdings(folder: Path, limit: int = 4) -> str:
    """'JPEGImages, Annotations, NOTE.txt and 2 more': what a user sees in a folder."""
    names = sorted(p.name for p in folder.iterdir())
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def output_folder(out, what: str) -> list[str]:
    """Check that `out` can be a folder of `what`; -> the names it already holds ([] if new).

    An existing file, or a folder that cannot be created because its nearest existing parent is
    not writable, is an InputError (today's alternatives: FileExistsError, PermissionError).
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is a file, not a folder for {what}")
    if out.is_dir():
        if not os.access(out, os.W_OK | os.X_OK):
            raise InputError(f"{out}: folder is not writable ({what})")
        return sorted(p.name for p in out.iterdir())
    parent = out.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise InputError(f"{out}: cannot write {what} here ({parent} is a file)")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"{out}: cannot write {what} here ({parent} is not writable)")
    return []


def outside_root(out, root, flag: str = "--out") -> None:
    """An output inside the DAVIS root, equal to it or containing it would mix with (or replace)
    the frames and annotations it is computed from."""
    out_r, root_r = Path(out).resolve(), Path(root).resolve()
    if out_r == root_r or root_r in out_r.parents:
        raise InputError(f"{out}: {flag} lies inside the DAVIS root {root}; writing there would "
                         f"mix with (or replace) its frames and annotations; choose a folder outside it")
    if out_r in root_r.parents:
        raise InputError(f"{out}: {flag} contains the DAVIS root {root}; choose a folder outside it")


def clean_leftovers(folder, patterns) -> list[Path]:
    """Delete what a killed run of the same command left in `folder` (hidden temporary files
    and folders matching `patterns`, names this project gives its temporaries); -> them."""
    folder, gone = Path(folder), []
    if not folder.is_dir():
        return gone
    for pattern in patterns:
        for path in folder.glob(pattern):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            gone.append(path)
    return gone


def sequence_pairs(seq, every_frame: bool = True) -> None:
    """Frames (JPEGImages) and annotations (Annotations) of one sequence must agree.

    every_frame: evaluation needs one annotation per frame, with the same names; propagation
    also accepts the first frame's annotation alone (DAVIS test-dev style). Names are compared,
    not only counts: an annotation of a frame that is not there would be scored against the
    wrong frame. Frame sizes are read from the headers, so a frame of another size mid-sequence
    is named before any work.
    """
    from PIL import Image

    frames = [p.stem for p in seq.frames]
    labels = [p.stem for p in seq.annotations]
    where = seq.annotations[0].parent if seq.annotations else seq.name
    first_only = not every_frame and len(labels) == 1 and labels[0] == frames[0]
    if labels != frames and not first_only:
        odd = sorted(set(labels) ^ set(frames))
        detail = (f"; e.g. {odd[0]} is in only one of them" if odd else "")
        need = ("every frame must be annotated" if every_frame
                else "need the first frame's annotation alone, or every frame annotated")
        raise InputError(f"sequence {seq.name}: {len(seq.frames)} frames in JPEGImages but "
                         f"{len(seq.annotations)} annotations in {where}; {need}, under the same "
                         f"names{detail}")
    size = None
    for path in [*seq.frames, *seq.annotations]:
        try:
            with Image.open(path) as im:
                this = im.size
        except (OSError, ValueError) as err:
            raise InputError(f"{path}: cannot read image ({err})") from None
        size = size or this
        if this != size:
            raise InputError(f"{path}: size {this[0]}x{this[1]}, but frame {seq.frames[0].name} of "
                             f"sequence {seq.name} is {size[0]}x{size[1]}")

