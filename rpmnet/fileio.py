"""Atomic file writing: outputs appear complete under their final name or not at all.

`atomic_path` does it for one file, `atomic_dir` for a whole folder (a benchmark, a sequence's
masks): written under a temporary name beside the final one, then renamed into place.
"""
from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shutil
import tempfile
from pathlib import Path

from .errors import InputError

_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds.

    The temporary name keeps the suffix (so PIL/pandas pick the right format) and lives in the
    same folder (so the final rename is atomic on POSIX).
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    except OSError as err:  # a read-only or impossible output folder is the user's to fix
        raise InputError(f"{path}: cannot write here ({err.strerror or err})") from None
    os.close(fd)
    # mkstemp creates 0600; give the final file the mode an ordinary open() would have.
    os.chmod(tmp, 0o666 & ~_UMASK)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException as err:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(err, OSError) and err.errno == errno.ENOSPC:
            # PIL, pandas and torch drop the file name; the user needs it (and nothing is left)
            raise OSError(errno.ENOSPC, "no space left on device", str(path)) from None
        raise


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, what: str = "this folder"):
    """Yield a new, empty folder beside `path`; when the block succeeds it replaces `path` whole.

    If the block raises, the folder is deleted and `path` is left as it was. The block may delete
    the folder itself to keep `path` as it is (e.g. another process finished it meanwhile). The
    name is .<name>.<pid>.<hex>.tmp, so a cleaner can tell a killed writer's folder (its process
    is gone) from one still at work. mkdir, not mkdtemp (0700): the folder gets 0777 minus the
    umask, like any folder the user makes, so others can read the results.
    """
    path = Path(path)
    tmp = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.mkdir()
    except OSError as err:  # a read-only or impossible output folder is the user's to fix
        raise InputError(f"{path}: cannot write {what} here ({err.strerror or err})") from None
    try:
        yield tmp
        if tmp.exists():
            _swap_in(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _swap_in(new: Path, old: Path) -> None:
    """Put folder `new` at `old`: move the old one aside (.<name>.old-<pid>.<hex>), rename,
    then delete the old one. If the rename fails, the old one goes back."""
    aside = None
    if old.exists() or old.is_symlink():
        aside = old.with_name(f".{old.name}.old-{os.getpid()}.{secrets.token_hex(4)}")
        os.replace(old, aside)
    try:
        os.replace(new, old)
    except BaseException:
        if aside is not None:
            os.replace(aside, old)
        raise
    if aside is not None:
        shutil.rmtree(aside)


def write_text(path: str | os.PathLike, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def write_csv(path: str | os.PathLike, frame, **kwargs) -> Path:
    """pandas DataFrame -> CSV, atomically. kwargs go to DataFrame.to_csv."""
    kwargs.setdefault("index", False)
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, **kwargs)
    return Path(path)


def torch_save(path: str | os.PathLike, obj) -> Path:
    import torch

    with atomic_path(path) as tmp:
        try:
            torch.save(obj, tmp)
        except RuntimeError as err:  # torch's "[enforce fail at inline_container.cc...] write failed"
            if "write" not in str(err):
                raise
            full = _free_bytes(tmp) < 64 << 20
            raise OSError(errno.ENOSPC if full else errno.EIO,
                          "no space left on device" if full else "write failed", str(path)) from None
    return Path(path)


def _free_bytes(path) -> int:
    try:
        return shutil.disk_usage(Path(path).parent).free
    except OSError:
        return 0
