"""rpmnet.ops against torchvision.ops.deform_conv2d (values and gradients), and the row-109 warp."""
import pytest
import torch
import torch.nn.functional as F
from torchvision.ops import deform_conv2d as tv_deform_conv2d

from rpmnet import ops
from rpmnet.errors import InputError
from rpmnet.ops import deform_conv2d, tap_grid, warp

# batch, Cin -> Cout, HxW, kernel, stride, padding, dilation, weight groups, offset groups,
# DCNv2 mask or not, offset scale in pixels (6 sends many taps outside the image).
CASES = {
    "3x3 pad 1": dict(b=2, cin=4, cout=3, size=(7, 8), kernel=(3, 3), stride=1, padding=1,
                      dilation=1, groups=1, offset_groups=1, mask=False, scale=1.0),
    "outside, mask": dict(b=2, cin=4, cout=3, size=(6, 7), kernel=(3, 3), stride=1, padding=0,
                          dilation=1, groups=1, offset_groups=1, mask=True, scale=6.0),
    "stride 2": dict(b=1, cin=3, cout=5, size=(9, 8), kernel=(3, 3), stride=2, padding=1,
                     dilation=1, groups=1, offset_groups=1, mask=True, scale=2.0),
    "dilation 2": dict(b=2, cin=4, cout=2, size=(8, 9), kernel=(3, 3), stride=1, padding=0,
                       dilation=2, groups=1, offset_groups=1, mask=False, scale=2.0),
    "groups": dict(b=2, cin=4, cout=6, size=(6, 6), kernel=(3, 3), stride=1, padding=1,
                   dilation=1, groups=2, offset_groups=2, mask=True, scale=3.0),
    "offset groups": dict(b=1, cin=6, cout=2, size=(6, 5), kernel=(3, 3), stride=1, padding=1,
                          dilation=1, groups=1, offset_groups=3, mask=True, scale=2.0),
    "pairs": dict(b=1, cin=2, cout=3, size=(7, 9), kernel=(2, 3), stride=(1, 2), padding=(1, 0),
                  dilation=(2, 1), groups=1, offset_groups=1, mask=False, scale=1.5),
    "one pixel wide": dict(b=2, cin=2, cout=2, size=(5, 1), kernel=(3, 1), stride=1, padding=(1, 0),
                           dilation=1, groups=1, offset_groups=1, mask=False, scale=0.7),
}
# Both evaluation orders of ours, forced; mixing first exists only without weight groups.
ORDERS = [(name, order) for name, case in CASES.items() for order in ("sample-first", "mix-first")
          if order == "sample-first" or case["groups"] == 1]


@pytest.fixture
def force_order(monkeypatch):
    def force(order):
        monkeypatch.setattr(ops, "_mix_first", lambda *shapes: order == "mix-first")
    return force


def pairs(case):
    return [(v, v) if isinstance(v, int) else v for v in
            (case["stride"], case["padding"], case["dilation"])]


