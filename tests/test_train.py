"""Self-supervised training: exact resume after SIGKILL, DDP, learning, divergence, bad input."""
import hashlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from rpmnet import checkpoint
from rpmnet.cli import main
from rpmnet.data import davis
from conftest import tiny_config
from rpmnet.errors import InputError
from rpmnet.train import TrainingDiverged, train

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--backbone", "resnet18", "--crop", "64", "--batch-size", "2", "--seed", "3", "--device", "cpu"]


tiny = tiny_config


def weights(path):
    return torch.load(path, weights_only=True)["model"]


def log_steps(out):
    lines = (Path(out) / "log.csv").read_text().splitlines()
    assert lines[0] == "step,loss,zero_flow_loss,lr,seconds"
    return [int(line.split(",")[0]) for line in lines[1:]]


def test_sigkill_then_resume_is_bit_identical(bench, tmp_path):
    steps = 6
    reference = train(tiny(bench, tmp_path / "whole", steps=steps))

    out = tmp_path / "killed"
    args = ["train", *TINY, "--data", str(bench), "--steps", str(steps), "--checkpoint-every", "1",
            "--out", str(out)]
    proc = subprocess.Popen([sys.executable, "-m", "rpmnet", *args], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if (out / "log.csv").is_file() and len(log_steps(out)) >= 3:  # past the step-2 checkpoint
            break
        time.sleep(0.05)
    assert proc.poll() is None, proc.stderr.read().decode()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "final.pt").exists()
    killed_at = checkpoint.load(out / "last.pt")["step"]
    assert 2 <= killed_at < steps

    assert main([*args, "--resume"]) == 0
    assert log_steps(out) == list(range(steps))   # the redone steps are logged once
    a, b = weights(reference), weights(out / "final.pt")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _ddp_worker(rank, world, port, bench, out, hashes):
    import rpmnet.train as T
    from rpmnet.model.rpmnet import RPMNet

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      LOCAL_RANK=str(rank), WORLD_SIZE=str(world))
    built = []
    make = RPMNet.from_config
    RPMNet.from_config = lambda cfg: built.append(make(cfg)) or built[-1]
    torch.set_num_threads(1)
    T.train(tiny(bench, out, steps=3, checkpoint_every=10))
    digest = hashlib.sha256()
    for value in built[0].state_dict().values():
        digest.update(value.detach().contiguous().numpy().tobytes())
    Path(hashes, f"rank{rank}.txt").write_text(digest.hexdigest())


