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
