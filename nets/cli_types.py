"""argparse types for the command-line tools (``python -m nets``, ``benchmarks/``, ``scripts/``): a bad
value is argparse's own usage error (exit 2) naming the option, never a traceback later; and
:class:`OneLineParser`, which gives that error in one line.

    p.add_argument("--rounds", type=positive_int, default=3)
    p.add_argument("--group", type=group_arg, default="r4")
"""

from __future__ import annotations

import argparse
import sys
import math

from nets.groups import group_name

__all__ = ["OneLineParser", "positive_int", "nonnegative_int", "positive_float", "group_arg"]


class OneLineParser(argparse.ArgumentParser):
    """argparse, with a usage error on one line (``prog: error: ... (see prog --help)``, exit 2)
    instead of the usage text and then the error: the parser of every ``python -m nets`` command."""

    #: Options another command names that this one names otherwise: {flag: what to say instead}, so a
    #: user moving between ``audit`` and ``own-data`` is told the name here, not "unrecognized arguments".
    other_names: dict[str, str] = {}

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")

    def parse_known_args(self, args=None, namespace=None):  # type: ignore[override]
        for arg in sys.argv[1:] if args is None else args:
            if arg == "--":
                break
            name = arg.split("=", 1)[0]
            if name in self.other_names:
                self.error(f"{name} is another command's option: {self.other_names[name]}")
        return super().parse_known_args(args, namespace)


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None


def positive_int(text: str) -> int:
    """An integer >= 1 (a count: rounds, seeds, samples, threads, epochs)."""
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def nonnegative_int(text: str) -> int:
    """An integer >= 0 and below 2**63 (a seed: torch and numpy take 64-bit seeds)."""
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    if value >= 2 ** 63:
        raise argparse.ArgumentTypeError(f"must be below 2**63, got {value}")
    return value


def positive_float(text: str) -> float:
    """A finite number > 0 (a learning rate)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def group_arg(text: str) -> str:
    """A group name that :func:`nets.groups.get_group` knows, canonical (``R4`` -> ``r4``)."""
    try:
        return group_name(text)  # raises as get_group does for a name it does not know
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
