"""Ctrl-C while a ``python -m nets ...`` command is still importing, before it starts (torch, scipy,
matplotlib: a second or two), ends it with one line and exit status 130, not a traceback through the
import machinery; and SIGTERM stops a command as Ctrl-C does.

:func:`install` sets :func:`interrupt` as the SIGINT handler; ``nets/__init__.py`` calls it only when
the package is imported by ``python -m`` (``sys.argv[0]`` is ``"-m"`` while the module is located)
for a module of this package (``sys.orig_argv``), never for a program or a test that imports ``nets``. Outside an import the handler raises
``KeyboardInterrupt`` as Python's own does, so each command's own Ctrl-C handling (an interrupted
run says how to resume) is unchanged.
"""

from __future__ import annotations

import signal
import sys
from types import FrameType

__all__ = ["STARTING", "install", "interrupt", "importing", "target"]

#: What an interrupted start says (also ``python -m nets``'s own, interrupted while it builds its parser).
STARTING = "interrupted while starting (nothing was written)"
#: Code of the import machinery (``<frozen importlib._bootstrap>``, ``..._bootstrap_external>``).
_IMPORT_CODE = "<frozen importlib._bootstrap"


def importing(frame: FrameType | None) -> bool:
    """Whether ``frame`` is in the imports before a command starts: it or a caller is the import
    machinery at work, and none is the command's ``main`` (every ``python -m`` entry point of this
    project is a function of that name in the module run as ``__main__``; another library's
    ``main`` does not count). An import that a running command makes, late, is not."""
    inside, running = False, False
    while frame is not None:
        inside |= frame.f_code.co_filename.startswith(_IMPORT_CODE)
        running |= frame.f_code.co_name == "main" and frame.f_globals.get("__name__") == "__main__"
        frame = frame.f_back
    return inside and not running


def target(argv: list[str]) -> str | None:
    """The module ``python -m MODULE`` runs, from the interpreter's own arguments (``sys.orig_argv``);
    ``None`` when it was not started so."""
    for i, arg in enumerate(argv[1:-1], start=1):
        if arg == "-m":
            return argv[i + 1]
        if arg.startswith("-m") and len(arg) > 2:  # -mnets
            return arg[2:]
        if not arg.startswith("-"):  # a script or -c's code came first
            return None
    return None


def interrupt(signum: int, frame: FrameType | None) -> None:
    """SIGINT: in the imports before a command starts, one line on stderr and ``SystemExit(130)``;
    else ``KeyboardInterrupt``, as Python's own handler."""
    if importing(frame):
        print(STARTING, file=sys.stderr, flush=True)
        raise SystemExit(130)
    raise KeyboardInterrupt


def install(module: str | None) -> None:
    """For ``python -m module`` of this project (``nets`` or ``nets.*``; nothing for another
    program that imports ``nets``): make :func:`interrupt` the SIGINT handler where Python's own is
    still the one (a shell's background job ignores SIGINT, and keeps ignoring it); and, for
    ``python -m nets`` itself, whose commands all end a KeyboardInterrupt in their interrupted-run
    line, the SIGTERM handler where none is set: ``kill``, ``timeout`` or a batch scheduler's end of
    a job then stops a command as Ctrl-C does, with no half-written temporary file left behind
    (``ray.init`` sets its own, so ``--executor ray`` ends on SIGTERM as Ray does). Not from a thread."""
    if module is None or not (module == "nets" or module.startswith("nets.")):
        return
    try:
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            signal.signal(signal.SIGINT, interrupt)
        if module == "nets" and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
            signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread
        pass
