"""Transforming-MNIST and Transforming-FMNIST (paper Section 4.1), and the drift of Section 4.3.

Construction, as in the paper:

1. pool the official train and test sets (70k images of 28x28, uint8);
2. drop MNIST digit 9 (confused with a rotated 6) and the last Fashion-MNIST
   class (9, ankle boot), leaving 9 classes with labels 0..8;
3. zero-pad to 36x36, centered (4 pixels each side), so that rotations by 90
   degrees and cyclic x-translations by 12 pixels act exactly on the grid;
4. split into 10k train / 50k test / 2k validation, disjoint, from one
   ``torch.randperm`` seeded by ``split_seed`` (slices in that order);
5. normalize to zero mean and unit std with ONE scalar mean and std computed on
   the padded training images (pixel values in [0, 1]). A scalar affine map
   commutes with every pixel permutation, so normalization commutes with the
   group action, ``norm(g x) = g norm(x)``; a per-pixel statistic would not.

Group transformations are applied on the fly (:func:`augment`), with fixed
seeded elements for evaluation (:func:`transformed`), or over the whole orbit
(:func:`full_orbit`).

The raw files come through the verified fetch step (:mod:`nets.fetch`): see
``python -m nets.data fetch --help``. CLI: ``python -m nets.data
{fetch,info,show}``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Mapping, Sequence, Union

import numpy as np
import torch

from nets.fetch import (
    DATASETS,
    FOLDERS,
    FetchError,
    FileSpec,
    Source,
    cache_root,
    canonical_name,
    fetch,
)
from nets.groups import Group, get_group
from nets.idx import IdxError, read_idx
from nets.results_io.atomic import save_figure_file

__all__ = [
    "DATASETS",
    "Split",
    "Splits",
    "SPLIT_SIZES",
    "IMAGE_SIZE",
    "PADDED_SIZE",
    "PAD",
    "N_CLASSES",
    "DROPPED_CLASS",
    "fetch",
    "load_raw",
    "load_splits",
    "build_raw_splits",
    "normalize_splits",
    "split_indices",
    "drop_class",
    "pad_center",
    "pixel_statistics",
    "normalize",
    "augment",
    "fixed_elements",
    "transformed",
    "full_orbit",
    "drift",
    "drift_target",
    "drift_split",
    "synthetic_splits",
    "plot_orbits",
    "clear_memory_cache",
    "FetchError",
    "IdxError",
]

PathLike = Union[str, Path]
GroupLike = Union[Group, str]

IMAGE_SIZE = 28
PAD = 4
PADDED_SIZE = IMAGE_SIZE + 2 * PAD  # 36
N_CLASSES = 9
#: The class left out of each dataset (MNIST digit 9; Fashion-MNIST class 9, ankle boot).
DROPPED_CLASS = {"mnist": 9, "fmnist": 9}
#: Split sizes of the paper (10k / 50k / 2k), sliced from the permutation in this order.
SPLIT_SIZES: Mapping[str, int] = {"train": 10_000, "test": 50_000, "val": 2_000}
_MIX_SEED_OFFSET = 7919  # decorrelates the drift mixture choice from the split permutation


# ---------------------------------------------------------------------------
# Containers
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Split:
    """One split: images ``x`` of shape ``(N, 36, 36)`` (float32, normalized) and
    labels ``y`` of shape ``(N,)`` (int64, 0..8).

    The same container holds raw ``uint8`` pixels inside the builder.
    """

    x: torch.Tensor
    y: torch.Tensor

    def __post_init__(self) -> None:
        if self.x.ndim < 3 or self.y.ndim != 1 or self.x.shape[0] != self.y.shape[0]:
            raise ValueError(
                f"Split needs x of shape (N, ..., H, W) and y of shape (N,); got x {tuple(self.x.shape)}, "
                f"y {tuple(self.y.shape)}"
            )

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def subset(self, n: int) -> "Split":
        """The first ``n`` samples (``0 <= n <= len``)."""
        if not 0 <= n <= len(self):
            raise ValueError(f"subset size must be in [0, {len(self)}], got {n}")
        return Split(self.x[:n], self.y[:n])

    def to(self, device: torch.device | str) -> "Split":
        """The split with both tensors on ``device``."""
        return Split(self.x.to(device), self.y.to(device))


@dataclass(frozen=True)
class Splits:
    """A dataset's train / val / test splits and its scalar normalization.

    ``mean`` and ``std`` are computed on the raw padded training images (pixel
    values in [0, 1]); every split is normalized with them, ``(x - mean) / std``.
    """

    name: str
    train: Split
    val: Split
    test: Split
    mean: float
    std: float
    split_seed: int

    def __getitem__(self, split: str) -> Split:
        if split not in ("train", "val", "test"):
            raise KeyError(f"unknown split {split!r}; known: train, val, test")
        return getattr(self, split)


@dataclass(frozen=True)
class _RawSplits:
    """Padded uint8 splits before normalization (``x``: ``(N, 36, 36)`` uint8)."""

    name: str
    train: Split
    val: Split
    test: Split
    split_seed: int
    pooled_counts: tuple[int, ...]  # class counts of the pooled 70k, before dropping
    files: Mapping[str, str]  # filename -> verified sha256


# ---------------------------------------------------------------------------
# Building blocks (each a pure tensor function, tested on its own)
# ---------------------------------------------------------------------------
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
    return _standardize_(_to_unit(x), mean, std)


def _to_unit(x: torch.Tensor) -> torch.Tensor:
    """A fresh float32 tensor of pixel values in [0, 1] (uint8 is divided by 255)."""
    xf = x.to(torch.float32, copy=True)
    return xf.div_(255.0) if x.dtype == torch.uint8 else xf


def _standardize_(xf: torch.Tensor, mean: float, std: float) -> torch.Tensor:
    # In place on a fresh tensor: fewer passes and no temporaries on 50k images.
    return xf.sub_(mean).div_(std)


def build_raw_splits(
    x: torch.Tensor,
    y: torch.Tensor,
    split_seed: int = 0,
    drop: int | None = 9,
    sizes: Mapping[str, int] = SPLIT_SIZES,
    name: str = "custom",
) -> _RawSplits:
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
    return _RawSplits(name, parts["train"], parts["val"], parts["test"], int(split_seed), pooled_counts, {})


def normalize_splits(raw: _RawSplits) -> Splits:
    """Normalize every split with the scalar statistics of the raw training split."""
    mean, std = pixel_statistics(raw.train.x)
    norm = {k: Split(normalize(getattr(raw, k).x, mean, std), getattr(raw, k).y.clone()) for k in ("train", "val", "test")}
    return Splits(raw.name, norm["train"], norm["val"], norm["test"], mean, std, raw.split_seed)


# ---------------------------------------------------------------------------
# Real data
# ---------------------------------------------------------------------------
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


_MEMO: "OrderedDict[tuple[str, int, str], _RawSplits]" = OrderedDict()
_MEMO_SIZE = 4


def clear_memory_cache() -> None:
    """Forget the raw splits kept in memory by :func:`load_splits` / :func:`drift_split`."""
    _MEMO.clear()


def _raw_splits(name: str, split_seed: int, data_dir: PathLike | None, from_dir: PathLike | None,
                sources: Sequence[Source] | None, progress: bool) -> _RawSplits:
    key = (canonical_name(name), int(split_seed), str(cache_root(data_dir).resolve()))
    if key in _MEMO:
        _MEMO.move_to_end(key)
        return _MEMO[key]
    x, y, files = load_raw(key[0], data_dir, from_dir=from_dir, sources=sources, progress=progress)
    raw = build_raw_splits(x, y, split_seed, DROPPED_CLASS[key[0]], SPLIT_SIZES, key[0])
    raw = _RawSplits(raw.name, raw.train, raw.val, raw.test, raw.split_seed, raw.pooled_counts, files)
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
    ``mnist/`` and ``fashion-mnist/`` (default :func:`nets.fetch.cache_root`).
    Missing files are fetched and every file is verified by SHA-256
    (``from_dir`` and ``sources`` as in :func:`nets.fetch.fetch`).

    Returns train ``(10000, 36, 36)``, val ``(2000, 36, 36)``, test
    ``(50000, 36, 36)`` float32 images normalized with the scalar training
    statistics, labels int64 in 0..8. Fresh tensors on every call (the raw uint8
    splits are kept in memory for the next call).
    """
    return normalize_splits(_raw_splits(name, split_seed, data_dir, from_dir, sources, progress))


