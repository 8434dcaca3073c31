"""Atomic file writes: the one implementation every writer in the package uses.

A file is written to a temporary file in the destination's folder, flushed, and moved over the
destination with ``os.replace``; a reader never sees a half-written file, and a failure (an
exception, Ctrl-C, a full disk) leaves the destination as it was and no temporary file behind.
The file gets the permissions a plain ``open(path, "w")`` would give it (``0o666`` less the
process's umask), not ``tempfile.mkstemp``'s private ``0o600``.

An ``OSError`` saying the folder cannot take the file (read-only, disk full, no permission, a
file where a folder should be) is re-raised as :class:`ResultsWriteError`, whose message is one
line naming the folder; :func:`check_folder` asks the same before a long run, creating nothing.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import glob
import io
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Any, Callable, Iterator

from PIL import Image, PngImagePlugin

__all__ = [
    "ResultsWriteError",
    "check_folder",
    "make_folder",
    "atomic_write",
    "remove_stale_temporaries",
    "STALE_TEMPORARY_S",
    "write_text",
    "write_bytes",
    "atomic_torch_save",
    "save_figure_file",
    "palette_png",
    "file_mode",
]


class ResultsWriteError(OSError):
    """A file could not be written (read-only folder, disk full, ...); nothing was half-written.
    ``str(e)`` is one line naming the folder; ``e.errno`` is the underlying error's."""

    def __init__(self, message: str, errno_: int | None = None):
        super().__init__(message)
        self.errno = errno_


def file_mode() -> int:
    """``0o666`` less the current umask: the mode ``open(path, "w")`` gives a new file."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


_STORAGE_ERRNOS = {errno.ENOSPC, errno.EACCES, errno.EPERM, errno.EROFS, errno.EDQUOT, errno.EFBIG}


def _is_storage_error(e: OSError) -> bool:
    """Whether ``e`` says the folder cannot take the file (read-only, full, not permitted)."""
    return isinstance(e, PermissionError) or e.errno in _STORAGE_ERRNOS


def _why(e: OSError) -> str:
    if e.errno == errno.ENOSPC:
        return "the disk is full"
    if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS) or isinstance(e, PermissionError):
        return "the folder is not writable"
    return e.strerror or type(e).__name__


def check_folder(folder: str | os.PathLike, *, writable: bool = True) -> Path:
    """Whether files can be written into ``folder`` (created if missing), asked before a long run
    so that it fails at once, not after the work: ``folder`` or its nearest existing ancestor must
    be a directory, and (``writable``) a writable one; ``writable=False`` asks only that no file
    stands where a folder should be (a read-only folder that already holds what is needed is
    fine). An empty name (``--out ""``) is refused, not taken as the current folder. Creates
    nothing; raises :class:`ResultsWriteError` (one line)."""
    if not str(folder).strip():
        raise ResultsWriteError('cannot write into a folder with an empty name; name one ("." for this one)',
                                errno.ENOENT)
    folder = Path(folder)
    probe = folder
    while not probe.exists():
        if probe.is_symlink():  # a dangling link: mkdir would fail on it
            raise ResultsWriteError(f"cannot write into {folder}: {probe} is a broken link", errno.ENOENT)
        probe = probe.parent
    if not probe.is_dir():
        raise ResultsWriteError(f"cannot write into {folder}: {probe} is a file, not a folder", errno.ENOTDIR)
    if writable and not os.access(probe, os.W_OK | os.X_OK):
        raise ResultsWriteError(f"cannot write into {folder}: {probe} is not writable", errno.EACCES)
    return folder


def check_file(path: str | os.PathLike) -> Path:
    """Whether the file ``path`` can be written (created or replaced), asked before the work: it
    must be named (not ``""``), must not be a folder, and its folder must pass
    :func:`check_folder`. Creates nothing; raises :class:`ResultsWriteError` (one line)."""
    if not str(path).strip():
        raise ResultsWriteError("cannot write a file with an empty name; name one", errno.ENOENT)
    path = Path(path)
    if path.is_dir():
        raise ResultsWriteError(f"cannot write {path}: it is a folder; name a file in it", errno.EISDIR)
    check_folder(path.parent)
    return path


def make_folder(folder: str | os.PathLike) -> Path:
    """``folder`` and its parents, created if missing; an ``OSError`` (a file where a folder should
    be, a read-only or full disk) is a one-line :class:`ResultsWriteError` naming it."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        why = _why(e) if _is_storage_error(e) else "a file stands where a folder should be" if e.errno in (
            errno.EEXIST, errno.ENOTDIR) else (e.strerror or type(e).__name__)
        raise ResultsWriteError(f"cannot create the folder {folder}: {why} ({e.strerror or e})", e.errno) from e
    return folder


