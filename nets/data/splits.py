"""Transforming-MNIST / -FMNIST splits (paper Section 4.1): the construction
from the pooled official files (drop a class, pad to 36x36, split, normalize with one scalar
mean and std; steps 1-5 of :mod:`nets.data`) and loading from the verified cache, with the raw
splits kept in memory for the next call. The containers (:class:`Split`, :class:`Splits`,
:class:`RawSplits`) are :mod:`nets.data.containers`' (re-exported here).
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Mapping, Sequence, Union

import numpy as np
import torch

from nets.data.containers import RawSplits, Split, Splits  # noqa: F401 (re-exported: they lived here before)
from nets.fetch_step import (
    DATASETS,
    FetchError,
    FileSpec,
    Source,
    cache_root,
    canonical_name,
    fetch,
)
from nets.dataset_files import CLASS_NAMES
from nets.idx import IdxError, read_idx

__all__ = [
    "DATASETS",
    "SPLIT_SIZES",
    "IMAGE_SIZE",
    "PADDED_SIZE",
    "PAD",
    "N_CLASSES",
    "DROPPED_CLASS",
    "fetch",
    "load_raw",
    "load_splits",
    "raw_splits",
    "build_raw_splits",
    "normalize_splits",
    "split_indices",
    "drop_class",
    "pad_center",
    "pixel_statistics",
    "normalize",
    "to_unit",
    "standardize_",
    "clear_memory_cache",
    "FetchError",
    "IdxError",
]

PathLike = Union[str, Path]

IMAGE_SIZE = 28
PAD = 4
PADDED_SIZE = IMAGE_SIZE + 2 * PAD  # 36
N_CLASSES = 9
#: The class left out of each dataset (MNIST digit 9; Fashion-MNIST class 9, ankle boot).
DROPPED_CLASS = {"mnist": 9, "fmnist": 9}
#: Split sizes of the paper (10k / 50k / 2k), sliced from the permutation in this order.
SPLIT_SIZES: Mapping[str, int] = {"train": 10_000, "test": 50_000, "val": 2_000}


def drop_class(x: torch.Tensor, y: torch.Tensor, cls: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Remove every sample of class ``cls``: ``x (N, ...)``, ``y (N,)`` -> ``(M, ...)``, ``(M,)``."""
    keep = torch.nonzero(y != cls).squeeze(1)
    return x.index_select(0, keep), y.index_select(0, keep)


def pad_center(x: torch.Tensor, pad: int = PAD) -> torch.Tensor:
    """Zero-pad images ``(N, H, W)`` to ``(N, H + 2 pad, W + 2 pad)``, centered."""
    out = x.new_zeros(*x.shape[:-2], x.shape[-2] + 2 * pad, x.shape[-1] + 2 * pad)
    out[..., pad : pad + x.shape[-2], pad : pad + x.shape[-1]] = x
    return out


def split_indices(n: int, split_seed: int = 0, sizes: Mapping[str, int] = SPLIT_SIZES) -> dict[str, torch.Tensor]:
    """Disjoint index sets of the given sizes from ``torch.randperm(n)`` seeded by
    ``split_seed``, sliced in the order of ``sizes``. Returns ``{split: (size,) long}``."""
    total = sum(sizes.values())
    if total > n:
        raise ValueError(f"split sizes {dict(sizes)} need {total} samples, only {n} available")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(int(split_seed)))
    out, start = {}, 0
    for split, size in sizes.items():
        out[split] = perm[start : start + size]
        start += size
    return out


def pixel_statistics(x: torch.Tensor) -> tuple[float, float]:
    """Scalar mean and (population) std of all pixels of uint8 images, scaled to [0, 1].

    x: ``(N, H, W)`` uint8. Exact: computed in float64 from the 256-bin histogram.
    """
    if x.dtype != torch.uint8:
        raise ValueError(f"pixel_statistics expects uint8 pixels, got {x.dtype}")
    counts = torch.bincount(x.reshape(-1), minlength=256).to(torch.float64).numpy()
    values = np.arange(256, dtype=np.float64) / 255.0
    n = counts.sum()
    if n == 0:
        raise ValueError("pixel_statistics of an empty tensor")
    mean = float((counts * values).sum() / n)
    std = float(np.sqrt((counts * (values - mean) ** 2).sum() / n))
    return mean, std


def normalize(x: torch.Tensor, mean: float, std: float) -> torch.Tensor:
    """``(x / 255 - mean) / std`` as float32 for uint8 ``x`` (any shape); float ``x`` is
    taken as already in [0, 1]. The same scalar for every pixel, so it commutes with
    every pixel permutation."""
    if not std > 0:
        raise ValueError(f"std must be positive, got {std}")
    return standardize_(to_unit(x), mean, std)


def to_unit(x: torch.Tensor) -> torch.Tensor:
    """A fresh float32 tensor of pixel values in [0, 1] (uint8 is divided by 255)."""
    xf = x.to(torch.float32, copy=True)
    return xf.div_(255.0) if x.dtype == torch.uint8 else xf


def standardize_(xf: torch.Tensor, mean: float, std: float) -> torch.Tensor:
    # In place on a fresh tensor: fewer passes and no temporaries on 50k images.
    return xf.sub_(mean).div_(std)


