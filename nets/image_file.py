"""Your own labelled images from a file: ``python -m nets audit --images FILE`` (:func:`load_images`,
arrays ``x``, ``y``) and ``python -m nets own-data --data FILE`` (:func:`load_split_file`, arrays
``x_train``, ``y_train``, ``x_val``, ``y_val``, ``x_test``, ``y_test``).

Two formats, both read without unpickling code:

- ``.pt`` / ``.pth``: ``torch.save({"x": x, "y": y}, FILE)``, read with ``torch.load(..., weights_only=True)``;
- ``.npz``: ``numpy.savez(FILE, x=x, y=y)``, read with ``numpy.load(..., allow_pickle=False)``.

``x`` holds the images as the model takes them, ``(N, *C, H, W)`` (the group acts on the last two
axes), floating point and already normalized as the model was trained; ``y`` the labels ``(N,)``,
integers. Optionally ``classes``, the class names in label order (a list of strings in ``.pt``, a
string array in ``.npz``), which the per-class tables then show beside each class number
(:func:`load_labelled`, :attr:`nets.data.Splits.class_names`). :func:`load_images` returns both as
tensors, ``x`` cast to the model's floating dtype
(``numpy.savez`` keeps float64, which a float32 model would refuse); the checks of the measures
themselves (the group fits ``H, W``, the model accepts the shape, labels in range, no NaN) follow in
:func:`nets.auditing.audit`. Every problem with the file raises :class:`ImageFileError`, one line.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import NamedTuple, Optional

import numpy as np
import torch

from nets.class_accuracy import check_class_names
from nets.data import Split, Splits
from nets.measure_inputs import nonfinite_samples
from nets.results_io import load_refusal, one_line, quiet_torch_load

__all__ = ["ImageFileError", "IMAGE_FILE_SUFFIXES", "SPLIT_NAMES", "CLASSES_KEY", "LabelledImages", "load_images",
           "load_labelled", "load_unlabelled", "load_split_file"]

#: The splits of a :func:`load_split_file` file, each as ``x_<split>`` and ``y_<split>``.
SPLIT_NAMES = ("train", "val", "test")

IMAGE_FILE_SUFFIXES = (".pt", ".pth", ".npz")

#: The optional entry of an image file naming the classes in label order.
CLASSES_KEY = "classes"


class LabelledImages(NamedTuple):
    """Images ``x (N, *C, H, W)``, labels ``y (N,)`` and the file's class names (``None`` without them)."""

    x: torch.Tensor
    y: torch.Tensor
    class_names: Optional[tuple[str, ...]]


class ImageFileError(ValueError):
    """A file of images that cannot be used, with the reason in one line."""


def _where(path: Path, flag: str) -> str:
    """How errors name the file: ``"--images FILE"`` for a command line's option, ``"FILE"`` from Python."""
    return f"{flag} {path}" if flag else str(path)


def _as_dtype(x: torch.Tensor, dtype: torch.dtype, where: str, name: str = "x") -> torch.Tensor:
    """``x`` (finite) as ``dtype``, contiguous; an :class:`ImageFileError` where a value passes that dtype's
    range (a float16 model given images up to 1e5): cast, it would be inf, read as images that are not finite."""
    out = x.to(dtype).contiguous()
    if out.is_floating_point() and not bool(torch.isfinite(out).all()):
        raise ImageFileError(f"{where}: {name} does not fit the model's {str(dtype).removeprefix('torch.')}: its "
                             f"values reach {float(x.abs().max()):.3g}, past that type's largest, "
                             f"{torch.finfo(dtype).max:.3g}; scale the images as the model was trained")
    return out


