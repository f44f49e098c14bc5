"""`rpmnet bench propagate`: seconds per propagated frame at 480x854 against one embedding forward.

Every frame has to be embedded once, so one embedding forward is the floor of propagation; the
rest (reading the JPEG, matching and warping at H/4, upsampling, arg-max, writing the PNG) is
overhead. Target: at most 1.3x the floor. Frames are noise with three blob objects (the speed
does not depend on the content); the model is freshly initialised.

Every row also carries the floor in bfloat16 (embed_bf16_s, embed_bf16_speedup): one embedding
forward under bfloat16 autocast in channels-last. Propagation itself runs in float32; this column
says how much a bfloat16 propagation could gain at most, not what it would do to J&F.

Each inference setting of rpmnet.online (`--modes`, default: all named ones) gets its own row:
seconds per frame, relative to the embedding and to the paper's flow path ("flow"), and the
one-off seconds per sequence of a test-time update (setup_s, design b). Targets: the flow path
at most 1.3x the embedding; the training-free online module (design a, "online-a*" and a "full"
that turns it on) at most 1.5x the flow path.

The settings take turns frame by frame (flow, then each other setting, on frame t; then frame
t+1), so a load that changes during the run (a shared machine) slows them alike and their
ratio holds. Each frame is timed twice: wall clock (seconds_per_frame, the ratios) and the
process's CPU time (cpu_seconds_per_frame, cpu_ratio_to_flow): on a loaded machine the CPU
time is the steadier measure of the work, exactly so with `--threads 1` (no thread waits).
"""
from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from ..config import ModelConfig, processor, resolve_device
from ..data import davis
from ..errors import InputError
from ..fileio import write_csv
from ._timing import median_seconds

TARGET = 1.3
TARGET_ONLINE_A = 1.5    # design (a) against the flow path
HEIGHT, WIDTH = 480, 854


def add_cli(parser):
    parser.add_argument("--backbone", default="resnet101", help="embedding backbone (paper: resnet101)")
    parser.add_argument("--frames", type=int, default=4, help="timed frames (after one warm-up frame)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--modes", default=None, help="comma-separated named inference settings "
                        "(rpmnet.online.NAMED; default: all); flow is always timed first")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: torch's own); 1 makes CPU time exact under load")


