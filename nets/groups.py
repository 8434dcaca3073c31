"""The groups by name: the registry (``r4``, ``t3``, ``d4``, ``f2``, ``t<n>xy``, ... and your own as
``"PKG.MODULE:ATTR"``), and how records and reports name a group.

The groups themselves, acting on images by pixel permutations, are :mod:`nets.builtin_groups`' (R4 and
T3, the paper's, and the extras D4, R2, the translations and the mirrors), re-exported here; the
abstract :class:`Group` (the action, its checks, orbits and permutation matrices) is in
:mod:`nets.group_action`; a custom group subclasses it.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Callable, Union

from nets.builtin_groups import (  # noqa: F401  (divmod_rs re-exported)
    D4, R4, T3, CyclicTranslations, Dihedral4, Mirror, Rotations, Translations2D, divmod_rs,
)
from nets.group_action import Element, Group
from nets.model_spec import ModelSpecError, import_spec, one_line, spec_model_name

__all__ = [
    "Group",
    "Element",
    "Rotations",
    "CyclicTranslations",
    "Dihedral4",
    "Mirror",
    "Translations2D",
    "R4",
    "T3",
    "D4",
    "get_group",
    "group_name",
    "group_key",
    "group_label",
    "GroupLike",
    "as_group",
    "available_groups",
]


_NAMED: dict[str, Callable[[], Group]] = {
    "r4": lambda: R4,
    "r2": lambda: Rotations(2),
    "t3": lambda: T3,
    "d4": lambda: D4,
    "f2": lambda: Mirror("x"),
    "f2y": lambda: Mirror("y"),
}


def get_group(name: str) -> Group:
    """Look a group up by name: ``r4``, ``r2``, ``t3``, ``d4``, ``f2`` (left-right mirror), ``f2y``
    (upside down), ``t<n>`` / ``t<n>x`` (translations along x), ``t<n>y`` (along y) or ``t<n>xy``
    (along both), case-insensitive; or your own group as ``"PKG.MODULE:ATTR"``, where ``ATTR`` is a
    :class:`Group` instance or a class or function that returns one when called with no arguments
    (imported once per process; any process that trains or measures it must be able to import it,
    as with a model factory). Raises ``ValueError`` (one line) for an unknown name or a spec that
    does not give a group."""
    if ":" in name:
        return _spec_group(name.strip())
    key = name.strip().lower()
    if key in _NAMED:
        return _NAMED[key]()
    m = re.fullmatch(r"t(\d+)(xy|x|y|)", key)
    if m:
        n = int(m.group(1))
        return Translations2D(n) if m.group(2) == "xy" else CyclicTranslations(n, m.group(2) or "x")
    raise ValueError(f"unknown group {name!r}; known: {', '.join(available_groups())}, t<n>, t<n>y, t<n>xy")


#: A group or its name (``"r4"``, ``"t3"``, ...), as every measure and split function accepts.
GroupLike = Union[Group, str]


@lru_cache(maxsize=None)
def _spec_group(spec: str) -> Group:
    obj = import_spec(spec, "group", "GROUP")
    if not isinstance(obj, Group) and callable(obj):
        try:
            obj = obj()
        except Exception as e:  # noqa: BLE001 - the user's constructor, whatever it raises
            raise ModelSpecError(f"group {spec}() failed: {type(e).__name__}: {one_line(e)}") from e
    if not isinstance(obj, Group):
        raise ModelSpecError(f"group {spec} is a {type(obj).__name__}, not a nets.groups.Group (or a class or "
                             f"function returning one)")
    return obj


def _is_builtin(group: Group) -> bool:
    """Whether ``group`` is the built-in group of its name (``R4``, ``get_group("t5y")``)."""
    try:
        return get_group(group.name) == group
    except ValueError:
        return False


def group_name(name: str | Group) -> str:
    """The canonical form of a group name as run configs store it: a built-in group's own name
    (``"R4"`` -> ``"r4"``, ``"t4x"`` -> ``"t4"``, ``"t02xy"`` -> ``"t2xy"``, the group ``R4`` ->
    ``"r4"``), a ``"PKG.MODULE:ATTR"`` spec as given (module paths are case-sensitive).
    Raises ``ValueError`` as :func:`get_group` does, and for a name that is not a string (a run
    names its group, so that a checkpoint or another process can find it again: for a
    :class:`Group` of your own, the ``"PKG.MODULE:ATTR"`` where it is defined)."""
    if isinstance(name, Group) and _is_builtin(name):
        return name.name
    if isinstance(name, Group):
        raise ValueError(f"a run names its group, so that a checkpoint or another process can find it again: give "
                         f"group {name.name!r} as the 'PKG.MODULE:ATTR' spec of where its class is defined (a group "
                         f"defined in a notebook or a script has none: move it into a module)")
    if not isinstance(name, str):
        raise ValueError(f"a run's group is a name or a 'PKG.MODULE:ATTR' spec, got {type(name).__name__}")
    group = get_group(name)
    return name.strip() if ":" in name else group.name


def group_key(name: str) -> str:
    """The group's part of a run's file name: the name itself, or a spec with ``:`` and other
    characters unsafe in a file name replaced (``"mypkg.groups:Hex"`` -> ``"mypkg.groups.Hex"``)."""
    return spec_model_name(name) if ":" in name else name


def group_label(name: str) -> str:
    """How reports write a group name: a built-in one in capitals (``"r4"`` -> ``"R4"``), a
    ``"PKG.MODULE:ATTR"`` spec as given."""
    return name if ":" in name else name.upper()


def as_group(group: GroupLike) -> Group:
    """``group`` itself if it is a :class:`Group`, else the group of that name (:func:`get_group`).
    Raises ``ValueError`` for an unknown name (listing the known ones), ``TypeError`` otherwise."""
    if isinstance(group, Group):
        return group
    if isinstance(group, str):
        return get_group(group)
    if isinstance(group, type) and issubclass(group, Group):
        raise TypeError(f"got the class {group.__name__}; pass a group, an instance of it: {group.__name__}()")
    raise TypeError(f"expected a Group or a group name ({', '.join(available_groups())}, t<n>, t<n>y, t<n>xy), "
                    f"got {type(group).__name__}")


def group_record(group: GroupLike) -> str:
    """How a result names the group it was measured under: a ``"PKG.MODULE:ATTR"`` spec as given
    (so that the group can be found again), else the group's ``name``."""
    return group.strip() if isinstance(group, str) and ":" in group else as_group(group).name


def available_groups() -> list[str]:
    return list(_NAMED)
