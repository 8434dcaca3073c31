"""Reading and writing IDX files (the MNIST / Fashion-MNIST container format).

An IDX file is a 4-byte magic number ``00 00 TT DD`` (``TT`` the element type,
``DD`` the number of dimensions), then ``DD`` big-endian uint32 sizes, then the
elements in C order, big-endian. Files may be gzipped; compression is detected
from the content (the gzip magic ``1f 8b``), not from the file name.

Every error names the file: a bad magic number, a truncated header or body, a
truncated gzip stream, or bytes after the last element.
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from pathlib import Path
from typing import BinaryIO, Union

import numpy as np

PathLike = Union[str, "os.PathLike[str]"]

__all__ = ["IdxError", "read_idx", "write_idx", "is_gzip", "open_maybe_gzip", "IDX_DTYPES"]

#: IDX type code -> numpy dtype (big-endian, as stored).
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"


class IdxError(ValueError):
    """A file is not a well-formed IDX file (the message names the file)."""


def is_gzip(path: PathLike) -> bool:
    """Whether the file starts with the gzip magic bytes."""
    with open(path, "rb") as f:
        return f.read(2) == _GZIP_MAGIC


def open_maybe_gzip(path: PathLike) -> BinaryIO:
    """Open a file for binary reading, decompressing it on the fly if it is gzipped."""
    if is_gzip(path):
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return open(path, "rb")


def _read_bytes(path: PathLike) -> bytearray:
    """The (decompressed) content as a writable buffer, with gzip errors named."""
    try:
        with open_maybe_gzip(path) as f:
            return bytearray(f.read())
    except EOFError as e:  # gzip stream cut short
        raise IdxError(f"{path}: truncated gzip file ({e})") from e
    except (gzip.BadGzipFile, zlib.error) as e:
        raise IdxError(f"{path}: corrupt gzip file ({e})") from e


def read_idx(path: PathLike) -> np.ndarray:
    """Read an IDX file (raw or gzipped) into a numpy array.

    Returns an array with the shape stored in the header and the native-endian
    version of the stored dtype (``uint8`` for MNIST), e.g. ``(60000, 28, 28)``.
    Raises ``IdxError`` naming the file for a bad magic number or a size that
    does not match the header (truncated or with trailing bytes).
    """
    path = Path(path)
    buf = _read_bytes(path)
    if len(buf) < 4:
        raise IdxError(f"{path}: truncated IDX file: {len(buf)} bytes, too short for the 4-byte magic number")
    zero, code, ndim = struct.unpack(">HBB", bytes(buf[:4]))
    if zero != 0 or code not in IDX_DTYPES:
        known = ", ".join(f"0x{c:02x}" for c in IDX_DTYPES)
        raise IdxError(
            f"{path}: not an IDX file: bad magic number 0x{bytes(buf[:4]).hex()} "
            f"(expected 0x0000TTDD with type code TT in {known}; e.g. 0x00000803 for images, "
            f"0x00000801 for labels)"
        )
    header = 4 + 4 * ndim
    if len(buf) < header:
        raise IdxError(
            f"{path}: truncated IDX file: header of {ndim} dimensions needs {header} bytes, "
            f"file has {len(buf)}"
        )
    shape = struct.unpack(f">{ndim}I", bytes(buf[4:header]))
    dtype = IDX_DTYPES[code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    found = len(buf) - header
    if found < expected:
        raise IdxError(
            f"{path}: truncated IDX file: shape {shape} of {dtype} needs {expected} data bytes, "
            f"found {found}"
        )
    if found > expected:
        raise IdxError(
            f"{path}: malformed IDX file: {found - expected} bytes after the {expected} data bytes "
            f"of shape {shape}"
        )
    arr = np.frombuffer(buf, dtype=dtype, offset=header).reshape(shape)
    return arr.astype(dtype.newbyteorder("="), copy=False)


def write_idx(path: PathLike, array: np.ndarray, compress: bool | None = None) -> Path:
    """Write ``array`` as an IDX file; gzipped if ``compress`` (default: name ends in ``.gz``)."""
    path = Path(path)
    array = np.asarray(array)
    codes = {dt.newbyteorder("=") if dt.itemsize > 1 else dt: c for c, dt in IDX_DTYPES.items()}
    native = array.dtype.newbyteorder("=") if array.dtype.itemsize > 1 else array.dtype
    if native not in codes:
        raise ValueError(f"IDX cannot store dtype {array.dtype}; known: {sorted(map(str, codes))}")
    if array.ndim > 255:
        raise ValueError(f"IDX stores at most 255 dimensions, got {array.ndim}")
    code = codes[native]
    payload = (
        struct.pack(">HBB", 0, code, array.ndim)
        + struct.pack(f">{array.ndim}I", *array.shape)
        + np.ascontiguousarray(array, dtype=IDX_DTYPES[code]).tobytes()
    )
    if compress is None:
        compress = path.suffix == ".gz"
    if compress:
        payload = gzip.compress(payload, mtime=0)
    path.write_bytes(payload)
    return path
