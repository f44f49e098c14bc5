import pytest

from rpmnet import checkpoint
from rpmnet.cli import main
from rpmnet.errors import InputError
from rpmnet.fileio import write_text


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