def build_raw_splits(
    x: torch.Tensor,
    y: torch.Tensor,
    split_seed: int = 0,
    drop: int | None = 9,
    sizes: Mapping[str, int] = SPLIT_SIZES,
    name: str = "custom",
) -> RawSplits:
    """Pooled raw images ``x (N, 28, 28)`` uint8 and labels ``y (N,)`` -> padded, split uint8 splits."""
    y = y.to(torch.long)
    pooled_counts = tuple(torch.bincount(y, minlength=10).tolist())
    # Same result as drop_class -> pad_center -> split, but gathers (index_select:
    # much faster than boolean masks on uint8) and pads only the samples used.
    kept = torch.arange(len(y)) if drop is None else torch.nonzero(y != drop).squeeze(1)
    idx = split_indices(len(kept), split_seed, sizes)
    parts = {}
    for k, v in idx.items():
        rows = kept.index_select(0, v)
        parts[k] = Split(pad_center(x.index_select(0, rows)), y.index_select(0, rows))
    return RawSplits(name, parts["train"], parts["val"], parts["test"], int(split_seed), pooled_counts, {})


def normalize_splits(raw: RawSplits) -> Splits:
    """Normalize every split with the scalar statistics of the raw training split."""
    mean, std = pixel_statistics(raw.train.x)
    norm = {k: Split(normalize(getattr(raw, k).x, mean, std), getattr(raw, k).y.clone()) for k in ("train", "val", "test")}
    return Splits(raw.name, norm["train"], norm["val"], norm["test"], mean, std, raw.split_seed,
                  CLASS_NAMES.get(raw.name))


def load_raw(
    name: str = "mnist",
    data_dir: PathLike | None = None,
    *,
    from_dir: PathLike | None = None,
    sources: Sequence[Source] | None = None,
    progress: bool = True,
    manifest: Mapping[str, Sequence[FileSpec]] | None = None,
) -> tuple[torch.Tensor, torch.Tensor, dict[str, str]]:
    """Fetch (verified) and read one dataset, train and test pooled.

    Returns ``x`` ``(N, 28, 28)`` uint8 (N = 70000), ``y`` ``(N,)`` int64 and
    ``{filename: sha256}`` of the verified files. ``data_dir`` is the cache root.
    """
    key = canonical_name(name)
    report = fetch(key, from_dir=from_dir, cache_dir=data_dir, sources=sources, progress=progress,
                   manifest=manifest)[key]
    arrays = {fn: read_idx(r.path) for fn, r in report.items()}
    xs, ys = [], []
    for prefix in ("train", "t10k"):
        xi = arrays[f"{prefix}-images-idx3-ubyte"]
        yi = arrays[f"{prefix}-labels-idx1-ubyte"]
        img_file = report[f"{prefix}-images-idx3-ubyte"].path
        if xi.ndim != 3 or xi.dtype != np.uint8 or yi.ndim != 1 or yi.dtype != np.uint8:
            raise IdxError(
                f"{img_file}: expected uint8 images (N, H, W) and labels (N,), got {xi.dtype} {xi.shape} "
                f"and {yi.dtype} {yi.shape}"
            )
        if xi.shape[0] != yi.shape[0]:
            raise IdxError(f"{img_file}: {xi.shape[0]} images but {yi.shape[0]} labels")
        xs.append(torch.from_numpy(xi))
        ys.append(torch.from_numpy(yi.astype(np.int64)))
    return torch.cat(xs), torch.cat(ys), {fn: r.sha256 for fn, r in report.items()}


_MEMO: "OrderedDict[tuple[str, int, str], RawSplits]" = OrderedDict()
_MEMO_SIZE = 4


def clear_memory_cache() -> None:
    """Forget the raw splits kept in memory by :func:`load_splits` / :func:`drift_split`."""
    _MEMO.clear()


def raw_splits(name: str, split_seed: int, data_dir: PathLike | None, from_dir: PathLike | None,
               sources: Sequence[Source] | None, progress: bool) -> RawSplits:
    """The padded uint8 splits of ``name`` before normalization (fetched and verified as
    :func:`load_splits`), kept in memory for the next call: the last few are memoized by
    (dataset, split seed, cache root). Shared with :func:`nets.data.drifting.drift_split`."""
    key = (canonical_name(name), int(split_seed), str(cache_root(data_dir).resolve()))
    if key in _MEMO:
        _MEMO.move_to_end(key)
        return _MEMO[key]
    x, y, files = load_raw(key[0], data_dir, from_dir=from_dir, sources=sources, progress=progress)
    raw = build_raw_splits(x, y, split_seed, DROPPED_CLASS[key[0]], SPLIT_SIZES, key[0])
    raw = RawSplits(raw.name, raw.train, raw.val, raw.test, raw.split_seed, raw.pooled_counts, files)
    _MEMO[key] = raw
    while len(_MEMO) > _MEMO_SIZE:
        _MEMO.popitem(last=False)
    return raw


def load_splits(
    name: str = "mnist",
    split_seed: int = 0,
    data_dir: PathLike | None = None,
    *,
    from_dir: PathLike | None = None,
    sources: Sequence[Source] | None = None,
    progress: bool = True,
) -> Splits:
    """Transforming-MNIST / -FMNIST splits of the paper (Section 4.1), untransformed.

    name: ``"mnist"`` or ``"fmnist"``. data_dir: the cache root holding
    ``mnist/`` and ``fashion-mnist/`` (default :func:`nets.fetch_step.cache_root`).
    Missing files are fetched and every file is verified by SHA-256
    (``from_dir`` and ``sources`` as in :func:`nets.fetch_step.fetch`).

    Returns train ``(10000, 36, 36)``, val ``(2000, 36, 36)``, test
    ``(50000, 36, 36)`` float32 images normalized with the scalar training
    statistics, labels int64 in 0..8. Fresh tensors on every call (the raw uint8
    splits are kept in memory for the next call).
    """
    return normalize_splits(raw_splits(name, split_seed, data_dir, from_dir, sources, progress))
