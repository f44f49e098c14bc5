"""`rpmnet bench train`: every speed variant timed against fp32 in one run; the loss check's pairing."""
import pytest

from rpmnet.bench import train as bench
from rpmnet.errors import InputError
from rpmnet.parallel import num_threads


def test_variants_are_timed_against_fp32_in_one_table():
    with num_threads(1):  # polite on a shared 2-core machine; the table is what is tested
        table = bench.run(["resnet18/32/2"], ["bf16-channels_last", "fp32-torchvision_deform"],
                          steps=2, warmup=0, loss_steps=0)
    assert list(table.variant) == ["fp32", "bf16-channels_last", "fp32-torchvision_deform"]
    assert table.ratio_to_fp32.iloc[0] == 1 and (table.seconds_per_step > 0).all()
    assert (table.speedup * table.ratio_to_fp32).round(9).eq(1).all()
    assert list(table.loss_run) == ["fp32", "bf16-channels_last", "fp32"]
    assert {"backbone", "size", "batch", "load_average", "omp_wait_policy", "processor"} <= set(table.columns)


def test_a_variant_differing_only_in_threads_shares_its_twins_loss_run():
    assert bench.loss_run_of("bf16-channels_last-threads1") == "bf16-channels_last"
    assert bench.loss_run_of("fp32-threads1") == "fp32"
    assert bench.loss_run_of("compile") == "compile"


@pytest.mark.parametrize("setup", ["resnet18/130/8", "resnet18/128", "resnet7/128/8", "resnet18/128/0"])
def test_bad_setups_are_input_errors(setup):
    with pytest.raises(InputError):
        bench.parse_setup(setup)


def test_unknown_variant_is_an_input_error():
    with pytest.raises(InputError, match="fp16"):
        bench.run(["resnet18/32/2"], ["fp16"], loss_steps=0)
