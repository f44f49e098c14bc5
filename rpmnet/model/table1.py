"""Table 1, measured: the paper's layer-by-layer shapes next to the shapes a real forward pass
produces (forward hooks), with the parameters of every row group.

Row numbers: `number` keeps the paper's group labels for every backbone (including its
printed "11-23"), so "row 106" means the same layer everywhere. `rows_at_depth` counts the
conv rows of the chosen depth the way Table 1 counts them for ResNet-101 (one row per conv
of a residual block, shortcut convs not counted): for ResNet-18 the stages are rows 3-6,
7-10, 11-14, 15-18 and the matching rows 23-25.
"""
from __future__ import annotations

import math

import torch
from torchvision.models.resnet import Bottleneck

from ..config import BACKBONES
from ..errors import InputError
from .embedding import SPECS, STAGE_PLANES, STEM_WIDTH, STRIDE
from .rpmnet import RPMNet

PAPER_TOTAL = {"resnet101": 43e6}   # a later paper's comparison table lists RPM-Net at 43M


def _block_text(backbone: str, stage: int) -> str:
    spec, planes = SPECS[backbone], STAGE_PLANES[stage]
    convs = (["1×1", "3×3", "1×1"] if spec.block is Bottleneck else ["3×3", "3×3"])
    widths = [planes] * (len(convs) - 1) + [spec.widths[stage]]
    return "[" + "; ".join(f"{k}, {c}" for k, c in zip(convs, widths)) + f"] × {spec.blocks[stage]}"


def _depth_rows(backbone: str, matching_layers: int) -> list:
    """Conv-row ranges of this depth, counted like Table 1: ['1', '2', '3-11', ..., '109']."""
    spec = SPECS[backbone]
    per_block = 3 if spec.block is Bottleneck else 2
    sizes = [1, 1] + [per_block * n for n in spec.blocks] + [1] * (4 + matching_layers + 1)
    rows, first = [], 1
    for n in sizes:
        rows.append(str(first) if n == 1 else f"{first}-{first + n - 1}")
        first += n
    return rows


def _shape_text(c, h, w) -> str:
    return f"({c}, {h}, {w})"


