"""Deformable convolution (rows 106-108) and the row-109 warp, built from F.grid_sample.

`deform_conv2d` is a drop-in for `torchvision.ops.deform_conv2d`: same arguments, offset layout
and results (to float32 rounding), autograd through plain PyTorch ops. On CPU it is 11-40x
faster than torchvision's kernel at the matching module's shapes (results/bench_ops.csv).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .errors import InputError

BACKENDS = ("auto", "fast", "torchvision")
# One bilinear sample (forward + backward) costs about as much as this many multiply-adds on
# CPU (timing both orders at rows 106-108 and at stride 2); it picks the order below.
SAMPLE_COST = 75


def deform_conv2d(input, offset, weight, bias=None, stride=1, padding=0, dilation=1, mask=None,
                  *, backend="auto"):
    """Deformable convolution (DCNv1, or DCNv2 with `mask`), as torchvision.ops.deform_conv2d.

    input (B, Cin, H, W); offset (B, 2*G*kh*kw, Ho, Wo) holding a (dy, dx) pair per offset group
    and kernel tap (taps row-major over kh, kw); weight (Cout, Cin/groups, kh, kw); bias (Cout,);
    mask (B, G*kh*kw, Ho, Wo). stride, padding, dilation: int or pair. Samples outside the
    image read zeros. backend: "fast" (ours), "torchvision", or "auto" = ours on CPU and
    torchvision's native kernel on CUDA (ours is not measured there; force it with "fast").
    """
    check_backend(backend)
    stride = _pair(stride, "stride", 1)
    padding = _pair(padding, "padding", 0)
    dilation = _pair(dilation, "dilation", 1)
    groups, offset_groups = _check(input, offset, weight, bias, mask, stride, padding, dilation)
    if backend == "torchvision" or (backend == "auto" and input.device.type == "cuda"):
        import torchvision.ops

        return torchvision.ops.deform_conv2d(input, offset, weight, bias, stride, padding,
                                             dilation, mask)
    grid = _sampling_grid(offset, input.shape[-2:], weight.shape[-2:], stride, padding, dilation)
    out = (_mix_then_sample(input, grid, weight, mask)
           if _mix_first(input.shape, weight.shape, offset.shape, groups, offset_groups)
           else _sample_then_mix(input, grid, weight, mask, groups))
    return out if bias is None else out + bias.view(1, -1, 1, 1)


def check_backend(backend) -> None:
    if backend not in BACKENDS:
        raise InputError(f"deform_conv2d: backend {backend!r} unknown; use one of {BACKENDS}")


def warp(source, flow):
    """Row 109: bilinear warp of source (B, C, h, w) by flow (B, 2, h, w) = (dy, dx) in pixels.

    out[b, c, y, x] = source[b, c] sampled at (y + dy, x + dx), zeros outside: the 1x1
    deformable conv with identity weights (ASSUMPTION 1), for any number of channels C.
    """
    if source.dim() != 4 or flow.dim() != 4 or flow.shape[1] != 2 \
            or flow.shape[0] != source.shape[0] or flow.shape[-2:] != source.shape[-2:]:
        raise InputError(f"warp: expected source (B, C, h, w) and flow (B, 2, h, w) with the same "
                         f"B, h, w; got source {tuple(source.shape)} and flow {tuple(flow.shape)}")
    b, _, h, w = flow.shape
    grid = _sampling_grid(flow, (h, w), (1, 1), (1, 1), (0, 0), (1, 1))
    return F.grid_sample(source, grid.reshape(b, h, w, 2), align_corners=False)


def tap_grid(kernel: int = 3, dilation: int = 1) -> torch.Tensor:
    """(kernel*kernel, 2) float (dy, dx) of a kernel's taps around its centre, row-major: the
    order of deform_conv2d's offset pairs, so grid + offsets is where each tap reads."""
    r = torch.arange(kernel, dtype=torch.float32) - kernel // 2
    return torch.stack(torch.meshgrid(r, r, indexing="ij"), -1).view(-1, 2) * dilation


def _mix_first(input_shape, weight_shape, offset_shape, groups, offset_groups):
    """Sampling first reads Cin channels per tap; mixing first reads G*Cout, but mixes at the
    input's resolution and only without weight groups. Per tap, which costs less?"""
    (cin, h, w), cout, (ho, wo) = input_shape[1:], weight_shape[0], offset_shape[-2:]
    return groups == 1 and (SAMPLE_COST * offset_groups * cout * ho * wo + cout * cin * h * w
                            < SAMPLE_COST * cin * ho * wo + cout * cin * ho * wo)


