"""The timing rule of every benchmark (rpmnet.bench._timing) on torch.utils.benchmark.Timer."""
import time

import pytest
import torch

from rpmnet.bench._timing import median_seconds


def test_median_ignores_one_slow_call_and_counts_the_warm_up():
    calls = []

    def fn():
        calls.append(len(calls))
        time.sleep(0.5 if len(calls) == 7 else 0.01)   # the second timed call, slowed by "another process"

    seconds = median_seconds(fn, repeats=3, warmup=1)
    assert 0.01 <= seconds < 0.25
    assert len(calls) == 1 + 3 * 3      # warm-up, then per timed call Timer's two untimed ones


def test_the_threads_torch_uses_are_the_ones_timed():
    seen = []
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        median_seconds(lambda: seen.append(torch.get_num_threads()), repeats=1, warmup=0)
    finally:
        torch.set_num_threads(before)
    assert set(seen) == {2}             # Timer's own default would be 1


@pytest.mark.parametrize("repeats, warmup", [(0, 1), (1, -1)])
def test_bad_counts_are_refused(repeats, warmup):
    with pytest.raises(ValueError, match="repeats must be >= 1"):
        median_seconds(lambda: None, repeats, warmup)
