"""A results file that parses but lacks what its reader needs: one line naming the file, not a traceback.

:func:`~nets.results_io.files.results_damage` catches a file that is not a results file at all (not
a JSON object, no ``meta`` record, no ``groups`` object); a file that passes it may still have been
hand-edited, merged from two runs, or written by an older version, and lack a key deeper down or hold
another type there. The code that reads such a file then raises one of :data:`READ_ERRORS`;
:func:`reading` turns that into a :class:`~nets.results_io.files.ResultsFileError` whose message is
one line naming the file and what reading it raised, how to restore or recompute it, and, since the
same errors come from a bug of ours (or a library's) on a whole file, how to see the traceback
(:data:`DEBUG`). Nothing is moved or written: the file stays as it is, for its owner to inspect.
"""

from __future__ import annotations

import contextlib
import os
from typing import Callable, Iterator

from nets.results_io.files import ResultsFileError

__all__ = ["DEBUG", "READ_ERRORS", "reading", "unreadable"]

#: The environment variable that, set to anything but empty, lets the original error and its traceback
#: through instead (a file as a run wrote it that cannot be read is a bug, not a damaged file).
DEBUG = "GI_DEBUG"

#: What code reading a results dict raises where a key is missing or a value has another type or
#: length than the experiment writes (``float("x")``, an empty per-seed list's mean, ...).
READ_ERRORS: tuple[type[Exception], ...] = (KeyError, IndexError, TypeError, AttributeError, ValueError,
                                            ZeroDivisionError)


def unreadable(path: str | os.PathLike, error: BaseException, purpose: str = "the report") -> ResultsFileError:
    """The one-line error for ``path`` that could not be read for ``purpose`` (``"the report"``, ``"its
    figures"``, ...), ``error`` being what reading it raised."""
    text = str(error).splitlines()[0] if str(error) else ""
    why = f"{type(error).__name__}: {text}" if text else type(error).__name__
    return ResultsFileError(f"{path} could not be read for {purpose} ({why}): if it was hand-edited, merged or partly "
                            f"written, restore it (`git checkout` where it is committed) or recompute it (its "
                            f"experiment's command with --overwrite); if it is as a run wrote it, it is a bug of ours: "
                            f"{DEBUG}=1 shows the traceback")


@contextlib.contextmanager
def reading(path: str | os.PathLike | Callable[[], str], purpose: str = "the report") -> Iterator[None]:
    """Within the block, :data:`READ_ERRORS` raised while ``path`` is read for ``purpose`` become
    :func:`unreadable`'s one-line :class:`ResultsFileError` (chained to the original, for a debugger);
    a ``ResultsFileError`` raised inside (a damaged file named already) passes unchanged. ``path`` may
    be a function that names the file, called only on an error (which of several files failed)."""
    try:
        yield
    except ResultsFileError:
        raise
    except READ_ERRORS as e:
        if os.environ.get(DEBUG):
            raise
        raise unreadable(path() if callable(path) else path, e, purpose) from e
