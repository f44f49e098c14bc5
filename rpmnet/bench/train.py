"""`rpmnet bench train`: seconds per training step of each speed variant, as a ratio to today's
fp32 step, and whether the variant learns the same.

One training step is what `rpmnet train` does per batch (rpmnet.train.StepSettings): embed
target and reference, match, warp, the loss, backward and the Adam update, timed here on random
pairs with an 8-pixel shift. A variant changes how the step runs (bfloat16 autocast, channels-
last, torch.compile, intra-op threads, or torchvision's deformable kernel), never the model or
the data. The variants' timed steps are interleaved (A B C A B C ...), so that a machine shared
with other jobs slows them all alike: read the ratios, not the seconds.

The learning-curve check trains each variant `--loss-steps` steps (resnet18, crop 128, batch 8,
seed 0: the same batches for all) on the `cpu` profile's built-in benchmark and puts its
end-of-run loss ratio (rpmnet.runfolder.final_losses) beside fp32's. A variant that computes the
same as another (only the threads differ, or only the deformable kernel) shares that one's run:
`loss_run` names it.
"""
from __future__ import annotations

import os
import statistics
import tempfile
import time

import pandas as pd
import torch
import torchvision
from tqdm import tqdm

from ..config import ModelConfig, processor, resolve_device
from ..errors import InputError
from ..fileio import write_csv

# name -> (TrainConfig speed fields, deform_conv2d backend of the matching module). "fp32" is
# today's step: what `rpmnet train` does on CPU without speed flags.
VARIANTS = {
    "fp32": ({}, "auto"),
    "fp32-threads1": ({"threads": 1}, "auto"),
    "channels_last": ({"channels_last": True}, "auto"),
    "bf16": ({"amp": True}, "auto"),
    "bf16-channels_last": ({"amp": True, "channels_last": True}, "auto"),
    "channels_last-threads1": ({"channels_last": True, "threads": 1}, "auto"),
    "bf16-threads1": ({"amp": True, "threads": 1}, "auto"),
    "bf16-channels_last-threads1": ({"amp": True, "channels_last": True, "threads": 1}, "auto"),
    "compile": ({"compile": True}, "auto"),
    "bf16-channels_last-compile": ({"amp": True, "channels_last": True, "compile": True}, "auto"),
    "fp32-torchvision_deform": ({}, "torchvision"),
}
# backbone/size/batch: the `cpu` profile's training step, and the paper's backbone
SETUPS = ("resnet18/128/8", "resnet101/256/2")
LOSS_SETUP = dict(profile="cpu", backbone="resnet18", crop=128, batch_size=8, seed=0, lr=3e-4)
TOLERANCE = 0.02   # issue 13: the end-of-run loss ratio within 0.02 of fp32's


def add_cli(parser):
    parser.add_argument("--setups", nargs="+", default=list(SETUPS), metavar="BACKBONE/SIZE/BATCH",
                        help=f"models and steps to time (default: {' '.join(SETUPS)})")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), metavar="VARIANT",
                        help=f"speed variants (fp32 always included): {', '.join(VARIANTS)}")
    parser.add_argument("--steps", type=int, default=5, help="timed steps per variant (median)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps before timing (compiles)")
    parser.add_argument("--loss-steps", type=int, default=300,
                        help="training steps of the learning-curve check per variant (0: skip)")
    parser.add_argument("--loss-threads", type=int, default=None,
                        help="threads of the check's runs (default: each variant's own)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")


def parse_setup(text: str) -> tuple[str, int, int]:
    try:
        backbone, size, batch = text.split("/")
        size, batch = int(size), int(batch)
    except ValueError:
        raise InputError(f"bad setup {text!r}; expected BACKBONE/SIZE/BATCH, e.g. resnet18/128/8") from None
    ModelConfig(backbone)
    if size < 4 or size % 4 or batch < 1:
        raise InputError(f"setup {text!r}: size must be a multiple of 4 and batch at least 1")
    return backbone, size, batch


def _step(variant: str, nets: dict, backbone: str, size: int, batch: int, device):
    """One variant's training step as a function. Variants of one memory format share a model
    and its optimiser (`nets`): a step takes as long whatever the weights, and resnet101 with
    Adam state is 1 GB a copy."""
    from ..loss import losses
    from ..model.rpmnet import RPMNet
    from ..parallel import num_threads
    from ..train import StepSettings, TrainConfig

    fields, backend = VARIANTS[variant]
    settings = StepSettings.of(TrainConfig(**fields), device)
    if settings.memory_format not in nets:
        torch.manual_seed(0)
        net = RPMNet(backbone).to(device, memory_format=settings.memory_format).train()
        nets[settings.memory_format] = net, torch.optim.Adam(net.parameters(), lr=1e-4)
    net, optimizer = nets[settings.memory_format]
    model = settings.model(net)
    torch.manual_seed(0)
    frames = torch.rand(batch, 3, size + 8, size + 8, device=device)
    target, reference = (f.contiguous(memory_format=settings.memory_format)
                         for f in (frames[..., 8:, 8:], frames[..., :-8, :-8]))   # an 8-pixel shift

    def step():
        net.set_deform_backend(backend)   # variants share the net: each sets its own backend
        with num_threads(fields.get("threads")):
            with settings.autocast(device):
                loss, _ = losses(model, target, reference)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    return step


