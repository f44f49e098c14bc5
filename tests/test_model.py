"""The RPM-Net model against Table 1 (shapes), Table 2 (all matching settings) and its contract."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import rpmnet
from rpmnet.config import BACKBONES, ModelConfig, table2
from rpmnet.errors import InputError
from rpmnet.model.matching import DeformConv, Matching, Warp
from rpmnet.model.rpmnet import RPMNet
from rpmnet.model.table1 import architecture_table, parameter_table


@pytest.fixture(scope="module")
def small():
    torch.manual_seed(0)
    return RPMNet("resnet18").eval()


def frames(b=1, h=64, w=64, n=2):
    return torch.rand(n, b, 3, h, w)


@pytest.mark.parametrize("backbone", BACKBONES)
def test_table1_shapes_at_256(backbone):
    table = architecture_table(backbone, 256, 256)
    assert list(table.number) == ["IE1", "IE2", "1", "2", "3-11", "11-23", "24-92", "93-101", "102",
                                  "103", "104", "105", "IM1", "IM2", "106", "107", "108", "109"]
    assert table.match.all(), table[~table.match]
    wide = backbone in ("resnet50", "resnet101")
    shapes = dict(zip(table.number, table.output_shape))
    assert shapes["93-101"] == ("(2048, 4, 4)" if wide else "(512, 4, 4)")
    assert shapes["102"] == ("(1024, 8, 8)" if wide else "(256, 8, 8)")
    assert shapes["105"] == "(32, 64, 64)" and shapes["IM1"] == "(64, 64, 64)"
    assert shapes["108"] == "(2, 64, 64)" and shapes["109"] == "(3, 64, 64)"
    assert table.params.sum() == parameter_table([backbone]).total[0]


@pytest.mark.parametrize("backbone", BACKBONES)
def test_table1_shapes_at_480x854_through_padding(backbone):
    table = architecture_table(backbone, 480, 854)
    assert table.match.all(), table[~table.match]
    shapes = dict(zip(table.number, table.output_shape))
    assert shapes["1"] == "(32, 256, 448)"                      # padded to 512 x 896
    for number in ("105", "106", "107", "108", "109"):
        assert shapes[number].endswith(", 120, 214)"), (number, shapes[number])
    if backbone == "resnet101":                                 # the paper's own row labels
        assert dict(zip(table.number, table.rows_at_depth))["24-92"] == "24-92"
        assert dict(zip(table.number, table.rows_at_depth))["11-23"] == "12-23"


def test_parameter_table_counts_match_real_models():
    table = parameter_table(["resnet18"])
    assert table.total[0] == sum(p.numel() for p in RPMNet("resnet18").parameters())
    assert table.total[0] == table.embedding[0] + table.matching[0]


def _table2_cells():
    """All 28 settings of Table 2 (the issue asks for every one, not a sample)."""
    return [ModelConfig(r.backbone, r.matching, r.layers, r.dilation) for r in table2().itertuples()]


@pytest.mark.parametrize("cfg", _table2_cells(), ids=lambda c: c.cell)
def test_table2_setting_trains(cfg):
    model = RPMNet.from_config(cfg).train()
    assert model.config == cfg
    last = model.matching.layers[-1]
    with torch.no_grad():                    # as after a first step: the zero flow head has moved
        last.weight.normal_(std=0.01)
    target, reference = frames()
    warped = model(target, reference, reference)
    assert warped.shape == (1, 3, 16, 16)
    F.l1_loss(warped, F.interpolate(target, size=(16, 16), mode="area")).backward()
    grads = {name: p.grad for name, p in model.named_parameters()}
    assert all(g is not None and torch.isfinite(g).all() for g in grads.values())
    assert grads["embedding.stem.0.weight"].abs().sum() > 0
    for layer in model.matching.layers:
        assert layer.weight.grad.abs().sum() > 0
        if isinstance(layer, DeformConv):    # the offsets learn too
            assert layer.offset.weight.grad.abs().sum() > 0


def test_warp_with_zero_flow_returns_its_source():
    for channels in (1, 3, 5):
        source = torch.rand(2, channels, 9, 13)
        assert torch.allclose(Warp()(source, torch.zeros(2, 2, 9, 13)), source, atol=1e-6)


def test_model_at_init_is_the_identity_warp(small):
    target, reference = frames(h=96, w=80)
    source = torch.rand(1, 4, 96, 80)
    with torch.no_grad():
        assert torch.allclose(small(target, reference, source),
                              F.interpolate(source, size=(24, 20), mode="area"), atol=1e-6)
        small_source = torch.rand(1, 4, 24, 20)          # already at H/4: used as is
        assert torch.allclose(small(target, reference, small_source), small_source, atol=1e-6)


def test_deformable_layers_at_init_are_standard_convs():
    matching = Matching("deformable")
    x = torch.randn(2, 64, 12, 10)
    for layer in matching.layers:
        with torch.no_grad():
            layer.weight.normal_(std=0.05)
        out, offset = layer(x)
        assert not offset.any()
        assert torch.allclose(out, nn.Conv2d.forward(layer, x), rtol=1e-4, atol=1e-5)
        x = F.relu(out)


def test_matching_exposes_offsets_and_sampling_points():
    matching = Matching("deformable")
    with torch.no_grad():
        matching.layers[0].offset.bias[0::2] = 0.5       # row 106: every tap 0.5 pixel lower
    flow, offsets = matching(torch.randn(1, 64, 10, 12), return_offsets=True)
    assert flow.shape == (1, 2, 10, 12) and [o.shape for o in offsets] == [(1, 18, 10, 12)] * 3
    points = matching.sampling_points(offsets, 4, 5)
    assert [p.shape for p in points] == [(9, 2), (81, 2), (729, 2)]
    grid = torch.tensor([(4 + dy + 0.5, 5 + dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)])
    assert torch.allclose(points[0], grid)
    dilated = Matching("dilated", dilation=6)
    _, none = dilated(torch.randn(1, 64, 10, 12), return_offsets=True)
    assert none == [None] * 3
    assert dilated.sampling_points(none, 4, 5)[0][0].tolist() == [-2.0, -1.0]



def test_the_deform_backend_is_the_models_attribute_and_changes_no_weights():
    """bench train's "torchvision_deform" variant: rows 106-108 on torchvision's kernel through
    RPMNet.set_deform_backend; the same flow to float32 rounding, the same state_dict."""
    torch.manual_seed(0)
    net = RPMNet("resnet18").eval()
    with torch.no_grad():
        for layer in net.matching.layers:   # offsets that move the taps, so the kernels sample
            layer.offset.weight.normal_(std=0.05)
            layer.offset.bias.normal_(std=0.5)
        net.matching.layers[-1].weight.normal_(std=0.05)
    target, reference = torch.rand(1, 32, 12, 10), torch.rand(1, 32, 12, 10)
    keys = {k: v.clone() for k, v in net.state_dict().items()}
    with torch.no_grad():
        auto = net.flow(target, reference)
        assert net.set_deform_backend("torchvision") is net
        assert [layer.backend for layer in net.matching.layers] == ["torchvision"] * 3
        theirs = net.flow(target, reference)
    assert auto.abs().max() > 1e-3
    torch.testing.assert_close(theirs, auto, atol=1e-5, rtol=1e-5)
    state = net.state_dict()
    assert state.keys() == keys.keys() and all(torch.equal(state[k], keys[k]) for k in keys)
    with pytest.raises(InputError, match="backend 'cuda' unknown"):
        net.set_deform_backend("cuda")
    net.matching.layers[1].backend = "bogus"   # what forward reads, unchecked: the op refuses it
    with pytest.raises(InputError, match="backend 'bogus' unknown"):
        net.flow(target, reference)
    Matching("standard").set_deform_backend("fast")   # no deformable layer: nothing to set

@pytest.mark.parametrize("hw", [(100, 150), (101, 153), (64, 128), (7, 5)])
def test_embedding_is_quarter_size_rounded_up(small, hw):
    with torch.no_grad():
        out = small.embed(torch.rand(1, 3, *hw))
    assert out.shape == (1, 32, math.ceil(hw[0] / 4), math.ceil(hw[1] / 4))


def test_channels_last_gives_the_same_result(small):
    target, reference = frames(h=64, w=96)
    with torch.no_grad():
        small.matching.layers[-1].weight.normal_(std=0.1)
        expected = small(target, reference, reference)
        fast = small.to(memory_format=torch.channels_last)
        cl = [t.contiguous(memory_format=torch.channels_last) for t in (target, reference)]
        got = fast(cl[0], cl[1], cl[1])
        small.to(memory_format=torch.contiguous_format)
        small.matching.layers[-1].weight.zero_()
    assert torch.allclose(got, expected, atol=1e-4)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")
def test_cuda_matches_cpu(small):
    target, reference = frames(h=64, w=96)
    with torch.no_grad():
        small.matching.layers[-1].weight.normal_(std=0.1)
        expected = small(target, reference, reference)
        got = small.cuda()(target.cuda(), reference.cuda(), reference.cuda()).cpu()
        small.cpu().matching.layers[-1].weight.zero_()
    assert torch.allclose(got, expected, atol=1e-3)


@pytest.mark.parametrize("kwargs, message", [
    (dict(backbone="resnet152"), "allowed: resnet18, resnet34, resnet50, resnet101"),
    (dict(matching="deformable", layers=4), r"allowed: \(3,\)"),
    (dict(matching="standard", layers=2), r"allowed: \(1, 3, 5\)"),
    (dict(matching="dilated", dilation=2), r"allowed: \(3, 6, 9\)"),
    (dict(matching="sparse"), "allowed: deformable, standard, dilated"),
])
def test_bad_settings_say_what_is_allowed(kwargs, message):
    with pytest.raises(ValueError, match=message):
        RPMNet(**kwargs)


@pytest.mark.parametrize("bad", [torch.rand(3, 32, 32), torch.rand(1, 1, 32, 32),
                                 torch.randint(0, 255, (1, 3, 32, 32)), torch.rand(1, 3, 0, 32),
                                 "frame.png"])
def test_bad_frames_say_what_is_allowed(small, bad):
    with pytest.raises(ValueError, match=r"frames must be a float tensor \(B, 3, H, W\)"):
        small.embed(bad)


def test_bad_pairs_and_sources_say_what_is_allowed(small):
    with pytest.raises(ValueError, match="target and reference frames must have the same shape"):
        small(torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 96), torch.rand(1, 3, 64, 64))
    with pytest.raises(ValueError, match=r"source must be a float tensor \(B, C, 64, 64\) or "
                                         r"\(B, C, 16, 16\)"):
        small(torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 64), torch.rand(1, 3, 32, 32))
    feat = torch.rand(1, 32, 16, 16)
    with pytest.raises(ValueError, match="target and reference features must both be"):
        small.flow(feat, torch.rand(1, 32, 16, 8))
    with pytest.raises(ValueError, match="target and reference features must both be"):
        small.flow(torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16))
    with pytest.raises(ValueError, match=r"source must be \(B, C, h, w\) = \(1, C, 16, 16\)"):
        small.match(feat, feat, torch.rand(2, 1, 16, 16))
    with pytest.raises(ValueError, match="height and width must be positive integers"):
        architecture_table("resnet18", 0, 64)


def test_package_exposes_the_model():
    assert rpmnet.RPMNet is RPMNet and rpmnet.architecture_table is architecture_table