def make(case, dtype=torch.float32, fractional=False):
    """Random (input, offset, weight, bias, mask) for a case, all requiring grad. fractional:
    offsets whose sample positions are never integers, where bilinear sampling has a kink."""
    (h, w), (kh, kw) = case["size"], case["kernel"]
    (sh, sw), (ph, pw), (dh, dw) = pairs(case)
    ho, wo = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1, (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    taps = case["offset_groups"] * kh * kw
    shape = (case["b"], 2 * taps, ho, wo)
    if fractional:
        offset = torch.randint(-4, 5, shape) + 0.1 + 0.8 * torch.rand(shape)
    else:
        offset = case["scale"] * torch.randn(shape)
    tensors = [torch.randn(case["b"], case["cin"], h, w), offset,
               torch.randn(case["cout"], case["cin"] // case["groups"], kh, kw) / 3,
               torch.randn(case["cout"]),
               torch.rand(case["b"], taps, ho, wo) if case["mask"] else None]
    return [None if t is None else t.to(dtype).requires_grad_() for t in tensors]


def call(fn, case, x, offset, weight, bias, mask, **kwargs):
    stride, padding, dilation = pairs(case)
    return fn(x, offset, weight, bias, stride, padding, dilation, mask, **kwargs)


@pytest.mark.parametrize("name, order", ORDERS)
def test_matches_torchvision_values_and_gradients(name, order, force_order):
    force_order(order)
    case = CASES[name]
    inputs = make(case)
    ours, theirs = call(deform_conv2d, case, *inputs), call(tv_deform_conv2d, case, *inputs)
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)
    grad_out = torch.randn_like(ours)
    wrt = [t for t in inputs if t is not None]
    for ours_grad, their_grad, what in zip(torch.autograd.grad(ours, wrt, grad_out),
                                           torch.autograd.grad(theirs, wrt, grad_out),
                                           ("input", "offset", "weight", "bias", "mask")):
        torch.testing.assert_close(ours_grad, their_grad, atol=1e-5, rtol=1e-5,
                                   msg=lambda m: f"gradient wrt {what}: {m}")


def test_some_taps_really_sample_outside():
    # Guards the "outside" case above: it must exercise torchvision's zero border.
    case = CASES["outside, mask"]
    x, offset, weight, *_ = make(case)
    grid = ops._sampling_grid(offset, case["size"], case["kernel"], *pairs(case))
    assert (grid.abs() > 1).float().mean() > 0.2


@pytest.mark.parametrize("name, order", ORDERS)
def test_gradcheck_float64(name, order, force_order):
    force_order(order)
    case = dict(CASES[name], b=1)
    inputs = make(case, torch.float64, fractional=True)
    stride, padding, dilation = pairs(case)

    def fn(x, offset, weight, bias, *mask):
        return deform_conv2d(x, offset, weight, bias, stride, padding, dilation, *mask)

    # fast_mode compares J against finite differences along random directions: the same check
    # as the full Jacobian (which test_gradcheck_float64_full_jacobian does once) at 1/50 the time.
    assert torch.autograd.gradcheck(fn, [t for t in inputs if t is not None], fast_mode=True)


@pytest.mark.parametrize("order", ["sample-first", "mix-first"])
def test_gradcheck_float64_full_jacobian(order, force_order):
    force_order(order)
    case = dict(CASES["outside, mask"], b=1, cin=2, cout=1, size=(3, 3), padding=1)
    inputs = make(case, torch.float64, fractional=True)
    assert torch.autograd.gradcheck(lambda *a: deform_conv2d(*a[:4], 1, 1, 1, a[4]), inputs)


@pytest.mark.parametrize("name, order", ORDERS)
def test_zero_offset_is_plain_convolution(name, order, force_order):
    force_order(order)
    case = CASES[name]
    x, offset, weight, bias, _ = make(case)
    stride, padding, dilation = pairs(case)
    torch.testing.assert_close(
        deform_conv2d(x, torch.zeros_like(offset), weight, bias, stride, padding, dilation),
        F.conv2d(x, weight, bias, stride, padding, dilation, case["groups"]), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("order", ["sample-first", "mix-first"])
def test_channels_last_inputs(order, force_order):
    force_order(order)
    case = CASES["outside, mask"]
    inputs = make(case)
    strided = [t.contiguous(memory_format=torch.channels_last) if t.dim() == 4 else t
               for t in inputs]
    torch.testing.assert_close(call(deform_conv2d, case, *strided),
                               call(tv_deform_conv2d, case, *inputs), atol=1e-5, rtol=1e-5)


def test_backends_agree():
    case = CASES["outside, mask"]
    inputs = make(case)
    fast = call(deform_conv2d, case, *inputs, backend="fast")
    assert torch.equal(call(deform_conv2d, case, *inputs, backend="auto"), fast)  # CPU -> ours
    assert torch.equal(call(deform_conv2d, case, *inputs, backend="torchvision"),
                       call(tv_deform_conv2d, case, *inputs))
    torch.testing.assert_close(call(deform_conv2d, case, *inputs, backend="torchvision"), fast,
                               atol=1e-5, rtol=1e-5)


def test_order_choice_at_the_matching_module_shapes():
    # Rows 106-108 shrink the channels (64->32->16->2), so mixing first samples fewer values;
    # a stride-2 conv would mix 4x more pixels than it outputs, so there sampling goes first.
    for cin, cout in ((64, 32), (32, 16), (16, 2)):
        assert ops._mix_first((8, cin, 64, 64), (cout, cin, 3, 3), (8, 18, 64, 64), 1, 1)
    assert not ops._mix_first((8, 64, 64, 64), (32, 64, 3, 3), (8, 18, 32, 32), 1, 1)
    assert not ops._mix_first((8, 16, 64, 64), (32, 16, 3, 3), (8, 18, 64, 64), 1, 1)


def test_warp_zero_flow_returns_source():
    source = torch.randn(2, 3, 6, 7)
    torch.testing.assert_close(warp(source, torch.zeros(2, 2, 6, 7)), source, atol=1e-6, rtol=0)


@pytest.mark.parametrize("channels", [1, 3])
def test_warp_is_identity_weight_deformable_conv(channels):
    source, flow = torch.randn(2, channels, 6, 7), 3 * torch.randn(2, 2, 6, 7)
    identity = torch.ones(channels, 1, 1, 1)  # groups = channels: each channel copies itself
    expected = tv_deform_conv2d(source, flow, identity)
    torch.testing.assert_close(warp(source, flow), expected, atol=1e-6, rtol=0)
    torch.testing.assert_close(deform_conv2d(source, flow, identity), expected, atol=1e-6, rtol=0)


def test_warp_integer_flow_shifts_and_zeros_enter():
    source = torch.randn(1, 2, 5, 6)
    flow = torch.tensor([1.0, -2.0]).view(1, 2, 1, 1).expand(1, 2, 5, 6)  # read (y + 1, x - 2)
    expected = torch.zeros_like(source)
    expected[..., :4, 2:] = source[..., 1:, :4]
    torch.testing.assert_close(warp(source, flow), expected, atol=1e-6, rtol=0)


BAD = {  # name -> (change to the "3x3 pad 1" arguments, words the message must contain)
    "offset channels": (lambda a: a.update(offset=a["offset"][:, :17]), "offset must be"),
    "offset size": (lambda a: a.update(offset=a["offset"][..., :5]),
                    r"offset must be \(B=2, .*7, 8\)"),
    "offset batch": (lambda a: a.update(offset=a["offset"][:1]), "offset must be"),
    "offset groups": (lambda a: a.update(offset=torch.cat([a["offset"]] * 3, 1)),
                      "offset_groups dividing Cin=4"),
    "mask": (lambda a: a.update(mask=torch.rand(2, 8, 7, 8)), r"mask must be \(2, 9, 7, 8\)"),
    "bias": (lambda a: a.update(bias=torch.zeros(4)), r"bias must be \(3,\)"),
    "weight groups": (lambda a: a.update(weight=torch.zeros(3, 3, 3, 3)), "groups dividing"),
    "3-D input": (lambda a: a.update(input=a["input"][0]), "input must be 4-D"),
    "kernel too big": (lambda a: a.update(weight=torch.zeros(3, 4, 10, 3)), "does not fit"),
    "stride 0": (lambda a: a.update(stride=0), "stride must be"),
    "padding triple": (lambda a: a.update(padding=(1, 1, 1)), "padding must be"),
    "backend": (lambda a: a.update(backend="cuda"), "backend 'cuda' unknown"),
}


@pytest.mark.parametrize("name", BAD)
def test_bad_arguments_raise_a_helpful_value_error(name):
    change, words = BAD[name]
    x, offset, weight, bias, _ = make(CASES["3x3 pad 1"])
    args = dict(input=x, offset=offset, weight=weight, bias=bias, padding=1)
    change(args)
    with pytest.raises(ValueError, match=words) as err:
        deform_conv2d(**args)
    assert isinstance(err.value, InputError)


@pytest.mark.parametrize("source, flow", [((2, 3, 6, 7), (2, 2, 6, 6)),  # flow size
                                          ((2, 3, 6, 7), (2, 3, 6, 7)),  # 3 flow channels
                                          ((1, 3, 6, 7), (2, 2, 6, 7)),  # batch
                                          ((3, 6, 7), (2, 6, 7))])
def test_warp_bad_shapes(source, flow):
    with pytest.raises(InputError, match=r"flow \(B, 2, h, w\)"):
        warp(torch.zeros(source), torch.zeros(flow))


def test_sampling_grid_is_float32_for_bfloat16_offsets():
    # Under bf16 autocast the offset conv outputs bf16; 8 mantissa bits would round a tap at
    # x = 39 of a 40-wide map by up to 0.08 px before grid_sample (which upcasts) reads it.
    offset = (3 * torch.randn(2, 18, 24, 40)).bfloat16()
    grid = ops._sampling_grid(offset, (24, 40), (3, 3), (1, 1), (1, 1), (1, 1))
    assert grid.dtype == torch.float32
    assert torch.equal(grid, ops._sampling_grid(offset.float(), (24, 40), (3, 3), (1, 1), (1, 1), (1, 1)))


@pytest.mark.parametrize("order", ["sample-first", "mix-first"])
def test_bf16_autocast_values_and_gradients(order, force_order):
    """What rows 106-108 compute under `rpmnet train --amp true` on CPU: close to float32, with
    float32 gradients for float32 weights (bf16 rounds each factor to about 3 digits)."""
    force_order(order)
    x = torch.randn(2, 16, 24, 40, requires_grad=True)
    offset = (3 * torch.randn(2, 18, 24, 40)).bfloat16().float().requires_grad_()
    weight = (torch.randn(8, 16, 3, 3) / 12).requires_grad_()
    outputs, grads = [], []
    for amp in (False, True):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
            out = deform_conv2d(x, offset.bfloat16() if amp else offset, weight, padding=1)
        (out.float() * torch.linspace(-1, 1, out.numel()).view(out.shape)).sum().backward()
        outputs.append(out.float().detach())
        grads.append([t.grad.clone() for t in (x, offset, weight)])
        for t in (x, offset, weight):
            t.grad = None
    assert all(g.dtype == torch.float32 for g in grads[1])
    for ours, exact in zip([outputs[1]] + grads[1], [outputs[0]] + grads[0]):
        assert (ours - exact).norm() < 0.02 * exact.norm()


@pytest.mark.parametrize("kernel, dilation", [(3, 1), (3, 2), (5, 1)])
def test_tap_grid_is_where_deform_conv2d_reads_with_zero_offsets(kernel, dilation):
    # Pixel (y, x) of the image holds 100y + x; one-hot kernels put tap k's sample in channel k.
    grid = tap_grid(kernel, dilation)
    taps = kernel * kernel
    assert grid.shape == (taps, 2) and grid.dtype == torch.float32
    assert grid[0].tolist() == [-(kernel // 2) * dilation] * 2 and grid[1, 0] == grid[0, 0]  # row-major
    size, pad = 11, kernel // 2 * dilation
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    image = (100 * yy + xx).float()[None, None]
    out = deform_conv2d(image, torch.zeros(1, 2 * taps, size, size), torch.eye(taps).view(taps, 1, kernel, kernel),
                        padding=pad, dilation=dilation)
    y, x = 5, 5
    read = grid + torch.tensor([y, x])
    torch.testing.assert_close(out[0, :, y, x], 100 * read[:, 0] + read[:, 1], atol=1e-3, rtol=0)
