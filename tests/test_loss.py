"""The training objective: Lab as scikit-image computes it, the zero-flow baseline, float32 losses."""
import numpy as np
import pytest
import torch
from skimage.color import rgb2lab

from rpmnet.loss import LOSSES, losses, rgb_to_lab
from rpmnet.model.rpmnet import RPMNet


def _colours():
    """Random colours plus the corners of the cube and values around sRGB's linear segment."""
    rng = np.random.default_rng(0)
    corners = np.array([[i >> 2 & 1, i >> 1 & 1, i & 1] for i in range(8)], float)
    dark = np.repeat(np.linspace(0, 0.08, 9)[:, None], 3, 1) * [1, 0.5, 0.25]
    return np.concatenate([rng.random((500, 3)), corners, dark])


def test_lab_matches_scikit_image():
    rgb = _colours()
    expected = rgb2lab(rgb[None])[0]                                   # L in [0, 100]
    ours = rgb_to_lab(torch.tensor(rgb.T[None, :, :, None], dtype=torch.float32))[0, :, :, 0].T
    # Ours is Lab / 100; the white points differ in the 5th digit (see rpmnet/loss.py).
    np.testing.assert_allclose(ours.double().numpy() * 100, expected, atol=0.01)
    assert np.abs(expected).max() > 50                                 # the test sees real colours


def test_lab_white_and_black_are_exact():
    lab = rgb_to_lab(torch.tensor([1.0, 0.0]).view(2, 1, 1, 1).expand(2, 3, 1, 1))
    assert lab[:, :, 0, 0].tolist() == [[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]]


def test_lab_ignores_autocast():
    rgb = torch.rand(2, 3, 5, 7)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        inside = rgb_to_lab(rgb)
    assert inside.dtype == torch.float32 and torch.equal(inside, rgb_to_lab(rgb))


@pytest.mark.parametrize("loss", sorted(LOSSES))
@pytest.mark.parametrize("color_space", ["rgb", "lab"])
def test_fresh_model_reconstructs_with_zero_flow(loss, color_space):
    """The last matching layer starts at zero: the first loss is the zero-flow loss, exactly;
    a frame against itself costs nothing, and another frame costs something."""
    model = RPMNet("resnet18").train()
    frames = torch.rand(2, 3, 32, 32)
    value, zero = losses(model, frames, frames.roll(1, 0), loss, color_space)
    assert value.dtype == zero.dtype == torch.float32 and value.requires_grad
    assert value.item() == pytest.approx(zero.item(), rel=1e-6) and zero.item() > 1e-3
    same, _ = losses(model, frames, frames, loss, color_space)
    assert same.item() < 1e-6


def test_losses_stay_float32_under_bf16_autocast():
    model = RPMNet("resnet18").train()
    frames = torch.rand(2, 3, 32, 32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        value, zero = losses(model, frames, frames.roll(1, 0), "l1", "lab")
    assert value.dtype == zero.dtype == torch.float32
    assert zero.item() == losses(model, frames, frames.roll(1, 0), "l1", "lab")[1].item()
