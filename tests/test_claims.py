"""Table 2's claims with their intervals: "deformable wins its column" (analysis.column_margins),
"beats copy-first" (analysis.versus_baseline), and the sentences report writes from them."""
import json

import numpy as np
import pandas as pd
import pytest

from rpmnet import ablation, analysis, report
from rpmnet.config import REPO, table2
from rpmnet.data import sources
from rpmnet.experiment import Experiment

D, S, L = "resnet18-deformable-l3-d1", "resnet18-standard-l3-d1", "resnet18-standard-l1-d1"
SEQUENCES = [f"seq{i}" for i in range(8)]


def objects(scores, objects_per_sequence=1):
    """A per-object table (objects_from_csv's layout) with J = F = the given score per object."""
    names = [f"{s}_{k + 1}" for s in SEQUENCES for k in range(objects_per_sequence)]
    values = np.resize(np.asarray(scores, float), len(names))
    return pd.DataFrame({"Sequence": names, "sequence": [n.rsplit("_", 1)[0] for n in names],
                         "J-Mean": values, "F-Mean": values, "J&F-Mean": values})


def merged(scores: dict):
    paper = table2().set_index("cell")
    rows = [dict(cell=c, **(paper.loc[c, ["backbone", "matching"]].to_dict() if c in paper.index else {}),
                 **{"J&F-Mean": float(np.mean(v))}) for c, v in scores.items()]
    return pd.DataFrame(rows)


def test_a_constant_lead_has_a_zero_width_interval_and_is_ahead():
    base = np.linspace(20, 40, len(SEQUENCES))
    scores = {D: base + 2.0, S: base, L: base - 5.0, "copy-first": base - 1.0}
    methods = {c: objects(v) for c, v in scores.items()}
    margins = analysis.column_margins(merged(scores), methods)
    row = margins.loc["FCN-ResNet18"]
    assert row["rival"] == S  # the best other cell of the column, not the first
    assert (row["margin"], row["low"], row["high"]) == pytest.approx((2.0, 2.0, 2.0))
    assert row["verdict"] == "ahead" and row["sequences"] == len(SEQUENCES)
    floor = analysis.versus_baseline(merged(scores), methods, "copy-first")
    assert floor.loc[D, "mean"] == pytest.approx(3.0) and floor.loc[L, "verdict"] == "behind"
    text = report.baseline_text(floor, "copy-first")
    assert text.startswith("**2 of 3** trained cells are ahead of copy-first") and f"behind it: {L}" in text