def _read(path: Path, flag: str = "", keys: tuple[str, ...] = ("x", "y")) -> dict:
    """The file's named arrays as tensors (keys as stored); ``flag`` names the option in errors
    (:func:`_where`), ``keys`` the arrays the caller needs (the format errors show how to save them)."""
    where = _where(path, flag)
    if path.suffix not in IMAGE_FILE_SUFFIXES:
        raise ImageFileError(f"{where}: use a .pt / .pth or .npz file, not {path.suffix or 'no suffix'!r}")
    if not path.is_file():
        raise ImageFileError(f"{where} does not exist")
    if path.suffix in (".pt", ".pth"):
        how = "save it as torch.save({" + ", ".join(f'"{k}": {k}' for k in keys) + "}, FILE) with tensors"
        try:
            obj = quiet_torch_load(path)
        except Exception as e:  # a pickled object weights_only refuses, or not a torch file at all
            raise ImageFileError(f"{where}: cannot read it with torch.load(weights_only=True): "
                                 f"{load_refusal(e, path)}; {how}") from None
        if not isinstance(obj, dict):
            raise ImageFileError(f"{where}: holds a {type(obj).__name__}, not a dict; {how}")
        return obj
    how = f"save it as numpy.savez(FILE, {', '.join(f'{k}={k}' for k in keys)}) with numeric arrays"
    if not zipfile.is_zipfile(path):  # empty, cut short, or another format (np.load would try pickle on it)
        raise ImageFileError(f"{where}: not an .npz file (an .npz is a zip of arrays; this one is "
                             f"{'empty' if path.stat().st_size == 0 else 'not a zip'}); {how}")
    try:
        with np.load(path, allow_pickle=False) as npz:
            out = {k: npz[k] for k in npz.files}  # npz[k] reads the member: once each
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:  # a damaged member, or an object array
        raise ImageFileError(f"{where}: cannot read it as .npz without pickle: {one_line(e)}; {how}") from None
    odd = [k for k, v in out.items() if not isinstance(v, np.ndarray)]
    if odd:  # a zip whose members are not .npy arrays: a torch.save file named .npz, for one
        raise ImageFileError(f"{where}: a zip but not of numpy arrays ({odd[0]!r} is not one; a torch.save file is "
                             f"read as .pt / .pth); {how}")
    return {k: _from_npz(v) for k, v in out.items()}


def _from_npz(a: np.ndarray) -> torch.Tensor | list:
    """A numeric array as a tensor; a string array (the class names) as a list of ``str``."""
    if a.dtype.kind == "S":  # bytes: numpy.array([b"cat", ...])
        return [b.decode("utf-8", "replace") if isinstance(b, bytes) else b for b in np.atleast_1d(a).tolist()]
    if a.dtype.kind == "U":
        return np.atleast_1d(a).tolist()
    return torch.from_numpy(np.ascontiguousarray(a))


def _checked(arrays: dict, xk: str, yk: str, where: str, hint: str = "") -> tuple[torch.Tensor, torch.Tensor]:
    """``arrays[xk]``, ``arrays[yk]`` checked as images ``(N, *C, H, W)`` (floating point) and one
    integer label per image; ``where`` begins every error (``--images FILE``), ``hint`` ends the
    one for missing arrays."""
    missing = [k for k in (xk, yk) if k not in arrays]
    if missing:
        raise ImageFileError(f"{where}: needs arrays {xk!r} (images) and {yk!r} (labels); missing "
                             f"{', '.join(map(repr, missing))}, found {sorted(map(str, arrays)) or 'none'}{hint}")
    x, y = arrays[xk], arrays[yk]
    if not isinstance(y, torch.Tensor):
        raise ImageFileError(f"{where}: {yk!r} must be a tensor, got {type(y).__name__}")
    x = _checked_images(arrays, xk, where)
    y = y.to_dense() if y.layout != torch.strided else y  # a sparse tensor: read as dense
    if y.dim() != 1 or len(y) != len(x):
        raise ImageFileError(f"{where}: {yk} must be one label per image, shape ({len(x)},), got {tuple(y.shape)}")
    if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        raise ImageFileError(f"{where}: {yk} must be integer class indices, got dtype {y.dtype}")
    return x, y


def _checked_images(arrays: dict, xk: str, where: str) -> torch.Tensor:
    """``arrays[xk]`` checked as images ``(N, *C, H, W)``: floating point, finite, at least one."""
    if xk not in arrays:
        raise ImageFileError(f"{where}: needs array {xk!r} (images); found {sorted(map(str, arrays)) or 'none'}")
    x = arrays[xk]
    if not isinstance(x, torch.Tensor):
        raise ImageFileError(f"{where}: {xk!r} must be a tensor, got {type(x).__name__}")
    x = x.to_dense() if x.layout != torch.strided else x  # a sparse tensor: read as dense
    if x.dim() < 3:
        raise ImageFileError(f"{where}: {xk} must be images (N, *C, H, W), got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ImageFileError(f"{where}: {xk} has dtype {x.dtype}; store floating-point images, normalized "
                             "as the model was trained (e.g. x.float() / 255)")
    if nonfinite_samples(x)[0]:
        raise ImageFileError(f"{where}: {xk} holds NaN or inf values")
    if len(x) == 0:
        raise ImageFileError(f"{where}: {xk} holds no images")
    return x


def _class_names(arrays: dict, labels: list[torch.Tensor], where: str) -> tuple[str, ...] | None:
    """The file's optional ``classes`` entry checked against its ``labels``
    (:func:`nets.class_accuracy.check_class_names`: distinct strings, one for every class a label names)."""
    if CLASSES_KEY not in arrays:
        return None
    try:
        return check_class_names(arrays[CLASSES_KEY], max(int(y.max()) for y in labels) + 1)
    except ValueError as e:
        raise ImageFileError(f"{where}: {CLASSES_KEY!r} holds the class names in label order: {e}") from None


