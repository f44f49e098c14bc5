"""rpmnet.inference: each named setting propagated, scored, stored, and reused only if current."""
import json

import pytest

from rpmnet import inference
from rpmnet.data.synthetic import ensure_benchmark
from rpmnet.errors import InputError
from rpmnet.experiment import Experiment
from rpmnet.train import TrainConfig, train


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    root = ensure_benchmark("smoke", root=tmp_path_factory.mktemp("data"))
    checkpoint = train(TrainConfig(profile="smoke", data=[str(root)], steps=3,
                                   out=str(tmp_path_factory.mktemp("run") / "run")))
    return root, checkpoint


def test_settings_are_stored_and_reused_only_when_current(model, tmp_path):
    root, checkpoint = model
    exp = Experiment("smoke", results_root=tmp_path / "results", checkpoints_root=tmp_path / "ck",
                     data_root=root.parent)
    table = inference.run_settings(exp, checkpoint, ["flow", "online-a"])
    assert list(table.index) == ["flow", "online-a"] and (table.frames == 10).all()  # smoke: 2 x 5
    kw = dict(max_frames=5, sequences=2)
    path = inference.result_path(exp, "flow")
    stored = json.loads(path.read_text())
    objects = inference.objects(exp, "flow")
    assert objects["J&F-Mean"].mean() == pytest.approx(stored["J&F-Mean"], abs=0.01)
    stored["J&F-Mean"] = -1.0                       # a current record is read back, not recomputed
    path.write_text(json.dumps(stored))
    assert inference.run_setting(exp, checkpoint, "flow", **kw)["J&F-Mean"] == -1.0
    stored["key"]["weights"] = "another"             # another model's record is recomputed
    path.write_text(json.dumps(stored))
    assert inference.run_setting(exp, checkpoint, "flow", **kw)["J&F-Mean"] >= 0


def test_unknown_setting_writes_nothing(model, tmp_path):
    root, checkpoint = model
    with pytest.raises(InputError, match="unknown inference setting 'magic'"):
        inference.run_setting(Experiment("smoke", results_root=tmp_path / "r", data_root=root.parent,
                                         checkpoints_root=tmp_path / "c"), checkpoint, "magic")
    assert not (tmp_path / "r").exists() and not (tmp_path / "c").exists()
