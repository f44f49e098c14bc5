"""`rpmnet bench propagate` on one frame of resnet18: every row carries the float32 and bfloat16
embedding floors, so the README's bf16 estimate comes from a column the benchmark really fills."""
import math

from rpmnet.bench import propagate
from rpmnet.parallel import num_threads


def test_bench_propagate_times_the_bf16_floor_beside_the_fp32_one():
    with num_threads(1):  # polite on a shared 2-core machine; the table is what is tested
        table = propagate.run(backbone="resnet18", frames=1, device="cpu", modes=["flow"])
    assert list(table["mode"]) == ["flow"]
    row = table.iloc[0]
    for key in ("embed_s", "embed_bf16_s", "seconds_per_frame"):
        assert math.isfinite(row[key]) and row[key] > 0, key
    assert math.isclose(row.embed_bf16_speedup, row.embed_s / row.embed_bf16_s)
    assert row.frames == 1 and (row.height, row.width) == (480, 854) and row.processor
