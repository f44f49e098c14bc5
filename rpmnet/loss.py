"""The self-supervised training objective (ASSUMPTION 3): reconstruct the target at H/4.

The reference frame's colours, resized to H/4, are warped through the predicted flow (rows
106-109) and compared with the target at H/4: L1 by default, Huber as an option, in RGB or in
CIE Lab. No labels anywhere: the colours of the video are the supervision.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def _huber(a, b):
    # Colours live in [0, 1]: delta 1 would make Huber plain L2; 0.1 keeps it L1-like off noise.
    return F.huber_loss(a, b, delta=0.1)


LOSSES = {"l1": F.l1_loss, "huber": _huber}

# sRGB (D65) -> XYZ, and the white point: the matrix's row sums, so that RGB white maps to
# exactly L=100, a=b=0 (scikit-image's rounded D65 white gives a, b of a few 1e-3 there).
_RGB_TO_XYZ = torch.tensor([[0.412453, 0.357580, 0.180423],
                            [0.212671, 0.715160, 0.072169],
                            [0.019334, 0.119193, 0.950227]])
_WHITE = torch.tensor([0.950456, 1.0, 1.088754])


def rgb_to_lab(rgb):
    """(B, 3, h, w) sRGB in [0, 1] -> CIE Lab / 100 (L in [0, 1], a and b about [-1, 1]).

    Divided by 100 so that an L1 on Lab is on the scale of the L1 on RGB (the same lr fits).
    Always in float32, whatever autocast is on: a matrix product in bfloat16 would round the
    colours to 3 digits before the loss compares them.
    """
    with torch.autocast(rgb.device.type, enabled=False):
        rgb = rgb.float()
        linear = torch.where(rgb > 0.04045, ((rgb + 0.055) / 1.055) ** 2.4, rgb / 12.92)
        xyz = torch.einsum("ij,bjhw->bihw", _RGB_TO_XYZ.to(rgb), linear) / _WHITE.to(rgb).view(1, 3, 1, 1)
        d = 6 / 29
        f = torch.where(xyz > d ** 3, xyz.clamp_min(1e-12) ** (1 / 3), xyz / (3 * d * d) + 4 / 29)
        fx, fy, fz = f.unbind(1)
        return torch.stack([1.16 * fy - 0.16, 5 * (fx - fy), 2 * (fy - fz)], 1)


COLOR_SPACES = {"rgb": lambda x: x, "lab": rgb_to_lab}


def losses(model, target, reference, loss="l1", color_space="rgb"):
    """(loss, zero_flow_loss) of one batch of frames (B, 3, c, c) in [0, 1].

    The warp fills pixels that sample outside the reference with zeros, and those pixels stay
    in the loss on purpose: masking them out would make "point everything outside the image"
    a zero-loss solution. The price is a small penalty where content truly enters the frame.
    zero_flow_loss is the same loss with the flow forced to zero (the reference as it is): the
    identity baseline that learning has to beat. Both are computed in float32 under autocast.
    """
    from .model.rpmnet import shrink
    from .ops import warp

    full = target.shape[-2:]
    small = (math.ceil(full[0] / 4), math.ceil(full[1] / 4))
    colour = COLOR_SPACES[color_space]
    # Colour-convert after shrinking, so the source and the goal see the same resampling.
    source = colour(shrink(reference.float(), full, small))
    goal = colour(shrink(target.float(), full, small))
    reconstruction = model(target, reference, source.to(target.dtype))
    with torch.autocast(target.device.type, enabled=False):
        value = LOSSES[loss](reconstruction.float(), goal)
        with torch.no_grad():
            zero = LOSSES[loss](warp(source, source.new_zeros(source.shape[0], 2, *small)), goal)
    return value, zero