def architecture_table(backbone: str = "resnet101", height: int = 256, width: int = 256):
    """One row per Table 1 row group for the deformable RPM-Net at (height, width)."""
    import pandas as pd

    if not (isinstance(height, int) and isinstance(width, int) and height > 0 and width > 0):
        raise InputError(f"height and width must be positive integers; got {height!r}, {width!r}")
    model = RPMNet(backbone).eval()
    emb, mat = model.embedding, model.matching
    H, W = height, width
    Hp, Wp = H + -H % STRIDE, W + -W % STRIDE        # the embedding pads to a multiple of 64
    h, w = math.ceil(H / 4), math.ceil(W / 4)
    s = SPECS[backbone].widths
    padded = (Hp, Wp) != (H, W)
    pad_note = f"measured on the input padded to {Hp}×{Wp}" if padded else ""
    small_widths = SPECS[backbone].block is not Bottleneck
    body_note = "; ".join(filter(None, [      # rows 3-104
        pad_note, "widths follow the backbone (ASSUMPTION 7)" if small_widths else ""]))

    def inner(c, factor):                            # the paper's shape, on the padded input
        return _shape_text(c, Hp // factor, Wp // factor)

    deconv = "3×3 transposed conv, {}, stride 2; add features from layer {} and features from layer {}"
    deform = "3×3 deformable conv, {}, stride 1; offset conv : 3×3 conv, 18, stride 1"
    norm_note = ("then BatchNorm and ReLU (ASSUMPTION 9)" if model.config.norm == "batchnorm"
                 else "then ReLU")
    # (number, description, paper shape, module to hook ('pre' = its input), note)
    groups = [
        ("IE1", "target frame", _shape_text(3, H, W), None, ""),
        ("IE2", "reference frame", _shape_text(3, H, W), None, ""),
        ("1", f"7×7 conv, {STEM_WIDTH}, stride 2", inner(STEM_WIDTH, 2), emb.stem, pad_note),
        ("2", "3×3 maxpool, stride 2", inner(STEM_WIDTH, 4), emb.pool, pad_note),
        ("3-11", _block_text(backbone, 0), inner(s[0], 8), emb.stages[0], body_note),
        ("11-23", _block_text(backbone, 1), inner(s[1], 16), emb.stages[1],
         "; ".join(filter(None, [body_note, "the paper prints 11-23 for rows 12-23"]))),
        ("24-92", _block_text(backbone, 2), inner(s[2], 32), emb.stages[2], body_note),
        ("93-101", _block_text(backbone, 3), inner(s[3], 64), emb.stages[3], body_note),
        ("102", deconv.format(s[2], 102, 92), inner(s[2], 32), emb.decoder[0], body_note),
        ("103", deconv.format(s[1], 103, 23), inner(s[1], 16), emb.decoder[1], body_note),
        ("104", deconv.format(s[0], 104, 11), inner(s[0], 8), emb.decoder[2], body_note),
        ("105", deconv.format(STEM_WIDTH, 105, 2), _shape_text(STEM_WIDTH, h, w), emb,
         "cropped back to ceil(H/4)×ceil(W/4)" if padded else ""),
        ("IM1", "concatenated features", _shape_text(2 * STEM_WIDTH, h, w), ("pre", mat), ""),
        ("IM2", "reference image (training) or t−1 segmentation mask (inference)",
         _shape_text(3, H, W), None, "training form; at inference 1 + K mask channels (ASSUMPTION 6)"),
        ("106", deform.format(32), _shape_text(32, h, w), mat.layers[0], norm_note),
        ("107", deform.format(16), _shape_text(16, h, w), mat.layers[1], norm_note),
        ("108", deform.format(2), _shape_text(2, h, w), mat.layers[2], ""),
        ("109", "1×1 deformable conv, 3, stride 1; offset : feature maps from layer 108",
         _shape_text(3, h, w), model.warp, "a bilinear warp, no parameters (ASSUMPTION 1)"),
    ]
    # Which modules' parameters each row group owns (105 is hooked on the whole embedding).
    # 106 and 107 also own the BatchNorm that follows them (ASSUMPTION 9).
    owners = {"105": [emb.decoder[3]], "106": [mat.layers[0], mat.norms[0]],
              "107": [mat.layers[1], mat.norms[1]]}

    measured, handles = {}, []

    def record(number, pre):
        def hook(module, args, output=None):
            out = args[0] if pre else (output[0] if isinstance(output, tuple) else output)
            measured[number] = _shape_text(*out.shape[1:])
        return hook

    for number, _, _, module, _ in groups:
        if isinstance(module, tuple):
            handles.append(module[1].register_forward_pre_hook(record(number, True)))
        elif module is not None:
            handles.append(module.register_forward_hook(record(number, False)))
    g = torch.Generator().manual_seed(0)
    target, reference = torch.rand(2, 1, 3, H, W, generator=g)
    try:
        with torch.no_grad():
            model(target, reference, reference)
    finally:
        for handle in handles:
            handle.remove()
    for number in ("IE1", "IE2", "IM2"):
        measured[number] = _shape_text(3, H, W)

    depth_rows = iter(_depth_rows(backbone, len(mat.layers)))
    rows = []
    for number, description, paper, module, note in groups:
        owner = owners.get(number, None if isinstance(module, tuple) or module is None else [module])
        rows.append(dict(
            number=number,
            rows_at_depth="" if number.startswith("I") else next(depth_rows),  # inputs: no row
            description=description, paper_shape=paper, output_shape=measured[number],
            match=paper == measured[number],
            params=0 if owner is None else sum(p.numel() for m in owner for p in m.parameters()),
            note=note))
    return pd.DataFrame(rows)


def parameter_table(backbones=BACKBONES, matching: str = "deformable", layers: int = 3,
                    dilation: int = 1):
    """Parameters per module (embedding, matching, total) for each backbone."""
    import pandas as pd

    rows = []
    for backbone in backbones:
        with torch.device("meta"):                   # shapes only: nothing is allocated
            model = RPMNet(backbone, matching, layers, dilation)
        rows.append(dict(backbone=backbone, **model.parameter_counts(),
                         paper_total=PAPER_TOTAL.get(backbone)))
    return pd.DataFrame(rows)
