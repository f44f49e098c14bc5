"""`rpmnet bench train`: training pairs per second with our deformable conv and with torchvision's.

One training step is what `rpmnet train` does per batch: embed target and reference, match,
warp, the L1 loss, backward and the Adam update, here on random 256x256 pairs. The model calls
`rpmnet.ops.deform_conv2d` with its default backend ("auto": ours on CPU); the benchmark pins
the backend of the matching module for each measurement.
"""
from __future__ import annotations

import contextlib
import functools
import os

import pandas as pd
import torch
import torchvision
from tqdm import tqdm

from .. import ops
from ..config import ModelConfig, resolve_device
from ..errors import InputError
from ..fileio import write_csv
from ..model import matching
from ._timing import median_seconds

BACKENDS = ("fast", "torchvision")


def add_cli(parser):
    parser.add_argument("--backbone", default="resnet101", help="embedding backbone (paper: resnet101)")
    parser.add_argument("--batch", type=int, default=2, help="pairs per step")
    parser.add_argument("--size", type=int, default=256, help="square frame side in pixels")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per backend (median)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps before timing")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")


@contextlib.contextmanager
def deform_backend(name: str):
    """Make rows 106-108 use one deform_conv2d backend (the model exposes no switch)."""
    original = matching.deform_conv2d
    matching.deform_conv2d = functools.partial(ops.deform_conv2d, backend=name)
    try:
        yield
    finally:
        matching.deform_conv2d = original


def run(backbone="resnet101", batch=2, size=256, steps=3, warmup=1, device="auto") -> pd.DataFrame:
    """One row per backend: median seconds per training step and pairs per second."""
    from ..model.rpmnet import RPMNet
    from ..loss import losses

    ModelConfig(backbone)
    if batch < 1 or size < 4 or steps < 1 or warmup < 0:
        raise InputError(f"need --batch >= 1, --size >= 4, --steps >= 1, --warmup >= 0; got "
                         f"{batch}, {size}, {steps}, {warmup}")
    device = resolve_device(device)
    rows = []
    for backend in tqdm(BACKENDS, desc="bench train", disable=None):
        torch.manual_seed(0)
        model = RPMNet(backbone).to(device).train()
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
        frames = torch.rand(batch, 3, size + 8, size + 8, device=device)
        target, reference = frames[..., 8:, 8:], frames[..., :-8, :-8]  # an 8-pixel shift

        def step():
            optimizer.zero_grad(set_to_none=True)
            loss, _ = losses(model, target, reference)
            loss.backward()
            optimizer.step()

        with deform_backend(backend):
            seconds = median_seconds(step, steps, warmup, device)
        rows.append(dict(backend=backend, backbone=backbone, batch=batch, size=size,
                         seconds_per_step=seconds, pairs_per_s=batch / seconds))
    table = pd.DataFrame(rows)
    table["speedup_vs_torchvision"] = table.pairs_per_s / table.pairs_per_s[table.backend == "torchvision"].iloc[0]
    return table.assign(device=str(device), torch=torch.__version__, torchvision=torchvision.__version__,
                        threads=torch.get_num_threads(), steps=steps,
                        load_average=round(os.getloadavg()[0], 2))


def cli(args) -> int:
    table = run(args.backbone, args.batch, args.size, args.steps, args.warmup, args.device)
    write_csv(args.out, table, float_format="%.4g")
    print(table.to_string(index=False))
    return 0
