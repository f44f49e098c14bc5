"""RPM-Net (Table 1): a shared embedding (rows 1-105) and a matching module (rows 106-109).

The target and reference frames are embedded by the same network; the matching module reads
the concatenated features, predicts a flow and warps the source (the reference image in
training, the t-1 mask at inference) onto the target at H/4.
"""
from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ModelConfig
from ..errors import InputError
from .embedding import STEM_WIDTH, Embedding
from .matching import Matching, Warp


def _shape(t) -> tuple:
    return tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__


def _finite(t, what: str) -> None:
    """NaN or inf in an input spreads through every convolution: all scores would be NaN."""
    if isinstance(t, torch.Tensor) and t.is_floating_point() and not bool(torch.isfinite(t).all()):
        raise InputError(f"{what} {tuple(t.shape)} contain NaN or inf; inputs must be finite")


class RPMNet(nn.Module):
    def __init__(self, backbone: str = "resnet101", matching: str = "deformable", layers: int = 3,
                 dilation: int = 1, norm: str = "batchnorm"):
        super().__init__()
        self.config = ModelConfig(backbone, matching, layers, dilation, norm)
        self.embedding = Embedding(backbone)
        self.matching = Matching(matching, layers, dilation, norm)
        self.warp = Warp()                                   # row 109

    @classmethod
    def from_config(cls, cfg: ModelConfig) -> "RPMNet":
        return cls(**dataclasses.asdict(cfg))

    def set_deform_backend(self, backend: str = "auto") -> "RPMNet":
        """Run rows 106-108 on one ops.deform_conv2d backend (Matching.set_deform_backend);
        the weights, the state_dict and the checkpoints stay as they are."""
        self.matching.set_deform_backend(backend)
        return self

    def embed(self, frames):
        """Frames (B, 3, H, W), RGB in [0, 1] -> features (B, 32, ceil(H/4), ceil(W/4))."""
        _finite(frames, "frames")
        return self.embedding(frames)

    def flow(self, target_feat, reference_feat, return_offsets: bool = False):
        """Row 108: (B, 2, h, w) = (dy, dx) in H/4 pixels, from the target's point of view."""
        if not (isinstance(target_feat, torch.Tensor) and isinstance(reference_feat, torch.Tensor)
                and target_feat.dim() == 4 and target_feat.shape[1] == STEM_WIDTH
                and target_feat.shape == reference_feat.shape):
            raise InputError(f"target and reference features must both be (B, 32, h, w) of the same "
                             f"shape; got {_shape(target_feat)} and {_shape(reference_feat)}")
        return self.matching(torch.cat([target_feat, reference_feat], 1), return_offsets)

    def match(self, target_feat, reference_feat, source_small):
        """Rows 106-109 on precomputed embeddings: the source, already at (h, w), warped onto
        the target. Propagation embeds each frame once and reuses it as the next reference."""
        flow = self.flow(target_feat, reference_feat)
        if not (isinstance(source_small, torch.Tensor) and source_small.dim() == 4
                and source_small.shape[0] == flow.shape[0] and source_small.shape[-2:] == flow.shape[-2:]):
            raise InputError(f"source must be (B, C, h, w) = ({flow.shape[0]}, C, {flow.shape[2]}, "
                             f"{flow.shape[3]}), the size of the features; got {_shape(source_small)}")
        _finite(source_small, "source")
        return self.warp(source_small, flow)

    def forward(self, target, reference, source):
        """Source (B, C, H, W) or (B, C, h, w) -> the source warped onto the target, (B, C, h, w)."""
        if not (isinstance(target, torch.Tensor) and isinstance(reference, torch.Tensor)
                and target.shape == reference.shape):
            raise InputError(f"target and reference frames must have the same shape (B, 3, H, W); "
                             f"got {_shape(target)} and {_shape(reference)}")
        # One pass for both frames: the embedding is shared (and BN sees both in training).
        target_feat, reference_feat = self.embed(torch.cat([target, reference])).chunk(2)
        return self.match(target_feat, reference_feat,
                          shrink(source, target.shape[-2:], target_feat.shape[-2:]))

    def parameter_counts(self) -> dict:
        counts = {name: sum(p.numel() for p in getattr(self, name).parameters())
                  for name in ("embedding", "matching")}
        return dict(counts, total=sum(counts.values()))


def shrink(source, full, small):
    """ASSUMPTION 2: a full-size source is area-averaged to the H/4 grid of the flow."""
    if isinstance(source, torch.Tensor) and source.dim() == 4 and source.is_floating_point():
        if source.shape[-2:] == small:
            return source
        if source.shape[-2:] == full:
            return F.interpolate(source, size=tuple(small), mode="area")
    raise InputError(f"source must be a float tensor (B, C, {full[0]}, {full[1]}) or "
                     f"(B, C, {small[0]}, {small[1]}); got {_shape(source)}")
