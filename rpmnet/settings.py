"""Settings dataclasses whose fields carry their own help and reader, so one list of settings
gives the dataclass, its command-line options (--max-gap for max_gap) and its config-file keys.

    steps: int | None = setting(None, "optimisation steps", read=integer)

A reader turns a flag's text or a YAML/JSON value into the field's value; the command line and
the config file go through the same readers, so `--steps 2.7` and `steps: 2.7` fail alike.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from .errors import InputError


# ---------------------------------------------------------------------------------- readers
def boolean(text) -> bool:
    if isinstance(text, bool):
        return text
    if str(text).lower() in ("1", "true", "yes", "on"):
        return True
    if str(text).lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(text)


def integer(value) -> int:
    """An integer, strictly: 2.7 (or "2.7", or true) is not silently 2."""
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise ValueError(value)
    if isinstance(value, float):
        return int(value)
    return int(str(value).strip())


def real(value) -> float:
    if isinstance(value, bool):
        raise ValueError(value)
    return float(value)


def strings(value) -> list:
    """One or more values (`--data a b`, or a YAML list) as a list of strings."""
    return [str(v) for v in value] if isinstance(value, (list, tuple)) else [str(value)]


def optional(kind):
    """`kind`, or None for none/null/auto (a setting whose None has a meaning of its own)."""
    return lambda v: None if v is None or str(v).lower() in ("none", "null", "auto") else kind(v)


NEEDS_VALUE = (str, strings, integer, real, boolean)   # None is no value for these readers


def setting(default, help: str, read=str, must_match: bool = False):
    """A dataclass field with its help and reader; `must_match`: a resumed run must have the
    checkpoint's value (rpmnet.runfolder.check_resumable)."""
    return dataclasses.field(default=default, metadata=dict(help=help, read=read, must_match=must_match))


# ------------------------------------------------------------------------- from the outside
def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def read(cls, name: str, value, where: str):
    """The value of setting `name` of dataclass `cls` read from `value` (InputError naming `where`)."""
    kind = {f.name: f for f in dataclasses.fields(cls)}[name].metadata["read"]
    if value is None and kind in NEEDS_VALUE:
        raise InputError(f"{where}: {name} has no value")
    try:
        return kind(value)
    except (TypeError, ValueError):
        raise InputError(f"{where}: bad value {value!r} for {name}") from None


def read_file(cls, path) -> dict:
    """A YAML or JSON mapping of `cls`'s settings (keys as field names or with dashes)."""
    import yaml

    path = Path(path)
    try:
        text = path.read_text()
        # JSON is read as JSON: YAML would take '{"lr": }' for lr = None
        values = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except json.JSONDecodeError as err:
        raise InputError(f"{path}: not valid JSON ({err.msg} at line {err.lineno}, column {err.colno})") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise InputError(f"{path}: cannot read config file ({str(err).splitlines()[0]})") from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise InputError(f"{path}: a config file must be a mapping of settings")
    values = {str(k).replace("-", "_"): v for k, v in values.items()}
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(values) - set(names))
    if unknown:
        raise InputError(f"{path}: unknown setting(s) {', '.join(unknown)}; allowed: {', '.join(names)}")
    return {k: read(cls, k, v, str(path)) for k, v in values.items()}


def add_options(parser, cls) -> None:
    """One option per setting of `cls`, with its help; an option not given is absent from the
    parsed arguments (so a config file's value stands)."""
    for f in dataclasses.fields(cls):
        help_text = f.metadata["help"].replace("%", "%%")  # argparse formats help with %
        if f.metadata["read"] is strings:
            parser.add_argument(flag(f.name), nargs="+", default=argparse.SUPPRESS, help=help_text)
        else:
            parser.add_argument(flag(f.name), default=argparse.SUPPRESS, help=help_text,
                                metavar=f.name.upper())


def from_args(cls, args, defaults: dict | None = None) -> dict:
    """`defaults` (e.g. a config file's) updated with the options given in `args`."""
    values = dict(defaults or {})
    values.update({f.name: read(cls, f.name, getattr(args, f.name), flag(f.name))
                   for f in dataclasses.fields(cls) if hasattr(args, f.name)})
    return values


def must_match(cls) -> tuple:
    return tuple(f.name for f in dataclasses.fields(cls) if f.metadata["must_match"])
