import os

import pytest

# Deterministic and polite on a 2-core machine.
os.environ.setdefault("OMP_NUM_THREADS", "2")


def pytest_collection_modifyitems(session, config, items):
    # An empty run must fail loudly, never pass as pytest's "no tests ran" (exit 5).
    if not items:
        raise pytest.UsageError("no tests were collected: the test suite is missing or filtered away")


@pytest.fixture(autouse=True)
def _seed():
    import random

    import numpy as np
    import torch

    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    yield


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    """A tiny built-in benchmark (2 sequences x 6 frames of 64x96): what the training tests train on."""
    from rpmnet.data.synthetic import generate

    return generate(tmp_path_factory.mktemp("bench") / "synthetic", seed=0, size=(64, 96),
                    sequences=2, frames=6)


def tiny_config(bench, out, **changes):
    """A 4-step resnet18 TrainConfig on `bench` (crop 64, batch 2, seed 3), checkpointing every step."""
    from rpmnet.train import TrainConfig

    values = dict(backbone="resnet18", crop=64, batch_size=2, seed=3, device="cpu", data=[str(bench)],
                  steps=4, checkpoint_every=1, out=str(out))
    return TrainConfig(**{**values, **changes})