def test_a_lead_that_changes_sign_between_sequences_is_undecided_and_said_so():
    base = np.linspace(20, 40, len(SEQUENCES))
    noise = np.array([6.0, -6.0] * (len(SEQUENCES) // 2))
    scores = {D: base + 0.5 + noise, S: base}
    margins = analysis.column_margins(merged(scores), {c: objects(v) for c, v in scores.items()})
    row = margins.iloc[0]
    assert row["low"] < 0 < row["high"] and row["verdict"] == "undecided"
    assert "the data cannot say which of the two is better" in report.margins_text(margins)


def test_seed_runs_stand_beside_the_interval():
    base = np.linspace(20, 40, len(SEQUENCES))
    scores = {D: base + 1.0, S: base}
    seeds = pd.DataFrame({"seed 0": [31.0, 30.0], "seed 1": [29.0, 30.5], "seed 2": [30.0, 29.5]},
                         index=[D, S])
    seeds["mean"], seeds["range"] = seeds.mean(axis=1), seeds.max(axis=1) - seeds.min(axis=1)
    row = analysis.column_margins(merged(scores), {c: objects(v) for c, v in scores.items()}, seeds).iloc[0]
    assert (row["deformable seeds"], row["deformable seed_mean"], row["deformable seed_range"]) == (3, 30.0, 2.0)
    assert row["seed-mean margin"] == pytest.approx(0.0)
    assert "over 3 seeds" in report.margins_text(pd.DataFrame([row]))


def test_a_column_without_a_deformable_cell_or_a_rival_is_left_out():
    scores = {S: [30.0], L: [25.0]}
    assert analysis.column_margins(merged(scores), {c: objects(v) for c, v in scores.items()}).empty
    assert "No backbone column" in report.margins_text(pd.DataFrame())


def test_discussion_states_the_column_claim_with_its_intervals():
    base = np.linspace(20, 40, len(SEQUENCES))
    scores = {D: base + 2.0, S: base, "copy-first": base - 1.0, "zero-flow": base - 1.5}
    methods = {c: objects(v) for c, v in scores.items()}
    table = merged(scores).assign(**{"J-Mean": lambda t: t["J&F-Mean"], "F-Mean": lambda t: t["J&F-Mean"],
                                     "train_steps": 1200, "train_seconds": 60.0, "loss_ratio": 0.6,
                                     "parameters": 1e6, "paper_J": 30.0, "paper_F": 30.0,
                                     "propagate_seconds": 1.0, "kernel": 3, "dilation": 1, "layers": 3})
    margins = analysis.column_margins(table, methods)
    floor = analysis.versus_baseline(table, methods, "copy-first")
    text = report.table2_discussion(table, pd.DataFrame(), {}, "test data", "2017", margins, floor, planned=28)
    assert "it is ahead in 1, behind in 0 and cannot be told apart in 0 of the 1 column(s)" in text
    assert "2 of the profile's 28 Table 2 cells" in text and "trained with 1200 steps for every cell," in text
    assert "*No trained cell scores below the zero-flow baseline*" in text
    assert "*One training per cell.* Seed-to-seed variation was not measured" in text
    assert "our cells are +0.0 J&F points from the paper's" not in text  # 30 vs ours: a real difference
    assert "**2 of 2** trained cells are ahead of copy-first" in text


def test_finished_cells_only_and_a_read_only_merge(tmp_path):
    exp = Experiment("smoke", results_root=tmp_path / "r", data_root=tmp_path / "d")
    assert exp.grid("finished") == [] and exp.stored() is None
    exp.benchmark_root()  # its id is part of what makes a stored cell current
    row = dict(cell="copy-first", **ablation._wanted(exp, "copy-first"), **{"J&F-Mean": 20.0})
    exp.cell_path("copy-first").parent.mkdir(parents=True)
    exp.cell_path("copy-first").write_text(json.dumps(row))
    assert exp.grid("finished") == ["copy-first"]
    assert exp.stored().cell.tolist() == ["copy-first"] and not exp.merged_path.exists()
    assert exp.other_grid("cpu").profile.name == "cpu" and exp.other_grid("cpu").davis_root is None


def test_the_readme_table_shows_each_interval_and_difference():
    """report.cells_markdown on a case with known answers: a constant lead of 3 over copy-first is
    "+3.0 [+3.0, +3.0]"; baselines come first and have no loss ratio; cells go column by column."""
    base = np.linspace(20, 40, len(SEQUENCES))
    scores = {"copy-first": base, "classical-flow": base + 1.0, "resnet34-deformable-l3-d1": base + 2.0, D: base + 3.0}
    table = merged(scores).assign(**{"J-Mean": lambda t: t["J&F-Mean"], "F-Mean": lambda t: t["J&F-Mean"]},
                                  paper_J=[np.nan, np.nan, 34.6, 32.9], paper_F=[np.nan, np.nan, 37.5, 36.2],
                                  loss_ratio=[np.nan, np.nan, 0.5, 0.6], val_flow=[np.nan, np.nan, 0.8, 0.9],
                                  train_seconds=[0.0, 0.0, 300.4, 200.0], propagate_seconds=[6.0, 400.0, 150.0, 100.0])
    lines = report.cells_markdown(table, {c: objects(v) for c, v in scores.items()}).splitlines()
    assert lines[0].startswith("| method | J | F | J&F [95% CI] | minus copy-first [95% CI] | minus classical-flow")
    assert [line.split(" | ")[0] for line in lines[2:]] == [
        "| copy-first", "| classical-flow", f"| {D}", "| resnet34-deformable-l3-d1"]
    cells = lines[4].strip("| ").split(" | ")
    assert cells[4:] == ["+3.0 [+3.0, +3.0]", "+2.0 [+2.0, +2.0]", "0.60", "0.90", "34.5", "200 + 100"]
    assert lines[2].strip("| ").split(" | ")[4:] == ["", "-1.0 [-1.0, -1.0]", "", "", "", "0 + 6"]
    low, high = map(float, cells[3].split("[")[1].rstrip("]").split(", "))
    assert low < float(cells[3].split()[0]) < high  # J&F's own interval spans the sequences' spread
    seeds = pd.DataFrame({"seed 0": [31.0], "seed 1": [29.0]}, index=[D]).assign(mean=30.0, range=2.0)
    assert report.seeds_markdown(seeds).splitlines()[2] == f"| {D} | 31.0 | 29.0 | 30.0 | 2.0 |"


def test_the_readme_claims_count_and_name_from_the_intervals():
    base = np.linspace(20, 40, len(SEQUENCES))
    scores = {D: base + 2.0, S: base, L: base - 5.0, "copy-first": base - 1.0, "classical-flow": base + 9.0}
    methods = {c: objects(v) for c, v in scores.items()}
    table = merged(scores).assign(paper_J=[33.0, 30.0, 25.0, np.nan, np.nan],
                                  paper_F=[33.0, 30.0, 25.0, np.nan, np.nan])
    text = report.claims_markdown(table, analysis.column_margins(table, methods),
                                  analysis.versus_baseline(table, methods, "copy-first"),
                                  analysis.versus_baseline(table, methods, "classical-flow"))
    assert f"{D} minus {S} (the column's best other cell) = +2.0 J&F" in text
    assert "**2 of 3** trained cells are ahead of copy-first" in text and f"behind it: {L}" in text
    assert ("**0 of 3** trained cells are ahead of classical-flow (the 95% interval of cell minus "
            "classical-flow excludes 0), 0 cannot be told apart from it and 3 are behind it.") in text
    assert "Spearman's rho" in text and "FCN-ResNet18" in text
    assert "FCN-ResNet18 +3.0 (above our interval [+2.0, +2.0])" in text  # paper D - S = 33 - 30


def test_grid_time_is_measured_for_a_full_column_and_estimated_for_the_others():
    settings = table2().set_index("cell")
    r18 = [c for c in settings.index if c.startswith("resnet18-")]
    rows = [dict(cell=c, backbone="resnet18", train_seconds=240.0, propagate_seconds=60.0,
                 warm_start_seconds=60.0) for c in r18]
    rows += [dict(cell="resnet34-deformable-l3-d1", backbone="resnet34", train_seconds=480.0,
                  propagate_seconds=120.0, warm_start_seconds=120.0), dict(cell="copy-first", train_seconds=0.0)]
    table = pd.DataFrame(rows).assign(**{"J&F-Mean": 30.0})
    lines = report.timing_markdown(table).splitlines()
    assert lines[2] == "| FCN-ResNet18 | 7 | 1.0 | 28.0 | 7.0 | 5.0 (5.0-5.0) | 36 | 36 |"
    assert lines[3] == "| FCN-ResNet34 | 1 | 2.0 | 8.0 | 2.0 | 10.0 (10.0-10.0) | 12 | 72 |"
    table.loc[0, "train_seconds"] = 1440.0  # one cell beside another job: the sum grows, the median not
    assert report.timing_markdown(table).splitlines()[2] == "| FCN-ResNet18 | 7 | 1.0 | 48.0 | 7.0 | 5.0 (5.0-25.0) | 56 | 36 |"


def test_the_standard_twin_margin_per_column_and_over_columns_has_known_answers():
    """Deformable minus its standard twin: a constant +2 in ResNet-18 and -1 in ResNet-34 give
    zero-width intervals at +2 and -1, and +0.5 over the two columns; the twin is the same module
    without offsets even where another cell scores higher; the paper's margins stand beside."""
    base = np.linspace(20, 40, len(SEQUENCES))
    d34, s34 = "resnet34-deformable-l3-d1", "resnet34-standard-l3-d1"
    scores = {D: base + 2.0, S: base, L: base + 9.0, d34: base - 1.0, s34: base, "copy-first": base}
    twins = analysis.twin_margins(merged(scores), {c: objects(v, 2) for c, v in scores.items()})
    assert list(twins.index) == ["FCN-ResNet18", "FCN-ResNet34", "mean over 2 columns"]
    assert twins.loc["FCN-ResNet18", "twin"] == S  # not L, the column's best other cell
    for name, value in (("FCN-ResNet18", 2.0), ("FCN-ResNet34", -1.0), ("mean over 2 columns", 0.5)):
        assert tuple(twins.loc[name, ["margin", "low", "high"]]) == pytest.approx((value,) * 3)
    assert list(twins.verdict) == ["ahead", "behind", "ahead"] and set(twins.sequences) == {len(SEQUENCES)}
    paper = table2().set_index("cell").eval("(paper_J + paper_F) / 2")
    assert twins.loc["FCN-ResNet18", "paper"] == pytest.approx(paper[D] - paper[S])
    text = report.twin_text(twins)
    assert f"- FCN-ResNet18: {D} minus {S} = +2.0 J&F (95% CI [+2.0, +2.0], 8 sequences): the offsets help" in text
    assert "the offsets hurt" in text and "above our interval" in text


def test_the_twin_margin_mixes_sequences_and_needs_both_cells():
    base = np.linspace(20, 40, len(SEQUENCES))
    noise = np.array([4.0, -4.0] * (len(SEQUENCES) // 2))
    d34, s34 = "resnet34-deformable-l3-d1", "resnet34-standard-l3-d1"
    scores = {D: base + noise, S: base, d34: base + noise, s34: base}
    twins = analysis.twin_margins(merged(scores), {c: objects(v) for c, v in scores.items()})
    row = twins.loc["mean over 2 columns"]
    assert row["low"] < 0 < row["high"] and row["verdict"] == "undecided"
    assert "cannot say whether the offsets help" in report.twin_text(twins)
    only = {D: base, L: base}
    assert analysis.twin_margins(merged(only), {c: objects(v) for c, v in only.items()}).empty
    assert "No backbone column" in report.twin_text(pd.DataFrame())


def test_training_noise_from_the_seed_runs_widens_the_twin_interval_by_a_known_amount():
    seeds = pd.DataFrame({"seed 0": [1.0, 5.0], "seed 1": [2.0, 5.0], "seed 2": [3.0, 5.0]}, index=["a", "b"])
    seeds["mean"], seeds["range"] = seeds.mean(axis=1), seeds.max(axis=1) - seeds.min(axis=1)
    noise = analysis.training_sd(seeds)  # deviations 1, 0, 1 and 0, 0, 0 over 2 x 2 degrees of freedom
    assert noise == dict(sd=pytest.approx(np.sqrt(0.5)), cells=2, runs=6)
    assert analysis.training_sd(seeds.iloc[:, :1]) == {} and analysis.training_sd(pd.DataFrame()) == {}
    base = np.linspace(20, 40, len(SEQUENCES))
    d34, s34 = "resnet34-deformable-l3-d1", "resnet34-standard-l3-d1"
    scores = {D: base + 2.0, S: base, d34: base + 2.0, s34: base}
    twins = analysis.twin_margins(merged(scores), {c: objects(v) for c, v in scores.items()}, seeds)
    one, pooled = 1.96 * np.sqrt(0.5) * np.sqrt(2), 1.96 * np.sqrt(0.5)  # sqrt(2 / k) for k = 1, 2 columns
    assert twins.loc["FCN-ResNet18", "with training low"] == pytest.approx(2.0 - one)
    assert twins.loc["mean over 2 columns", "with training high"] == pytest.approx(2.0 + pooled)
    text = report.twin_text(twins)
    assert "With the training noise added: [+0.04, +4.0] (the offsets help), the paper's margin is" in text
    assert "a standard deviation of 0.7 points, pooled over the 2 cells with seed runs" in text


def test_retraining_on_another_processor_has_known_noise_and_says_whether_it_reproduces():
    """analysis.processor_noise: differences of +-1 between two trainings of the same cell and seed
    mean one training deviates by sqrt(1 / 2), with chi-square (4 df) and t (3 df) intervals;
    report.retrained_markdown compares it with the seed runs' and says whether 0.1 holds."""
    pairs = pd.DataFrame(dict(cell=[D, S, L, D], seed=[0, 0, 0, 1], earlier=[30.0, 31.0, 25.0, 32.0],
                              here=[31.0, 30.0, 26.0, 31.0], earlier_processor="AMD EPYC",
                              processor="Intel Xeon")).eval("difference = here - earlier")
    noise = analysis.processor_noise(pairs)
    assert noise["sd"] == pytest.approx(np.sqrt(0.5)) and noise["mean"] == pytest.approx(0.0)
    assert (noise["sd_low"], noise["sd_high"]) == pytest.approx((0.42365, 2.03191), abs=1e-4)
    assert (noise["mean_low"], noise["mean_high"]) == pytest.approx((-1.83741, 1.83741), abs=1e-4)
    assert (noise["pairs"], noise["mean_abs"], noise["max_abs"], noise["within"]) == (4, 1.0, 1.0, 0)
    text = report.retrained_markdown(pairs, noise, dict(sd=1.6, cells=8, runs=24))
    lines = text.splitlines()
    assert lines[0] == "| cell | seed | AMD EPYC | Intel Xeon | difference |"
    assert lines[2] == f"| {D} | 0 | 30.00 | 31.00 | +1.00 |"
    assert "is 0.71 points (95% CI [0.42, 2.03]), against 1.6 from the seed runs (8 cells, 24 runs)" in text
    assert "cannot tell the two kinds of retraining apart" in text and "no processor bias is detectable" in text
    assert "0 of 4 within 0.1" in text and "only on the processor that trained it" in text
    assert "less than a change of seed" in report.retrained_markdown(pairs, noise, dict(sd=2.5, cells=8, runs=24))
    shifted = pairs.assign(here=pairs.earlier + [0.9, 1.0, 1.1, 1.0]).eval("difference = here - earlier")
    assert "is a bias of one processor" in report.retrained_markdown(shifted, analysis.processor_noise(shifted), {})
    same = pairs.assign(here=pairs.earlier + 0.05).eval("difference = here - earlier")
    assert "reproduce these cells to 0.1" in report.retrained_markdown(same, analysis.processor_noise(same), {})
    assert analysis.processor_noise(pairs.iloc[:0]) == {} and report.retrained_markdown(pairs, {}, {}) == ""


@pytest.mark.skipif(not sources.SHARED_DAVIS2016.is_dir(),
                    reason=f"{sources.SHARED_DAVIS2016} is absent: the committed real-video cells cannot be checked")
def test_every_archived_first_training_has_its_retraining_committed():
    """results/amd-epyc/ keeps the first trainings of cells retrained on this project's processor;
    each is paired with a current cell of the same seed and settings (ablation.retrained)."""
    exp = Experiment("cpu-davis-fair", sources.SHARED_DAVIS2016, results_root=REPO / "results")
    archived = sorted((REPO / "results" / ablation.EARLIER_PROCESSOR / "table2").glob("*/*.json"))
    pairs = exp.retrained()
    assert len(archived) > 0 and len(pairs) == len(archived)
    assert pairs.earlier_processor.eq(ablation.EARLIER_PROCESSOR_NAME).all()
    assert pairs.processor.str.contains("Intel").all()
