"""Warnings attributed to the line of the user's code that called into ``nets``, however deep in the
package they are raised, so that Python's ``file:line: Category: message`` points at that line
(a measure reaches its input checks through one to four calls, depending on the entry point, and
through torch's decorators such as ``torch.no_grad``)."""

from __future__ import annotations

import sys
import warnings

__all__ = ["warn_at_caller"]


#: Top-level packages whose frames are passed over: ours, and torch's (``torch.no_grad`` as a decorator).
_PASSED_OVER = frozenset({"nets", "torch"})


def _in_package(frame) -> bool:
    return frame.f_globals.get("__name__", "").partition(".")[0] in _PASSED_OVER


def warn_at_caller(message: str, category: type[Warning]) -> None:
    """``warnings.warn(message, category)`` with the stack level of the nearest frame outside the
    ``nets`` and ``torch`` packages (``python -m nets``'s own ``__main__`` counts as outside)."""
    level, frame = 1, sys._getframe(1)
    while frame.f_back is not None and _in_package(frame):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level + 1)
