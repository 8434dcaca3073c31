"""Extension (e): Proposition 3.1 for the paper's groups acting on images.

G is the real permutation representation of a group from :mod:`nets.groups` (R4 rotations,
T3 cyclic translations) on flattened ``(H, W)`` images: ``vec(g x) = P_g vec(x)`` with
``P_g = group.permutation_matrix(g, H, W)``: (H*W, H*W). The residuals
``eps = vec(x) - P_g vec(x)`` over images and the whole orbit give ``Sigma``, and the numeric
checks of :mod:`theory.numeric` apply unchanged.
"""

from __future__ import annotations

import numpy as np
import torch

from nets.groups import Group

from .checks import CheckResult, at_most

__all__ = ["representation_matrices", "image_residuals", "check_representation_matches_orbit"]


def representation_matrices(group: Group, H: int, W: int) -> np.ndarray:
    """``P_g`` for every element g, float64 array of shape (order, H*W, H*W)."""
    return np.stack([group.permutation_matrix(g, H, W, dtype=torch.float64).numpy()
                     for g in group.elements])


def image_residuals(group: Group, images: np.ndarray) -> np.ndarray:
    """``eps = vec(x) - P_g vec(x)`` for every image and element, via the permutation matrices.

    images: (N, H, W); returns (N * order, H*W), row ``i*order + g``. The identity gives
    zero rows, which do not change Sigma.
    """
    images = np.asarray(images, dtype=np.float64)
    N, H, W = images.shape
    P = representation_matrices(group, H, W)  # (k, HW, HW)
    flat = images.reshape(N, H * W)
    return (flat[:, None, :] - np.einsum("kab,nb->nka", P, flat)).reshape(-1, H * W)


def check_representation_matches_orbit(group: Group, images: np.ndarray,
                                       name: str | None = None) -> CheckResult:
    """``P_g vec(x) == vec(group.act(x, g))`` for every g, i.e. the matrices used for Sigma are
    the representation of the action used elsewhere (``Group.orbit``). Exact (permutations move
    values), so the residual is a max abs difference with tolerance 0.

    images: (N, H, W).
    """
    images = np.asarray(images, dtype=np.float64)
    N, H, W = images.shape
    P = representation_matrices(group, H, W)
    via_matrix = np.einsum("kab,nb->kna", P, images.reshape(N, H * W))
    via_orbit = group.orbit(torch.from_numpy(images)).numpy().reshape(group.order, N, H * W)
    err = float(np.abs(via_matrix - via_orbit).max())
    return at_most(name or f"image_{group.name}_representation_matches_orbit", err, 0.0,
                   f"max |P_g vec(x) - vec(g x)| over {group.order} elements, {N} images {H}x{W}")
