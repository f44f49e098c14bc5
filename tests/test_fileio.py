import errno
import os
import shutil
import stat

import pytest

from rpmnet import checkpoint
from rpmnet.cli import main
from rpmnet.errors import InputError
from rpmnet.fileio import atomic_dir, write_text


def test_atomic_write_leaves_nothing_when_it_fails(tmp_path):
    target = tmp_path / "out.txt"
    with pytest.raises(ZeroDivisionError):
        from rpmnet.fileio import atomic_path
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            1 / 0
    assert list(tmp_path.iterdir()) == []


def test_an_impossible_output_folder_is_an_input_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(InputError, match="cannot write here"):
        write_text(blocker / "sub" / "out.txt", "y")


def test_cli_unwritable_output_exits_2(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["synth", "--out", str(blocker / "bench"), "--size", "64x96"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot write" in err[0]


def test_a_folder_is_not_a_checkpoint(tmp_path):
    with pytest.raises(InputError, match="is a folder"):
        checkpoint.load(tmp_path)


# ----------------------------------------------------------------------- atomic_dir
def _tree(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def umask_027():
    old = os.umask(0o027)
    yield 0o027
    os.umask(old)


def test_atomic_dir_replaces_the_old_folder_whole(tmp_path, umask_027):
    out = tmp_path / "out"
    out.mkdir()
    (out / "stale.txt").write_text("old")
    with atomic_dir(out) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(f".out.{os.getpid()}.") and tmp.name.endswith(".tmp")
        (tmp / "sub").mkdir()
        (tmp / "sub" / "new.txt").write_text("new")
        assert _tree(out) == {"stale.txt": b"old"}      # nothing shows before the block ends
    assert _tree(out) == {"sub/new.txt": b"new"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temporary, nothing aside
    assert stat.S_IMODE(out.stat().st_mode) == 0o777 & ~umask_027  # mkdir's mode, not mkdtemp's 0700


def test_atomic_dir_leaves_nothing_half_written_on_an_exception(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_dir(out) as tmp:
            (tmp / "half.txt").write_text("half")
            raise KeyboardInterrupt
    assert _tree(out) == {"keep.txt": b"old"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    with pytest.raises(ZeroDivisionError):  # a new folder: nothing appears at all
        with atomic_dir(tmp_path / "new" / "deeper") as tmp:
            (tmp / "half.txt").write_text("half")
            1 / 0
    assert not (tmp_path / "new" / "deeper").exists() and list((tmp_path / "new").iterdir()) == []


def test_atomic_dir_puts_the_old_folder_back_if_the_rename_fails(tmp_path, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("old")
    real = os.replace

    def fail_on_the_new_folder(src, dst):
        if str(src).endswith(".tmp"):
            raise OSError(errno.EIO, "I/O error")
        return real(src, dst)

    monkeypatch.setattr(os, "replace", fail_on_the_new_folder)
    with pytest.raises(OSError):
        with atomic_dir(out) as tmp:
            (tmp / "new.txt").write_text("new")
    assert _tree(out) == {"keep.txt": b"old"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_atomic_dir_keeps_the_old_folder_when_the_block_deletes_its_own(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "theirs.txt").write_text("finished meanwhile")
    with atomic_dir(out) as tmp:
        (tmp / "ours.txt").write_text("ours")
        shutil.rmtree(tmp)
    assert _tree(out) == {"theirs.txt": b"finished meanwhile"}


def test_atomic_dir_in_an_impossible_place_is_an_input_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(InputError, match=r"file/out: cannot write the results here"):
        with atomic_dir(blocker / "out", "the results"):
            pass
    assert _tree(tmp_path) == {"file": b"x"}
