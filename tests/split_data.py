"""The small split file the own-data tests train on: three classes told apart by the brightness of
the image's centre (learnable in an epoch or two), as ``own-data --data`` reads it."""

from __future__ import annotations

import torch

SIZES = (("train", 96), ("val", 32), ("test", 48))


def brightness_splits(sizes=SIZES, shape=(1, 12, 12)) -> dict[str, torch.Tensor]:
    """``{"x_train": ..., "y_train": ..., ...}``: per split of ``sizes``, images ``(n, *shape)`` of
    noise whose centre is darker (class 0), unchanged (1) or brighter (2), seeded."""
    g = torch.Generator().manual_seed(0)
    out = {}
    for name, n in sizes:
        y = torch.randint(0, 3, (n,), generator=g)
        x = 0.3 * torch.randn(n, *shape, generator=g)
        x[..., 4:8, 4:8] += 1.5 * (y - 1).view(-1, *[1] * len(shape))  # the class is the centre's brightness
        out[f"x_{name}"], out[f"y_{name}"] = x, y
    return out
