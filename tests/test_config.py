"""ASSUMPTIONS: switches apart from fixed readings, and texts that say what the code does."""
import torch

from rpmnet.config import ASSUMPTIONS, assumptions_table
from rpmnet.loss import losses
from rpmnet.model.rpmnet import RPMNet


def test_fixed_readings_are_listed_apart_from_switches():
    table = assumptions_table()
    assert list(table.kind) == sorted(table.kind, key=lambda k: k == "fixed reading")
    fixed = set(table.setting[table.kind == "fixed reading"])
    assert fixed == {a.name for a in ASSUMPTIONS.values() if len(a.choices) == 1}
    assert {"row109", "flow_units", "init"} <= fixed and not {"loss", "color_space"} & fixed
    assert sorted(table.number) == sorted(a.number for a in ASSUMPTIONS.values())


def test_lab_loss_still_feeds_rgb_to_the_embedding():
    """ASSUMPTION 3's text: the colour space is the loss's; the embedding always sees RGB."""
    assert "embedding always sees RGB" in ASSUMPTIONS["color_space"].text
    model, seen = RPMNet("resnet18").train(), []
    embed = model.embed
    model.embed = lambda frames: seen.append(frames) or embed(frames)
    target, reference = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    losses(model, target, reference, color_space="lab")
    assert len(seen) == 1 and torch.equal(seen[0], torch.cat([target, reference]))