def time_variants(variants, backbone: str, size: int, batch: int, steps: int, warmup: int, device) -> dict:
    """Median (wall, CPU) seconds per step of each variant, their timed steps interleaved
    A B C A B C. The CPU seconds (all threads) are what the step costs the machine: on a loaded
    machine they change less than the wall time. Deterministic algorithms on, as `rpmnet train`
    has them on CPU."""
    deterministic = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(device.type == "cpu" or deterministic, warn_only=True)
    try:
        calls, nets = {}, {}
        for variant in tqdm(variants, desc=f"bench train {backbone} warm-up", disable=None):
            calls[variant] = _step(variant, nets, backbone, size, batch, device)
            for _ in range(warmup):
                calls[variant]()
        seconds = {v: ([], []) for v in variants}
        for _ in tqdm(range(steps), desc=f"bench train {backbone}", disable=None):
            for variant, call in calls.items():
                began, cpu = time.perf_counter(), time.process_time()
                call()
                seconds[variant][0].append(time.perf_counter() - began)
                seconds[variant][1].append(time.process_time() - cpu)
    finally:
        torch.use_deterministic_algorithms(deterministic)
    return {v: (statistics.median(wall), statistics.median(cpu)) for v, (wall, cpu) in seconds.items()}


def loss_run_of(variant: str) -> str:
    """The variant whose training run stands for this one: threads and the deformable kernel
    change how a step is computed, not what (to float32 rounding)."""
    fields, _ = VARIANTS[variant]
    computes = {k: v for k, v in fields.items() if k != "threads"}
    return next(v for v, (f, backend) in VARIANTS.items() if f == computes and backend == "auto")


def loss_ratio_end(variant: str, steps: int, device, root, threads=None) -> float:
    """End-of-run loss ratio of `steps` training steps of LOSS_SETUP with the variant's settings
    (and `threads`, if given: how fast the check runs, not what it computes)."""
    from ..runfolder import final_losses
    from ..train import TrainConfig, train

    fields, _ = VARIANTS[variant]
    fields = {**fields, "threads": threads} if threads else fields
    out = os.path.join(root, variant)
    train(TrainConfig(**LOSS_SETUP, **fields, steps=steps, device=str(device), out=out,
                      checkpoint_every=steps, log_every=1))
    return final_losses(pd.read_csv(os.path.join(out, "log.csv")))["loss_ratio"]


def run(setups=SETUPS, variants=tuple(VARIANTS), steps=5, warmup=2, loss_steps=300,
        loss_threads=None, device="cpu") -> pd.DataFrame:
    """One row per (setup, variant): median seconds per step, its ratio to fp32's, and the
    end-of-run loss ratios of the learning-curve check (the variant's and fp32's)."""
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        raise InputError(f"unknown variant(s) {', '.join(unknown)}; allowed: {', '.join(VARIANTS)}")
    if steps < 1 or warmup < 0 or loss_steps < 0:
        raise InputError(f"need --steps >= 1, --warmup >= 0, --loss-steps >= 0; got {steps}, "
                         f"{warmup}, {loss_steps}")
    setups = [parse_setup(s) for s in setups]
    variants = ["fp32"] + [v for v in dict.fromkeys(variants) if v != "fp32"]
    device = resolve_device(device)
    load = [os.getloadavg()[0]]
    rows = []
    for backbone, size, batch in setups:
        seconds = time_variants(variants, backbone, size, batch, steps, warmup, device)
        load.append(os.getloadavg()[0])
        (wall, cpu), threads1 = seconds["fp32"], seconds.get("fp32-threads1", (None, None))[1]
        rows += [dict(variant=v, backbone=backbone, size=size, batch=batch, seconds_per_step=s,
                      ratio_to_fp32=s / wall, speedup=wall / s, cpu_seconds_per_step=c,
                      cpu_ratio_to_fp32=c / cpu,
                      cpu_ratio_to_fp32_threads1=c / threads1 if threads1 else float("nan"))
                 for v, (s, c) in seconds.items()]
    table = pd.DataFrame(rows)
    table["loss_run"] = [loss_run_of(v) for v in table.variant]
    if loss_steps:
        runs = sorted(set(table.loss_run), key=list(VARIANTS).index)
        with tempfile.TemporaryDirectory(prefix="bench-train-") as root:
            ratios = {v: loss_ratio_end(v, loss_steps, device, root, loss_threads)
                      for v in tqdm(runs, desc="bench train loss check", disable=None)}
        load.append(os.getloadavg()[0])
        table["loss_ratio_end"] = table.loss_run.map(ratios)
        table["fp32_loss_ratio_end"] = ratios["fp32"]
        table["same_curve"] = (table.loss_ratio_end - ratios["fp32"]).abs() <= TOLERANCE
    return table.assign(loss_steps=loss_steps, loss_setup="resnet18/128/8 cpu-profile seed 0",
                        loss_threads=loss_threads or "own",
                        timed_steps=steps, device=str(device), processor=processor(device),
                        torch=torch.__version__,
                        torchvision=torchvision.__version__, threads=torch.get_num_threads(),
                        omp_wait_policy=os.environ.get("OMP_WAIT_POLICY", "default"),
                        load_average=f"{min(load):.1f}-{max(load):.1f}")


def cli(args) -> int:
    table = run(args.setups, args.variants, args.steps, args.warmup, args.loss_steps,
                args.loss_threads, args.device)
    write_csv(args.out, table, float_format="%.4g")
    print(table.to_string(index=False))
    return 0
