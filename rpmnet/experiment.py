"""One experiment: a profile scored on one data set with one seed, and where its files live.

Everything the notebooks and `rpmnet ablate` ask of the Table 2 grid goes through one
`Experiment`, so the roots (results, checkpoints, data), the DAVIS root and the seed are given once
instead of to every call:

    exp = Experiment("cpu", results_root="results")
    exp.run_grid()                      # train, propagate, evaluate the cells not finished yet
    table = exp.merge()                 # -> results/table2_cpu.csv
    exp.per_sequence("resnet18-deformable-l3-d1")

A cell is a `ModelConfig` or its id ("resnet18-deformable-l3-d1"), or a baseline's name. The file
layout and the fingerprints that decide whether a stored cell is current are `rpmnet.ablation`'s;
what the tables say is `rpmnet.analysis`'s (functions of DataFrames)."""
from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from pathlib import Path

from . import ablation, analysis
from .config import BASELINES, PROTOCOL_TWINS, ModelConfig, Profile, get_profile
from .errors import InputError

ROOTS = ("results_root", "checkpoints_root", "data_root")


def cell_id(cell) -> str:
    """A cell's id: a baseline's name, or a Table 2 setting (ModelConfig or id, checked)."""
    if isinstance(cell, str) and cell in BASELINES:
        return cell
    return ModelConfig.from_cell(cell).cell


