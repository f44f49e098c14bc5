"""`rpmnet train`: one option per TrainConfig setting (rpmnet.settings), a --config file of
the same settings (flags win), and --resume / --force for an existing run folder."""
from __future__ import annotations

import sys

from . import settings
from .errors import InputError
from .parallel import is_main
from .train import TrainConfig, TrainingDiverged, train


def read_config_file(path) -> dict:
    """A YAML or JSON mapping of TrainConfig settings."""
    return settings.read_file(TrainConfig, path)


def add_cli(parser):
    parser.add_argument("--config", metavar="FILE", help="YAML or JSON file of settings (flags win)")
    parser.add_argument("--resume", action="store_true", help="continue from <out>/last.pt")
    parser.add_argument("--force", action="store_true",
                        help="replace the run in --out (its log.csv and checkpoints)")
    settings.add_options(parser, TrainConfig)


def config_from_args(args) -> TrainConfig:
    values = read_config_file(args.config) if args.config else {}
    return TrainConfig(**settings.from_args(TrainConfig, args, values))


def cli(args) -> int:
    try:
        if args.resume and args.force:
            raise InputError("--resume continues the run in --out and --force replaces it; give one")
        final = train(config_from_args(args), resume=args.resume, force=args.force)
    except TrainingDiverged as err:
        print(f"rpmnet train: error: {err}", file=sys.stderr)
        return 1
    if is_main():
        print(final)
    return 0
