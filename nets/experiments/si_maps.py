"""The saliency maps and models of ``python -m nets si-settings`` (:mod:`nets.experiments.si_settings`),
as plain data: the command's parser (:mod:`nets.commands`) lists them without importing the
experiment.

Each setting changes the paper's map (``{}``: absolute integrated gradients of the true class,
values below 0.9 of the maximum set to zero, a 3 x 3 Gaussian) in one respect; its keywords are
:func:`nets.saliency_measure.saliency_invariance`'s.
"""

from __future__ import annotations

from typing import Any

__all__ = ["BLACK", "METHODS", "SETTINGS"]

#: Table 1's methods, in order.
METHODS = ("WT", "DA", "IR")

#: A baseline that stands for the images' black background (the constant value of a zero pixel after
#: the dataset's normalization): constant images are invariant under every group, as SI needs.
BLACK = "black"

#: The paper's map and its variants, the paper's first.
SETTINGS: dict[str, dict[str, Any]] = {
    "paper": {},
    "threshold 0.5": {"threshold": 0.5},
    "no threshold": {"threshold": None},
    "no smoothing": {"smooth": False},
    "raw |IG| (no threshold, no smoothing)": {"threshold": None, "smooth": False},
    "100 IG steps": {"n_steps": 100},
    "black baseline": {"baseline": BLACK},
    "predicted-class target": {"target": "predicted"},
}