@dataclass(frozen=True)
class Experiment:
    """A profile (by name or value), the DAVIS root it is scored on (None: its built-in benchmark;
    a real-video profile finds DAVIS-2016 itself), the seed, the device, and the three roots."""

    profile: Profile
    davis_root: Path | None = None
    seed: int = 0
    device: object = "auto"
    results_root: Path = Path("results")
    checkpoints_root: Path = Path("checkpoints")
    data_root: Path = Path("data")

    def __post_init__(self):
        from .data.sources import davis_root_for

        profile = get_profile(self.profile)
        if not isinstance(self.seed, int) or self.seed < 0:
            raise InputError(f"seed {self.seed!r}: must be an integer, at least 0")
        object.__setattr__(self, "profile", profile)
        object.__setattr__(self, "davis_root", davis_root_for(profile, self.davis_root))
        for name in ROOTS:
            object.__setattr__(self, name, Path(getattr(self, name)))

    def replace(self, **changes) -> "Experiment":
        return dataclasses.replace(self, **changes)

    def with_profile(self, profile) -> "Experiment":
        """The same data, seed and roots under another profile (a longer run, a protocol twin)."""
        return self.replace(profile=profile)

    @functools.cached_property
    def data_label(self) -> str:
        """What a stored cell names its data by (ablation.data_label): read once per Experiment,
        since a DAVIS root's content id lists its few thousand files."""
        return ablation.data_label(self)

    @property
    def davis_layout(self) -> str | None:
        """"2016" or "2017": the DAVIS release the val set is (data.davis.layout); None: the
        built-in benchmark."""
        from .data.davis import layout

        return None if self.davis_root is None else layout(self.davis_root)

    # ------------------------------------------------------------------------- paths
    @property
    def name(self) -> str:
        """The grid's name in paths: the profile's, "-seed<N>" added for another seed."""
        return ablation.run_name(self.profile.name, self.seed)

    @property
    def folder(self) -> Path:
        """results/table2/<name>/: one <cell>.json (+ CSVs) per finished cell."""
        return ablation.folder(self)

    @property
    def merged_path(self) -> Path:
        return ablation.merged_path(self)

    def cell_path(self, cell, kind: str = "json") -> Path:
        """A cell's stored file: json (its row), objects, frames or train (its training log)."""
        return ablation.result_path(self, cell_id(cell), kind)

    def work_dir(self, cell) -> Path:
        """The cell's checkpoints and masks/ (not committed)."""
        return ablation.work_dir(self, cell_id(cell))

    def benchmark_root(self) -> Path:
        """The DAVIS-layout root the grid is scored on (the built-in benchmark is made on first use)."""
        return ablation.benchmark_root(self)

    def training_sources(self) -> list[str]:
        """The videos the grid's cells and the notebooks' default model train on (one rule:
        rpmnet.data.sources.training_sources)."""
        from .data.sources import training_sources

        return training_sources(self.profile, self.davis_root, self.data_root)

    def command(self, cells=None) -> str:
        """The `rpmnet ablate` command that computes these cells (all: None)."""
        text = f"rpmnet ablate --profile {self.profile.name}"
        if cells is not None:
            text += f" --cells {','.join(cell_id(c) for c in cells)}"
        return text + (f" --seed {self.seed}" if self.seed else "")

    # ------------------------------------------------------------------------- the grid
    def grid(self, cells=None, backbones=None) -> list[str]:
        """The cells: the profile's grid (None), the given ones, or "finished": those already
        computed and current (what a notebook shows without training anything)."""
        if cells == "finished":
            return [c for c in ablation.grid(self.profile, None, backbones) if self.finished(c)]
        return ablation.grid(self.profile, _ids(cells), backbones)

    def plan(self, cells=None, backbones=None):
        """The grid as a table: each cell's backbone, training steps, and whether it is finished."""
        return ablation.plan(self, self.grid(cells, backbones))

    def finished(self, cell) -> dict | None:
        """The cell's stored row if it is current (same steps, data, benchmark, seed, settings)."""
        return ablation.finished(self, cell_id(cell))

    def run(self, cell) -> dict:
        """One cell's row: the stored one if current, else trained, propagated and evaluated now."""
        self.benchmark_root()  # (re)generated first: its id is part of what makes a row current
        return self.finished(cell) or ablation.run_cell(self, cell_id(cell))

    def run_grid(self, cells=None, backbones=None):
        """Every cell of the grid (or of `cells` / `backbones`) not finished yet; -> their rows."""
        return ablation.run_ablation(self, self.grid(cells, backbones))

    def masks(self, cell) -> Path:
        """The cell's propagated val masks (propagated, or trained, again if missing)."""
        return ablation.masks(self, cell_id(cell))

    def merge(self):
        """The finished, current cells -> results/table2_<name>.csv; -> that table."""
        return ablation.merge(self)

    def stored(self):
        """The merged table of the finished cells, read without writing anything; None if no
        cell of this grid has been computed (here)."""
        if not any(self.folder.glob("*.json")):
            return None
        self.benchmark_root()  # the built-in benchmark's id is part of what makes a cell current
        try:
            return ablation.merge(self, write=False)
        except InputError:
            return None

    def other_grid(self, profile) -> "Experiment":
        """The same roots and seed under another profile on that profile's own data (e.g. the
        synthetic `cpu` grid beside a real-video one)."""
        return self.replace(profile=get_profile(profile), davis_root=None)

    def log(self, cell):
        """The cell's stored training log (step, loss, zero_flow_loss, ...), or None."""
        return ablation.training_log(self, cell_id(cell))

    def logs(self, cells, *profiles) -> dict:
        """{cell: {profile name: training log}} for this profile and `profiles` (e.g. a longer run)."""
        names = (self.profile.name, *profiles)
        return {cell_id(c): {p: self.with_profile(p).log(c) for p in names} for c in cells}

    # ------------------------------------------------------------------------- other runs
    def seed_runs(self):
        """J&F of every cell that finished under more than one seed (ablation.seed_runs)."""
        return ablation.seed_runs(self)

    def retrained(self, earlier_root=None):
        """J&F of every cell trained twice, on an earlier processor and here (ablation.retrained)."""
        return ablation.retrained(self, earlier_root)

    def longer_runs(self) -> dict:
        """{"<profile>-steps<N>": its merged table} for every longer run of this grid, shortest first."""
        return {name: self.with_profile(name).merge()
                for name in ablation.longer_runs(self)}

    def protocol_twin(self):
        """(merged table, profile name) of this grid retrained under the cpu-fair protocol
        (config.PROTOCOL_TWINS), or (None, None) if it has not been run."""
        import pandas as pd

        twin = PROTOCOL_TWINS.get(self.profile.name)
        path = twin and self.with_profile(twin).merged_path
        return (pd.read_csv(path), twin) if twin and path.is_file() else (None, None)

    def protocol_comparison(self, table, baseline: str = "zero-flow"):
        """(analysis.protocol_comparison of this grid's `table` and its twin's, twin name), or
        (None, None) if the twin has not been run."""
        fair, twin = self.protocol_twin()
        if fair is None:
            return None, None

        def objects(profile, cell):
            return self.with_profile(profile).per_object(cell)

        return analysis.protocol_comparison(table, fair, (self.profile.name, twin), objects,
                                            baseline), twin

    # ------------------------------------------------------------------------- per cell
    def _stored(self, cell, kind: str) -> Path:
        """A finished cell's per-object or per-frame CSV, or an InputError saying how to make it."""
        path = self.cell_path(cell, kind)
        if not path.is_file():
            raise InputError(f"{path}: missing; run `{self.command([cell])}`")
        return path

    def per_object(self, cell):
        """Official per-object scores of a finished cell (J/F in %, one row per <seq>_<k>)."""
        from .compare import objects_from_csv

        return objects_from_csv(self._stored(cell, "objects"))

    def objects(self, cells) -> dict:
        """{cell: per_object table} (rpmnet.compare works on these)."""
        return {cell_id(c): self.per_object(c) for c in cells}

    def per_sequence(self, cell):
        """J, F and J&F (%) per val sequence of a finished cell."""
        return analysis.per_sequence(self.per_object(cell))

    def per_frame(self, cell):
        """J and F (%) of every evaluated frame of every object of a finished cell."""
        import pandas as pd

        frames = pd.read_csv(self._stored(cell, "frames"), dtype={"frame": str})
        return analysis.frames_in_percent(frames)

    def column_margins(self, table):
        """Deformable minus the best other cell of each backbone column, with intervals and the
        seed runs beside them (analysis.column_margins)."""
        cells = list(analysis.trained(table).cell)
        return analysis.column_margins(table, self.objects(cells), self.seed_runs())

    def twin_margins(self, table):
        """The deformable cell minus its standard twin per column and over the columns, with
        intervals (analysis.twin_margins)."""
        return analysis.twin_margins(table, self.objects(list(analysis.trained(table).cell)), self.seed_runs())

    def versus_baseline(self, table, baseline: str = "copy-first"):
        """Every trained cell of `table` minus a baseline, with intervals (analysis.versus_baseline)."""
        cells = [*analysis.trained(table).cell, baseline]
        return analysis.versus_baseline(table, self.objects(cells), baseline)

    def markdown(self) -> str:
        """The finished cells as the README shows them: the table with intervals
        (report.cells_markdown), the seed runs (report.seeds_markdown), the cells retrained on another
        processor (report.retrained_markdown), the time per backbone
        column (report.timing_markdown) and the claims with their intervals
        (report.claims_markdown, the standard-twin margins among them); "" if no cell ran."""
        from . import report

        table, seeds = self.stored(), self.seed_runs()
        if table is None:
            return ""
        objects = self.objects(table.cell)  # read once: every table and claim below uses them
        parts = [report.cells_markdown(table, objects)]
        if not seeds.empty:
            parts.append(report.seeds_markdown(seeds))
        pairs = self.retrained()
        if len(pairs):
            parts.append(report.retrained_markdown(pairs, analysis.processor_noise(pairs),
                                                   analysis.training_sd(seeds)))
        parts.append(report.timing_markdown(table))
        parts.append(report.claims_markdown(
            table, analysis.column_margins(table, objects, seeds),
            *(analysis.versus_baseline(table, objects, b) for b in ("copy-first", "classical-flow")),
            analysis.twin_margins(table, objects, seeds)))
        return "\n\n".join(parts)

    def attribute_scores(self, cells):
        """J&F (%) per attribute of the benchmark's sequences for each cell (analysis.attribute_scores)."""
        return analysis.attribute_scores(self.objects(cells), self.benchmark_root())


def _ids(cells):
    """Cells for ablation.grid, which checks the ids itself (naming an unknown one)."""
    return None if cells is None else [c.cell if isinstance(c, ModelConfig) else c for c in cells]
