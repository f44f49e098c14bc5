"""The timing rule every benchmark shares: the median of repeated calls, after untimed warm-up."""
from __future__ import annotations

import statistics
import time


def median_seconds(fn, repeats: int = 3, warmup: int = 1, device=None) -> float:
    """Wall-clock seconds of one `fn()` call: the median of `repeats` calls after `warmup` calls.

    The median ignores the odd call slowed by another process; warm-up pays one-off costs (lazy
    init, allocator growth) outside the timing. On a CUDA `device` each call is synchronised so
    its asynchronous kernels are counted.
    """
    if repeats < 1 or warmup < 0:
        raise ValueError(f"repeats must be >= 1 and warmup >= 0; got {repeats}, {warmup}")
    sync = _synchronizer(device)
    for _ in range(warmup):
        fn()
        sync()
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds)


def _synchronizer(device):
    import torch

    if device is not None and torch.device(device).type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    return lambda: None
