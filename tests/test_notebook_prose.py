"""The generated prose of notebooks 03 and 05 (report's "notebook prose" functions and the
assumptions table's "in this profile" column), on hand-made tables with known answers."""
import pandas as pd
import pytest

from rpmnet import analysis, report
from rpmnet.config import assumptions_table, table2

D18, D34 = "resnet18-deformable-l3-d1", "resnet34-deformable-l3-d1"
S18, L18 = "resnet18-standard-l3-d1", "resnet18-standard-l1-d1"


def merged(scores: dict, steps: dict | None = None):
    """A merged table (ablation.merge's columns that these functions read): J&F per cell."""
    paper = table2().set_index("cell")
    rows = []
    for cell, value in scores.items():
        known = cell in paper.index
        backbone = paper.loc[cell, "backbone"] if known else None
        rows.append(dict(cell=cell, backbone=backbone, matching=paper.loc[cell, "matching"] if known else None,
                         **{"J&F-Mean": value},
                         train_steps=(steps or {}).get(backbone, 1200) if known else 0))
    return pd.DataFrame(rows)


def seed_table(ranges):
    """ablation.seed_runs' layout with the given ranges (max - min over two seeds)."""
    seeds = pd.DataFrame({"seed 0": [30.0] * len(ranges), "seed 1": [30.0 + r for r in ranges]},
                         index=[f"cell{i}" for i in range(len(ranges))])
    seeds["mean"], seeds["range"] = seeds.mean(axis=1), seeds.max(axis=1) - seeds.min(axis=1)
    return seeds


def test_assumptions_show_what_the_profile_trains_with():
    fair = assumptions_table("cpu-davis-fair").set_index("setting")["in this profile"]
    assert fair["frame_gap"] == "random 1..3" and fair["flow_init"] == "small"
    assert fair["cell_start"].startswith("warm (300 steps with standard-l3-d1")
    assert fair["row109"] == "bilinear"  # a fixed reading is the same in every profile
    plain = assumptions_table("cpu")
    assert (plain["in this profile"] == plain["default"]).all()
    assert "in this profile" not in assumptions_table().columns


def test_training_scale_follows_the_profile_and_the_finished_cells():
    assert report.training_scale("cpu") == (
        "The cells were trained with 600 steps for resnet18, 400 for resnet34, 250 for resnet50, "
        "150 for resnet101, each from scratch, on torch's default threads (profile cpu).")
    table = merged({"copy-first": 25.0, D18: 30.0, D34: 31.0})
    assert report.training_scale("cpu-davis-fair", table) == (
        "The cells were trained with 1200 steps for every cell, each after a shared 300-step warm "
        "start of its backbone column, on 2 CPU threads per cell (profile cpu-davis-fair).")


def test_protocol_status_names_the_twin_either_way():
    fair = report.protocol_status("cpu-davis-fair")
    assert fair.startswith("This grid already uses the protocol (a shared 300-step warm start")
    assert "its plain-reading twin is `cpu-davis` (`results/table2_cpu-davis.csv`)" in fair
    plain = report.protocol_status("cpu")
    assert "every cell from scratch, row 108 starting at zero, frame gap 1, 600 steps for resnet18" in plain
    assert plain.endswith("No grid of profile cpu was retrained under the cpu-fair protocol.")
    assert report.protocol_status("cpu", "cpu-fair").endswith("retrained under `cpu-fair`.")


def test_best_estimate_counts_the_cells_it_cannot_be_told_apart_from():
    versus = pd.DataFrame({"mean": [0.5, 4.0, 0.1], "verdict": ["undecided", "ahead", "undecided"]},
                          index=[S18, L18, D34])
    assert report.best_estimate(D18, 33.67, versus, seed=0) == (
        f"**{D18}** has the highest J&F point estimate (seed 0), 33.7; by the 95% paired intervals "
        f"it is ahead of 1 of the 3 other trained cells and cannot be told apart from 2 ({S18}, {D34}).")
    assert report.best_estimate(D18, 30.0, pd.DataFrame(), seed=2).endswith("no other trained cell to compare it with.")
    many = pd.DataFrame({"verdict": ["undecided"] * 7}, index=[f"cell{i}" for i in range(7)])
    assert report.best_estimate(D18, 30.0, many).endswith("cannot be told apart from 7.")


def test_module_lead_is_against_the_best_other_module_and_flags_unequal_columns():
    # deformable: mean of 30 (ResNet-18) and 32 (ResNet-34) = 31; standard 3 layers: 33 (one column)
    table = merged({"copy-first": 20.0, D18: 30.0, D34: 32.0, S18: 33.0, L18: 25.0})
    text = report.module_lead_text(analysis.by_module(table), seed_table([3.0]))
    assert text.startswith("Deformable matching ranks **2 of 3** here (paper: 1), -2.00 J&F points "
                           "against the best other module (standard 3 / 1, 3 layers), its mean over 2 column(s).")
    assert "less than the 3.0-point range" in text and "cannot be told apart" in text
    assert "run over 1 to 2 columns" in text
    even = merged({"copy-first": 20.0, D18: 30.0, S18: 33.0})
    text = report.module_lead_text(analysis.by_module(even), seed_table([1.0]))
    assert "range" not in text and "columns (`columns`)" not in text
    alone = merged({"copy-first": 20.0, D18: 30.0})
    assert "the only matching module" in report.module_lead_text(analysis.by_module(alone), pd.DataFrame())


def test_retraining_note_states_the_seed_range_or_its_absence():
    assert "up to 3.2 points (2 cell(s), notebook 03)" in report.retraining_note(seed_table([3.2, 1.0]))
    assert "was not measured here" in report.retraining_note(pd.DataFrame())


def test_attribute_notes_count_chance_exclusions_and_flag_other_backbones():
    table = merged({"copy-first": 20.0, D18: 32.01, D34: 32.02, S18: 33.67})
    margins = pd.DataFrame({"mean": 0.0, "sequences": [3, 14] + [8] * 14})
    text = report.attribute_notes(table, {"deformable": D34}, S18, margins)
    assert "rests on 3 to 14 sequences. With 16 intervals at 95%, about 0.8 would exclude 0" in text
    assert f"{D34} and {S18} come from different backbone columns" in text
    assert f"({D34} leads the next deformable cell, {D18}, by 0.01 J&F)" in text
    same = report.attribute_notes(table, {"deformable": D18}, S18, margins.iloc[:2])
    assert "different backbone" not in same and "about 0.1 would" in same
    assert report.attribute_notes(table, {"deformable": D18}, "copy-first", pd.DataFrame()) == ""


@pytest.mark.parametrize("profile", ["smoke", "quick", "cpu", "cpu-fair", "cpu-davis", "cpu-davis-fair", "paper"])
def test_every_profile_gets_its_sentences(profile):
    assert f"(profile {profile})" in report.training_scale(profile)
    assert report.protocol_status(profile).endswith(".")