def _sampling_grid(offset, size, kernel, stride, padding, dilation):
    """Where every tap reads, as grid_sample coordinates: (B, G, kh*kw, Ho, Wo, (x, y)).

    Tap (i, j) of output pixel (y, x) reads the input at
        (y*stride - padding + i*dilation + dy,  x*stride - padding + j*dilation + dx).
    grid_sample wants (x, y) normalised to [-1, 1]; with align_corners=False pixel p of a side n
    sits at (2p + 1)/n - 1 (unlike align_corners=True this also works for n = 1). Its zero
    padding is torchvision's rule: each of the 4 bilinear corners outside the image counts 0.
    """
    (b, _, ho, wo), (h, w), (kh, kw) = offset.shape, size, kernel
    # At least float32: under bfloat16 autocast the offsets arrive in bfloat16, whose 8-bit
    # mantissa would put a tap at x = 30 up to 0.06 px off before grid_sample reads it.
    offset = offset.to(torch.promote_types(offset.dtype, torch.float32))
    like = dict(dtype=offset.dtype, device=offset.device)
    tap_y = torch.arange(kh, **like).repeat_interleave(kw).view(-1, 1, 1) * dilation[0]
    tap_x = torch.arange(kw, **like).repeat(kh).view(-1, 1, 1) * dilation[1]
    y = (torch.arange(ho, **like) * stride[0] - padding[0]).view(-1, 1)
    x = torch.arange(wo, **like) * stride[1] - padding[1]
    offset = offset.reshape(b, -1, kh * kw, 2, ho, wo)
    py = offset[:, :, :, 0] + (tap_y + y)
    px = offset[:, :, :, 1] + (tap_x + x)
    return torch.stack(((2 * px + 1) / w - 1, (2 * py + 1) / h - 1), dim=-1)


def _sample_then_mix(input, grid, weight, mask, groups):
    """im2col by bilinear sampling, then one matrix product per weight group."""
    b, cin, h, w = input.shape
    _, g, k, ho, wo, _ = grid.shape
    # One grid_sample for all taps: they stack along the height of the sampled image.
    cols = F.grid_sample(input.reshape(b * g, cin // g, h, w), grid.reshape(b * g, k * ho, wo, 2),
                         align_corners=False).reshape(b, g, cin // g, k, ho * wo)
    if mask is not None:
        cols = cols * mask.reshape(b, g, 1, k, ho * wo)
    # (channel, tap) rows in the order weight flattens to; split by weight group.
    cols = cols.reshape(b, groups, cin // groups * k, ho * wo)
    out = torch.matmul(weight.reshape(groups, weight.shape[0] // groups, -1), cols)
    return out.view(b, -1, ho, wo)


def _mix_then_sample(input, grid, weight, mask):
    """Sampling is linear in the image, so each tap's channel mix can come first:
    out = sum over (offset group, tap) of mask * sample(W[:, group, tap] @ input[group])."""
    b, cin, h, w = input.shape
    _, g, k, ho, wo, _ = grid.shape
    cout = weight.shape[0]
    mix = weight.reshape(cout, g, cin // g, k).permute(1, 3, 0, 2).reshape(g * k * cout, cin // g)
    taps = F.conv2d(input, mix[..., None, None], groups=g)  # (B, G*K*Cout, H, W)
    out = F.grid_sample(taps.reshape(b * g * k, cout, h, w), grid.reshape(b * g * k, ho, wo, 2),
                        align_corners=False).reshape(b, g * k, cout, ho, wo)
    if mask is not None:
        out = out * mask.reshape(b, g * k, 1, ho, wo)
    return out.sum(1)


def _pair(value, name, minimum):
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int) and v >= minimum for v in pair):
        raise InputError(f"deform_conv2d: {name} must be an int or a pair of ints >= {minimum}; "
                         f"got {value!r}")
    return pair


def _check(input, offset, weight, bias, mask, stride, padding, dilation):
    """Shapes as torchvision expects them -> (weight groups, offset groups)."""
    for name, t in (("input", input), ("offset", offset), ("weight", weight), ("mask", mask)):
        if t is not None and t.dim() != 4:
            raise InputError(f"deform_conv2d: {name} must be 4-D; got shape {tuple(t.shape)}")
    (b, cin, h, w), (cout, cin_g, kh, kw) = input.shape, weight.shape
    if cin_g == 0 or cin % cin_g or cout % (cin // cin_g):
        raise InputError(f"deform_conv2d: weight {tuple(weight.shape)} needs Cin/groups channels "
                         f"with groups dividing both Cin={cin} and Cout={cout}")
    ho = (h + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    wo = (w + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    taps = kh * kw
    if ho < 1 or wo < 1:
        raise InputError(f"deform_conv2d: a {kh}x{kw} kernel (dilation {dilation}, padding "
                         f"{padding}) does not fit the {h}x{w} input")
    if (offset.shape[0] != b or offset.shape[-2:] != (ho, wo) or offset.shape[1] == 0
            or offset.shape[1] % (2 * taps) or cin % (offset.shape[1] // (2 * taps))):
        raise InputError(f"deform_conv2d: offset must be (B={b}, 2*offset_groups*{taps}, {ho}, "
                         f"{wo}) with offset_groups dividing Cin={cin}; got {tuple(offset.shape)}")
    offset_groups = offset.shape[1] // (2 * taps)
    if mask is not None and mask.shape != (b, offset_groups * taps, ho, wo):
        raise InputError(f"deform_conv2d: mask must be {(b, offset_groups * taps, ho, wo)}; "
                         f"got {tuple(mask.shape)}")
    if bias is not None and bias.shape != (cout,):
        raise InputError(f"deform_conv2d: bias must be ({cout},); got {tuple(bias.shape)}")
    return cin // cin_g, offset_groups
