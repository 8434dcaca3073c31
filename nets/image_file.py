"""Your own labelled images from a file, for ``python -m nets audit --images FILE``.

Two formats, both read without unpickling code:

- ``.pt`` / ``.pth``: ``torch.save({"x": x, "y": y}, FILE)``, read with ``torch.load(..., weights_only=True)``;
- ``.npz``: ``numpy.savez(FILE, x=x, y=y)``, read with ``numpy.load(..., allow_pickle=False)``.

``x`` holds the images as the model takes them, ``(N, *C, H, W)`` (the group acts on the last two
axes), floating point and already normalized as the model was trained; ``y`` the labels ``(N,)``,
integers. :func:`load_images` returns both as tensors, ``x`` cast to the model's floating dtype
(``numpy.savez`` keeps float64, which a float32 model would refuse); the checks of the measures
themselves (the group fits ``H, W``, the model accepts the shape, labels in range, no NaN) follow in
:func:`nets.auditing.audit`. Every problem with the file raises :class:`ImageFileError`, one line.
"""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import numpy as np
import torch

__all__ = ["ImageFileError", "IMAGE_FILE_SUFFIXES", "load_images", "file_sha256"]

IMAGE_FILE_SUFFIXES = (".pt", ".pth", ".npz")


class ImageFileError(ValueError):
    """A file of images that cannot be used, with the reason in one line."""


def file_sha256(path: Path | str) -> str:
    """SHA-256 of a file's bytes (hex), read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _read(path: Path) -> dict:
    """The file's named arrays as tensors (keys as stored)."""
    if path.suffix in (".pt", ".pth"):
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # a pickled object weights_only refuses, or not a torch file at all
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ImageFileError(f"--images {path}: cannot read it with torch.load(weights_only=True): {first}; "
                                 'save it as torch.save({"x": images, "y": labels}, FILE)') from None
        if not isinstance(obj, dict):
            raise ImageFileError(f"--images {path}: holds a {type(obj).__name__}, not a dict; "
                                 'save it as torch.save({"x": images, "y": labels}, FILE)')
        return obj
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {k: torch.from_numpy(np.ascontiguousarray(npz[k])) for k in npz.files}
    except (ValueError, OSError, zipfile.BadZipFile) as e:  # not an npz, or an object array (pickle refused)
        raise ImageFileError(f"--images {path}: cannot read it as .npz without pickle: {e}; "
                             "save it as numpy.savez(FILE, x=images, y=labels) with numeric arrays") from None


def load_images(path: Path | str, n: int | None = None, dtype: torch.dtype = torch.float32
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``n`` (default all) images and labels of ``path``: ``x (n, *C, H, W)`` as ``dtype``,
    ``y (n,)`` int64.

    Raises :class:`ImageFileError` for a missing file, another suffix than ``.pt`` / ``.pth`` /
    ``.npz``, a file that cannot be read without unpickling, missing ``x`` / ``y``, ``x`` with
    fewer than 3 axes or not floating point (uint8 images: normalize them as the model was trained
    first), ``y`` not one integer per image, or ``n`` outside ``[1, N]``.
    """
    path = Path(path)
    if path.suffix not in IMAGE_FILE_SUFFIXES:
        raise ImageFileError(f"--images {path}: use a .pt / .pth or .npz file, not {path.suffix or 'no suffix'!r}")
    if not path.is_file():
        raise ImageFileError(f"--images {path} does not exist")
    arrays = _read(path)
    missing = [k for k in ("x", "y") if k not in arrays]
    if missing:
        raise ImageFileError(f"--images {path}: needs arrays 'x' (images) and 'y' (labels); missing "
                             f"{', '.join(map(repr, missing))}, found {sorted(map(str, arrays)) or 'none'}")
    x, y = arrays["x"], arrays["y"]
    if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
        raise ImageFileError(f"--images {path}: 'x' and 'y' must be tensors, got {type(x).__name__} and "
                             f"{type(y).__name__}")
    if x.dim() < 3:
        raise ImageFileError(f"--images {path}: x must be images (N, *C, H, W), got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ImageFileError(f"--images {path}: x has dtype {x.dtype}; store floating-point images, normalized "
                             "as the model was trained (e.g. x.float() / 255)")
    if y.dim() != 1 or len(y) != len(x):
        raise ImageFileError(f"--images {path}: y must be one label per image, shape ({len(x)},), "
                             f"got {tuple(y.shape)}")
    if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        raise ImageFileError(f"--images {path}: y must be integer class indices, got dtype {y.dtype}")
    if n is None:
        n = len(x)
    if not 1 <= n <= len(x):
        raise ImageFileError(f"--n must be in [1, {len(x)}] for the {len(x)} images of {path}, got {n}")
    return x[:n].to(dtype).contiguous(), y[:n].long()
