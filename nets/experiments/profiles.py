"""Experiment profiles: one frozen dataclass whose defaults are the paper's protocol.

A profile changes *sizes* (seeds, epochs, sample counts, how many points of the
nu grid are tried), never the *method* (groups, the SI target, the saliency
function's IG steps, the drift grid, the regularizer forms, the t-SNE settings).
``tests/test_experiments.py`` checks that every profile agrees with ``paper`` on
every method field and that its nu grids are subsets of the paper's.

Paper protocol (Section 4.1): 10k / 2k / 50k train / validation / test images,
300 epochs, 4 seeds, nu tuned so that SI >= 0.95 on validation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import Mapping, Sequence

from nets.dataset_files import canonical_name
from nets.results_io.paper import PAPER_DATASET, PAPER_FORMS

__all__ = ["Profile", "PROFILES", "BEYOND_PAPER_GROUPS", "SIZE_FIELDS", "METHOD_FIELDS", "PAPER_DATASET",
           "get_profile", "check_nu_grid"]

#: Groups of :mod:`nets.groups` that ``--groups`` accepts beside a profile's own (the paper's R4
#: and T3): D4, the 4 rotations and their 4 reflections, whose orbits are twice R4's.
BEYOND_PAPER_GROUPS: tuple[str, ...] = ("d4",)

#: The three regularizer forms of Section 4.4 (the first is the paper's IR).
REGULARIZERS = PAPER_FORMS

# Regularizer weights nu tried by ``tune_nu``, per regularizer form (the paper gives no grid;
# these are ours). Why each grid brackets what it does (the forms' scales, the pilot runs, the
# normalized form's extension to 300 and 1000) is in docs/protocol.md, "Choice of nu".
PAPER_NU_GRIDS: tuple[tuple[str, tuple[float, ...]], ...] = (
    ("logit", (1.0, 3.0, 10.0, 30.0, 100.0)),
    ("kl", (10.0, 30.0, 100.0, 300.0, 1000.0)),
    ("normalized_logit", (1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0)),
)


@dataclass(frozen=True)
class Profile:
    """Everything an experiment needs beyond the library defaults.

    Size fields (a profile may change these):

    - ``seeds``: training seeds; results are mean +- std over them.
    - ``epochs``: training epochs for every model (paper: 300).
    - ``n_train`` / ``n_val`` / ``n_test``: sizes of the splits used (paper 10k/2k/50k).
    - ``nu_grids``: per regularizer form, the nu values ``tune_nu`` tries.
    - ``n_si_samples``: samples for SI, on validation (tuning) and test (Table 1).
    - ``n_drift_samples``: test samples of D(beta) per drift degree.
    - ``n_sigma_samples``: test samples for sigma_max(J) (Figure 5).
    - ``n_tsne_samples``: test samples embedded (each with its whole orbit) in Figure 2.
    - ``n_saliency_samples``: rows of the saliency grids (Figures 1 and 3).

    Method fields (equal in every profile): ``dataset``, ``groups``, ``split_seed``,
    ``si_target``, ``ig_steps``, ``betas``, ``drift_mode``, ``regularizers``,
    ``tsne_perplexity``, ``tsne_seed``, ``sample_seed``, ``model``: the factory
    ``PKG.MODULE:FACTORY`` of a model of your own that ``python -m nets cnn --model`` trains in
    place of its SmallCNN (``None``, every profile's: each experiment's own model; then left out of
    :meth:`to_dict`, so results written before the field existed still compare equal).
    """

    name: str = "paper"
    # ---- sizes --------------------------------------------------------------
    seeds: tuple[int, ...] = (0, 1, 2, 3)
    epochs: int = 300
    n_train: int = 10_000
    n_val: int = 2_000
    n_test: int = 50_000
    nu_grids: tuple[tuple[str, tuple[float, ...]], ...] = PAPER_NU_GRIDS
    n_si_samples: int = 1_000
    n_drift_samples: int = 50_000
    n_sigma_samples: int = 1_000
    n_tsne_samples: int = 300
    n_saliency_samples: int = 4
    # ---- method -------------------------------------------------------------
    dataset: str = PAPER_DATASET
    groups: tuple[str, ...] = ("r4", "t3")
    split_seed: int = 0
    si_target: float = 0.95
    ig_steps: int = 50
    betas: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
    drift_mode: str = "interpolate"
    regularizers: tuple[str, ...] = REGULARIZERS
    tsne_perplexity: float = 30.0
    tsne_seed: int = 0
    sample_seed: int = 0
    model: str | None = None

    def nu_grid(self, regularizer: str) -> tuple[float, ...]:
        """The nu values tried for one regularizer form."""
        grids = dict(self.nu_grids)
        if regularizer not in grids:
            raise ValueError(f"profile {self.name!r} has no nu grid for regularizer {regularizer!r}")
        return grids[regularizer]

    def with_seeds(self, seeds: tuple[int, ...] | list[int]) -> "Profile":
        """The same profile with other seeds (the CLI's ``--seeds``)."""
        seeds = tuple(int(s) for s in seeds)
        if not seeds:
            raise ValueError("at least one seed is needed")
        return replace(self, seeds=seeds)

    def with_groups(self, groups: tuple[str, ...] | list[str]) -> "Profile":
        """The same profile on some of its groups (the CLI's ``--groups``), or on a group of
        :data:`BEYOND_PAPER_GROUPS` the paper did not use (``"d4"``: rotations and reflections),
        each after the profile's own, in the profile's order. A sweep too long for one sitting can
        be run a group at a time; results of the other groups already on disk are kept
        (``nets.experiments.common.finish``), and a folder without all of the profile's groups lists
        them as pending. Raises ValueError for an empty list or another group."""
        groups = tuple(dict.fromkeys(str(g).strip().lower() for g in groups))
        unknown = [g for g in groups if g not in self.groups and g not in BEYOND_PAPER_GROUPS]
        if not groups or unknown:
            raise ValueError(f"groups must be a non-empty subset of {list(self.groups)} (the paper's) and "
                             f"{list(BEYOND_PAPER_GROUPS)} (beyond the paper), got {list(groups)}")
        return replace(self, groups=tuple(g for g in (*self.groups, *BEYOND_PAPER_GROUPS) if g in groups))

    def with_nu_grid(self, regularizer: str, grid: Sequence[float]) -> "Profile":
        """The same profile with another nu grid for one regularizer form (the CLI's ``--nu-grid``
        replaces the logit form's): the search then tries ``grid``, checked and sorted by
        :func:`check_nu_grid`. Raises ValueError for a form the profile has no grid for, or a bad grid."""
        self.nu_grid(regularizer)
        grid = check_nu_grid(grid)
        return replace(self, nu_grids=tuple((r, grid if r == regularizer else g) for r, g in self.nu_grids))

    def with_epochs(self, epochs: int) -> "Profile":
        """The same profile training every model for ``epochs`` epochs (the CLI's ``--epochs``): to
        ask whether a verdict moves with longer (or shorter) training. Recorded in every results
        file's profile, so a folder keeps one length. Raises ValueError for fewer than 1."""
        if isinstance(epochs, bool) or int(epochs) != epochs or epochs < 1:
            raise ValueError(f"epochs must be an integer >= 1, got {epochs!r}")
        return replace(self, epochs=int(epochs))

    def with_regularizers(self, forms: Sequence[str]) -> "Profile":
        """The same profile with some of the paper's IR forms (the CLI's ``--regularizers`` of
        ``spectral``, ``centered``, ``detached`` and ``scale``), in :data:`REGULARIZERS`' order; none at all:
        Figure 5 for DA only, the comparison that more seeds of our own forms need
        (docs/detached.md). Recorded in every results file's profile. Raises ValueError for
        another form."""
        forms = tuple(dict.fromkeys(str(f) for f in forms))
        unknown = [f for f in forms if f not in REGULARIZERS]
        if unknown:
            raise ValueError(f"regularizers must be some of {list(REGULARIZERS)} (the paper's forms), got {unknown}")
        return replace(self, regularizers=tuple(r for r in REGULARIZERS if r in forms))

    def with_dataset(self, dataset: str) -> "Profile":
        """The same protocol on another dataset (the CLI's ``--dataset``): ``"mnist"``, the paper's
        Transforming-MNIST, or ``"fmnist"`` (aliases such as ``"fashion-mnist"`` accepted), the
        Transforming-FMNIST the paper builds but uses only as Figure 4's drift target. Figure 4's
        drift then runs the other way, from this dataset towards the other one. Raises ValueError
        for an unknown name."""
        return replace(self, dataset=canonical_name(dataset))

    def to_dict(self) -> dict:
        out = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name == "model" and v is None:
                continue
            out[f.name] = {k: list(g) for k, g in v} if f.name == "nu_grids" else (
                list(v) if isinstance(v, tuple) else v)
        return out


SIZE_FIELDS: tuple[str, ...] = (
    "seeds", "epochs", "n_train", "n_val", "n_test", "nu_grids", "n_si_samples",
    "n_drift_samples", "n_sigma_samples", "n_tsne_samples", "n_saliency_samples",
)
METHOD_FIELDS: tuple[str, ...] = tuple(
    f.name for f in fields(Profile) if f.name not in SIZE_FIELDS and f.name != "name"
)


def _subgrid(pick: Mapping[str, tuple[int, ...]]) -> tuple[tuple[str, tuple[float, ...]], ...]:
    """Pick points (by index) of the paper's grids: smaller profiles try fewer nu."""
    return tuple((reg, tuple(grid[i] for i in pick[reg])) for reg, grid in PAPER_NU_GRIDS)


PROFILES: dict[str, Profile] = {
    "paper": Profile(name="paper"),
    # One seed, few epochs, three nu per form, smaller evaluation sets; sized to finish
    # `reproduce` in < 15 min on 2 CPU cores (measured: see results/quick/REPORT.md).
    "quick": Profile(
        name="quick",
        seeds=(0,),
        epochs=25,
        n_test=10_000,
        nu_grids=_subgrid({"logit": (1, 3, 4), "kl": (1, 3, 4), "normalized_logit": (1, 3, 4)}),
        n_si_samples=100,
        n_drift_samples=2_000,
        n_sigma_samples=500,
        n_tsne_samples=150,
    ),
    # Seconds: tiny subsets of the real data, end to end (CI).
    "smoke": Profile(
        name="smoke",
        seeds=(0,),
        epochs=2,
        n_train=512,
        n_val=256,
        n_test=512,
        nu_grids=_subgrid({"logit": (0, 4), "kl": (0, 4), "normalized_logit": (0, 4)}),
        n_si_samples=32,
        n_drift_samples=256,
        n_sigma_samples=64,
        n_tsne_samples=24,
        n_saliency_samples=2,
    ),
}


def get_profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown profile {name!r}; known: {', '.join(PROFILES)}") from None


def check_nu_grid(values: Sequence[float]) -> tuple[float, ...]:
    """A nu grid given on the command line (``--nu-grid``), sorted and without repeats (searches go
    smallest first). Raises ValueError for an empty grid or a nu that is not a positive finite number."""
    bad = [nu for nu in values if not (math.isfinite(nu) and nu > 0)]
    if not values or bad:
        raise ValueError(f"--nu-grid needs positive finite values, got {bad[0] if bad else 'none'}")
    return tuple(sorted({float(nu) for nu in values}))
