"""The paper's published numbers that our results are compared with (Table 1)."""

from __future__ import annotations

__all__ = ["PAPER_CITATION", "PAPER_TABLE1", "PAPER_TABLE1_STD", "PAPER_DATASET", "PAPER_FORMS", "DATASET_TITLES",
           "recorded_dataset", "paper_table1_for"]

PAPER_CITATION = (
    "Moskalev, Sepliarskaia, Bekkers, Smeulders (2023), \"On genuine invariance learning "
    "without weight-tying\", Table 1"
)

#: The dataset of the paper's Table 1 and Figures 1-3 and 5 (and the source of Figure 4's drift),
#: by ``nets.data`` name.
PAPER_DATASET = "mnist"

#: The three IR regularizer forms of Section 4.4 (the first is the paper's IR), which claim 5 is about.
PAPER_FORMS: tuple[str, ...] = ("logit", "kl", "normalized_logit")

#: The paper's names for its two datasets (Section 4.1), by ``nets.data`` name.
DATASET_TITLES = {"mnist": "Transforming-MNIST", "fmnist": "Transforming-FMNIST"}

#: Table 1 of the paper (Transforming-MNIST, mean over 4 seeds):
#: ``PAPER_TABLE1[group][method] = (accuracy %, LI, DI, SI)``.
PAPER_TABLE1: dict[str, dict[str, tuple[float, float, float, float]]] = {
    "r4": {
        "WT": (94.6, 0.00, 0.0, 1.00),
        "DA": (94.0, 98.6, 0.3, 0.17),
        "IR": (87.9, 0.02, 0.0, 0.95),
    },
    "t3": {
        "WT": (96.6, 0.0, 0.0, 1.00),
        "DA": (96.2, 50.8, 0.1, 0.57),
        "IR": (93.1, 0.01, 0.0, 0.95),
    },
}
#: The +- of Table 1 (same layout as :data:`PAPER_TABLE1`).
PAPER_TABLE1_STD: dict[str, dict[str, tuple[float, float, float, float]]] = {
    "r4": {
        "WT": (0.1, 0.0, 0.0, 0.00),
        "DA": (0.5, 5.4, 0.1, 0.04),
        "IR": (0.8, 0.0, 0.0, 0.03),
    },
    "t3": {
        "WT": (0.1, 0.0, 0.0, 0.0),
        "DA": (0.2, 6.8, 0.0, 0.08),
        "IR": (0.1, 0.0, 0.0, 0.07),
    },
}


def recorded_dataset(meta: dict) -> str:
    """The dataset a results file's ``meta`` (its provenance block) records in its profile;
    :data:`PAPER_DATASET` for a file older than the field."""
    return ((meta or {}).get("profile") or {}).get("dataset", PAPER_DATASET)


def paper_table1_for(meta: dict) -> tuple[dict, dict]:
    """``(PAPER_TABLE1, PAPER_TABLE1_STD)`` for results whose ``meta`` records the paper's
    dataset (:func:`recorded_dataset`); ``({}, {})`` for another dataset, where the paper published
    no numbers to set beside ours."""
    return (PAPER_TABLE1, PAPER_TABLE1_STD) if recorded_dataset(meta) == PAPER_DATASET else ({}, {})