def test_ddp_two_cpu_ranks_hold_identical_weights(bench, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "ddp"
    torch.multiprocessing.spawn(_ddp_worker, args=(2, port, str(bench), str(out), str(tmp_path)), nprocs=2)
    rank0, rank1 = (tmp_path / "rank0.txt").read_text(), (tmp_path / "rank1.txt").read_text()
    assert rank0 == rank1
    digest = hashlib.sha256()
    for value in weights(out / "final.pt").values():
        digest.update(value.contiguous().numpy().tobytes())
    assert digest.hexdigest() == rank0                       # rank 0 saved what both hold
    assert not torch.equal(weights(out / "final.pt")["matching.layers.2.bias"], torch.zeros(2))
    assert log_steps(out) == [0, 1, 2]                        # one log, written by rank 0 only


def test_learning_beats_zero_flow(tmp_path):
    """A texture sliding down 4 px a frame (1 px at H/4; a flip does not change dy): a short
    run's reconstruction loss drops well below the zero-flow loss of the same batches."""
    from scipy.ndimage import uniform_filter

    texture = uniform_filter(np.random.default_rng(0).random((120, 80, 3)), size=(5, 5, 1))
    texture = (texture - texture.min()) / np.ptp(texture)
    video = tmp_path / "videos" / "slide"
    for t in range(8):
        davis.write_image(video / f"{t:05d}.jpg", (texture[40 - 4 * t:104 - 4 * t] * 255).astype(np.uint8))
    out = tmp_path / "run"
    train(tiny(tmp_path / "videos", out, steps=30, lr=3e-3, checkpoint_every=100))  # ~drops at step 18
    rows = np.loadtxt(out / "log.csv", delimiter=",", skiprows=1)
    assert rows[0, 1] == pytest.approx(rows[0, 2])            # the flow starts at zero
    last = rows[-5:]
    assert last[:, 1].mean() < 0.8 * last[:, 2].mean()


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(bench, tmp_path, monkeypatch, capsys):
    import rpmnet.train as T

    calls = []
    real = T.losses

    def poisoned(*args, **kwargs):
        calls.append(1)
        loss, zero = real(*args, **kwargs)
        return (loss * float("nan"), zero) if len(calls) == 3 else (loss, zero)

    monkeypatch.setattr(T, "losses", poisoned)
    out = tmp_path / "nan"
    with pytest.raises(TrainingDiverged, match="step 2.*last good checkpoint.*step 1"):
        train(tiny(bench, out, steps=4))
    assert not (out / "final.pt").exists() and not (out / "pending.pt").exists()
    model = checkpoint.load_model(out / "last.pt")
    assert checkpoint.load(out / "last.pt")["step"] == 1
    assert all(torch.isfinite(p).all() for p in model.parameters())

    calls.clear()
    args = ["train", *TINY, "--data", str(bench), "--steps", "4", "--checkpoint-every", "10",
            "--out", str(tmp_path / "cli")]
    assert main(args) == 1
    assert "loss is nan at step 2" in capsys.readouterr().err


def test_bad_checkpoints_and_config_exit_2(bench, tmp_path, capsys):
    out = tmp_path / "run"
    base = ["train", *TINY, "--data", str(bench), "--steps", "2", "--out", str(out)]
    out.mkdir()
    (out / "last.pt").write_bytes(b"not a checkpoint at all")
    assert main([*base, "--resume"]) == 2
    assert str(out / "last.pt") in capsys.readouterr().err
    assert main(["propagate", "--checkpoint", str(out / "last.pt"), "--davis-root", str(bench)]) == 2
    assert str(out / "last.pt") in capsys.readouterr().err

    # a checkpoint of another architecture: resuming and loading both name the file
    other = train(tiny(bench, tmp_path / "r34", backbone="resnet34", steps=1))
    (out / "last.pt").write_bytes((other.parent / "last.pt").read_bytes())
    assert main([*base, "--resume"]) == 2
    assert f"{out / 'last.pt'}: cannot resume" in capsys.readouterr().err
    state = torch.load(other, weights_only=True)
    state["model_config"]["backbone"] = "resnet18"            # keys no longer fit
    torch.save(state, tmp_path / "lying.pt")
    with pytest.raises(InputError, match="lying.pt: weights do not fit"):
        checkpoint.load_model(tmp_path / "lying.pt")

    config = tmp_path / "run.yaml"
    config.write_text("steps: 2\nbakbone: resnet18\n")
    assert main(["train", "--config", str(config)]) == 2
    assert "run.yaml: unknown setting(s) bakbone" in capsys.readouterr().err
    assert main([*base, "--loss", "l3"]) == 2
    assert "loss='l3'" in capsys.readouterr().err


def test_config_file_and_flags(bench, tmp_path):
    import argparse

    from rpmnet.train_cli import add_cli, config_from_args

    config = tmp_path / "run.json"
    config.write_text('{"steps": 7, "lr": 0.01, "profile": "smoke", "amp": "off"}')
    parser = argparse.ArgumentParser()
    add_cli(parser)
    cfg = config_from_args(parser.parse_args(["--config", str(config), "--lr", "0.02"])).resolved()
    assert (cfg.steps, cfg.lr, cfg.amp, cfg.profile) == (7, 0.02, False, "smoke")
    assert (cfg.crop, cfg.batch_size, cfg.backbone) == (64, 2, "resnet18")   # the smoke profile's


def test_cli_options_and_config_keys_are_the_train_config_fields(tmp_path, capsys):
    """One list of settings: every TrainConfig field is an option with its help and a config-file
    key, and MUST_MATCH comes from the fields' must_match flags."""
    import argparse
    import dataclasses
    import json

    from rpmnet.train import MUST_MATCH, TrainConfig
    from rpmnet.train_cli import add_cli, read_config_file

    fields = [f.name for f in dataclasses.fields(TrainConfig)]
    parser = argparse.ArgumentParser()
    add_cli(parser)
    options = {a.option_strings[-1]: a for a in parser._actions}
    assert [o for o in options if o not in ("--help", "--config", "--resume", "--force")] == \
        ["--" + name.replace("_", "-") for name in fields]
    assert all(options["--" + name.replace("_", "-")].help for name in fields)
    assert MUST_MATCH == tuple(f.name for f in dataclasses.fields(TrainConfig) if f.metadata["must_match"])
    assert set(MUST_MATCH) == {"backbone", "matching", "layers", "dilation", "data", "crop", "gap", "max_gap",
                               "batch_size", "lr", "weight_decay", "loss", "color_space", "seed", "norm",
                               "lr_schedule", "flow_init", "init_from"}   # what a resume may not change
    config = tmp_path / "all.json"   # a key per setting, each read back as its value
    values = {k: v for k, v in dataclasses.asdict(TrainConfig(profile="smoke").resolved()).items()
              if v is not None or k in ("max_gap", "amp", "channels_last", "threads")}
    config.write_text(json.dumps({**values, "data": ["a", "b"], "init_from": "warm.pt"}))
    assert read_config_file(config) == {**values, "data": ["a", "b"], "init_from": "warm.pt"}
    assert len(values) + 2 == len(fields)
    config.write_text('{"bogus": 1}')
    with pytest.raises(InputError, match="allowed: " + ", ".join(fields) + "$"):
        read_config_file(config)
    with pytest.raises(SystemExit) as done:
        main(["train", "--help"])
    assert done.value.code == 0
    shown = capsys.readouterr().out
    assert all(f"--{name.replace('_', '-')}" in shown for name in fields) and "5% linear warm-up" in shown


def test_speed_settings_train_the_same_model(bench, tmp_path):
    """bf16 autocast, channels-last and one thread change how a step runs, not what it trains:
    the losses of the first steps agree with fp32's to bf16 rounding, the threads are restored."""
    threads = torch.get_num_threads()
    train(tiny(bench, tmp_path / "fp32", steps=3, checkpoint_every=10))
    train(tiny(bench, tmp_path / "fast", steps=3, checkpoint_every=10, amp=True, channels_last=True,
               threads=1))
    assert torch.get_num_threads() == threads
    fp32, fast = (np.loadtxt(tmp_path / run / "log.csv", delimiter=",", skiprows=1)
                  for run in ("fp32", "fast"))
    np.testing.assert_array_equal(fp32[:, 2], fast[:, 2])     # the same batches (zero-flow loss)
    np.testing.assert_allclose(fast[:, 1], fp32[:, 1], rtol=0.02)
    assert weights(tmp_path / "fast" / "final.pt")["matching.layers.2.bias"].dtype == torch.float32