#: The lock file :func:`folder_lock` keeps in a results folder (git-ignored).
LOCK_FILE = ".results.lock"


@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike) -> Iterator[Path]:
    """Hold an exclusive advisory lock on ``folder`` (created if missing) for the ``with`` block:
    two processes that read, merge and rewrite a results file in it take turns. It is a POSIX
    record lock (``fcntl.lockf``) on the file :data:`LOCK_FILE` there, which NFS (v4, or v3 with
    lockd) passes to the server, so processes on different nodes sharing the folder take turns too
    (Lustre needs its ``flock`` mount option); the kernel releases it when a process dies. Not
    re-entrant: a process must not take it twice."""
    folder = make_folder(folder)
    try:
        fd = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, file_mode())
    except OSError as e:
        raise ResultsWriteError(f"cannot write into {folder}: {_why(e) if _is_storage_error(e) else e.strerror} "
                                f"({e.strerror or e})", e.errno) from e
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX)
        yield folder
    finally:
        os.close(fd)  # closing releases the lock


def _interrupt_behind(e: BaseException, outer: BaseException | None) -> KeyboardInterrupt | None:
    """The ``KeyboardInterrupt`` that ``e`` was raised while handling (its ``__context__`` /
    ``__cause__`` chain), if it arrived after ``outer``, the exception already being handled when
    the write began (an interrupt a caller is handling is not this write's). torch.save's zip
    writer, interrupted by Ctrl-C in the middle of a record, fails again in its cleanup with a
    ``RuntimeError`` ("unexpected pos ...") that hides the interrupt; the interrupt is what happened."""
    seen: set[int] = set()
    todo = [c for c in (e.__context__, e.__cause__) if c is not None]
    while todo:
        cur = todo.pop()
        if cur is outer or id(cur) in seen:
            continue
        if isinstance(cur, KeyboardInterrupt):
            return cur
        seen.add(id(cur))
        todo += [c for c in (cur.__context__, cur.__cause__) if c is not None]
    return None


def _sync_folder(folder: Path) -> None:
    """``fsync`` of ``folder`` (its entries: a rename into it), where the file system allows it."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # a file system that does not sync folders
        pass
    finally:
        os.close(fd)


#: A temporary file of :func:`atomic_write` untouched this long was left by a killed process (SIGKILL,
#: a power cut: no cleanup ran), not one still being written.
STALE_TEMPORARY_S = 3600.0


def remove_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Remove the temporary files of ``path`` (``.<name>.*.tmp`` beside it) that no one has written for
    :data:`STALE_TEMPORARY_S` seconds, left by a process killed while it wrote ``path``; returns them.
    A file that cannot be removed is left."""
    path = Path(path)
    gone = []
    for t in path.parent.glob(f".{glob.escape(path.name)}.{'?' * 8}.tmp"):  # mkstemp's 8 letters: not NAME.ext's
        try:
            if time.time() - t.stat().st_mtime > STALE_TEMPORARY_S:
                t.unlink()
                gone.append(t)
        except OSError:
            continue
    return gone


