"""Embedding module: FCN-ResNet, Table 1 rows 1-105.

Frames (B, 3, H, W), RGB in [0, 1] -> features (B, 32, ceil(H/4), ceil(W/4)).
Row 1-2 stem to H/4; four residual stages that each halve the resolution (H/8 ... H/64,
ASSUMPTION 7); four 3x3 transposed convs back up to H/4, each adding the skip features of
rows 92, 23, 11 and 2. The residual blocks are torchvision's; the backbone starts from
scratch (ASSUMPTION 5).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck

from ..config import ModelConfig
from ..errors import InputError

STEM_WIDTH = 32          # rows 1, 2 and 105
STAGE_PLANES = (64, 128, 256, 512)
STRIDE = 64              # total downsampling at row 101: inputs are padded to a multiple of it
# ImageNet statistics: a conventional, fixed input scaling (nothing pretrained is loaded).
RGB_MEAN = (0.485, 0.456, 0.406)
RGB_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Backbone:
    block: type           # torchvision BasicBlock or Bottleneck
    blocks: tuple         # residual blocks per stage (Table 1: 3, 4, 23, 3 for ResNet-101)

    @property
    def widths(self) -> tuple:
        """Output channels of the four stages: 256..2048 (Bottleneck), 64..512 (BasicBlock)."""
        return tuple(p * self.block.expansion for p in STAGE_PLANES)


SPECS = {   # the builder table per depth
    "resnet18": Backbone(BasicBlock, (2, 2, 2, 2)),
    "resnet34": Backbone(BasicBlock, (3, 4, 6, 3)),
    "resnet50": Backbone(Bottleneck, (3, 4, 6, 3)),
    "resnet101": Backbone(Bottleneck, (3, 4, 23, 3)),
}


def make_stage(block: type, inplanes: int, planes: int, blocks: int) -> nn.Sequential:
    """One residual stage; its first block halves the resolution (every stage does, Table 1)."""
    width = planes * block.expansion
    shortcut = nn.Sequential(nn.Conv2d(inplanes, width, 1, stride=2, bias=False), nn.BatchNorm2d(width))
    layers = [block(inplanes, planes, stride=2, downsample=shortcut)]
    layers += [block(width, planes) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


class Up(nn.Module):
    """Rows 102-105: 3x3 transposed conv, stride 2, then add the skip features.

    BN before the addition and ReLU after it, exactly like the tail of a residual block: the
    sum of two normalised branches keeps its scale, and one rule serves all four rows.
    """

    def __init__(self, inplanes: int, planes: int):
        super().__init__()
        # padding 1 + output_padding 1 doubles the size exactly, so the skip features line up.
        self.deconv = nn.ConvTranspose2d(inplanes, planes, 3, stride=2, padding=1, output_padding=1,
                                         bias=False)
        self.bn = nn.BatchNorm2d(planes)

    def forward(self, x, skip):
        return F.relu(self.bn(self.deconv(x)) + skip)


def check_frames(frames) -> None:
    if not (isinstance(frames, torch.Tensor) and frames.dim() == 4 and frames.shape[1] == 3
            and frames.is_floating_point() and frames.shape[-1] > 0 and frames.shape[-2] > 0):
        got = tuple(frames.shape) if isinstance(frames, torch.Tensor) else type(frames).__name__
        dtype = f" {frames.dtype}" if isinstance(frames, torch.Tensor) else ""
        raise InputError(f"frames must be a float tensor (B, 3, H, W) with RGB in [0, 1]; "
                         f"got{dtype} {got}")


class Embedding(nn.Module):
    def __init__(self, backbone: str = "resnet101"):
        super().__init__()
        spec = SPECS[ModelConfig(backbone=backbone).backbone]  # ModelConfig checks the name
        self.register_buffer("mean", torch.tensor(RGB_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(RGB_STD).view(1, 3, 1, 1), persistent=False)
        self.stem = nn.Sequential(  # row 1
            nn.Conv2d(3, STEM_WIDTH, 7, stride=2, padding=3, bias=False),
            nn.BatchNorm2d(STEM_WIDTH), nn.ReLU(inplace=True))
        self.pool = nn.MaxPool2d(3, stride=2, padding=1)  # row 2
        inputs = (STEM_WIDTH,) + spec.widths[:-1]
        self.stages = nn.ModuleList(  # rows 3-11, 11-23, 24-92, 93-101
            make_stage(spec.block, i, p, n) for i, p, n in zip(inputs, STAGE_PLANES, spec.blocks))
        # Each transposed conv goes back to the width of the skip it adds: 2048 -> 1024 ... -> 32.
        self.decoder = nn.ModuleList(  # rows 102-105
            Up(i, o) for i, o in zip(reversed(spec.widths), reversed(inputs)))
        self.reset_parameters()

    def reset_parameters(self):
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        # Each residual branch starts at zero (Goyal et al. 2017): steadier from scratch.
        for m in self.modules():
            if isinstance(m, (BasicBlock, Bottleneck)):
                nn.init.zeros_((m.bn3 if isinstance(m, Bottleneck) else m.bn2).weight)

    def forward(self, frames):
        check_frames(frames)
        h, w = frames.shape[-2:]
        x = (frames - self.mean) / self.std
        # Pad bottom/right only, so pixel (0, 0) stays put and the crop below is a plain slice.
        # Replicate, not zero: a constant border would be a fake edge the embedding could match.
        x = F.pad(x, (0, -w % STRIDE, 0, -h % STRIDE), mode="replicate")
        x = self.pool(self.stem(x))
        skips = [x]                                   # row 2
        for stage in self.stages:
            x = stage(x)
            skips.append(x)                           # rows 11, 23, 92, 101
        for up, skip in zip(self.decoder, reversed(skips[:-1])):
            x = up(x, skip)
        return x[..., :math.ceil(h / 4), :math.ceil(w / 4)]
