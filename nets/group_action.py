"""The abstract finite group acting on images by a permutation of the pixel grid.

:class:`Group` is what every measure, split and trainer takes; the paper's groups and the
registry by name are in :mod:`nets.groups`. A group acts by an index gather, never an
interpolation: values are moved, not resampled, and ``act`` is exact for every dtype.

Elements are numbered ``0 .. order-1`` with ``0`` the identity. The action is a left action:
``act(x, compose(a, b)) == act(act(x, b), a)``.

For an element ``g`` and image size ``(H, W)`` the cached source index
``s_g = index(g, H, W)`` (shape ``(H*W,)``) defines the action on flattened images,
``(g x)[p] = x[s_g[p]]``, and so the permutation matrix ``P_g[p, s_g[p]] = 1`` with
``vec(g x) = P_g vec(x)``.
"""

from __future__ import annotations

import functools
from abc import ABC, ABCMeta, abstractmethod
from typing import Union

import numpy as np
import torch

from nets.group_checks import SIZE_HINT
from nets.orbit_cache import cached_orbit_index, first_line, forget_orbit_index

#: A group element: its number, or a tensor of numbers (one per image).
Element = Union[int, torch.Tensor]

__all__ = ["Group", "Element"]


#: Group's methods that read the action through the cached index; a subclass defines ``_act_reference``.
_FIXED = ("act", "orbit", "index", "orbit_index", "permutation_matrix")


class _GroupMeta(ABCMeta):
    """Checks every group right after construction: a ``name`` and an ``order``, no override of the
    methods that read the action through its cached index (:data:`_FIXED`), and (unless its own class
    sets ``check_on_construction = False``, as this package's tested groups do) an action that permutes
    the pixel grid at a probe size."""

    def __call__(cls, *args, **kwargs):
        group = super().__call__(*args, **kwargs)
        name, order = getattr(group, "name", None), getattr(group, "order", None)
        if not isinstance(name, str) or not name:
            raise ValueError(f"group class {cls.__name__} must set name, a non-empty str (e.g. name = "
                             f"{cls.__name__.lower()!r}), got {name!r}")
        if isinstance(order, bool) or not isinstance(order, int) or order < 1:
            raise ValueError(f"group {name}: order must be the number of elements, an int >= 1, got {order!r}")
        ours = cls.__mro__[:cls.__mro__.index(Group)]  # the subclasses between Group and cls
        overrides = [f"{k.__name__}.{m}" for k in ours for m in _FIXED if m in vars(k)]
        if overrides:
            raise ValueError(f"group {name}: {overrides[0]} overrides Group's; only _act_reference defines the action "
                             f"(the trainer, the measures and SI's realignment all read it through the cached index, "
                             f"so an override would be used by some and not others): write the action there")
        if cls.__dict__.get("check_on_construction", True):  # the class's own: a subclass of ours is probed
            group._check_action()
        return group


