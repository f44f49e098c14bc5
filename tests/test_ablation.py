"""The Table 2 grid: resumable and idempotent runs, the merged CSV, and the analyses."""
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rpmnet import ablation, analysis, config
from rpmnet.cli import main
from rpmnet.config import BASELINES, get_profile, table2
from rpmnet.data.synthetic import ensure_benchmark
from rpmnet.errors import InputError
from rpmnet.experiment import Experiment

REPO = Path(__file__).resolve().parents[1]
CELLS = ["resnet18-deformable-l3-d1", "resnet18-standard-l1-d1"]


def _ablate(tmp_path, *args):
    roots = ["--results-root", str(tmp_path / "results"), "--checkpoints-root",
             str(tmp_path / "checkpoints"), "--data-root", str(tmp_path / "data")]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.Popen([sys.executable, "-m", "rpmnet", "ablate", "--profile", "smoke",
                             "--device", "cpu", *roots, *args], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_killed_grid_resumes_only_the_missing_cells_and_merges(tmp_path):
    ensure_benchmark("smoke", root=tmp_path / "data")  # the tiny built-in benchmark
    exp = Experiment("smoke", device="cpu", results_root=tmp_path / "results",
                     checkpoints_root=tmp_path / "checkpoints", data_root=tmp_path / "data")
    first, second = (exp.cell_path(c) for c in CELLS)

    run = _ablate(tmp_path, "--cells", ",".join(CELLS))
    deadline = time.monotonic() + 240
    while not first.is_file() and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    run.send_signal(signal.SIGKILL)
    run.communicate()
    assert first.is_file(), "the first cell never finished"
    assert not second.is_file(), "the run finished before it could be killed"
    kept = (first.read_bytes(), first.stat().st_mtime_ns)

    rerun = _ablate(tmp_path, "--cells", ",".join(CELLS))
    out, err = rerun.communicate(timeout=240)
    assert rerun.returncode == 0, err
    assert f"{CELLS[0]}: skipped" in err and f"{CELLS[1]}: J&F" in err
    assert (first.read_bytes(), first.stat().st_mtime_ns) == kept
    row = json.loads(second.read_text())
    assert row["cell"] == CELLS[1] and row["train_steps"] == 3 and 0 <= row["J&F-Mean"] <= 100
    for kind in ("objects", "frames", "train"):
        assert exp.cell_path(CELLS[1], kind).is_file()

    table = pd.read_csv(tmp_path / "results" / "table2_smoke.csv")
    assert list(table.columns) == list(ablation.COLUMNS)
    assert list(table.cell) == CELLS
    assert {"J-Mean", "F-Mean", "J&F-Mean", "paper_J", "paper_F", "train_seconds", "parameters",
            "git_commit", "rpmnet_version", "data", "benchmark", "device"} <= set(table.columns)
    assert table.parameters.gt(1e6).all() and table.data.eq("synthetic-smoke").all()
    # the processor is recorded: a retraining is bit for bit only on the same one
    assert table.processor.eq(config.processor("cpu")).all() and table.processor.str.len().gt(0).all()
    assert table.paper_J.tolist() == [32.9, 27.1]
    assert np.allclose(table["J&F-Mean"], (table["J-Mean"] + table["F-Mean"]) / 2, atol=0.01)
    assert table.loss_ratio.gt(0).all()
    assert np.allclose(table.loss_ratio, table.train_loss / table.zero_flow_loss, rtol=1e-4)

    # Another seed is another experiment beside this one: seed 0's results and work stay.
    seed0, seed1 = second.read_bytes(), exp.replace(seed=1)
    rows = seed1.run_grid(cells=[CELLS[1]])
    other = seed1.cell_path(CELLS[1])
    assert other.parent.name == "smoke-seed1" and other != second
    assert rows.seed.tolist() == [1] and json.loads(other.read_text())["seed"] == 1
    assert second.read_bytes() == seed0
    for seed in (0, 1):
        work = exp.replace(seed=seed).work_dir(CELLS[1])
        assert json.loads((work / "experiment.json").read_text())["seed"] == seed
        # A finished cell keeps its weights but not its resume state (3x their size on disk).
        assert (work / "final.pt").is_file() and not (work / "last.pt").exists()
    # Masks lost later are propagated again from final.pt, without training again.
    work = seed1.work_dir(CELLS[1])
    trained = (work / "final.pt").stat().st_mtime_ns
    shutil.rmtree(next(p for p in (work / "masks").iterdir() if p.is_dir()))
    assert seed1.masks(CELLS[1]) == work / "masks"
    assert (work / "final.pt").stat().st_mtime_ns == trained and not (work / "last.pt").exists()
    merged = seed1.merge()
    assert merged.cell.tolist() == [CELLS[1]]
    assert (tmp_path / "results" / "table2_smoke-seed1.csv").is_file()
    spread = exp.seed_runs()
    assert spread.index.tolist() == [CELLS[1]]  # the only cell that ran under two seeds
    assert spread.loc[CELLS[1], "seed 1"] == rows["J&F-Mean"][0]
    both = [spread.loc[CELLS[1], "seed 0"], rows["J&F-Mean"][0]]
    assert spread.loc[CELLS[1], "range"] == abs(both[0] - both[1])
    assert spread.loc[CELLS[1], "mean"] == pytest.approx(sum(both) / 2)


def test_baseline_cell_is_written_once_and_reused(tmp_path, capsys):
    experiment = Experiment("smoke", device="cpu", results_root=tmp_path / "r",
                            checkpoints_root=tmp_path / "c", data_root=tmp_path / "d")
    rows = experiment.run_grid(cells=["copy-first"])
    path = experiment.cell_path("copy-first")
    stamp = path.stat().st_mtime_ns
    again = experiment.run_grid(cells=["copy-first"])
    assert path.stat().st_mtime_ns == stamp and "copy-first: skipped" in capsys.readouterr().err
    assert again.equals(rows) and rows["train_steps"].tolist() == [0]
    # A different seed, or a benchmark from another generator version, is another experiment.
    assert experiment.finished("copy-first") is not None
    assert experiment.replace(seed=1).finished("copy-first") is None
    manifest = tmp_path / "d" / "synthetic-smoke" / "synthetic.json"
    original = manifest.read_text()
    manifest.write_text(original.replace('"format": ', '"format": 9'))
    assert experiment.finished("copy-first") is None
    manifest.write_text(original)
    frames = experiment.per_frame("copy-first")
    assert frames.frame.str.len().eq(5).all() and frames.J.between(0, 100).all()
    attributes, source = experiment.attribute_scores(["copy-first"])
    assert "attributes.csv" in source and "all" in attributes.index
    assert attributes.loc["all", "copy-first"] == pytest.approx(rows["J&F-Mean"][0], abs=0.01)


def test_unknown_cell_or_backbone_exits_2(tmp_path, capsys):
    assert main(["ablate", "--profile", "smoke", "--cells", "resnet18-deformable-l4-d1",
                 "--results-root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "resnet18-deformable-l4-d1" in err and len(err.strip().splitlines()) == 1
    assert main(["ablate", "--profile", "smoke", "--backbones", "vgg16", "--list"]) == 2
    assert main(["ablate", "--profile", "smoke", "--merge", "--results-root", str(tmp_path)]) == 2


def test_grid_follows_the_profile():
    resnet18 = list(table2().cell[table2().backbone == "resnet18"])
    assert ablation.grid("quick") == [*BASELINES, *resnet18]
    # smoke keeps one cell per kind of matching module, in the paper's order
    assert ablation.grid("smoke") == [*BASELINES, "resnet18-deformable-l3-d1",
                                      "resnet18-standard-l3-d1", "resnet18-dilated-l3-d3"]
    assert len(ablation.grid("cpu")) == len(BASELINES) + 28
    with pytest.raises(InputError, match="unknown cell 'nope'"):
        ablation.grid("smoke", cells=["nope"])


def _hand_made(ours: dict):
    """A merged table whose J and F are given per cell (J&F their mean), plus a baseline."""
    paper = table2().set_index("cell")
    rows = [dict(cell="copy-first", **{"J-Mean": 10.0, "F-Mean": 20.0, "J&F-Mean": 15.0})]
    for cell, (j, f) in ours.items():
        rows.append(dict(cell=cell, **paper.loc[cell, ["backbone", "matching"]].to_dict(),
                         **{"J-Mean": j, "F-Mean": f, "J&F-Mean": (j + f) / 2}))
    return pd.DataFrame(rows).reindex(columns=ablation.COLUMNS)


def test_side_by_side_in_the_papers_layout():
    table = _hand_made({"resnet18-deformable-l3-d1": (40.0, 45.5), "resnet50-dilated-l3-d9": (20.0, 21.0)})
    both = analysis.side_by_side(table, all_backbones=True)
    assert both.shape == (7, 12)
    assert list(analysis.side_by_side(table).columns.levels[0]) == ["FCN-ResNet18", "FCN-ResNet50"]
    deformable, dilated9 = both.index[0], both.index[6]
    assert both.loc[deformable, ("FCN-ResNet18", "paper")] == "32.9 / 36.2"
    assert both.loc[deformable, ("FCN-ResNet18", "ours")] == "40.0 / 45.5"
    assert both.loc[deformable, ("FCN-ResNet18", "difference")] == "+7.1 / +9.3"
    assert both.loc[dilated9, ("FCN-ResNet50", "difference")] == "-9.5 / -10.5"
    assert both.loc[deformable, ("FCN-ResNet101", "ours")] == "–"
    assert dilated9 == ("Dilated", "3 / 9", 3)
    values = analysis.grid_values(table, "ours", "J")
    assert values.iloc[0, 0] == 40.0 and values.isna().sum().sum() == 26


def test_rank_agreement_and_deformable_wins():
    paper = table2().set_index("cell")
    r18 = paper[paper.backbone == "resnet18"]
    same = _hand_made({c: (j + 5, f + 5) for c, j, f in zip(r18.index, r18.paper_J, r18.paper_F)})
    agreement = analysis.rank_agreement(same)
    assert agreement["n"] == 7 and agreement["rho"] == pytest.approx(1.0)
    reverse = _hand_made({c: (100 - j, 100 - f) for c, j, f in zip(r18.index, r18.paper_J, r18.paper_F)})
    assert analysis.rank_agreement(reverse)["rho"] == pytest.approx(-1.0)
    assert np.isnan(analysis.rank_agreement(_hand_made({r18.index[0]: (1.0, 2.0)}))["rho"])

    wins = analysis.deformable_wins(reverse).iloc[0]
    assert wins.paper_deformable_wins and not wins.ours_deformable_wins
    assert wins.paper_margin == pytest.approx(34.55 - 32.95)
    assert wins.ours_best == "resnet18-standard-l1-d1"
    assert analysis.best_cell(reverse) == "resnet18-standard-l1-d1"
    assert analysis.representatives(same) == {
        "deformable": "resnet18-deformable-l3-d1", "best standard": "resnet18-standard-l3-d1",
        "best dilated": "resnet18-dilated-l3-d3", "copy-first": "copy-first"}


def test_davis_attributes_from_db_info(tmp_path):
    (tmp_path / "db_info.yaml").write_text(
        "sequences:\n- {name: bmx-trees, attributes: [CS, FM, OCC, LR]}\n- {name: dog, attributes: [DEF]}\n")
    attributes, source = analysis.sequence_attributes(tmp_path)
    assert "db_info.yaml" in source
    assert list(attributes.columns) == [*analysis.ATTRIBUTES, "LR"]   # the claim's four first
    assert attributes.loc["bmx-trees"].tolist() == [True, True, False, True, True]
    assert attributes.loc["dog"].tolist() == [False, False, True, False, False]
    assert analysis.sequence_attributes(tmp_path / "nothing")[0] is None


def test_figures_and_widget_on_a_hand_made_table():
    from rpmnet.viz import results

    table = _hand_made({"resnet18-deformable-l3-d1": (40.0, 45.5), "resnet18-standard-l1-d1": (30.0, 31.0),
                        "resnet18-dilated-l3-d3": (35.0, 36.0)})
    heat = results.table2_heatmaps(table, "J")
    paper, ours, difference = ([t.get_text() for t in ax.texts] for ax in heat.axes[:3])
    assert paper[0] == "32.9" and ours[0] == "40.0" and difference[0] == "+7.1"
    assert ours.count("–") == 25
    scatter = results.rank_scatter(table)
    assert "rho = 1.00 over 3 cells" in scatter.axes[0].get_title()
    bars = results.cells_vs_baselines(table)
    assert [t.get_text() for t in bars.axes[0].get_legend().get_texts()] == ["copy-first 15.0"]
    assert results.explore_table2(table, interactive=False) is None
    widget = results.explore_table2(table, interactive=True)
    widget.children[0].value = "F"  # redraws without error


def test_merge_keeps_training_logs_and_their_final_losses(tmp_path):
    """A cell finished by older code has no <cell>.train.csv: merge copies its log from
    checkpoints/ and reports the loss of the last 10% of steps against the zero-flow loss."""
    cell, results, checkpoints = CELLS[0], tmp_path / "r", tmp_path / "c"
    ensure_benchmark("smoke", root=tmp_path / "d")
    exp = Experiment("smoke", results_root=results, checkpoints_root=checkpoints, data_root=tmp_path / "d")
    row = dict(cell=cell, **ablation._wanted(exp, cell), **{k: 1.0 for k in ablation.SCORES})
    path = exp.cell_path(cell)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(row))
    log = exp.work_dir(cell) / "log.csv"
    log.parent.mkdir(parents=True)
    steps = np.arange(20)
    pd.DataFrame(dict(step=steps, loss=np.where(steps >= 18, 0.5, 9.0), zero_flow_loss=2.0, lr=1e-3,
                      seconds=steps)).to_csv(log, index=False)
    table = exp.merge()
    assert exp.cell_path(cell, "train").read_text() == log.read_text()
    assert table.loc[0, ["train_loss", "zero_flow_loss", "loss_ratio"]].tolist() == [0.5, 2.0, 0.25]
    log.unlink()  # the kept copy is enough from now on (a fresh clone has no checkpoints)
    again = exp.merge()
    assert again.loss_ratio.tolist() == [0.25]


def test_object_motion_in_feature_pixels(tmp_path):
    """One object moving 8 px a frame (2 pixels of the H/4 grid), one still: 4 moves each."""
    from test_propagate import moving_squares, write_davis

    root = write_davis(tmp_path, {"squares": moving_squares(frames=5, step=8)})
    motion = analysis.object_motion(root, splits=("val",))
    assert motion["moves"] == 8 and motion["mean"] == pytest.approx(1.0)
    assert motion["p90"] == pytest.approx(2.0) and motion["below_3"] == 1.0
    with pytest.raises(InputError, match="no object appears"):
        analysis.object_motion(write_davis(tmp_path / "one", {"s": moving_squares(frames=1)}), ("val",))


def test_by_module_averages_each_row_over_the_columns_that_ran():
    table = _hand_made({"resnet18-deformable-l3-d1": (10.0, 12.0), "resnet50-deformable-l3-d1": (20.0, 22.0),
                        "resnet18-dilated-l3-d9": (30.0, 30.0)})
    modules = analysis.by_module(table)
    deformable, dilated9 = ("Deformable", "3 / 1", 3), ("Dilated", "3 / 9", 3)
    assert modules.loc[deformable, "ours"] == pytest.approx(16.0)   # (11 + 21) / 2
    assert modules.loc[deformable, "paper"] == pytest.approx((34.55 + 36.6) / 2)
    assert modules.loc[deformable, "columns"] == 2 and modules.loc[dilated9, "columns"] == 1
    assert modules.loc[dilated9, "ours rank"] == 1 and modules.loc[deformable, "paper rank"] == 1
    assert list(modules.index) == [deformable, dilated9]  # in the paper's rank order


def test_rank_by_column_within_each_backbone_and_over_module_means():
    # ResNet-18 in the paper's order (deformable 34.55 > standard-3 32.95 > dilated-9 29.8), ResNet-50 reversed
    table = _hand_made({"resnet18-deformable-l3-d1": (30.0, 30.0), "resnet18-standard-l3-d1": (20.0, 20.0),
                        "resnet18-dilated-l3-d9": (10.0, 10.0), "resnet50-deformable-l3-d1": (10.0, 10.0),
                        "resnet50-standard-l3-d1": (20.0, 20.0), "resnet50-dilated-l3-d9": (30.0, 30.0)})
    ranks = analysis.rank_by_column(table)
    assert ranks.loc["FCN-ResNet18", "rho"] == pytest.approx(1.0)
    assert ranks.loc["FCN-ResNet50", "rho"] == pytest.approx(-1.0)
    assert ranks.loc["module means", "cells"] == 3 and np.isnan(ranks.loc["module means", "rho"])  # all tie at 20


def test_committed_cpu_table_is_the_merge_of_its_committed_cells():
    """results/table2_cpu.csv holds exactly the committed per-cell results (all 28 settings and
    both baselines), with loss ratios recomputed from the committed training logs."""
    table = pd.read_csv(REPO / "results" / "table2_cpu.csv")
    assert list(table.columns) == list(ablation.COLUMNS)
    assert list(table.cell) == [*ablation.BASELINES, *table2().cell]
    exp = Experiment("cpu", results_root=REPO / "results")
    for _, row in table.iterrows():
        stored = json.loads(exp.cell_path(row.cell).read_text())
        # Still current: a change to the profiles or assumptions would make every rerun redo it.
        assert stored["settings"] == ablation.settings_id(get_profile("cpu")), row.cell
        for key in ("J-Mean", "F-Mean", "J&F-Mean", "J-Decay", "train_steps", "parameters", "seed"):
            assert row[key] == pytest.approx(stored[key]), (row.cell, key)
        losses = ablation.training_losses(exp, row.cell)
        if row.cell in ablation.BASELINES:
            assert np.isnan(row.loss_ratio) and np.isnan(losses["loss_ratio"])
        else:
            assert row.loss_ratio == pytest.approx(losses["loss_ratio"], abs=1e-6), row.cell


def test_missing_cell_files_say_how_to_make_them(tmp_path):
    with pytest.raises(InputError, match=r"missing; run `rpmnet ablate --profile cpu --cells "
                                         r"resnet18-deformable-l3-d1 --seed 2`"):
        Experiment("cpu", results_root=tmp_path, seed=2).per_frame("resnet18-deformable-l3-d1")
    with pytest.raises(InputError, match=r"zero-flow\.objects\.csv: missing; run .*--cells zero-flow`$"):
        Experiment("smoke", results_root=tmp_path).per_sequence("zero-flow")


def test_deformable_lead_and_cells_near_a_level():
    table = _hand_made({"resnet18-deformable-l3-d1": (20.0, 22.0), "resnet18-standard-l3-d1": (20.0, 20.0),
                        "resnet18-dilated-l3-d9": (10.0, 10.0)})
    lead = analysis.deformable_lead(analysis.by_module(table))
    assert lead == dict(rank=1, paper_rank=1, lead=pytest.approx(1.0), columns=1)
    # the copy-first baseline (15.0) is not a trained cell and is never counted
    assert analysis.near(table, 15.0, 5.5) == 2 and analysis.near(table, 15.0, 4.0) == 0


def test_a_longer_profile_reruns_cells_beside_the_original_on_the_same_data(tmp_path):
    longer = get_profile("smoke-steps4")
    assert (longer.steps, longer.steps_for("resnet101"), longer.crop) == (4, 4, get_profile("smoke").crop)
    assert ablation.grid(longer) == ablation.grid("smoke")
    for bad in ("smoke-steps0", "smoke-stepsx", "nope-steps3", "smoke-steps2-steps3"):
        with pytest.raises(InputError, match=f"unknown profile '{bad}'"):
            get_profile(bad)
    exp = Experiment("smoke-steps4", device="cpu", results_root=tmp_path / "r",
                     checkpoints_root=tmp_path / "c", data_root=tmp_path / "d")
    rows = exp.run_grid(cells=["resnet18-standard-l1-d1"])
    assert rows.train_steps.tolist() == [4] and rows.data.tolist() == ["synthetic-smoke"]
    assert [p.name for p in (tmp_path / "d").iterdir() if not p.name.startswith(".")] == ["synthetic-smoke"]
    assert exp.cell_path("resnet18-standard-l1-d1").is_file()
    assert not exp.with_profile("smoke").folder.exists()
    assert exp.with_profile("smoke").finished("resnet18-standard-l1-d1") is None


def test_longer_training_compares_the_same_cells_on_the_same_data(tmp_path):
    cells = ["zero-flow", "resnet18-standard-l1-d1", "resnet18-dilated-l3-d3"]
    grid = pd.DataFrame(dict(cell=cells, train_steps=[0, 600, 600], loss_ratio=[np.nan, 0.95, 0.99],
                             data="synthetic-cpu", benchmark="abc")).assign(**{"J&F-Mean": [16.0, 15.0, 14.0]})
    longer = grid.iloc[1:2].assign(train_steps=2400, loss_ratio=0.7, **{"J&F-Mean": 19.5})
    both = analysis.longer_training(grid, longer)
    assert both.index.tolist() == ["resnet18-standard-l1-d1"]  # only the cells trained twice
    row = both.loc["resnet18-standard-l1-d1"]
    assert (row["grid", "train_steps"], row["longer", "train_steps"]) == (600, 2400)
    assert row["longer", "J&F gain"] == pytest.approx(4.5)
    assert bool(row["longer", "beats zero-flow"]) and bool(row["longer", "learned"])
    assert not bool(analysis.longer_training(grid, longer.assign(loss_ratio=0.95)).iloc[0]["longer", "learned"])
    with pytest.raises(InputError, match="other benchmark"):
        analysis.longer_training(grid, longer.assign(benchmark="xyz"))

    # Found beside the grid by name, per seed; a seed's file is not seed 0's.
    for name in ("table2_cpu-steps2400.csv", "table2_cpu-steps1200.csv", "table2_cpu-steps2400-seed1.csv",
                 "table2_cpu-stepsx.csv", "table2_cpu.csv"):
        (tmp_path / name).write_text("cell\n")
    cpu = Experiment("cpu", results_root=tmp_path)
    assert ablation.longer_runs(cpu) == ["cpu-steps1200", "cpu-steps2400"]
    assert ablation.longer_runs(cpu.replace(seed=1)) == ["cpu-steps2400"]
    assert ablation.longer_runs(cpu.with_profile("quick")) == []


def test_longer_learning_figure_draws_both_runs_of_each_cell():
    from rpmnet.viz import results

    def log(steps, ratio):
        return pd.DataFrame(dict(step=np.arange(steps), loss=ratio * 0.02, zero_flow_loss=0.02))

    fig = results.longer_learning({"resnet18-standard-l1-d1": {"cpu": log(600, 0.95), "cpu-steps2400": log(2400, 0.7)},
                                   "resnet18-dilated-l3-d3": {"cpu": log(600, 1.0), "cpu-steps2400": log(2400, 0.9)}})
    assert len(fig.axes) == 2
    lines = fig.axes[0].get_lines()
    assert [len(line.get_xdata()) for line in lines[:2]] == [600, 2400]
    assert lines[1].get_ydata()[-1] == pytest.approx(0.7)
    assert list(lines[2].get_xdata()) == [600, 600]  # where the grid's run stopped
    assert [t.get_text() for t in fig.axes[1].get_legend().get_texts()] == ["cpu: 600 steps", "cpu-steps2400: 2400 steps"]


def test_describe_longer_says_what_changed():
    cells = ["zero-flow", "resnet18-standard-l1-d1"]
    grid = pd.DataFrame(dict(cell=cells, train_steps=[0, 600], loss_ratio=[np.nan, 0.95], data="d",
                             benchmark="b")).assign(**{"J&F-Mean": [16.0, 15.0]})
    longer = grid.iloc[1:].assign(train_steps=2400, loss_ratio=0.93, **{"J&F-Mean": 15.5})
    [line] = analysis.describe_longer(analysis.longer_training(grid, longer), 16.0)
    assert line == ("resnet18-standard-l1-d1: 600 -> 2400 steps; loss ratio 0.95 -> 0.93 (still did not "
                    "learn (ratio >= 0.9)); J&F 15.0 -> 15.5 (+0.5), does not beat zero-flow (16.0)")


def test_longer_summary_separates_slow_cells_from_controls():
    cells = ["zero-flow", "resnet18-standard-l1-d1", "resnet18-dilated-l3-d3", "resnet18-deformable-l3-d1"]
    grid = pd.DataFrame(dict(cell=cells, train_steps=[0, 600, 600, 600], loss_ratio=[np.nan, 0.95, 0.99, 0.6],
                             data="d", benchmark="b")).assign(**{"J&F-Mean": [16.0, 15.0, 14.0, 21.0]})
    longer = grid.iloc[1:].assign(train_steps=2400, loss_ratio=[0.7, 0.95, 0.5],
                                  **{"J&F-Mean": [19.0, 15.0, 23.5]})
    facts = analysis.longer_summary(analysis.longer_training(grid, longer))
    assert facts["not_learned"] == ["resnet18-standard-l1-d1", "resnet18-dilated-l3-d3"]
    assert facts["now_learned"] == facts["now_beat"] == ["resnet18-standard-l1-d1"]
    assert facts["slow_gain"] == [4.0, 1.0]
    assert facts["controls"] == ["resnet18-deformable-l3-d1"] and facts["control_gain"] == [2.5]


@pytest.mark.parametrize("run", ["cpu-seed1", "cpu-seed2", "cpu-steps2400"])
def test_committed_side_runs_are_current(run):
    """The extra seeds and the longer training beside the cpu grid: still what this code would
    compute (so notebook 03 reads them instead of training them again)."""
    profile = get_profile(run.split("-seed")[0])
    stored = sorted((REPO / "results" / "table2" / run).glob("*.json"))
    assert stored
    for path in stored:
        assert json.loads(path.read_text())["settings"] == ablation.settings_id(profile), path.name


def test_spearman_skips_missing_rows_and_is_nan_when_undecidable():
    s = pd.Series
    assert analysis._spearman(s([1.0, 2.0, float("nan"), 3.0, 4.0]), s([2.0, 1.0, 9.0, 4.0, 3.0])) == pytest.approx(0.6)
    assert analysis._spearman(s([1.0, 2.0, 3.0, 4.0]), s([4.0, 3.0, 2.0, 1.0])) == pytest.approx(-1.0)
    assert math.isnan(analysis._spearman(s([1.0, 2.0, float("nan")]), s([1.0, 2.0, 3.0])))   # 2 rows
    assert math.isnan(analysis._spearman(s([1.0, 2.0, 3.0]), s([5.0, 5.0, 5.0])))            # constant


def test_masks_from_another_training_are_told_apart(tmp_path):
    """same_training: the work folder's log against the stored one (a retraining on another
    processor drifts in the 5th digit); nothing to compare is no difference."""
    exp = Experiment("smoke", results_root=tmp_path / "r", checkpoints_root=tmp_path / "c")
    cell = "resnet18-deformable-l3-d1"
    assert ablation.same_training(exp, cell)  # neither log
    log = pd.DataFrame({"step": [0, 1], "loss": [0.050621, 0.074750], "zero_flow_loss": [0.0508, 0.0753]})
    ablation.work_dir(exp, cell).mkdir(parents=True)
    log.to_csv(ablation.work_dir(exp, cell) / "log.csv", index=False)
    assert ablation.same_training(exp, cell)  # no stored log
    ablation.result_path(exp, cell, "train").parent.mkdir(parents=True)
    log.to_csv(ablation.result_path(exp, cell, "train"), index=False)
    assert ablation.same_training(exp, cell)
    log.assign(loss=[0.050627, 0.074757]).to_csv(ablation.work_dir(exp, cell) / "log.csv", index=False)
    assert not ablation.same_training(exp, cell)


def test_verify_retrains_a_stored_cell_bit_for_bit_and_flags_a_changed_score(tmp_path, capsys):
    """`rpmnet ablate --verify`: on the same processor a stored cell (its warm start too) retrains
    to the same losses, the same per-object CSV and the same J&F; a stored score changed by hand is
    caught (exit 1) and every check is recorded in results/verify_<grid>.csv."""
    roots = ["--results-root", str(tmp_path / "r"), "--checkpoints-root", str(tmp_path / "c"),
             "--data-root", str(tmp_path / "d")]
    args = ["ablate", "--profile", "smoke-steps4", "--device", "cpu", "--cells", CELLS[0], *roots]
    assert main([*args, "--verify"]) == 2  # nothing stored yet: says how to make it
    assert "no finished cell to verify" in capsys.readouterr().err
    assert main(args) == 0
    assert main([*args, "--verify"]) == 0
    assert "1 of 1 within 0.1" in capsys.readouterr().out
    checks = pd.read_csv(tmp_path / "r" / "verify_smoke-steps4.csv")
    assert checks.loc[0, ["difference", "within", "same_losses", "same_objects", "same_as_evaluate"]].tolist() == [
        0, True, True, True, True]
    assert checks.processor[0] == config.processor("cpu")
    stored = tmp_path / "r" / "table2" / "smoke-steps4" / f"{CELLS[0]}.json"
    row = json.loads(stored.read_text())
    stored.write_text(json.dumps(dict(row, **{"J&F-Mean": row["J&F-Mean"] + 1.0})))
    objects = stored.with_name(f"{CELLS[0]}.objects.csv")
    per_object = pd.read_csv(objects)
    per_object.loc[0, "J-Mean"] += 0.01  # a stored per-object score that evaluate would not give
    per_object.to_csv(objects, index=False)
    assert main([*args, "--verify"]) == 1
    checks = pd.read_csv(tmp_path / "r" / "verify_smoke-steps4.csv")
    assert len(checks) == 2 and checks.difference.iloc[1] == -1.0 and not checks.within.iloc[1]
    assert checks.same_losses.iloc[1] and not checks.same_objects.iloc[1] and not checks.same_as_evaluate.iloc[1]
    assert "0 of 1 within 0.1" in capsys.readouterr().out
    assert main(["ablate", "--profile", "smoke", "--verify", *roots]) == 2  # --cells is required
