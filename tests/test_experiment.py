"""The Experiment: one object for the grid's paths and calls, on a tiny hand-written results tree
(no training), and the one cell-id parser and the one trained-cells filter it relies on."""
import json
from pathlib import Path

import pandas as pd
import pytest

from rpmnet import ablation, analysis, report
from rpmnet.cli import main
from rpmnet.config import BASELINES, ModelConfig, Profile, table2
from rpmnet.errors import InputError
from rpmnet.experiment import Experiment, cell_id

REPO = Path(__file__).resolve().parents[1]
CELL = "resnet18-deformable-l3-d1"


def test_paths_follow_the_ablation_layout(tmp_path):
    exp = Experiment("smoke", results_root=tmp_path / "r", checkpoints_root=tmp_path / "c", seed=2)
    assert isinstance(exp.profile, Profile) and exp.profile.name == "smoke"
    assert exp.davis_root is None and exp.data_root == Path("data")
    assert exp.name == "smoke-seed2" and exp.folder == tmp_path / "r" / "table2" / "smoke-seed2"
    for kind, suffix in (("json", ".json"), ("objects", ".objects.csv"), ("frames", ".frames.csv"),
                         ("train", ".train.csv")):
        assert exp.cell_path(CELL, kind) == exp.folder / f"{CELL}{suffix}"
    # a ModelConfig is the same cell as its id
    assert exp.cell_path(ModelConfig("resnet18", "deformable", 3, 1)) == exp.cell_path(CELL)
    assert exp.work_dir(CELL) == tmp_path / "c" / "table2" / "smoke-seed2" / CELL
    assert exp.merged_path == tmp_path / "r" / "table2_smoke-seed2.csv"
    assert exp.command([CELL]) == f"rpmnet ablate --profile smoke --cells {CELL} --seed 2"
    assert exp.with_profile("smoke-steps4").folder == tmp_path / "r" / "table2" / "smoke-steps4-seed2"


@pytest.mark.parametrize("changes, message", [
    (dict(profile="nope"), "unknown profile 'nope'"),
    (dict(seed=-1), "seed -1: must be an integer, at least 0"),
    (dict(davis_root="/no/such/davis"), "/no/such/davis: DAVIS root folder does not exist"),
])
def test_bad_experiment_is_an_input_error(changes, message):
    with pytest.raises(InputError, match=message):
        Experiment(**{"profile": "smoke", **changes})


def test_cell_ids_are_parsed_in_one_place():
    for cell in table2().cell:
        cfg = ModelConfig.from_cell(cell)
        assert cfg.cell == cell and cell.endswith(cfg.module) and ModelConfig.from_cell(cfg) is cfg
    assert ModelConfig.from_cell("resnet50-dilated-l3-d9").module == "dilated-l3-d9"
    assert cell_id("zero-flow") == "zero-flow"
    for bad in ("resnet18-deformable", "resnet18-deformable-l4-d1", "zero_flow", 3):
        with pytest.raises(InputError):
            cell_id(bad)
    # the smoke grid: one cell per matching module, chosen by the module's part of the id
    assert Experiment("smoke").grid() == [*BASELINES, "resnet18-deformable-l3-d1",
                                          "resnet18-standard-l3-d1", "resnet18-dilated-l3-d3"]


def test_trained_keeps_the_table2_cells_only():
    table = pd.DataFrame({"cell": ["copy-first", CELL, "zero-flow", "resnet34-standard-l1-d1",
                                   "classical-flow"], "J&F-Mean": [1.0, 2.0, 3.0, 4.0, 5.0]})
    assert analysis.trained(table).cell.tolist() == [CELL, "resnet34-standard-l1-d1"]
    assert analysis.trained(table.iloc[[0, 2]]).empty


def _store(exp, cell, jf, **changes):
    """A finished cell's row as ablation.run_cell writes it (fingerprint fields first)."""
    steps = 0 if cell in BASELINES else exp.profile.steps_for(ModelConfig.from_cell(cell).backbone)
    row = dict(cell=cell, train_steps=steps, data=f"synthetic-{exp.profile.data_name}", benchmark=None,
               seed=exp.seed, settings=ablation.settings_id(exp.profile), **{"J&F-Mean": jf}) | changes
    path = exp.cell_path(cell)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(row))
    return row


@pytest.fixture
def tree(tmp_path):
    """A results tree of two current cells and a stale one (another step count), no benchmark."""
    exp = Experiment("smoke", results_root=tmp_path / "r", checkpoints_root=tmp_path / "c",
                     data_root=tmp_path / "d")
    _store(exp, CELL, 30.0)
    _store(exp, "copy-first", 20.0)
    _store(exp, "resnet18-standard-l3-d1", 25.0, train_steps=999)
    log = pd.DataFrame({"step": [1, 2], "loss": [0.5, 0.4], "zero_flow_loss": [0.5, 0.5]})
    log.to_csv(exp.cell_path(CELL, "train"), index=False)
    return exp


