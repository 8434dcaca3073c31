"""Ctrl-C while a ``python -m nets ...`` command is still importing, before it starts (torch, scipy,
matplotlib: a second or two), ends it with one line and exit status 130, not a traceback through the
import machinery; and SIGTERM stops a command as Ctrl-C does.

:func:`install` sets :func:`interrupt` as the SIGINT handler; ``nets/__init__.py`` calls it only when
the package is imported by ``python -m`` (``sys.argv[0]`` is ``"-m"`` while the module is located),
never for a program or a test that imports ``nets``. Outside an import the handler raises
``KeyboardInterrupt`` as Python's own does, so each command's own Ctrl-C handling (an interrupted
run says how to resume) is unchanged.
"""

from __future__ import annotations

import signal
import sys
from types import FrameType

__all__ = ["STARTING", "install", "interrupt", "importing"]

#: What an interrupted start says (also ``python -m nets``'s own, interrupted while it builds its parser).
STARTING = "interrupted while starting (nothing was written)"
#: Code of the import machinery (``<frozen importlib._bootstrap>``, ``..._bootstrap_external>``).
_IMPORT_CODE = "<frozen importlib._bootstrap"


def importing(frame: FrameType | None) -> bool:
    """Whether ``frame`` is in the imports before a command starts: it or a caller is the import
    machinery at work, and none is a command's ``main`` (every ``python -m`` entry point of this
    project is a function of that name). An import that a running command makes, late, is not."""
    inside, running = False, False
    while frame is not None:
        inside |= frame.f_code.co_filename.startswith(_IMPORT_CODE)
        running |= frame.f_code.co_name == "main"
        frame = frame.f_back
    return inside and not running


def interrupt(signum: int, frame: FrameType | None) -> None:
    """SIGINT: in the imports before a command starts, one line on stderr and ``SystemExit(130)``;
    else ``KeyboardInterrupt``, as Python's own handler."""
    if importing(frame):
        print(STARTING, file=sys.stderr, flush=True)
        raise SystemExit(130)
    raise KeyboardInterrupt


def install() -> None:
    """Make :func:`interrupt` the SIGINT handler where Python's own is still the one (a shell's
    background job ignores SIGINT, and keeps ignoring it), and the SIGTERM handler where none is set:
    ``kill``, ``timeout`` or a batch scheduler's end of a job then stops a command as Ctrl-C does,
    through its interrupted-run message, with no half-written temporary file left behind. Not from
    a thread."""
    try:
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            signal.signal(signal.SIGINT, interrupt)
        if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
            signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread
        pass