# ---------------------------------------------------------------------------
# Group transformations of data
# ---------------------------------------------------------------------------
def _as_group(group: GroupLike) -> Group:
    return get_group(group) if isinstance(group, str) else group


def augment(
    x: torch.Tensor, group: GroupLike, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply a uniformly random element to each sample (data augmentation).

    x: ``(N, ..., H, W)`` on any device. Returns ``(g x, g)`` with ``g`` of shape
    ``(N,)`` (long, on ``x.device``) and ``(g x)[i] = act(x[i], g[i])``. The
    elements are drawn with ``generator`` on its own device (CPU by default).
    """
    group = _as_group(group)
    n = x.shape[0]
    if generator is None or generator.device.type == "cpu":
        g = group.random_elements(n, generator=generator)
    else:
        g = torch.randint(0, group.order, (n,), generator=generator, device=generator.device)
    g = g.to(x.device)
    return group.act(x, g), g


def fixed_elements(n: int, group: GroupLike, seed: int = 0) -> torch.Tensor:
    """``n`` group elements drawn uniformly from a CPU generator seeded by ``seed``:
    the same ``(n,)`` long tensor on every call, for evaluation."""
    return _as_group(group).random_elements(n, generator=torch.Generator().manual_seed(int(seed)))


def transformed(split: Split, group: GroupLike, seed: int = 0) -> Split:
    """Each sample under its fixed seeded element: ``x_i -> g_i x_i`` with
    ``g = fixed_elements(len(split), group, seed)``; labels unchanged."""
    group = _as_group(group)
    g = fixed_elements(len(split), group, seed).to(split.x.device)
    return Split(group.act(split.x, g), split.y.clone())


def full_orbit(split: Split, group: GroupLike) -> Split:
    """Every sample under every element, element-major: ``x`` of shape
    ``(|G| N, ..., H, W)`` with ``out.x[g N + i] = g x_i`` and ``out.y[g N + i] = y_i``."""
    group = _as_group(group)
    orbit = group.orbit(split.x)  # (|G|, N, ..., H, W)
    return Split(orbit.reshape(-1, *split.x.shape[1:]), split.y.repeat(group.order))


# ---------------------------------------------------------------------------
# Distribution drift (Section 4.3)
# ---------------------------------------------------------------------------
DriftMode = Literal["interpolate", "mixture"]


def drift(
    source: Split,
    target: Split,
    beta: float,
    mean: float,
    std: float,
    mode: DriftMode = "interpolate",
    seed: int = 0,
) -> Split:
    """``D(beta) = (1 - beta) D_source + beta D_target`` from paired raw splits.

    source, target: raw uint8 splits with ``x (N, H, W)`` (the i-th of one paired
    with the i-th of the other). Normalized with ``mean``/``std`` (the source's
    training statistics: the model's input normalization).

    - ``"interpolate"``: ``x_i = ((1 - beta) s_i + beta t_i) / 255``, then
      normalized; label ``y_i`` of the source.
    - ``"mixture"``: the first ``round(beta N)`` samples of a permutation seeded
      by ``seed`` are replaced by target samples (with the target label), the
      rest kept; the replaced sets are nested as beta grows.
    """
    if not 0.0 <= beta <= 1.0:
        raise ValueError(f"beta must be in [0, 1], got {beta}")
    if source.x.shape != target.x.shape:
        raise ValueError(f"paired splits must have the same shape, got {tuple(source.x.shape)} and "
                         f"{tuple(target.x.shape)}")
    if not std > 0:
        raise ValueError(f"std must be positive, got {std}")
    if mode == "interpolate":
        # (1 - beta) s + beta t, in place; exact at beta = 0 (s) and beta = 1 (t).
        pixels = _to_unit(source.x)
        if beta != 0.0:
            pixels.mul_(1.0 - beta).add_(_to_unit(target.x), alpha=beta)
        return Split(_standardize_(pixels, mean, std), source.y.clone())
    if mode == "mixture":
        n = len(source)
        k = int(round(beta * n))
        chosen = torch.randperm(n, generator=torch.Generator().manual_seed(int(seed) + _MIX_SEED_OFFSET))[:k]
        mask = torch.zeros(n, dtype=torch.bool)
        mask[chosen] = True
        x = torch.where(mask.view(-1, *([1] * (source.x.ndim - 1))), target.x, source.x)
        y = torch.where(mask, target.y, source.y)
        return Split(normalize(x, mean, std), y)
    raise ValueError(f"unknown drift mode {mode!r}; known: interpolate, mixture")


def drift_target(source: str) -> str:
    """The dataset a drift from ``source`` moves towards: the other of :data:`DATASETS`
    (``"mnist"`` -> ``"fmnist"``, the paper's Figure 4, and back). Raises ValueError for an
    unknown name."""
    source = canonical_name(source)
    return next(d for d in DATASETS if d != source)


def drift_split(
    beta: float,
    split_seed: int = 0,
    mode: DriftMode = "interpolate",
    split: str = "test",
    data_dir: PathLike | None = None,
    source: str = "mnist",
) -> Split:
    """The drifted dataset ``D(beta) = (1 - beta) D_source + beta D_target`` (Section 4.3): the
    paper's ``D_MNIST -> D_FMNIST`` with the default ``source="mnist"``; ``source="fmnist"``
    drifts the other way, from Transforming-FMNIST towards Transforming-MNIST (the target is
    always the other dataset).

    ``mode="interpolate"`` (default, what the experiments use): pixel-wise
    interpolation, in raw [0, 1] pixel space, of the i-th source image of ``split``
    with the i-th target image of the same split (same ``split_seed``),
    keeping the source label; ``beta = 0`` gives exactly ``load_splits(source).test``.

    ``mode="mixture"``: a ``beta`` fraction of the samples (chosen by a seeded
    permutation, nested in beta) is replaced by the paired target samples
    *with their own labels*; accuracy on it therefore mixes two tasks.

    Both are normalized with the source's training statistics (the normalization
    the source's models were trained with), not the target's. Returns ``x (N, 36, 36)``
    float32, ``y (N,)`` int64. Raises ValueError for an unknown split or dataset name.
    """
    if split not in ("train", "val", "test"):
        raise ValueError(f"unknown split {split!r}; known: train, val, test")
    source, target = canonical_name(source), drift_target(source)
    s = _raw_splits(source, split_seed, data_dir, None, None, True)
    t = _raw_splits(target, split_seed, data_dir, None, None, True)
    mean, std = pixel_statistics(s.train.x)
    return drift(getattr(s, split), getattr(t, split), beta, mean, std, mode, split_seed)


# ---------------------------------------------------------------------------
# Synthetic data for unit tests
# ---------------------------------------------------------------------------
def synthetic_splits(
    n_train: int = 64, n_val: int = 16, n_test: int = 32, seed: int = 0, size: int = 36, n_classes: int = 9
) -> Splits:
    """Small random data with class structure, built like the real data.

    Each class has a random binary prototype on the centered ``(size - 8)``
    square (the border stays zero, like padded MNIST); a sample is
    ``0.75 prototype + 0.25 noise`` as uint8, and the splits are normalized with
    the scalar statistics of the synthetic training split. Every split holds
    every class (as far as its size allows). ``x (n, size, size)`` float32.
    """
    if n_classes < 1 or min(n_train, n_val, n_test) < 0:
        raise ValueError("n_classes must be >= 1 and split sizes >= 0")
    gen = torch.Generator().manual_seed(int(seed))
    pad = PAD if size > 2 * PAD else 0
    inner = size - 2 * pad
    protos = (torch.rand(n_classes, inner, inner, generator=gen) < 0.3).to(torch.float32)

    def make(n: int) -> Split:
        y = (torch.arange(n) % n_classes)[torch.randperm(n, generator=gen)]
        noise = torch.rand(n, inner, inner, generator=gen)
        pixels = (0.75 * protos[y] + 0.25 * noise).clamp(0, 1)
        x = pad_center((pixels * 255).round().to(torch.uint8), pad)
        return Split(x, y)

    raw = _RawSplits("synthetic", make(n_train), make(n_val), make(n_test), int(seed), (), {})
    return normalize_splits(raw)


# ---------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------
def plot_orbits(split: Split, group: GroupLike, n: int = 4, out: PathLike = "orbits.png", title: str = "") -> Path:
    """Save a grid of the first ``n`` samples (rows) under every group element (columns)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    group = _as_group(group)
    sub = split.subset(min(n, len(split)))
    orbit = group.orbit(sub.x.cpu()).numpy()  # (|G|, n, H, W)
    rows, cols = orbit.shape[1], orbit.shape[0]
    fig, axes = plt.subplots(rows, cols, figsize=(1.4 * cols, 1.4 * rows + 0.5), squeeze=False)
    vmin, vmax = float(orbit.min()), float(orbit.max())
    for i in range(rows):
        for g in range(cols):
            ax = axes[i][g]
            ax.imshow(orbit[g, i], cmap="gray", vmin=vmin, vmax=vmax, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(f"g={g}", fontsize=9)
            if g == 0:
                ax.set_ylabel(f"y={int(sub.y[i])}", fontsize=9)
    fig.suptitle(title or f"{group.name} orbits", fontsize=10)
    fig.tight_layout()
    try:
        return save_figure_file(fig, out, dpi=100)
    finally:
        plt.close(fig)


def _cmd_fetch(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    report = fetch(args.dataset, from_dir=args.from_dir, cache_dir=args.cache, progress=not args.quiet)
    width = max(len(f"{FOLDERS[d]}/{fn}") for d, files in report.items() for fn in files)
    for dataset, files in report.items():
        for fn, r in files.items():
            status = "verified" if r.verified else "NOT VERIFIED"
            print(f"{FOLDERS[dataset] + '/' + fn:{width}s}  {status}  sha256 {r.sha256[:16]}...  "
                  f"from {r.source}  ({r.seconds:.2f} s)")
            if args.verbose:
                for why in r.tried:
                    print(f"{'':{width}s}    (tried {why})")
    print(f"cache: {cache_root(args.cache)}  ({time.perf_counter() - t0:.2f} s)")
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    for name in args.dataset:
        key = canonical_name(name)
        t0 = time.perf_counter()
        raw = _raw_splits(key, args.split_seed, args.cache, None, None, not args.quiet)
        splits = normalize_splits(raw)
        dt = time.perf_counter() - t0
        pooled = raw.pooled_counts
        kept = sum(pooled) - pooled[DROPPED_CLASS[key]]
        print(f"== {key} ({cache_root(args.cache) / FOLDERS[key]}), built in {dt:.2f} s")
        for fn, digest in raw.files.items():
            print(f"  {fn:26s} sha256 {digest}  verified")
        print(f"  pooled train+test: {sum(pooled)} images; per class {list(pooled)}")
        print(f"  after dropping class {DROPPED_CLASS[key]}: {kept} images, 9 classes (labels 0..8)")
        used = sum(len(splits[s]) for s in ("train", "val", "test"))
        print(f"  split seed {args.split_seed}: train {len(splits.train)} / val {len(splits.val)} / "
              f"test {len(splits.test)} (unused {kept - used}); images {tuple(splits.train.x.shape[1:])}")
        for s in ("train", "val", "test"):
            counts = torch.bincount(splits[s].y, minlength=N_CLASSES).tolist()
            print(f"  {s:5s} per class {counts}")
        tx = splits.train.x
        print(f"  normalization (scalar, padded training images in [0,1]): mean {splits.mean:.6f}, "
              f"std {splits.std:.6f}; normalized train mean {tx.mean().item():+.2e}, std {tx.std().item():.6f}")
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    splits = load_splits(args.dataset, args.split_seed, args.cache, progress=not args.quiet)
    group = get_group(args.group)
    out = plot_orbits(splits[args.split], group, args.n, args.out,
                      title=f"{canonical_name(args.dataset)} {args.split}: rows = samples, columns = {group.name} elements")
    print(f"wrote {out}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nets.data", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--cache", type=Path, default=None, help="cache root (default: $GENUINE_INVARIANCE_CACHE, "
                       "else $XDG_CACHE_HOME/genuine-invariance, else ~/.cache/genuine-invariance)")
        p.add_argument("--quiet", action="store_true", help="no progress bars")

    p = sub.add_parser("fetch", help="fetch and verify the IDX files into the cache")
    p.add_argument("--from", dest="from_dir", type=Path, default=None,
                   help="a folder holding the IDX files (raw or .gz; default: $GENUINE_INVARIANCE_DATA_FROM)")
    p.add_argument("--dataset", nargs="+", default=list(DATASETS), help="datasets (default: both)")
    p.add_argument("-v", "--verbose", action="store_true", help="also list the sources that failed first")
    common(p)
    p = sub.add_parser("info", help="counts per split and class, normalization statistics, checksums")
    p.add_argument("--dataset", nargs="+", default=list(DATASETS))
    p.add_argument("--split-seed", type=int, default=0)
    common(p)
    p = sub.add_parser("show", help="plot a few samples under every group element")
    p.add_argument("--dataset", default="mnist")
    p.add_argument("--group", default="r4")
    p.add_argument("--split", default="test", choices=("train", "val", "test"))
    p.add_argument("--split-seed", type=int, default=0)
    p.add_argument("--n", type=int, default=4, help="number of samples (rows)")
    p.add_argument("--out", type=Path, required=True)
    common(p)
    args = parser.parse_args(argv)
    try:  # names first: an unknown dataset or group is a usage error (exit 2), listing the known ones
        for d in [args.dataset] if isinstance(args.dataset, str) else args.dataset:
            canonical_name(d)
        if args.command == "show":
            get_group(args.group)
    except ValueError as e:
        print(f"python -m nets.data {args.command}: error: {e}", file=sys.stderr)
        return 2
    try:
        return {"fetch": _cmd_fetch, "info": _cmd_info, "show": _cmd_show}[args.command](args)
    except (FetchError, IdxError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
