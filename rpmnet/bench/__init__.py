"""`rpmnet bench NAME`: one module per benchmark, each writing results/bench_<name>.csv.

A benchmark module defines `add_cli(parser)` and `cli(args)` like a top-level command.
Speed targets live here, never in unit tests.
"""
from __future__ import annotations

import importlib

BENCHMARKS = {
    "ops": "deform_conv2d: ours vs torchvision vs a plain conv, forward+backward",
    "eval": "DAVIS J/F evaluation seconds per 480p sequence",
    "train": "training step speed variants (bf16, channels-last, compile, threads) against fp32",
    "propagate": "propagation seconds per frame against one embedding forward",
}


def add_cli(parser):
    sub = parser.add_subparsers(dest="benchmark", metavar="BENCHMARK", required=True)
    for name, help_text in BENCHMARKS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--out", default=f"results/bench_{name}.csv", help="CSV to write")
        importlib.import_module(f"rpmnet.bench.{name}").add_cli(p)


def cli(args) -> int:
    return importlib.import_module(f"rpmnet.bench.{args.benchmark}").cli(args)
