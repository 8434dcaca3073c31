"""Distribution drift (paper Section 4.3): ``D(beta) = (1 - beta) D_source + beta D_target``
between Transforming-MNIST and Transforming-FMNIST, by pixel interpolation (what the
experiments use) or by a nested mixture of samples."""

from __future__ import annotations

from typing import Literal

import torch

from nets.data.splits import (
    PathLike,
    Split,
    normalize,
    pixel_statistics,
    raw_splits,
    standardize_,
    to_unit,
)
from nets.dataset_files import DATASETS, canonical_name

__all__ = ["DriftMode", "drift", "drift_target", "drift_split"]

_MIX_SEED_OFFSET = 7919  # decorrelates the drift mixture choice from the split permutation

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
        pixels = to_unit(source.x)
        if beta != 0.0:
            pixels.mul_(1.0 - beta).add_(to_unit(target.x), alpha=beta)
        return Split(standardize_(pixels, mean, std), source.y.clone())
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
    s = raw_splits(source, split_seed, data_dir, None, None, True)
    t = raw_splits(target, split_seed, data_dir, None, None, True)
    mean, std = pixel_statistics(s.train.x)
    return drift(getattr(s, split), getattr(t, split), beta, mean, std, mode, split_seed)
