"""`rpmnet bench ops`: forward+backward seconds of our deform_conv2d, torchvision's, a plain conv.

Shapes are the matching module's in training (rows 106-108): batch 8, 3x3 kernels with one
offset group (18 offset channels), 64->32, 32->16 and 16->2 channels, on 32x32 and 64x64 maps.
The plain convolution of the same shape is the floor a deformable conv cannot beat.
"""
from __future__ import annotations

import os

import pandas as pd
import torch
import torch.nn.functional as F
import torchvision
from tqdm import tqdm

from .. import ops
from ..config import resolve_device
from ..errors import InputError
from ..fileio import write_csv
from ._timing import median_seconds

BATCH = 8
CHANNELS = [(64, 32), (32, 16), (16, 2)]  # rows 106, 107, 108
SIZES = [32, 64]
TARGET = (64, 32, 64, 10.0)  # the target: 64->32 on 64x64 at least 10x torchvision

IMPLEMENTATIONS = {  # column -> forward of one 3x3 layer, padding 1
    "ours": lambda x, offset, w, b: ops.deform_conv2d(x, offset, w, b, padding=1, backend="fast"),
    "torchvision": lambda x, offset, w, b: ops.deform_conv2d(x, offset, w, b, padding=1,
                                                             backend="torchvision"),
    "conv": lambda x, offset, w, b: F.conv2d(x, w, b, padding=1),
}


def add_cli(parser):
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per cell (median)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed calls before timing")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: torch's choice; 1 compares core for "
                             "core while other jobs load the machine)")


def layer_inputs(cin, cout, size, device):
    """A row-106..108 layer's input, offsets of a few pixels, weight and bias; all need grads."""
    shapes = [(BATCH, cin, size, size), (BATCH, 18, size, size), (cout, cin, 3, 3), (cout,)]
    scales = [1.0, 2.0, (9 * cin) ** -0.5, 0.1]
    return [(s * torch.randn(shape, device=device)).requires_grad_()
            for shape, s in zip(shapes, scales)]


def forward_backward(fn, inputs):
    def step():
        for t in inputs:
            t.grad = None
        fn(*inputs).sum().backward()
    return step


def run(repeats=3, warmup=1, device="auto") -> pd.DataFrame:
    """One row per shape: median seconds of each implementation and the ratios between them."""
    if repeats < 1 or warmup < 0:
        raise InputError(f"--repeats must be >= 1 and --warmup >= 0; got {repeats} and {warmup}")
    device = resolve_device(device)
    torch.manual_seed(0)
    cells = [(cin, cout, size) for size in SIZES for cin, cout in CHANNELS]
    rows = []
    for cin, cout, size in tqdm(cells, desc="bench ops", disable=None):
        inputs = layer_inputs(cin, cout, size, device)
        row = {"shape": f"{BATCH}x{cin}x{size}x{size}->{cout}", "batch": BATCH, "cin": cin,
               "cout": cout, "size": size}
        for name, fn in IMPLEMENTATIONS.items():
            row[f"{name}_s"] = median_seconds(forward_backward(fn, inputs), repeats, warmup, device)
        mix_first = ops._mix_first(inputs[0].shape, inputs[2].shape, inputs[1].shape, 1, 1)
        rows.append({**row, "ours_order": "mix-first" if mix_first else "sample-first"})
    table = pd.DataFrame(rows)
    table["speedup_vs_torchvision"] = table.torchvision_s / table.ours_s
    table["ratio_to_conv"] = table.ours_s / table.conv_s
    # Other processes slow the many-kernel paths most: keep the 1-minute load (this run adds ~2).
    return table.assign(device=str(device), torch=torch.__version__,
                        torchvision=torchvision.__version__, threads=torch.get_num_threads(),
                        repeats=repeats, load_average=round(os.getloadavg()[0], 2))


def cli(args) -> int:
    if args.threads is not None:
        if args.threads < 1:
            raise InputError(f"--threads must be >= 1; got {args.threads}")
        torch.set_num_threads(args.threads)
    table = run(args.repeats, args.warmup, args.device)
    print(table.drop(columns=["batch", "cin", "cout", "size"]).to_string(
        index=False, float_format=lambda v: f"{v:.4g}"))
    cin, cout, size, goal = TARGET
    hit = table[(table.cin == cin) & (table.cout == cout) & (table["size"] == size)].iloc[0]
    print(f"target {hit['shape']}: {hit.speedup_vs_torchvision:.1f}x faster than torchvision "
          f"(goal >= {goal:g}x), {hit.ratio_to_conv:.1f}x the plain conv")
    print(f"wrote {write_csv(args.out, table)}")
    return 0