def load_labelled(path: Path | str, n: int | None = None, dtype: torch.dtype = torch.float32, *,
                  flag: str = "") -> LabelledImages:
    """The first ``n`` (default all) images and labels of ``path`` and its class names:
    ``x (n, *C, H, W)`` as ``dtype``, ``y (n,)`` int64, ``class_names`` or ``None``.

    Raises :class:`ImageFileError` for a missing file, another suffix than ``.pt`` / ``.pth`` /
    ``.npz``, a file that cannot be read without unpickling, missing ``x`` / ``y``, ``x`` with
    fewer than 3 axes, not floating point (uint8 images: normalize them as the model was trained
    first) or not finite, ``y`` not one integer per image, ``n`` outside ``[1, N]``, or ``classes``
    that are not distinct non-empty strings covering every label. The errors begin with the file's
    path, or with ``flag`` and the path where a command line's option (``"--images"``) gave it.
    """
    path = Path(path)
    arrays = _read(path, flag)
    unlabelled = "--no-labels" if flag else "load_unlabelled"
    x, y = _checked(arrays, "x", "y", _where(path, flag), hint=f"; for images without labels: {unlabelled}")
    names = _class_names(arrays, [y], _where(path, flag))
    n = _count(n, x, path, flag)
    return LabelledImages(_as_dtype(x[:n], dtype, _where(path, flag)), y[:n].long(), names)


def load_unlabelled(path: Path | str, n: int | None = None, dtype: torch.dtype = torch.float32, *,
                    flag: str = "") -> torch.Tensor:
    """The first ``n`` (default all) images ``x (n, *C, H, W)`` of ``path`` as ``dtype``, for an audit
    without labels (``--no-labels``): a ``y`` or ``classes`` in the file is not used (it is not checked;
    an ``.npz`` file is still read whole, so each of its arrays must load without pickle). Raises
    :class:`ImageFileError` as :func:`load_labelled` does for the file and its ``x`` (``flag`` too)."""
    path = Path(path)
    x = _checked_images(_read(path, flag, keys=("x",)), "x", _where(path, flag))
    return _as_dtype(x[: _count(n, x, path, flag)], dtype, _where(path, flag))


def _count(n: int | None, x: torch.Tensor, path: Path, flag: str) -> int:
    """``n`` (``None``: all of ``x``), checked to lie in ``[1, len(x)]``; the error names ``--n``
    where a command line gave the file (``flag``), else the argument ``n``."""
    n = len(x) if n is None else n
    if not 1 <= n <= len(x):
        raise ImageFileError(f"{'--n' if flag else 'n'} must be in [1, {len(x)}] for the {len(x)} images of {path}, "
                             f"got {n}")
    return n


def load_images(path: Path | str, n: int | None = None, dtype: torch.dtype = torch.float32, *, flag: str = ""
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`load_labelled`'s ``x`` and ``y``, without the class names."""
    x, y, _ = load_labelled(path, n, dtype, flag=flag)
    return x, y


def load_split_file(path: Path | str, dtype: torch.dtype = torch.float32, *, flag: str = "") -> Splits:
    """The train / val / test splits of ``path`` (arrays ``x_train``, ``y_train``, ``x_val``, ``y_val``,
    ``x_test``, ``y_test``; each as :func:`load_images` checks ``x`` and ``y``; optionally
    ``classes``) as :class:`nets.data.Splits` named ``"own"``, images as ``dtype``, already normalized
    (``mean`` 0, ``std`` 1; ``split_seed`` -1: the file's own split; ``class_names`` the file's).

    Raises :class:`ImageFileError` for what :func:`load_labelled` refuses, and for splits whose images
    differ in shape per sample; the errors begin as :func:`load_labelled`'s (``flag``: ``"--data"``)."""
    path = Path(path)
    where = _where(path, flag)
    arrays = _read(path, flag, tuple(f"{a}_{s}" for s in SPLIT_NAMES for a in "xy"))
    parts = {s: _checked(arrays, f"x_{s}", f"y_{s}", where) for s in SPLIT_NAMES}
    shapes = {s: tuple(x.shape[1:]) for s, (x, _) in parts.items()}
    if len(set(shapes.values())) > 1:
        raise ImageFileError(f"{where}: the splits' images differ in shape: "
                             + ", ".join(f"x_{s} {v}" for s, v in shapes.items()))
    names = _class_names(arrays, [y for _, y in parts.values()], where)
    split = {s: Split(_as_dtype(x, dtype, where, f"x_{s}"), y.long()) for s, (x, y) in parts.items()}
    return Splits("own", split["train"], split["val"], split["test"], mean=0.0, std=1.0, split_seed=-1,
                  class_names=names)
