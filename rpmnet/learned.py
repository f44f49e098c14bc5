"""Did a model learn to match? The flow it predicts on val, beside the loss ratio of training.

A model that never left the zero-flow loss in training can still move masks at inference: in
eval mode BatchNorm uses running statistics, and a matching module that learned nothing then
predicts a small, spatially smooth drift (issue 13 measured 0.29-0.38 H/4 px per frame for a
dilation-3 cell whose flow was 0.05 in train mode). Such a cell scores below zero-flow for a
reason that has nothing to do with matching. The mean flow length on val, in eval mode, makes
it visible: a learned model moves masks by about the scene's motion; one that has not learned,
and is free of drift, by about zero.
"""
from __future__ import annotations

import torch

PAIRS = 10   # consecutive frame pairs per val sequence: enough for a mean, cheap at 480p


@torch.inference_mode()
def mean_flow(model, sequences, device="cpu", pairs: int = PAIRS) -> float:
    """Mean length of row 108's flow (H/4 pixels per frame) over the first `pairs` consecutive
    pairs of each sequence (rpmnet.data.davis.Sequence), the model in eval mode as at inference."""
    from .propagate import frame_tensor

    model = model.eval().to(device)
    lengths = []
    for seq in sequences:
        n = min(len(seq), pairs + 1)
        if n < 2:
            continue
        feats = model.embed(torch.cat([frame_tensor(seq, t, device) for t in range(n)]))
        flow = model.flow(feats[1:], feats[:-1])                    # t from t-1, as propagation
        lengths.append(flow.norm(dim=1).mean(dim=(1, 2)))
    if not lengths:
        return float("nan")
    return float(torch.cat(lengths).mean())


SETTINGS = ("matching", "layers", "dilation", "steps", "crop", "max_gap", "norm", "lr_schedule",
            "flow_init", "init_from")


def onset(log, below: float = 0.95, window: int = 20):
    """The first step at which the windowed loss ratio (ratio of window means) drops below
    `below`: when a module started to beat the zero flow; None if it never did."""
    mean = lambda v: v.rolling(window).mean()  # noqa: E731
    ratio = mean(log["loss"]) / mean(log["zero_flow_loss"])
    hit = log["step"][ratio < below]
    return None if hit.empty else int(hit.iloc[0])


def runs_table(folders):
    """One row per finished training run (a folder with final.pt and log.csv): its settings, its
    loss ratio over the last 10% of steps (runfolder.final_losses), the step it started to beat the
    zero flow, and its seconds. How the protocol candidates were compared."""
    from pathlib import Path

    import pandas as pd

    from .checkpoint import load
    from .runfolder import final_losses

    rows = []
    for folder in map(Path, folders):
        config = load(folder / "final.pt")["train_config"]
        log = pd.read_csv(folder / "log.csv")
        row = dict(run=folder.name, **{k: config.get(k) for k in SETTINGS})
        row["init_from"] = Path(row["init_from"]).parent.name if row["init_from"] else None
        row.update(final_losses(log), onset=onset(log), seconds=round(float(log.seconds.iloc[-1]), 1))
        rows.append(row)
    return pd.DataFrame(rows)
