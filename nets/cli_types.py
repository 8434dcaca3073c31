"""argparse types for the command-line tools in ``benchmarks/`` and ``scripts/``: a bad value is
argparse's own one-line usage error (exit 2) naming the option, never a traceback later.

    p.add_argument("--rounds", type=positive_int, default=3)
    p.add_argument("--group", type=group_arg, default="r4")
"""

from __future__ import annotations

import argparse

from nets.groups import group_name

__all__ = ["positive_int", "nonnegative_int", "group_arg"]


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
    """An integer >= 0 (a seed)."""
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def group_arg(text: str) -> str:
    """A group name that :func:`nets.groups.get_group` knows, canonical (``R4`` -> ``r4``)."""
    try:
        return group_name(text)  # raises as get_group does for a name it does not know
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
