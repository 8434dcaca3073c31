"""The containers of a dataset's splits: :class:`Split` (images and labels), :class:`Splits` (train /
val / test with the scalar normalization) and :class:`RawSplits` (padded uint8 pixels before it)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Mapping

import torch

__all__ = ["Split", "Splits", "RawSplits"]


@dataclass(frozen=True)
class Split:
    """One split: images ``x`` of shape ``(N, 36, 36)`` (float32, normalized) and
    labels ``y`` of shape ``(N,)`` (int64, 0..8).

    The same container holds raw ``uint8`` pixels inside the builder.
    """

    x: torch.Tensor
    y: torch.Tensor

    def __post_init__(self) -> None:
        given = [f"{k} {type(v).__module__}.{type(v).__name__}" for k, v in (("x", self.x), ("y", self.y))
                 if not isinstance(v, torch.Tensor)]
        if given:
            raise ValueError(f"Split needs torch tensors x and y; got {', '.join(given)}: give torch.as_tensor(...) "
                             f"(torch.from_numpy for a numpy array)")
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

    def plain(self, trained: bool = True) -> "Split":
        """The split as data only: tensors that require grad detached (no copy), and, where it is
        ``trained`` on, an inference tensor (made under ``torch.inference_mode()``, which autograd cannot
        save for a backward pass) cloned; the split itself where nothing changes."""
        def data(t: torch.Tensor) -> torch.Tensor:
            return t.clone() if trained and t.is_inference() else t.detach()

        if not any(t.requires_grad or (trained and t.is_inference()) for t in (self.x, self.y)):
            return self
        return Split(data(self.x), data(self.y))


@dataclass(frozen=True)
class Splits:
    """A dataset's train / val / test splits and its scalar normalization.

    ``mean`` and ``std`` are computed on the raw padded training images (pixel
    values in [0, 1]); every split is normalized with them, ``(x - mean) / std``.
    ``class_names``: class ``c``'s name at index ``c``, where the dataset has them
    (:data:`nets.dataset_files.CLASS_NAMES`, or a file's ``classes``), else ``None``.
    """

    name: str
    train: Split
    val: Split
    test: Split
    mean: float
    std: float
    split_seed: int
    class_names: tuple[str, ...] | None = None

    def plain(self) -> "Splits":
        """Every split as data only (:meth:`Split.plain`; only ``train`` is trained on, the others evaluated
        without gradients)."""
        parts = {k: getattr(self, k).plain(trained=k == "train") for k in ("train", "val", "test")}
        return self if all(parts[k] is getattr(self, k) for k in parts) else replace(self, **parts)

    def __getitem__(self, split: str) -> Split:
        if split not in ("train", "val", "test"):
            raise KeyError(f"unknown split {split!r}; known: train, val, test")
        return getattr(self, split)


@dataclass(frozen=True)
class RawSplits:
    """Padded uint8 splits before normalization (``x``: ``(N, 36, 36)`` uint8)."""

    name: str
    train: Split
    val: Split
    test: Split
    split_seed: int
    pooled_counts: tuple[int, ...]  # class counts of the pooled 70k, before dropping
    files: Mapping[str, str]  # filename -> verified sha256