class Group(ABC, metaclass=_GroupMeta):
    """A finite group acting on images ``(..., H, W)`` by pixel permutations.

    A custom group subclasses this and defines ``name``, ``order``, ``compose``, ``inverse`` and
    ``_act_reference`` (the action on one ``(H, W)`` grid). Construction checks, on a small image
    size the group accepts, that every element's action is a permutation of the pixel grid and
    that the identity (element 0) leaves it unchanged, and raises ``ValueError`` otherwise (the
    same check runs for every image size the group is later used at)."""

    name: str
    order: int
    identity: int = 0
    #: Whether construction checks the action at a probe size (:meth:`_check_action`), read from the
    #: group's own class only (a subclass is probed unless it says otherwise). This package's own groups
    #: (tested in ``verify/``) set ``False``: a large one (``t99xy``, 9801 elements) is then built at
    #: once, so an image it does not fit is refused at once, and its action is checked only at the size
    #: it is used at, as every group's is.
    check_on_construction: bool = True

    # ---- algebra -------------------------------------------------------
    @abstractmethod
    def compose(self, a: int, b: int) -> int:
        """The product ``a b`` (apply ``b`` first, then ``a``)."""

    @abstractmethod
    def inverse(self, a: int) -> int:
        """The element ``a^{-1}`` with ``a a^{-1} = a^{-1} a = identity``."""

    @property
    def elements(self) -> range:
        return range(self.order)

    def cayley_table(self) -> np.ndarray:
        """``table[a, b] = compose(a, b)``, shape ``(order, order)``."""
        return np.array([[self.compose(a, b) for b in self.elements] for a in self.elements])

    # ---- geometry (implemented per group) -------------------------------
    @abstractmethod
    def _act_reference(self, grid: torch.Tensor, g: int) -> torch.Tensor:
        """Reference action on one ``(H, W)`` grid (torch.rot90 / roll / flip).

        Only used to build the cached index; the fast path is the gather.
        """

    def __init_subclass__(cls, **kwargs):
        """A subclass's own ``check_shape`` refuses a size in one line whatever it raises (an ``assert``
        gives ``AssertionError``): the measures and commands catch ``ValueError``."""
        super().__init_subclass__(**kwargs)
        own = cls.__dict__.get("check_shape")
        if own is not None:
            @functools.wraps(own)
            def check_shape(self, H: int, W: int) -> None:
                try:
                    own(self, H, W)
                except ValueError:
                    raise
                except Exception as e:  # noqa: BLE001 - the group's code refused the size its own way
                    raise ValueError(f"{self.name}: check_shape({H}, {W}) raised {type(e).__name__}: {first_line(e)} "
                                     f"(a group refuses an image size by raising ValueError)") from None
            cls.check_shape = check_shape

    def check_shape(self, H: int, W: int) -> None:
        """Raise ``ValueError`` if the group cannot act on ``(H, W)`` images."""
        if H < 1 or W < 1:
            raise ValueError(f"{self.name}: image size must be positive, got H={H}, W={W}")

    def probe_sizes(self) -> tuple[int, ...]:
        """Square image sizes tried first (the smallest accepted one wins) when construction checks
        the action; then 36, 28, ``2 * order``, ``order`` and a few small ones. A group whose
        smallest image is far below ``2 * order`` pixels wide names it here (``t<n>xy``: ``n``)."""
        return ()

    def _check_action(self) -> None:
        """Raise ``ValueError`` unless the action permutes the pixel grid (at one accepted size)."""
        order = int(getattr(self, "order", 0))
        if order < 1:
            raise ValueError(f"{type(self).__name__}: a group needs an order >= 1, got {order}")
        if self.identity != 0:  # every orbit's element 0 is the untransformed sample the measures compare with
            raise ValueError(f"{type(self).__name__}: the identity must be element 0 (the measures take an orbit's "
                             f"first member as the untransformed sample), got identity = {self.identity}; number "
                             f"the elements from the identity")
        for n in dict.fromkeys((*self.probe_sizes(), 36, 28, 2 * order, order, 12, 6, 4, 3, 2, 1)):
            try:
                self.check_shape(n, n)
            except ValueError:
                continue
            try:
                cached_orbit_index(self, n, n, "cpu")  # validates every element's index
            except ValueError as e:
                raise ValueError(f"{str(e).replace(SIZE_HINT, '')} (found as the group was built, on a {n}x{n} probe "
                                 f"image, whatever the size of your images)") from None  # not a size to refuse
            return

    # ---- action ----------------------------------------------------------
    def _check_element(self, g: int) -> int:
        if isinstance(g, bool) or not isinstance(g, (int, np.integer)):
            raise ValueError(f"{self.name}: group element must be an int, got {type(g).__name__}")
        g = int(g)
        if not 0 <= g < self.order:
            raise ValueError(
                f"{self.name}: element {g} is outside the group (elements are 0..{self.order - 1})"
            )
        return g

    def index(self, g: int, H: int, W: int) -> torch.Tensor:
        """Source index ``s_g`` of shape ``(H*W,)``: ``vec(g x)[p] = vec(x)[s_g[p]]``."""
        g = self._check_element(g)
        return self.orbit_index(H, W)[g]

    def orbit_index(self, H: int, W: int, device: torch.device | str | None = None) -> torch.Tensor:
        """Source indices of every element, shape ``(order, H*W)``, cached per group object, size and
        device (another device's copy is the CPU one moved, not built and checked again); setting an
        attribute of the group (``G.axis = -2``) empties its cache."""
        self.check_shape(H, W)
        return cached_orbit_index(self, int(H), int(W), str(torch.device(device or "cpu")))

    def act(self, x: torch.Tensor, g: Element) -> torch.Tensor:
        """Apply ``g`` to images.

        x: ``(..., H, W)``; g: an int (same element for all images) or a tensor of
        per-sample elements of shape ``(N,)`` for x of shape ``(N, ..., H, W)``.
        Returns a tensor of the same shape and dtype as ``x``.
        """
        H, W = _image_size(self, x)
        flat = x.reshape(*x.shape[:-2], H * W)
        if isinstance(g, torch.Tensor):
            if g.ndim == 0:
                return self.act(x, int(g.item()))
            if g.ndim != 1 or x.ndim < 3 or g.shape[0] != x.shape[0]:
                raise ValueError(
                    f"{self.name}: per-sample elements must have shape (N,) matching the batch of "
                    f"x with shape (N, ..., H, W); got g of shape {tuple(g.shape)} and x of shape "
                    f"{tuple(x.shape)}"
                )
            if g.dtype.is_floating_point or g.dtype == torch.bool:
                raise ValueError(f"{self.name}: per-sample elements must be integers, got {g.dtype}")
            if g.numel() and (int(g.min()) < 0 or int(g.max()) >= self.order):
                raise ValueError(
                    f"{self.name}: per-sample elements outside the group (elements are "
                    f"0..{self.order - 1}); got values in [{int(g.min())}, {int(g.max())}]"
                )
            idx = self.orbit_index(H, W, x.device)[g.to(x.device, torch.long)]  # (N, HW)
            idx = idx.view(g.shape[0], *([1] * (x.ndim - 3)), H * W).expand_as(flat)
            return torch.gather(flat, -1, idx).view(x.shape)
        g = self._check_element(g)
        if g == self.identity:
            return x.clone()
        idx = self.orbit_index(H, W, x.device)[g]
        # index_select is several times faster than advanced indexing flat[..., idx]
        return torch.index_select(flat, -1, idx).view(x.shape)

    def orbit(self, x: torch.Tensor) -> torch.Tensor:
        """All transformed copies of ``x``: ``(..., H, W) -> (order, ..., H, W)``,
        with ``out[g] = act(x, g)``. Off the CPU, for an ``x`` that requires grad, as
        :meth:`orbit_per_element` (one gather of every pixel ``order`` times would send its gradient
        back by CUDA's atomic adds, summed in no fixed order)."""
        if x.requires_grad and torch.is_grad_enabled() and x.device.type != "cpu":
            return self.orbit_per_element(x)
        H, W = _image_size(self, x)
        flat = x.reshape(*x.shape[:-2], H * W)
        out = torch.index_select(flat, -1, self.orbit_index(H, W, x.device).reshape(-1))
        return out.view(*x.shape[:-2], self.order, H * W).movedim(-2, 0).reshape(self.order, *x.shape)

    def orbit_per_element(self, x: torch.Tensor) -> torch.Tensor:
        """:meth:`orbit`'s values, one gather per element: each pixel of ``x`` read once per gather,
        so the gradient back to ``x`` is a sum over the elements in a fixed order, on any device."""
        H, W = _image_size(self, x)
        flat = x.reshape(*x.shape[:-2], H * W)
        return torch.stack([torch.index_select(flat, -1, i).view(x.shape) for i in self.orbit_index(H, W, x.device)])

    def permutation_matrix(self, g: int, H: int, W: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """Matrix ``P_g`` of shape ``(H*W, H*W)`` with ``vec(g x) = P_g vec(x)``."""
        idx = self.index(g, H, W)
        P = torch.zeros(H * W, H * W, dtype=dtype)
        P[torch.arange(H * W), idx] = 1
        return P

    def random_elements(self, n: int, generator: torch.Generator | None = None,
                        device: torch.device | str | None = None) -> torch.Tensor:
        """``n`` elements drawn uniformly, shape ``(n,)``, dtype long."""
        g = torch.randint(0, self.order, (n,), generator=generator)
        return g.to(device) if device is not None else g

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, order={self.order})"

    def __eq__(self, other: object) -> bool:
        """Same class, name and instance attributes (a custom group's parameters: two groups that share
        a name but act differently are not one group). Each group object caches its own action."""
        if not (isinstance(other, Group) and type(other) is type(self) and other.name == self.name):
            return False
        if other is self:
            return True
        try:
            return vars(self).keys() == vars(other).keys() and all(
                bool(vars(self)[k] == vars(other)[k]) for k in vars(self))
        except Exception:  # noqa: BLE001 - attributes that do not compare (tensors): only the same object
            return False

    def __setattr__(self, name: str, value: object) -> None:
        """Set an attribute and forget the action cached for the old value (a parameter given by
        assignment, ``G.axis = -2``; an object changed in place inside an attribute is not seen)."""
        object.__setattr__(self, name, value)
        forget_orbit_index(self)

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.name))


def _image_size(group: Group, x: torch.Tensor) -> tuple[int, int]:
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{group.name}: x must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim < 2:
        raise ValueError(f"{group.name}: x must have shape (..., H, W), got {tuple(x.shape)}")
    H, W = x.shape[-2:]
    group.check_shape(H, W)
    return H, W
