"""Loading ``torch.save`` files safely (``weights_only=True``), and saying in one line why a file
could not be loaded: checkpoints (:func:`load_torch_file`, :func:`read_torch_file`), weights files
(:mod:`nets.model_spec`) and images files (:mod:`nets.image_file`) share these words.

torch is imported when a file is loaded, not with this module (results I/O stays cheap to import).
"""

from __future__ import annotations

import os
import pickle
import re
import sys
import warnings
import zipfile
from pathlib import Path

from nets.results_io.files import ResultsFileError, move_aside

__all__ = ["one_line", "load_refusal", "quiet_torch_load", "read_torch_file", "load_torch_file"]

_TERMINAL_CODES = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_UNSUPPORTED_GLOBAL = re.compile(r"Unsupported global: GLOBAL ([\w.]+)")
#: The first byte of a file ``pickle.dump`` wrote with protocol 2 or later.
_PICKLE_START = b"\x80"
#: How a file torch.save wrote starts: it is a zip archive.
_ZIP_START = b"PK\x03\x04"


def one_line(e: BaseException) -> str:
    """The first line of ``e``'s message, without terminal formatting codes (torch's load errors
    carry some); the exception's type where the message is empty."""
    text = _TERMINAL_CODES.sub("", str(e)).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _starts_with(path: str | os.PathLike | None, head: bytes) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(len(head)) == head
    except (OSError, TypeError):
        return False


def load_refusal(e: BaseException, path: str | os.PathLike | None = None) -> str:
    """Why ``torch.load(path, weights_only=True)`` refused a file, in one line: empty or cut short,
    the object it would have had to unpickle (a numpy array is ``numpy...._reconstruct``), a plain
    ``pickle.dump`` file, a file that no ``torch.save`` wrote, or the error's type and first line;
    never torch's advice to load with ``weights_only=False``."""
    text = _TERMINAL_CODES.sub("", str(e))
    found = _UNSUPPORTED_GLOBAL.search(text)
    if found:
        what = found.group(1)
        kind = "a numpy array" if what.startswith("numpy") else "a Python object"
        return f"it holds {kind} ({what}), which weights_only=True does not unpickle"
    if isinstance(e, EOFError):
        return "it is empty or cut short"
    if "failed finding central directory" in text:
        return "it is cut short, with no zip central directory"
    if "Unsupported operand" in text:
        return ("it was written by pickle, not torch.save" if path is None or _starts_with(path, _PICKLE_START)
                else "it is not a file torch.save wrote")
    if path is not None and isinstance(e, (KeyError, OSError, RuntimeError, pickle.UnpicklingError)):
        zipped = _starts_with(path, _ZIP_START)
        if zipped and not zipfile.is_zipfile(path):
            return "it is cut short (a zip archive without its end)"
        if not zipped and not _starts_with(path, _PICKLE_START):
            return "it is not a file torch.save wrote"
    first = one_line(e)
    if len(first) > 120:  # at a word, not mid-word
        first = first[:120].rsplit(" ", 1)[0] + " ..."
    return first if first == type(e).__name__ else f"{type(e).__name__}: {first}"


def quiet_torch_load(path: str | os.PathLike) -> object:
    """``torch.load(path, map_location="cpu", weights_only=True)`` without torch's warning about the
    pickle protocol of a file ``pickle`` wrote (its error follows, :func:`load_refusal`)."""
    import torch

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Detected pickle protocol")
        return torch.load(path, map_location="cpu", weights_only=True)


def _failed_crc(path: Path) -> str | None:
    """The first record of the zip archive ``path`` (torch.save's format) whose CRC-32 does not match
    its bytes (``zipfile.ZipFile.testzip``), else None; None for a file that is no zip (a legacy
    pickle, checked by its load alone)."""
    import zipfile

    if not _starts_with(path, _ZIP_START):
        return None
    try:
        with zipfile.ZipFile(path) as z:
            return z.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:  # a header damaged too
        return f"headers ({type(e).__name__})"


def read_torch_file(path: str | os.PathLike, what: str = "checkpoint") -> dict:
    """:func:`quiet_torch_load` of a file that holds a dict. A file that cannot be loaded (empty,
    truncated, garbage, a record whose bytes fail the zip's CRC-32, or not a dict) raises
    :class:`~nets.results_io.ResultsFileError`, one line naming ``what``, the file and why
    (:func:`load_refusal`); the file is left where it is. A missing or unreadable file raises its ``OSError``."""
    import pickle
    import zipfile

    path = Path(path)
    try:
        obj = quiet_torch_load(path)
    except (EOFError, RuntimeError, ValueError, TypeError, OSError, pickle.UnpicklingError,
            zipfile.BadZipFile, AttributeError, IndexError, KeyError, UnicodeDecodeError) as e:
        if isinstance(e, (FileNotFoundError, PermissionError)):
            raise
        raise ResultsFileError(f"{what} {path} is damaged ({load_refusal(e, path)})") from None
    bad = _failed_crc(path)  # torch.load reads a zip's records without checking their CRC-32
    if bad is not None:
        raise ResultsFileError(f"{what} {path} is damaged (its record {bad} fails its CRC-32 check: bytes changed "
                               f"since torch.save wrote it)")
    if not isinstance(obj, dict):
        raise ResultsFileError(f"{what} {path} is damaged (it holds a {type(obj).__name__}, not a dict)")
    return obj


def load_torch_file(path: str | os.PathLike, what: str = "checkpoint") -> dict | None:
    """:func:`read_torch_file`, for a file whose content can be rebuilt: ``None`` when ``path`` does
    not exist; a damaged one is moved aside to ``<name>.corrupt`` (kept), with one line on stderr
    naming it and saying that ``what`` is rebuilt from scratch, and then ``None``."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        return read_torch_file(path, what)
    except ResultsFileError as e:
        aside = move_aside(path)
        print(f"warning: {e}; moved it to {aside.name} and starting that run from scratch", file=sys.stderr,
              flush=True)
        return None
