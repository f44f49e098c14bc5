"""The notebooks: every one runs under papermill (smoke profile), and the committed ones are
executed, error-free, and show figures that exist."""
import re

import nbformat
import pytest

from rpmnet.errors import InputError
from rpmnet.notebooks import NOTEBOOKS, REPO, NotebookError, main, notebook_paths, run_notebooks

NAMES = [p.stem for p in notebook_paths()]
# A path under results/ named in a markdown cell or an output: "../results/figures/01_x.png".
RESULT_PATH = re.compile(r"(?:\.\./)?(results/[\w./-]+\.(?:png|csv|jpg|svg))")


def code_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


def output_text(cell) -> str:
    parts = []
    for out in cell.get("outputs", []):
        parts.append(out.get("text", ""))
        parts += [v for k, v in out.get("data", {}).items() if k.startswith("text/")]
    return "\n".join(p if isinstance(p, str) else "".join(p) for p in parts)


def referenced_results(nb) -> set:
    text = "\n".join(c.source if c.cell_type == "markdown" else output_text(c) for c in nb.cells)
    return set(RESULT_PATH.findall(text))


def errors(nb) -> list:
    return [f"{o.ename}: {o.evalue}" for c in code_cells(nb) for o in c.outputs
            if o.output_type == "error"]


# ---------------------------------------------------------------- (a) all run under papermill
@pytest.fixture(scope="module")
def smoke_dirs(tmp_path_factory):
    """One data/checkpoint/results tree for the module: later notebooks reuse earlier outputs
    (the benchmark, notebook 02's checkpoint) as they do in `make reproduce`."""
    root = tmp_path_factory.mktemp("smoke")
    return {name: root / name for name in ("executed", "results", "data", "checkpoints")}


@pytest.mark.notebooks
@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs_on_smoke(name, smoke_dirs):
    d = smoke_dirs
    (executed,) = run_notebooks("smoke", names=[name], output_dir=d["executed"],
                                results_dir=d["results"], data_dir=d["data"],
                                checkpoints_dir=d["checkpoints"], progress=False)
    nb = nbformat.read(executed, as_version=4)
    assert not errors(nb)
    prefix = name.split("_")[0]
    figures = sorted((d["results"] / "figures").glob(f"{prefix}_*.png"))
    assert figures, f"{name} saved no figure under results_dir/figures/{prefix}_*.png"
    shown = sum("image/png" in o.get("data", {}) for c in code_cells(nb) for o in c.outputs)
    assert shown >= len(figures), f"{name}: every saved figure must also be shown inline"


# ---------------------------------------------------------------- (b) the committed notebooks
@pytest.mark.parametrize("name", NAMES)
def test_committed_notebook_is_executed(name):
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    counts = [c.execution_count for c in code_cells(nb)]
    assert counts == list(range(1, len(counts) + 1)), \
        f"{name}: execution counts {counts}; run `python -m rpmnet.notebooks` to execute it"
    assert not errors(nb)
    first = code_cells(nb)[0]
    assert "parameters" in first.metadata.get("tags", []), f"{name}: first code cell needs the parameters tag"


@pytest.mark.parametrize("name", NAMES)
def test_committed_notebook_figures_exist(name):
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    missing = sorted(p for p in referenced_results(nb) if not (REPO / p).is_file())
    assert not missing, f"{name} refers to missing files: {missing}"


# ---------------------------------------------------------------- the runner
def write_notebook(folder, name, code):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    params = nbformat.v4.new_code_cell('profile = "cpu"\nseed = 0')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(code)]
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, folder / f"{name}.ipynb")


def test_failing_cell_is_one_line_naming_the_notebook(tmp_path):
    src = tmp_path / "notebooks"
    write_notebook(src, "01_fine", "print(profile)")
    write_notebook(src, "02_broken", 'raise RuntimeError("boom\\nsecond line")')
    out = tmp_path / "out"
    with pytest.raises(NotebookError) as info:
        run_notebooks("smoke", output_dir=out, results_dir=tmp_path / "results",
                      progress=False, notebooks_dir=src)
    assert str(info.value) == "notebook 02_broken failed in cell [3]: RuntimeError: boom"
    assert [p.name for p in out.iterdir()] == ["01_fine.ipynb"]   # nothing half-written
    fine = nbformat.read(out / "01_fine.ipynb", as_version=4)
    assert "smoke" in output_text(code_cells(fine)[-1])            # the parameter arrived


def test_input_error_in_a_notebook_stays_an_input_error(tmp_path):
    src = tmp_path / "notebooks"
    write_notebook(src, "01_setup", "from rpmnet.config import get_profile\nget_profile('nope')")
    with pytest.raises(InputError, match="notebook 01_setup failed in cell .* unknown profile"):
        run_notebooks("smoke", output_dir=tmp_path / "out", results_dir=tmp_path / "results",
                      progress=False, notebooks_dir=src)


@pytest.mark.parametrize("argv, message", [
    (["--profile", "huge"], "unknown profile 'huge'"),
    (["--only", "99"], "no notebook '99'"),
    (["--device", "tpu"], "unknown device"),
    (["--davis-root", "/no/such/davis"], "/no/such/davis: DAVIS root folder does not exist"),
])
def test_cli_bad_input_exits_2(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
