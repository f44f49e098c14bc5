"""The `rpmnet` command. Each subcommand lives beside the code it runs.

A subcommand module defines `add_cli(parser)` (its arguments) and `cli(args) -> int`.
Modules are imported only when their subcommand runs, so `rpmnet --help` is instant.
"""
from __future__ import annotations

import argparse
import errno
import importlib
import os
import sys

from .errors import InputError

# name -> (module, one-line help)
COMMANDS = {
    "synth": ("rpmnet.data.synthetic", "write the built-in DAVIS-layout benchmark"),
    "train": ("rpmnet.train_cli", "self-supervised training (reconstruct a frame from its neighbour)"),
    "propagate": ("rpmnet.propagate", "propagate first-frame masks through a DAVIS-layout split"),
    "evaluate": ("rpmnet.evaluate", "official DAVIS-2017 semi-supervised J/F of a results folder"),
    "ablate": ("rpmnet.ablation", "the Table 2 grid: train, propagate, evaluate every cell"),
    "bench": ("rpmnet.bench", "benchmarks (ops, eval, train, propagate) writing results/*.csv"),
}


class Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line: the message and where to find the options
    (argparse's usage of `rpmnet train` alone wraps over 7 lines)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message.splitlines()[0]} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = Parser(prog="rpmnet", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"rpmnet {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_module=module)
        # Arguments are added lazily (below) so that only the chosen module is imported.
        p.set_defaults(_name=name)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    # First pass: find the subcommand; then let its module add its own arguments.
    name = next((a for a in argv if not a.startswith("-")), None)
    if name in COMMANDS:
        module = importlib.import_module(COMMANDS[name][0])
        subparser = parser._subparsers._group_actions[0].choices[name]
        module.add_cli(subparser)
    args = parser.parse_args(argv)
    module = importlib.import_module(args._module)
    try:
        return int(module.cli(args) or 0)
    except InputError as err:
        print(f"rpmnet {args._name}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"rpmnet {args._name}: interrupted", file=sys.stderr)
        return 130
    except OSError as err:
        if os.environ.get("RPMNET_DEBUG"):
            raise
        if err.errno == errno.ENOSPC:  # fileio names the file; what was complete stays complete
            print(f"rpmnet {args._name}: error: {err.filename or 'writing'}: no space left on device",
                  file=sys.stderr)
        else:
            where = f"{err.filename}: " if err.filename else ""
            print(f"rpmnet {args._name}: failed: {where}{err.strerror or err}", file=sys.stderr)
        return 1
    except Exception as err:  # noqa: BLE001 - one line for users, the traceback on request
        if os.environ.get("RPMNET_DEBUG"):
            raise
        print(f"rpmnet {args._name}: failed: {type(err).__name__}: {err} "
              f"(set RPMNET_DEBUG=1 for the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
