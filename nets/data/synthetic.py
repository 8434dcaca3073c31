"""Small random data with class structure, built like the real data (for tests and examples)."""

from __future__ import annotations

import torch

from nets.data.splits import PAD, RawSplits, Split, Splits, normalize_splits, pad_center

__all__ = ["synthetic_splits"]


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

    raw = RawSplits("synthetic", make(n_train), make(n_val), make(n_test), int(seed), (), {})
    return normalize_splits(raw)
