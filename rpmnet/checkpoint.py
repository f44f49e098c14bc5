"""Checkpoints: what `rpmnet train` saves and what `rpmnet propagate` loads.

A checkpoint holds only tensors and plain containers (configs as dicts, RNG states as tensors
and lists), so it loads with torch.load(weights_only=True): opening one never runs code.
"""
from __future__ import annotations

import random
import warnings
from pathlib import Path

import numpy as np
import torch

from . import __version__
from .config import ModelConfig
from .errors import InputError
from .fileio import torch_save

FORMAT = 1
REQUIRED = ("format", "version", "model_config", "model", "step")


def save(path, *, model, model_config: ModelConfig, step: int, **extra) -> Path:
    """Atomically write a checkpoint; `extra` adds optimiser/scaler state, RNG, train config..."""
    state = dict(format=FORMAT, version=__version__, model_config=dict(model_config.__dict__),
                 model=model.state_dict(), step=int(step), **extra)
    return torch_save(path, state)


def load(path, map_location="cpu") -> dict:
    """Read and check a checkpoint. Unreadable, foreign or incomplete files are InputErrors."""
    path = Path(path)
    if not path.is_file():
        what = "is a folder, not a checkpoint file" if path.is_dir() else "checkpoint file does not exist"
        raise InputError(f"{path}: {what}")
    try:
        with warnings.catch_warnings():  # torch warns about legacy formats: noise for a user
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception:  # noqa: BLE001 - a text file gives IndexError, others KeyError, pickle errors...
        # torch's own message advises weights_only=False, i.e. running the file's code: never quoted
        raise InputError(f"{path}: not a readable rpmnet checkpoint") from None
    if not isinstance(state, dict) or any(k not in state for k in REQUIRED):
        missing = [k for k in REQUIRED if not isinstance(state, dict) or k not in state]
        raise InputError(f"{path}: not a readable rpmnet checkpoint (missing {', '.join(missing)})")
    if state["format"] != FORMAT:
        raise InputError(f"{path}: checkpoint format {state['format']} is not supported (need {FORMAT})")
    try:
        state["model_config"] = ModelConfig(**state["model_config"])
    except (TypeError, InputError) as err:
        raise InputError(f"{path}: bad model config in checkpoint ({err})") from None
    weights = state["model"]
    if not isinstance(weights, dict) or not all(isinstance(v, torch.Tensor) for v in weights.values()):
        raise InputError(f"{path}: not a readable rpmnet checkpoint (its weights are not tensors)")
    bad = next((k for k, v in weights.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())),
               None)
    if bad is not None:  # a model that propagates NaN writes all-background masks, silently
        raise InputError(f"{path}: checkpoint weights are not finite (NaN or inf in {bad})")
    return state


def load_weights(path, model, state: dict) -> None:
    """Copy a checkpoint's weights into `model`; any key or shape mismatch names the file."""
    try:
        model.load_state_dict(state["model"], strict=True)
    except (RuntimeError, KeyError, TypeError) as err:
        first = str(err).strip().splitlines()
        raise InputError(f"{path}: weights do not fit {state['model_config'].cell} "
                         f"({' '.join(first[:2])[:300]})") from None


def load_model(path, device="cpu"):
    """The RPMNet stored in a checkpoint, in eval mode on `device`."""
    from .model.rpmnet import RPMNet

    state = load(path)
    model = RPMNet.from_config(state["model_config"])
    load_weights(path, model, state)
    return model.to(device).eval()


# RNG states as tensors and lists (numpy arrays and tuples of Python's state are not allowed by
# weights_only loading, and a resumed run must continue every generator exactly).
def rng_state() -> dict:
    _, keys, pos, has_gauss, gauss = np.random.get_state()
    version, internal, py_gauss = random.getstate()
    state = dict(torch=torch.get_rng_state(),
                 numpy=dict(keys=torch.from_numpy(keys.astype(np.int64)), pos=int(pos),
                            has_gauss=int(has_gauss), gauss=float(gauss)),
                 python=dict(version=version, internal=list(internal), gauss=py_gauss))
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"].cpu())
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["gauss"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["internal"]), p["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
