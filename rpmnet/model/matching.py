"""Matching module: Table 1 rows 106-109 and the Table 2 variants.

Input: the target and reference features concatenated, (B, 64, h, w) with h, w = H/4.
Rows 106-108 turn them into a flow (B, 2, h, w) = (dy, dx) in H/4 pixels (ASSUMPTION 2);
row 109 warps the source (reference image or t-1 mask) with it (ASSUMPTION 1).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ModelConfig
from ..ops import check_backend, deform_conv2d, tap_grid, warp

IN_CHANNELS = 64                                        # row IM1: 32 target + 32 reference
WIDTHS = {1: (2,), 3: (32, 16, 2), 5: (32, 32, 16, 16, 2)}   # ASSUMPTION 8; 3 = rows 106-108
KERNEL = 3


class Conv(nn.Conv2d):
    """A standard (dilation 1) or dilated 3x3 conv of Table 2; it samples no offsets."""

    def __init__(self, inplanes: int, planes: int, dilation: int = 1):
        super().__init__(inplanes, planes, KERNEL, padding=dilation, dilation=dilation)

    def forward(self, x):
        return super().forward(x), None


class DeformConv(nn.Conv2d):
    """Rows 106-108: a 3x3 deformable conv with its own 3x3 offset conv (18 = 2 x 9 channels,
    one deformable group). The offset conv starts at zero, so at init this is a standard conv
    with the same weights (and the same initialisation as the Table 2 variants)."""

    def __init__(self, inplanes: int, planes: int, dilation: int = 1):
        super().__init__(inplanes, planes, KERNEL, padding=dilation, dilation=dilation)
        self.offset = nn.Conv2d(inplanes, 2 * KERNEL * KERNEL, KERNEL, padding=1)
        nn.init.zeros_(self.offset.weight)
        nn.init.zeros_(self.offset.bias)
        # which ops.deform_conv2d kernel computes it: how, not what, so a plain attribute (not in
        # the state_dict); Matching.set_deform_backend
        self.backend = "auto"

    def forward(self, x):
        offset = self.offset(x)    # (B, 18, h, w): (dy, dx) per tap, taps in row-major order
        return deform_conv2d(x, offset, self.weight, self.bias, padding=self.padding,
                             dilation=self.dilation, backend=self.backend), offset


LAYERS = {"deformable": DeformConv, "standard": Conv, "dilated": Conv}
# ASSUMPTION 9. GroupNorm with 4 channels a group: its statistics are the sample's own, so the
# matching module computes the same function in training and at inference (BatchNorm does not).
NORMS = {"batchnorm": nn.BatchNorm2d, "groupnorm": lambda c: nn.GroupNorm(c // 4, c),
         "none": lambda c: nn.Identity()}


class Matching(nn.Module):
    """Rows 106-108 (or a Table 2 variant): concatenated features -> flow."""

    def __init__(self, matching: str = "deformable", layers: int = 3, dilation: int = 1,
                 norm: str = "batchnorm"):
        super().__init__()
        ModelConfig(matching=matching, layers=layers, dilation=dilation, norm=norm)  # Table 2 only
        widths = (IN_CHANNELS,) + WIDTHS[layers]
        self.layers = nn.ModuleList(LAYERS[matching](i, o, dilation)
                                    for i, o in zip(widths[:-1], widths[1:]))
        # ASSUMPTION 9: BatchNorm before each hidden ReLU. Without it the ReLUs of rows 106-107
        # died within ~50 Adam steps from scratch and the flow stayed at zero.
        self.norms = nn.ModuleList(NORMS[norm](o) for o in widths[1:-1])
        self.init_flow("zero")

    def init_flow(self, kind: str = "zero") -> None:
        """ASSUMPTION 11. "zero": the flow starts at exactly zero, so row 109 starts as the identity
        warp: the first loss is the plain frame difference and the warp's image gradients are
        meaningful, rather than a random displacement that samples arbitrary pixels. But a zero
        last layer passes no gradient to the layers before it until its own weights have grown;
        "small" (std 1e-3) keeps the warp near the identity and lets every layer learn at once."""
        last = self.layers[-1]
        nn.init.zeros_(last.bias)
        if kind == "zero":
            nn.init.zeros_(last.weight)
        else:
            nn.init.normal_(last.weight, std=1e-3)

    def set_deform_backend(self, backend: str = "auto") -> None:
        """The ops.deform_conv2d backend of the deformable rows 106-108 ("auto", "fast",
        "torchvision"): the same function to float32 rounding, at another speed (bench train)."""
        check_backend(backend)
        for layer in self.layers:
            if isinstance(layer, DeformConv):
                layer.backend = backend

    def forward(self, x, return_offsets: bool = False):
        """Flow (B, 2, h, w); with return_offsets also the offsets each layer used (None for a
        regular conv), for the Fig. 2 sampling locations."""
        offsets = []
        for i, layer in enumerate(self.layers):
            x, offset = layer(x)
            offsets.append(offset)
            if i < len(self.layers) - 1:  # ReLU after rows 106, 107; row 108's output is the flow
                x = F.relu(self.norms[i](x))
        return (x, offsets) if return_offsets else x

    @torch.no_grad()
    def sampling_points(self, offsets, y: int, x: int, batch: int = 0):
        """Fig. 2: where the first k layers read the concatenated features for target pixel
        (y, x), k = 1..layers: 9 points for row 106, 81 for rows 106-107, 729 for 106-108.

        Returns one (9**k, 2) float tensor of (y, x) positions in H/4 pixels per k. An offset
        at a fractional position is bilinearly interpolated from its four neighbours.
        """
        found = []
        for k in range(1, len(self.layers) + 1):
            points = torch.tensor([[float(y), float(x)]])
            for layer, offset in zip(reversed(self.layers[:k]), reversed(offsets[:k])):
                points = _taps(points, layer.dilation[0],
                               None if offset is None else offset[batch].float().cpu())
            found.append(points)
        return found


def _taps(points, dilation: int, offset):
    """(N, 2) output positions -> (9N, 2) positions the 3x3 (deformable) conv reads."""
    taps = points[:, None, :] + tap_grid(KERNEL, dilation)[None]                       # (N, 9, 2)
    if offset is not None:
        h, w = offset.shape[-2:]
        # grid_sample wants (x, y) in [-1, 1]; align_corners=True puts -1/1 on pixel centres.
        where = torch.stack([points[:, 1] / max(w - 1, 1), points[:, 0] / max(h - 1, 1)], -1) * 2 - 1
        sampled = F.grid_sample(offset[None], where[None, None], align_corners=True)
        taps = taps + sampled[0, :, 0].T.reshape(-1, KERNEL * KERNEL, 2)  # (N, 18) -> (N, 9, (dy, dx))
    return taps.reshape(-1, 2)


class Warp(nn.Module):
    """Row 109: bilinear warp of any number of channels by row 108's flow (no parameters)."""

    def forward(self, source, flow):
        return warp(source, flow)
