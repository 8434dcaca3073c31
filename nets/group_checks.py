"""What every group's action is checked against, at each image size it is used at
(:meth:`nets.group_action.Group.orbit_index`): its elements act differently (:func:`check_distinct`),
and ``compose`` and ``inverse`` agree with the action (:func:`check_algebra`). Both take the action as
its source indices ``idx``, ``(order, H*W)``: row ``g`` is element ``g``'s, ``vec(g x)[p] = vec(x)[idx[g, p]]``."""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["check_distinct", "check_algebra", "SIZE_HINT"]


#: :func:`check_algebra` checks every pair of elements while ``order**2 * H * W`` stays below this,
#: else every element against this many (a fixed sample, the same every time).
_ALGEBRA_PAIRS_MAX, _ALGEBRA_SAMPLE = 20_000_000, 64


#: The other fix of an action that is a group at some image sizes only (a shift by a third of the width).
SIZE_HINT = " (or, if the action is a group at some image sizes only, refuse this one in check_shape)"


def check_algebra(group, idx: torch.Tensor, H: int, W: int) -> None:
    """Raise a one-line ``ValueError`` unless ``compose`` and ``inverse`` agree with the action on
    ``H x W`` images (``idx``: every element's source index, ``(order, H*W)``): acting by ``b`` and
    then ``a`` is acting by ``compose(a, b)``, and ``inverse(a)`` undoes ``a``. SI realigns saliency
    maps by the inverse, so a wrong one would give wrong numbers, not an error."""
    order, hw = idx.shape
    firsts = range(order)
    if order * order * hw > _ALGEBRA_PAIRS_MAX:
        gen = torch.Generator().manual_seed(0)
        firsts = sorted(torch.randperm(order, generator=gen)[:_ALGEBRA_SAMPLE].tolist())
    grid = torch.arange(hw)

    def is_element(c) -> bool:
        return isinstance(c, (int, np.integer)) and 0 <= int(c) < order

    for a in firsts:
        inv = group.inverse(a)
        if not is_element(inv) or not torch.equal(idx[a][idx[int(inv)]], grid):
            raise ValueError(f"{group.name}: inverse({a}) = {inv!r} does not undo element {a} on {H}x{W} images; "
                             f"inverse must match the action{SIZE_HINT}")
        products = [group.compose(a, b) for b in range(order)]
        outside = [c for c in products if not is_element(c)]
        if outside:
            raise ValueError(f"{group.name}: compose({a}, b) must be an element 0..{order - 1} for every b, got "
                             f"{outside[:3]}")
        applied = idx[:, idx[a]]  # row b: act by b first, then by a
        wrong = (applied != idx[torch.tensor([int(c) for c in products])]).any(1)
        if bool(wrong.any()):
            b = int(wrong.float().argmax())
            raise ValueError(f"{group.name}: compose({a}, {b}) = {products[b]}, but acting by {b} and then by {a} is "
                             f"not element {products[b]}'s action on {H}x{W} images; compose(a, b) must be the "
                             f"element that applies b first, then a{SIZE_HINT}")


def check_distinct(group, idx: torch.Tensor, H: int, W: int) -> None:
    """Raise a one-line ``ValueError`` when two elements act alike on ``H x W`` images (one that moves
    no pixel is the identity's twin): the measures average over the elements, so a twin would count
    one transformation twice, and one that moves nothing would make every model look invariant."""
    rows, first = torch.unique(idx, dim=0, return_inverse=True)
    if rows.shape[0] == idx.shape[0]:
        return
    b = next(g for g in range(idx.shape[0]) if bool((first[:g] == first[g]).any()))  # the first repeat
    a = int((first[:b] == first[b]).nonzero()[0])
    alike = (f"element {b} moves no pixel of {H}x{W} images" if a == group.identity
             else f"elements {a} and {b} act alike on {H}x{W} images")
    fix = ("" if not type(group).__dict__.get("check_on_construction", True) else  # ours: the size is the problem
           ": drop the repeated elements, or refuse this image size in check_shape")
    raise ValueError(f"{group.name}: {alike}; a group's elements must act differently (the measures average over "
                     f"them, so every model would look more invariant than it is){fix}")
