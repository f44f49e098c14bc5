"""The timing rule every benchmark shares: the median of repeated calls, after untimed warm-up."""
from __future__ import annotations

import timeit


def median_seconds(fn, repeats: int = 3, warmup: int = 1, device=None) -> float:
    """Wall-clock seconds of one `fn()` call: the median of `repeats` timed calls, each measured
    by torch.utils.benchmark.Timer (which runs two untimed calls before each timed one), after
    `warmup` more untimed calls up front.

    The median ignores the odd call slowed by another process; warm-up pays one-off costs (lazy
    init, allocator growth) outside the timing. On a CUDA `device` the clock synchronises it, so
    asynchronous kernels are counted. Timer runs at torch's current thread count (its own
    default, 1 thread, would time another configuration than the benchmark reports).
    """
    import torch
    from torch.utils.benchmark import Measurement, Timer

    if repeats < 1 or warmup < 0:
        raise ValueError(f"repeats must be >= 1 and warmup >= 0; got {repeats}, {warmup}")
    for _ in range(warmup):
        fn()
    timer = Timer("fn()", globals={"fn": fn}, timer=_clock(device), num_threads=torch.get_num_threads())
    return Measurement.merge([timer.timeit(1) for _ in range(repeats)])[0].median


def _clock(device):
    import torch

    if device is not None and torch.device(device).type == "cuda":
        def synchronised() -> float:
            torch.cuda.synchronize(device)
            return timeit.default_timer()
        return synchronised
    return timeit.default_timer
