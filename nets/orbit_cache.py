"""Each group's action as an index, built once per group object and image size and checked as it is
built: the cache behind :meth:`nets.group_action.Group.orbit_index`. Groups are duck-typed here
(``name``, ``order``, ``identity``, ``elements``, ``_act_reference``, ``compose``, ``inverse``)."""

from __future__ import annotations

import weakref

import torch

from nets.group_checks import check_algebra, check_distinct

__all__ = ["cached_orbit_index", "build_orbit_index", "forget_orbit_index", "first_line"]


#: Each group object's orbit indices, ``{id(group): {(H, W, device): index}}``: per object, never shared
#: between two groups however equal they compare (a new group cannot meet another's action), emptied
#: when an attribute of the group is set (:meth:`nets.group_action.Group.__setattr__`), dropped with
#: the group.
_ORBIT_INDEX: dict[int, dict[tuple[int, int, str], torch.Tensor]] = {}


def cached_orbit_index(group, H: int, W: int, device: str) -> torch.Tensor:
    """``group``'s source indices ``(order, H*W)`` on ``device`` (a ``str``), built and checked once
    per group object and size (:func:`build_orbit_index`); another device's copy is the CPU one moved."""
    cached = _ORBIT_INDEX.get(id(group))
    if cached is None:
        try:
            weakref.finalize(group, _ORBIT_INDEX.pop, id(group), None)
        except TypeError:  # a group class with __slots__ and no __weakref__: built anew at every use
            return build_orbit_index(group, H, W).to(device)
        cached = _ORBIT_INDEX[id(group)] = {}
    if (H, W, device) not in cached:
        cached[(H, W, device)] = (build_orbit_index(group, H, W) if device == "cpu"
                                  else cached_orbit_index(group, H, W, "cpu").to(device))
    return cached[(H, W, device)]


def build_orbit_index(group, H: int, W: int) -> torch.Tensor:
    """Every element's source indices ``(order, H*W)`` from ``group._act_reference`` on the index grid,
    after checking that each is a permutation of the grid, the identity moves nothing, the elements act
    differently and ``compose`` / ``inverse`` agree with the action (:mod:`nets.group_checks`); one-line
    ``ValueError`` naming the group otherwise."""
    grid = torch.arange(H * W, dtype=torch.long).view(H, W)
    rows = []
    for g in group.elements:
        try:
            out = group._act_reference(grid.clone(), g)
        except Exception as e:  # noqa: BLE001 - the group's code, at a size it did not refuse
            raise ValueError(f"{group.name}: element {g}'s action (_act_reference) raised {type(e).__name__} on "
                             f"{H}x{W} images: {first_line(e)}; a size the action cannot take must be refused in "
                             f"check_shape (raise ValueError there)") from None
        if H != W and isinstance(out, torch.Tensor) and tuple(out.shape) == (W, H):  # a transpose, say
            raise ValueError(
                f"{group.name}: element {g} turns {H}x{W} images into {out.shape[0]}x{out.shape[1]} ones; an action "
                f"defined on some image shapes only (a transpose: square ones) must refuse the others in its "
                f"check_shape (raise ValueError there, as the built-in rotations do)")
        if not isinstance(out, torch.Tensor) or tuple(out.shape) != (H, W) or out.dtype != torch.long \
                or not torch.equal(out.reshape(-1).sort().values, grid.reshape(-1)):
            raise ValueError(
                f"{group.name}: element {g} does not act by a permutation of the pixel grid of {H}x{W} images "
                f"(its action on the index grid must return a ({H}, {W}) long tensor holding every index once); "
                f"a Group must move pixel values, never resample or blend them")
        rows.append(out.reshape(-1))
    idx = torch.stack(rows)
    if not torch.equal(idx[group.identity], grid.reshape(-1)):
        raise ValueError(f"{group.name}: element {group.identity} (the identity) must leave every pixel in place")
    check_distinct(group, idx, H, W)
    check_algebra(group, idx, H, W)
    return idx


def forget_orbit_index(group) -> None:
    """Drop ``group``'s cached indices (an attribute of it was set: its action may have changed)."""
    _ORBIT_INDEX.pop(id(group), None)


def first_line(e: BaseException) -> str:
    """The first line of an exception's message (pytest adds the assertion's source below it)."""
    return (str(e).strip() or "(no message)").splitlines()[0]