def atomic_write(path: str | os.PathLike, write: Callable[[IO[Any]], None], *, binary: bool = False) -> Path:
    """Create or replace ``path`` atomically with what ``write(f)`` writes to the open file ``f``.

    Raises :class:`ResultsWriteError` (one line naming the folder) on an ``OSError``; any
    exception, ``KeyboardInterrupt`` included, leaves ``path`` untouched and removes the
    temporary file. An error raised while a ``KeyboardInterrupt`` was being handled (a writer's
    cleanup failing after Ctrl-C) is raised as that ``KeyboardInterrupt``, so Ctrl-C stays Ctrl-C."""
    path = Path(path)
    tmp: str | None = None
    outer = sys.exc_info()[1]  # what a caller is handling (an interrupt there is not this write's)
    make_folder(path.parent)
    remove_stale_temporaries(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8"})) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())  # on disk before it takes the real name: a crash leaves old or new
        os.chmod(tmp, file_mode())
        os.replace(tmp, path)
        tmp = None
        _sync_folder(path.parent)  # the rename itself on disk: a power cut after it keeps the new file
    except Exception as e:
        interrupt = _interrupt_behind(e, outer)
        if interrupt is not None:  # Ctrl-C mid-write, then the writer's cleanup failed (torch's zip writer)
            raise interrupt from None
        if not isinstance(e, OSError) or isinstance(e, ResultsWriteError) or not _is_storage_error(e):
            raise  # e.g. a corrupt gzip read by ``write``: not the folder's fault
        why, said = _why(e), e.strerror or str(e)
        raise ResultsWriteError(f"cannot write {path.name} in {path.parent}: {why}"
                                f"{'' if said == why else f' ({said})'}; {path.name} was not changed", e.errno) from e
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
    return path


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write(path, lambda f: f.write(text))


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    return atomic_write(path, lambda f: f.write(data), binary=True)


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save(obj, path)``, atomically."""
    import torch

    def save(f: IO[bytes]) -> None:
        try:
            torch.save(obj, f)
        except RuntimeError as e:  # torch's writer turns a full disk into a RuntimeError
            cause = e.__context__ or e.__cause__
            if isinstance(cause, OSError):
                raise cause from e
            raise

    return atomic_write(path, save, binary=True)


def palette_png(png: bytes) -> bytes:
    """An opaque PNG re-encoded with a 256-colour palette (Pillow's median cut, no dithering), about a
    third of the size for our figures, which are flat colours and anti-aliased text (the committed
    figures' mean error is below 0.3 of 255 per channel); the resolution and text chunks (matplotlib's
    ``Software``) are kept. Returned unchanged: a PNG with any transparent pixel or a transparent colour,
    one of another bit depth than 8 or another mode than RGB / RGBA, one too large for Pillow to open."""
    if len(png) < 26 or png[24] != 8:  # the IHDR chunk's bit depth (16-bit colour would lose precision)
        return png
    try:
        im = Image.open(io.BytesIO(png))
        im.load()
    except (Image.DecompressionBombError, OSError):
        return png
    with im:
        if (im.mode not in ("RGB", "RGBA") or "transparency" in im.info
                or (im.mode == "RGBA" and im.getextrema()[3][0] < 255)):
            return png
        info = PngImagePlugin.PngInfo()
        for key, value in getattr(im, "text", {}).items():
            info.add_text(key, value)
        pal = im.convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
        out = io.BytesIO()
        pal.save(out, format="png", optimize=True, pnginfo=info,
                 **({"dpi": im.info["dpi"]} if "dpi" in im.info else {}))
    return out.getvalue()


def save_figure_file(fig: Any, path: str | os.PathLike, **savefig_kw: Any) -> Path:
    """``fig.savefig(path, **savefig_kw)`` atomically; the format is taken from the suffix. A PNG is
    stored with a 256-colour palette (:func:`palette_png`); other formats as matplotlib writes them."""
    path = Path(path)
    fmt = savefig_kw.pop("format", None) or path.suffix.lstrip(".")
    if fmt.lower() != "png":
        return atomic_write(path, lambda f: fig.savefig(f, format=fmt, **savefig_kw), binary=True)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", **savefig_kw)
    return write_bytes(path, palette_png(buf.getvalue()))
