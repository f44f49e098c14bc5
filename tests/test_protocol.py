"""The training protocol (issue 13): schedule, flow init, GroupNorm, shared warm start, fingerprints,
and the mean predicted flow that tells a model that learned from one that drifts."""
import dataclasses
import json
import math
from pathlib import Path

import pytest
import torch

from rpmnet import ablation, checkpoint
from rpmnet.config import RESULT_FIELDS, Profile, get_profile
from rpmnet.data import davis
from conftest import tiny_config
from rpmnet.errors import InputError
from rpmnet.learned import mean_flow
from rpmnet.model.matching import Matching
from rpmnet.model.rpmnet import RPMNet
from rpmnet.train import TrainConfig, lr_at, train

REPO = Path(__file__).resolve().parents[1]


tiny = tiny_config


def test_cosine_schedule_warms_up_then_decays_to_zero():
    cfg = TrainConfig(steps=100, lr=1e-3, lr_schedule="cosine").resolved()
    lrs = [lr_at(cfg, s) for s in range(100)]
    assert lrs[0] == pytest.approx(1e-3 / 5) and lrs[4] == pytest.approx(1e-3)   # 5% of 100 steps
    assert all(a >= b for a, b in zip(lrs[4:], lrs[5:]))                        # then never rises
    assert lrs[-1] < 1e-6 and lrs[52] == pytest.approx(5e-4, rel=0.05)          # half-way: half
    constant = TrainConfig(steps=100, lr=1e-3).resolved()
    assert {lr_at(constant, s) for s in range(100)} == {1e-3}


def test_flow_init_small_is_near_identity_and_zero_is_exact():
    torch.manual_seed(0)
    m = Matching("dilated", 3, 9)
    assert not m.layers[-1].weight.any()
    m.init_flow("small")
    w = m.layers[-1].weight
    assert w.any() and 0.5e-3 < float(w.detach().std()) < 2e-3 and not m.layers[-1].bias.any()


def test_groupnorm_matching_is_the_same_in_train_and_eval_mode():
    torch.manual_seed(0)
    x = torch.randn(2, 64, 12, 12)
    for norm, same in (("groupnorm", True), ("batchnorm", False)):
        m = Matching("standard", 3, 1, norm=norm)
        m.init_flow("small")
        assert torch.allclose(m.train()(x), m.eval()(x), atol=1e-7) is same, norm


def test_protocol_settings_reach_the_model_and_resume_checks_them(bench, tmp_path):
    final = train(tiny(bench, tmp_path / "a", norm="groupnorm", flow_init="small", lr_schedule="cosine"))
    state = checkpoint.load(final)
    assert state["model_config"].norm == "groupnorm"
    assert state["train_config"]["flow_init"] == "small"
    assert "norms.0.running_mean" not in "".join(state["model"])
    with pytest.raises(InputError, match="lr_schedule: 'cosine' -> 'constant'"):
        train(tiny(bench, tmp_path / "a", norm="groupnorm", flow_init="small", steps=6), resume=True)


def test_warm_start_copies_the_embedding_and_not_the_matching_module(bench, tmp_path):
    warm = train(tiny(bench, tmp_path / "warm", matching="standard", steps=3))
    cell = train(tiny(bench, tmp_path / "cell", matching="dilated", dilation=9, steps=1, lr=1e-12,
                      init_from=str(warm)))
    w, c = checkpoint.load(warm)["model"], checkpoint.load(cell)["model"]
    conv = next(k for k in w if k.startswith("embedding.") and k.endswith("weight"))
    assert torch.allclose(w[conv], c[conv], atol=1e-9)     # lr 1e-12: one step leaves it as loaded
    scratch = checkpoint.load(train(tiny(bench, tmp_path / "scratch", matching="dilated", dilation=9,
                                         steps=1, lr=1e-12)))["model"]
    assert not torch.allclose(scratch[conv], c[conv])
    assert c["matching.layers.2.weight"].abs().max() < 1e-9  # the matching module starts fresh


@pytest.mark.parametrize("bad, message", [
    (dict(norm="layernorm"), "matching_norm='layernorm' is not allowed"),
    (dict(lr_schedule="step"), "lr_schedule='step' is not allowed"),
    (dict(flow_init="random"), "flow_init='random' is not allowed"),
    (dict(init_from="no/such.pt"), "init_from=no/such.pt: checkpoint file does not exist"),
])
def test_bad_protocol_settings_are_one_line_errors(bench, tmp_path, bad, message):
    with pytest.raises(InputError, match=message):
        tiny(bench, tmp_path / "x", **bad).resolved()


def test_warm_start_of_another_backbone_is_refused(bench, tmp_path):
    warm = train(tiny(bench, tmp_path / "warm", steps=1))
    with pytest.raises(InputError, match="a resnet18 warm start cannot start a resnet34 run"):
        train(tiny(bench, tmp_path / "cell", backbone="resnet34", steps=1, init_from=str(warm)))


