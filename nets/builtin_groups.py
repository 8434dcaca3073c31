"""The paper's finite groups acting on images by pixel permutations, and the extras.

R4 (rotations by multiples of 90 degrees) and T3 (cyclic translations by a third of the width)
are the paper's; D4, R2, the translation groups ``t<n>`` / ``t<n>y`` / ``t<n>xy`` and the mirrors
``f2`` / ``f2y`` are extras (for images whose symmetries the paper's groups miss: a left-right
mirror for natural images, translations along both axes for a CNN's). Each subclasses
:class:`nets.group_action.Group`; :mod:`nets.groups` looks them up by name and re-exports them.
"""

from __future__ import annotations

import torch

from nets.group_action import Group

__all__ = ["CyclicGroup", "Rotations", "CyclicTranslations", "Dihedral4", "Mirror", "Translations2D", "divmod_rs",
           "R4", "T3", "D4"]


class CyclicGroup(Group):
    """A cyclic group of order ``n``: elements ``0 .. n-1``, composed by addition mod n."""

    n: int

    def compose(self, a: int, b: int) -> int:
        return (self._check_element(a) + self._check_element(b)) % self.n

    def inverse(self, a: int) -> int:
        return (-self._check_element(a)) % self.n


class Rotations(CyclicGroup):
    """Cyclic rotations by multiples of ``360/n`` degrees; only ``n = 4`` (or 2)
    permutes a square grid exactly (``n = 2``, the half turn, any rectangle). Element ``k`` rotates by
    ``k * 360 / n`` degrees counter-clockwise (``torch.rot90``)."""

    check_on_construction = False  # ours, tested in verify/: checked at the size it is used at

    def __init__(self, n: int = 4):
        if n not in (2, 4):
            raise ValueError(f"rotations act on the pixel grid exactly only for n in (2, 4), got {n}")
        self.n = n
        self.order = n
        self.name = f"r{n}"

    def check_shape(self, H: int, W: int) -> None:
        super().check_shape(H, W)
        if H != W and self.n == 4:  # a half turn maps any rectangle onto itself
            raise ValueError(f"{self.name}: rotations by 90 degrees need a square image, got H={H}, W={W}")

    def _act_reference(self, grid: torch.Tensor, g: int) -> torch.Tensor:
        return torch.rot90(grid, k=g * (4 // self.n), dims=(-2, -1))


class CyclicTranslations(CyclicGroup):
    """Cyclic translations by multiples of ``size/n`` pixels along x (width) or y
    (height). Element ``k`` shifts by ``k * size / n`` pixels (``torch.roll``).
    ``n = 3`` along x is the paper's T^2_3."""

    check_on_construction = False  # ours, tested in verify/: checked at the size it is used at

    def __init__(self, n: int = 3, axis: str = "x"):
        if n < 1:
            raise ValueError(f"number of translations must be >= 1, got {n}")
        if axis not in ("x", "y"):
            raise ValueError(f"axis must be 'x' or 'y', got {axis!r}")
        self.n = n
        self.axis = axis
        self.order = n
        self.name = f"t{n}" if axis == "x" else f"t{n}y"

    def check_shape(self, H: int, W: int) -> None:
        super().check_shape(H, W)
        size, what = (W, "width") if self.axis == "x" else (H, "height")
        if size % self.n:
            raise ValueError(
                f"{self.name}: image {what} {size} is not divisible by the group order {self.n}"
            )

    def _act_reference(self, grid: torch.Tensor, g: int) -> torch.Tensor:
        dim = -1 if self.axis == "x" else -2
        return torch.roll(grid, shifts=g * (grid.shape[dim] // self.n), dims=dim)


class Dihedral4(Group):
    """The dihedral group of the square (order 8). Element ``r + 4 s`` is
    ``rot90^r`` after a horizontal flip applied ``s`` times (s in {0, 1}).

    Product: ``(r1, s1)(r2, s2) = (r1 + (-1)^s1 r2 mod 4, s1 xor s2)``, since a
    flip conjugates a rotation into its inverse."""

    check_on_construction = False  # ours, tested in verify/: checked at the size it is used at

    name = "d4"
    order = 8

    def compose(self, a: int, b: int) -> int:
        r1, s1 = divmod_rs(self._check_element(a))
        r2, s2 = divmod_rs(self._check_element(b))
        return (r1 + (-r2 if s1 else r2)) % 4 + 4 * (s1 ^ s2)

    def inverse(self, a: int) -> int:
        r, s = divmod_rs(self._check_element(a))
        return a if s else (-r) % 4

    def check_shape(self, H: int, W: int) -> None:
        super().check_shape(H, W)
        if H != W:
            raise ValueError(f"{self.name}: rotations need a square image, got H={H}, W={W}")

    def _act_reference(self, grid: torch.Tensor, g: int) -> torch.Tensor:
        r, s = divmod_rs(g)
        if s:
            grid = torch.flip(grid, dims=(-1,))
        return torch.rot90(grid, k=r, dims=(-2, -1))


class Mirror(Group):
    """The mirror group of order 2: element 1 flips the image left-right (``axis="x"``, name
    ``f2``, ``torch.flip`` of the width) or upside down (``axis="y"``, name ``f2y``). Acts on every
    image size."""

    check_on_construction = False  # ours, tested in verify/: checked at the size it is used at

    order = 2

    def __init__(self, axis: str = "x"):
        if axis not in ("x", "y"):
            raise ValueError(f"axis must be 'x' or 'y', got {axis!r}")
        self.axis = axis
        self.name = "f2" if axis == "x" else "f2y"

    def compose(self, a: int, b: int) -> int:
        return self._check_element(a) ^ self._check_element(b)

    def inverse(self, a: int) -> int:
        return self._check_element(a)

    def _act_reference(self, grid: torch.Tensor, g: int) -> torch.Tensor:
        return torch.flip(grid, dims=(-1 if self.axis == "x" else -2,)) if g else grid


class Translations2D(Group):
    """Cyclic translations along both axes, ``T_n x T_n`` (order ``n**2``, name ``t<n>xy``):
    element ``i + n j`` shifts by ``i * W / n`` pixels along x and ``j * H / n`` along y
    (``torch.roll``). Height and width must both be divisible by ``n``."""

    check_on_construction = False  # ours, tested in verify/: checked at the size it is used at

    def __init__(self, n: int = 3):
        if n < 1:
            raise ValueError(f"number of translations must be >= 1, got {n}")
        self.n = n
        self.order = n * n
        self.name = f"t{n}xy"

    def compose(self, a: int, b: int) -> int:
        (ia, ja), (ib, jb) = (divmod(self._check_element(g), self.n)[::-1] for g in (a, b))
        return (ia + ib) % self.n + self.n * ((ja + jb) % self.n)

    def inverse(self, a: int) -> int:
        j, i = divmod(self._check_element(a), self.n)
        return (-i) % self.n + self.n * ((-j) % self.n)

    def probe_sizes(self) -> tuple[int, ...]:
        return (self.n,)  # not 2 * order = 2 n^2: the check would build (2 n^2)^2 x n^2 indices

    def check_shape(self, H: int, W: int) -> None:
        super().check_shape(H, W)
        bad = [f"{what} {size}" for size, what in ((W, "width"), (H, "height")) if size % self.n]
        if bad:
            raise ValueError(f"{self.name}: image {' and '.join(bad)} {'is' if len(bad) == 1 else 'are'} not "
                             f"divisible by {self.n}, the number of translations along each axis")

    def _act_reference(self, grid: torch.Tensor, g: int) -> torch.Tensor:
        j, i = divmod(g, self.n)
        return torch.roll(grid, shifts=(j * (grid.shape[-2] // self.n), i * (grid.shape[-1] // self.n)),
                          dims=(-2, -1))


def divmod_rs(g: int) -> tuple[int, int]:
    """Split a D4 element ``r + 4 s`` into ``(r, s)``."""
    return g % 4, g // 4


R4 = Rotations(4)
T3 = CyclicTranslations(3, "x")
D4 = Dihedral4()
