"""Run every notebook with papermill: what `make reproduce` calls.

    python -m rpmnet.notebooks --profile quick [--davis-root D] [--device auto] [--only 01,02]

Each notebook runs with its folder as the working directory and gets the parameters profile,
davis_root, device, seed, interactive=False, results_dir, data_dir and checkpoints_dir. The
executed copy is written under a temporary name and renamed over the notebook only when every
cell succeeded, so a failure never leaves a half-executed notebook behind.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import time
from pathlib import Path

from .config import PROFILE_HELP, REPO, get_profile, resolve_device
from .errors import InputError
from .fileio import atomic_path, write_csv

NOTEBOOKS = REPO / "notebooks"


class NotebookError(RuntimeError):
    """A notebook cell raised: the message names the notebook, the cell and the error."""


def notebook_paths(names=None, folder=None) -> list[Path]:
    """notebooks/*.ipynb in order; `names` picks by prefix ("01") or stem ("01_architecture")."""
    folder = Path(folder or NOTEBOOKS)
    paths = sorted(p for p in folder.glob("*.ipynb") if not p.name.startswith("."))
    if not paths:
        raise InputError(f"no notebooks in {folder}")
    if names is None:
        return paths
    chosen = []
    for name in names:
        hits = [p for p in paths if p.stem == name or p.stem.split("_")[0] == name]
        if not hits:
            raise InputError(f"no notebook {name!r}; available: "
                             f"{', '.join(p.stem for p in paths)}")
        chosen += [p for p in hits if p not in chosen]
    return sorted(chosen)


def _as_parameter(path, cwd: Path) -> str:
    """Paths inside the repository are passed relative to the kernel's folder, so committed
    outputs show "../results", not this machine's absolute path."""
    path = Path(path).resolve()
    return os.path.relpath(path, cwd) if path.is_relative_to(REPO) else str(path)


def _failure(name: str, err) -> Exception:
    """papermill's multi-line traceback -> one line; a user mistake stays an InputError."""
    evalue = (str(err.evalue).strip().splitlines() or [""])[0]
    message = f"notebook {name} failed in cell [{err.exec_count}]: {err.ename}: {evalue}"
    return InputError(message) if err.ename == "InputError" else NotebookError(message)


@contextlib.contextmanager
def _this_checkout_first():
    """Kernels import rpmnet from this checkout, never from an older install elsewhere."""
    before = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), before]))
    try:
        yield
    finally:
        if before is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = before


def run_notebooks(profile: str = "quick", davis_root=None, device: str = "auto", seed: int = 0,
                  names=None, output_dir=None, results_dir=None, data_dir=None,
                  checkpoints_dir=None, kernel_name: str = "python3", progress: bool = True,
                  notebooks_dir=None, cells=None) -> list[Path]:
    """Execute the notebooks in order; returns the executed notebooks' paths.

    output_dir=None overwrites the notebooks in place. Directories default to <repo>/results,
    <repo>/data and <repo>/checkpoints; notebooks_dir to <repo>/notebooks (also the kernels'
    working directory). cells: the grid notebooks' (03, 05) `cells` parameter, e.g. "finished"
    (show the computed cells, train none). Writes <results_dir>/reproduce_<profile>_timings.csv.
    """
    import pandas as pd
    import papermill
    from papermill.exceptions import PapermillExecutionError

    from .data.sources import davis_root_for

    davis_root = davis_root_for(get_profile(profile), davis_root)  # fails here, before any notebook
    resolve_device(device)
    folder = Path(notebooks_dir or NOTEBOOKS).resolve()
    paths = notebook_paths(names, folder)
    results_dir = Path(results_dir or REPO / "results")
    parameters = dict(
        profile=profile, device=device, seed=int(seed), interactive=False,
        davis_root=str(Path(davis_root).resolve()) if davis_root is not None else None,
        results_dir=_as_parameter(results_dir, folder),
        data_dir=_as_parameter(data_dir or REPO / "data", folder),
        checkpoints_dir=_as_parameter(checkpoints_dir or REPO / "checkpoints", folder))
    if cells is not None:
        parameters["cells"] = cells
    out_folder = Path(output_dir) if output_dir is not None else folder
    executed, timings = [], []
    for path in paths:
        target = out_folder / path.name
        print(f"[{path.stem}] running with profile={profile} ...", flush=True)
        start = time.perf_counter()
        try:
            with _this_checkout_first(), atomic_path(target) as tmp:
                papermill.execute_notebook(str(path), str(tmp), parameters=parameters,
                                           kernel_name=kernel_name, language="python",
                                           progress_bar=progress,
                                           cwd=str(folder))
        except PapermillExecutionError as err:
            raise _failure(path.stem, err) from None
        minutes = (time.perf_counter() - start) / 60
        print(f"[{path.stem}] done in {minutes:.1f} min -> {target}", flush=True)
        timings.append(dict(notebook=path.stem, minutes=round(minutes, 2)))
        executed.append(target)
    total = sum(t["minutes"] for t in timings)
    timings.append(dict(notebook="total", minutes=round(total, 2)))
    write_csv(results_dir / f"reproduce_{profile}_timings.csv", pd.DataFrame(timings))
    print(f"all {len(executed)} notebooks in {total:.1f} min (profile {profile})", flush=True)
    return executed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rpmnet.notebooks",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="quick", help=PROFILE_HELP)
    parser.add_argument("--davis-root", default=None, help="a DAVIS-2016 or DAVIS-2017 root (default: the profile's data)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", default=None, help="comma-separated prefixes, e.g. 01,02")
    parser.add_argument("--output-dir", default=None, help="write executed copies here "
                        "instead of overwriting notebooks/")
    parser.add_argument("--results-dir", default=None)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--checkpoints-dir", default=None)
    parser.add_argument("--cells", default=None, help='the grid notebooks\' cells: "finished" '
                        "shows the computed ones and trains none (default: the profile's grid)")
    args = parser.parse_args(argv)
    # A kill (SIGTERM) unwinds like Ctrl-C, so the temporary notebook is removed, not left behind.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        run_notebooks(args.profile, args.davis_root, args.device, args.seed,
                      names=args.only.split(",") if args.only else None,
                      output_dir=args.output_dir, results_dir=args.results_dir,
                      data_dir=args.data_dir, checkpoints_dir=args.checkpoints_dir, cells=args.cells)
    except InputError as err:
        print(f"rpmnet.notebooks: error: {err}", file=sys.stderr)
        return 2
    except NotebookError as err:
        print(f"rpmnet.notebooks: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