def test_finished_and_merge_on_a_tiny_results_tree(tree, capsys):
    assert tree.finished(CELL)["J&F-Mean"] == 30.0
    assert tree.finished("resnet18-standard-l3-d1") is None     # stored under other steps
    assert tree.finished("zero-flow") is None                   # never run
    assert tree.replace(seed=1).finished(CELL) is None          # another seed's folder
    table = tree.merge()
    assert "left out resnet18-standard-l3-d1" in capsys.readouterr().err
    assert table.cell.tolist() == ["copy-first", CELL]          # baselines first, then paper order
    assert pd.read_csv(tree.merged_path).cell.tolist() == ["copy-first", CELL]
    assert analysis.trained(table).cell.tolist() == [CELL]
    assert tree.log(CELL).loss.tolist() == [0.5, 0.4] and tree.log("copy-first") is None
    assert table.set_index("cell").loc[CELL, "loss_ratio"] == pytest.approx(0.8)  # last 10%: the last row
    assert tree.logs([CELL])[CELL]["smoke"].step.tolist() == [1, 2]
    plan = tree.plan().set_index("cell")
    assert plan.finished.to_dict() == {"copy-first": True, "zero-flow": False, "classical-flow": False,
                                       CELL: True, "resnet18-standard-l3-d1": False,
                                       "resnet18-dilated-l3-d3": False}
    assert tree.protocol_twin() == (None, None) and tree.longer_runs() == {}


def test_per_cell_tables_come_from_the_stored_files(tree):
    objects = pd.DataFrame({"Sequence": ["a_1", "a_2", "b_1"], "J-Mean": [0.2, 0.4, 0.5],
                            "F-Mean": [0.4, 0.6, 0.5]})
    objects.to_csv(tree.cell_path(CELL, "objects"), index=False)
    sequences = tree.per_sequence(CELL)
    assert sequences.loc["a", "J-Mean"] == pytest.approx(30.0)
    assert sequences.loc["a", "J&F-Mean"] == pytest.approx(40.0)
    assert sequences.loc["b", "F-Mean"] == pytest.approx(50.0)
    assert list(tree.objects([ModelConfig.from_cell(CELL)])) == [CELL]
    frames = pd.DataFrame({"sequence": ["a"], "object": [1], "frame": ["00001"], "J": [0.25], "F": [0.5]})
    frames.to_csv(tree.cell_path(CELL, "frames"), index=False)
    assert tree.per_frame(CELL)[["frame", "J", "F"]].values.tolist() == [["00001", 25.0, 50.0]]
    with pytest.raises(InputError, match=r"copy-first\.frames\.csv: missing; run `rpmnet ablate "
                                         r"--profile smoke --cells copy-first`"):
        tree.per_frame("copy-first")


def test_cli_lists_and_merges_through_the_experiment(tree, capsys):
    roots = ["--results-root", str(tree.results_root), "--data-root", str(tree.data_root),
             "--checkpoints-root", str(tree.checkpoints_root)]
    assert main(["ablate", "--profile", "smoke", "--list", *roots]) == 0
    listed = capsys.readouterr().out
    assert f"{CELL}" in listed and "True" in listed and "False" in listed
    assert main(["ablate", "--profile", "smoke", "--merge", *roots]) == 0
    assert capsys.readouterr().out.strip() == f"{tree.merged_path}: 2 cells"
    assert main(["ablate", "--profile", "smoke", "--merge", "--seed", "-1", *roots]) == 2
    assert main(["ablate", "--profile", "smoke", "--list", "--cells", "resnet18-deformable-l4-d1",
                 *roots]) == 2
    assert "unknown cell 'resnet18-deformable-l4-d1'" in capsys.readouterr().err


def test_table2_discussion_quotes_the_measured_table():
    exp = Experiment("cpu", results_root=REPO / "results")
    table = pd.read_csv(exp.merged_path)
    facts = analysis.summary(table)
    text = report.table2_discussion(table, exp.seed_runs(), {}, "the data", None, planned=28)
    assert f"Our highest J&F point estimate is {facts['best']:.1f}\n({facts['best_cell']})" in text
    assert "on the data." in text and "a synthetic benchmark of photos" in text
    assert f"{facts['cells']} Table 2 cells" in text  # the whole grid ran: no "of the profile's 28"
    assert f"{len(facts['below_zero_flow'])} trained cell(s) score below the zero-flow baseline" in text
    assert "for every cell" not in text and "600 steps for resnet18, 400 for resnet34" in text  # the cpu grid's steps differ by column
    seeds = pd.DataFrame({"seed 0": [31.0], "seed 1": [28.5]}, index=["resnet18-deformable-l3-d1"]).assign(
        mean=29.75, range=2.5)
    retrained = report.table2_discussion(table, seeds, {}, "the data", None)
    assert "except 1 cell(s) retrained with other seeds* (resnet18-deformable-l3-d1)" in retrained
    assert "up to 2.5 points" in retrained and "may reverse it" in retrained
    assert "DAVIS-2016 val, one object per sequence" in report.table2_discussion(
        table, exp.seed_runs(), {}, "x", "2016")


def test_a_davis_root_is_named_by_content_not_by_path(tmp_path):
    """Stored results stay current when the checkout (or ../shared) lies elsewhere."""
    import shutil

    from test_propagate import moving_squares, write_davis

    from rpmnet.data.sources import data_id

    root = write_davis(tmp_path / "a", {"squares": moving_squares(frames=4, step=4)})
    moved = tmp_path / "b" / root.name
    shutil.copytree(root, moved)
    assert data_id(root) == data_id(moved) and data_id(root).startswith(f"{root.name}@")
    (moved / "README.md").write_text("notes beside the data do not matter")
    assert data_id(moved) == data_id(root)
    frame = next((moved / "JPEGImages").rglob("*.jpg"))
    frame.write_bytes(frame.read_bytes() + b"\0")
    assert data_id(moved) != data_id(root)