def write_sequence(root: Path, frames: int, size=(HEIGHT, WIDTH), seed: int = 0):
    """A DAVIS-layout split of one noise sequence, three blobs annotated in frame 0."""
    rng = np.random.default_rng(seed)
    h, w = size
    for t in range(frames):
        davis.write_image(root / "JPEGImages/480p/noise" / f"{t:05d}.jpg",
                          rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    yy, xx = np.mgrid[:h, :w]
    label = np.zeros(size, np.uint8)
    for k, (cy, cx) in enumerate([(0.3, 0.25), (0.6, 0.5), (0.4, 0.8)], start=1):
        label[(yy - cy * h) ** 2 + (xx - cx * w) ** 2 < (0.12 * h) ** 2] = k
    davis.write_label(root / "Annotations/480p/noise/00000.png", label)
    davis.split_file(root, "val").parent.mkdir(parents=True, exist_ok=True)
    davis.split_file(root, "val").write_text("noise\n")
    return davis.open_sequence(root, "noise")


def run(backbone="resnet101", frames=4, device="auto", modes=None, threads=None) -> pd.DataFrame:
    from ..model.rpmnet import RPMNet
    from ..online import NAMED, named
    from ..propagate import propagate_sequence

    ModelConfig(backbone)
    if frames < 1:
        raise InputError(f"--frames must be >= 1, got {frames}")
    if threads is not None:
        if threads < 1:
            raise InputError(f"--threads must be >= 1, got {threads}")
        torch.set_num_threads(threads)
    modes = list(NAMED) if modes is None else ["flow"] + [m for m in modes if m != "flow"]
    settings = {m: named(m) for m in modes}
    device = resolve_device(device)
    torch.manual_seed(0)
    model = RPMNet(backbone).to(device).eval()
    with tempfile.TemporaryDirectory() as tmp, tqdm(total=frames + 2, desc="bench propagate",
                                                      unit="frame", disable=None) as bar:
        seq = write_sequence(Path(tmp) / "davis", frames + 2)
        frame = torch.from_numpy(np.array(seq.frame(0))).to(device).permute(2, 0, 1)[None].float() / 255
        with torch.inference_mode():
            embed_s = median_seconds(lambda: model.embed(frame), repeats=3, warmup=1, device=device)
            embed_cpu_s = _cpu_seconds(lambda: model.embed(frame))
            embed_bf16_s = _embed_bf16_seconds(model, frame, device)
        stats = {m: {} for m in settings}
        labels = {m: propagate_sequence(model, seq, device, settings=s, stats=stats[m])
                  for m, s in settings.items()}
        wall, cpu = {m: [] for m in settings}, {m: [] for m in settings}
        # next() of frame 1 also embeds frame 0 (a warm-up) and runs a test-time update;
        # from frame 2 on, one frame each.
        for t in range(frames + 2):
            for mode in settings:
                start, start_cpu = time.perf_counter(), time.process_time()
                davis.write_label(Path(tmp) / "out" / mode / f"{t:05d}.png", next(labels[mode]))
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                if t >= 2:
                    wall[mode].append(time.perf_counter() - start)
                    cpu[mode].append(time.process_time() - start_cpu)
            bar.update()
    rows = []
    flow_s, flow_cpu = statistics.median(wall["flow"]), statistics.median(cpu["flow"])
    for mode, setting in settings.items():
        frame_s, frame_cpu = statistics.median(wall[mode]), statistics.median(cpu[mode])
        if mode == "flow":
            target, meets = f"<= {TARGET}x embed", frame_s / embed_s <= TARGET
        elif "readout" in setting.designs and "finetune" not in setting.designs:
            target, meets = f"<= {TARGET_ONLINE_A}x flow", frame_s / flow_s <= TARGET_ONLINE_A
        else:
            target, meets = "", None
        rows.append(dict(mode=mode, backbone=backbone, height=HEIGHT, width=WIDTH, embed_s=embed_s,
                         seconds_per_frame=frame_s, ratio_to_embed=frame_s / embed_s,
                         ratio_to_flow=frame_s / flow_s, embed_cpu_s=embed_cpu_s,
                         embed_bf16_s=embed_bf16_s, embed_bf16_speedup=embed_s / embed_bf16_s,
                         cpu_seconds_per_frame=frame_cpu, cpu_ratio_to_flow=frame_cpu / flow_cpu,
                         setup_s=stats[mode].get("finetune_seconds", 0.0), target=target,
                         meets_target=meets, frames=len(wall[mode]), device=str(device),
                         processor=processor(device),
                         torch=torch.__version__, threads=torch.get_num_threads(),
                         load_average=round(os.getloadavg()[0], 2)))
    return pd.DataFrame(rows)


def _embed_bf16_seconds(model, frame, device) -> float:
    """One embedding forward in bfloat16 autocast and channels-last (a copy of the model), timed
    like embed_s: how much lower the floor would be if propagation ran in bfloat16 (on CPUs with
    AMX or AVX512-BF16 oneDNN runs such convolutions natively). Propagation itself stays float32;
    what bfloat16 would do to J&F is not measured here."""
    import copy

    fast = copy.deepcopy(model).to(memory_format=torch.channels_last)
    frame = frame.contiguous(memory_format=torch.channels_last)
    with torch.autocast(device.type, dtype=torch.bfloat16):
        return median_seconds(lambda: fast.embed(frame), repeats=3, warmup=1, device=device)


def _cpu_seconds(fn, repeats: int = 3) -> float:
    """The process's CPU seconds of one fn() call: the median of `repeats` after one warm-up."""
    fn()
    seconds = []
    for _ in range(repeats):
        start = time.process_time()
        fn()
        seconds.append(time.process_time() - start)
    return statistics.median(seconds)


def cli(args) -> int:
    modes = None if args.modes is None else [m.strip() for m in args.modes.split(",") if m.strip()]
    table = run(args.backbone, args.frames, args.device, modes, args.threads)
    write_csv(args.out, table, float_format="%.4g")
    print(table.to_string(index=False))
    return 0
