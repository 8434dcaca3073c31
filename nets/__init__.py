"""genuine-invariance: groups, data, models, invariance measures and experiments."""

from nets.groups import (  # noqa: F401
    D4,
    R4,
    T3,
    CyclicTranslations,
    Dihedral4,
    Group,
    Rotations,
    available_groups,
    get_group,
)

__version__ = "0.1.0"
