"""Atomic file writing: outputs appear complete under their final name or not at all."""
from __future__ import annotations

import contextlib
import errno
import os
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
