"""genuine-invariance: exact groups, Transforming-MNIST/FMNIST, models, invariance measures,
training and the paper's experiments.

The public names live in small modules (``nets.groups``, ``nets.data``, ``nets.models``,
``nets.metrics``, ``nets.auditing``, ``nets.class_accuracy``, ``nets.audit_compare``,
``nets.train``) and are re-exported here, so ``from nets import logit_invariance`` works. Everything but the groups is imported lazily: ``import nets`` stays
cheap and ``python -m nets.data`` does not import its own module twice; a submodule is imported on
first use too, so ``nets.class_accuracy.class_breakdown`` works after ``import nets``.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from typing import Any

if sys.argv[:1] == ["-m"]:  # ``python -m nets...`` is starting: Ctrl-C while it imports ends in one line
    from nets.startup import install, target

    install(target(getattr(sys, "orig_argv", [])))

from nets.groups import (  # noqa: F401,E402
    D4,
    R4,
    T3,
    CyclicTranslations,
    Dihedral4,
    Group,
    Mirror,
    Rotations,
    Translations2D,
    as_group,
    available_groups,
    get_group,
)

__version__ = "0.1.0"

_LAZY: dict[str, tuple[str, ...]] = {
    "nets.models": (
        "MLP",
        "InvariantMLP",
        "TwoLogits",
        "check_invariance",
        "count_parameters",
    ),
    "nets.metrics": (
        "logit_invariance",
        "distribution_invariance",
        "saliency_invariance",
        "orbit_centroid_invariance",
        "layer_invariance_profile",
        "saliency_map",
        "integrated_gradients",
        "jacobian_spectral_norm",
        "gaussian_smooth",
        "gaussian_kernel",
        "ig_quadrature",
        "orbit_measures",
        "orbit_terms",
        "class_common_logit_share",
        "centered_logit_norm",
        "cosine_similarity",
    ),
    "nets.auditing": ("audit", "AuditResult"),
    "nets.layout_hints": ("ChannelsLast",),
    "nets.class_accuracy": ("class_breakdown", "ClassBreakdown", "orbit_confusion"),
    "nets.audit_compare": ("compare", "Comparison", "compare_samples"),
    "nets.weights_file": ("checkpoint_model",),
    "nets.data": (
        "Split",
        "Splits",
        "fetch",
        "load_splits",
        "augment",
        "fixed_elements",
        "transformed",
        "full_orbit",
        "drift_split",
        "synthetic_splits",
    ),
    "nets.train": (
        "TrainConfig",
        "TrainedRun",
        "NuSelection",
        "train_runs",
        "tune_nu",
        "select_nu",
        "invariance_regularizer",
        "orbit_accuracy",
        "resolve_device",
    ),
}
_WHERE = {name: module for module, names in _LAZY.items() for name in names}
#: The package's public submodules and subpackages (its folder listed, nothing imported).
_SUBMODULES = frozenset(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))

__all__ = [
    "D4", "R4", "T3", "CyclicTranslations", "Dihedral4", "Group", "Mirror", "Rotations", "Translations2D",
    "as_group", "available_groups", "get_group", *_WHERE,
]


def __getattr__(name: str) -> Any:
    """A re-exported name, imported on first use; or a submodule (``nets.train``, ``nets.class_accuracy``),
    so a dotted name from the docs works after a bare ``import nets``, as scipy's submodules do."""
    module = _WHERE.get(name)
    if module is not None:
        value = getattr(importlib.import_module(module), name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'nets' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__) | set(_SUBMODULES))