def test_fingerprint_ignores_fields_outside_result_fields_and_follows_those_inside():
    cpu = get_profile("cpu")
    same = ablation.settings_id(cpu)
    # fields that never change a result: a rename, a description, the grid's extent, a figure size
    assert ablation.settings_id(cpu.replace(name="x", description="y", fig2_frames=3,
                                            ablation_backbones=("resnet18",))) == same
    # a field added to Profile later is outside RESULT_FIELDS until listed: simulated by a subclass
    Extended = dataclasses.make_dataclass("Extended", [("plot_dpi", int, 144)], bases=(Profile,),
                                          frozen=True)
    assert ablation.settings_id(Extended(**dataclasses.asdict(cpu))) == same
    for name in RESULT_FIELDS:
        value = getattr(cpu, name)
        changed = {bool: lambda v: not v, int: lambda v: v + 1, float: lambda v: v * 2,
                   str: lambda v: v + "x", tuple: lambda v: v + (1,), dict: lambda v: {**v, "a": 1},
                   type(None): lambda v: 7}[type(value)](value)
        assert ablation.settings_id(cpu.replace(**{name: changed})) != same, name


def test_committed_cells_are_current_under_the_field_fingerprint():
    for folder in (REPO / "results" / "table2").iterdir():
        profile = get_profile(folder.name.split("-seed")[0])
        for path in folder.glob("*.json"):
            assert json.loads(path.read_text())["settings"] == ablation.settings_id(profile), path


def test_mean_flow_is_zero_for_an_untrained_model_and_grows_with_a_constant_flow(bench):
    torch.manual_seed(0)
    model = RPMNet("resnet18", "standard", 3)
    seqs = [davis.open_sequence(bench, n, split="val") for n in davis.sequence_names(bench, "val")]
    assert mean_flow(model, seqs) == 0.0                         # zero-initialised row 108
    model.matching.layers[-1].bias.data[:] = torch.tensor([3.0, 4.0])   # (dy, dx): length 5
    assert mean_flow(model, seqs) == pytest.approx(5.0)
    assert math.isnan(mean_flow(model, []))


def test_onset_is_the_first_step_the_windowed_ratio_drops_below():
    import pandas as pd

    from rpmnet.learned import onset

    zero = [1.0] * 100
    log = pd.DataFrame(dict(step=range(100), zero_flow_loss=zero,
                            loss=[1.0] * 60 + [0.5] * 40))
    # 20-step means: at step 60+k the window holds k+1 halves -> ratio 1 - (k+1)/40 < 0.95 from k = 2
    assert onset(log, 0.95, 20) == 62
    assert onset(log.assign(loss=zero), 0.95, 20) is None


def test_runs_table_reads_settings_and_losses_of_finished_runs(bench, tmp_path):
    import pandas as pd

    from rpmnet.learned import runs_table

    warm = train(tiny(bench, tmp_path / "warm", matching="standard", steps=2))
    train(tiny(bench, tmp_path / "cell", matching="dilated", dilation=3, steps=2, flow_init="small",
               init_from=str(warm)))
    table = runs_table([tmp_path / "warm", tmp_path / "cell"]).set_index("run")
    assert table.loc["cell", "init_from"] == "warm" and pd.isna(table.loc["warm", "init_from"])
    assert table.loc["cell", "flow_init"] == "small" and table.loc["cell", "dilation"] == 3
    assert 0 < table.loc["cell", "loss_ratio"] < 2 and table.loc["cell", "steps"] == 2


def test_protocol_comparison_pairs_each_cell_with_its_old_run_and_the_baseline(tmp_path):
    """Known answer: the new cell is the old one +5 J&F on every object (interval [5, 5], ahead);
    against zero-flow it is exactly tied (undecided)."""
    import pandas as pd

    from rpmnet import analysis, report
    from rpmnet.experiment import Experiment

    cell = "resnet18-dilated-l3-d9"
    objects = [f"s{i}_1" for i in range(6)]

    def store(profile, name, j):   # official per-object CSV: J and F as fractions
        path = Experiment(profile, results_root=tmp_path).cell_path(name, "objects")
        path.parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame({"Sequence": objects, "J-Mean": j, "F-Mean": j}).to_csv(path, index=False)

    base = [0.1 + 0.02 * i for i in range(6)]
    store("cpu", cell, base)
    store("cpu-fair", cell, [b + 0.05 for b in base])
    store("cpu-fair", "zero-flow", [b + 0.05 for b in base])
    row = dict(data="synthetic-cpu", benchmark="b")
    old = pd.DataFrame([dict(cell="zero-flow", **row, **{"J&F-Mean": 15.0}),
                        dict(cell=cell, train_steps=600, loss_ratio=0.99, **row, **{"J&F-Mean": 15.0})])
    new = pd.DataFrame([dict(cell=cell, train_steps=1200, loss_ratio=0.7, val_flow=1.2, **row,
                             **{"J&F-Mean": 20.0})])
    table = analysis.protocol_comparison(
        old, new, ("cpu", "cpu-fair"), lambda name, c: Experiment(name, results_root=tmp_path).per_object(c))
    r = table.loc[cell]
    assert (r[("- old", "mean")], r[("- old", "low")], r[("- old", "high")]) == pytest.approx((5, 5, 5))
    assert r[("- old", "verdict")] == "ahead" and r[("- zero-flow", "verdict")] == "undecided"
    assert bool(r[("cpu-fair", "learned")]) and r[("cpu-fair", "val_flow")] == 1.2
    text = report.protocol_text(table)
    assert "loss ratio 0.99 (did not learn) under cpu, 0.70 (learned) under cpu-fair" in text
    assert "cpu-fair minus cpu = +5.0 J&F (95% CI [+5.0, +5.0], 6 sequences): it is ahead of" in text
    assert "it cannot be told apart from zero-flow" in text
