"""Beyond the paper: Figure 5's measures for our two variants of the normalized-logit form.

The paper's normalized form ``||f(x) - f(gx)||^2 / ||f(x)||^2`` can be lowered by a logit shift
common to every class, which the softmax ignores (docs/findings.md: 99.5-99.9% of the trained
models' logit norm is such a shift, and their sigma_max(J) is not below DA's). Two forms of ours
take that way out, each with its own experiment (:data:`BEYOND_FORMS`):

* ``centered`` (issue 17, part 2): ``centered_normalized_logit``
  (:func:`nets.pairwise.centered_normalized_logit_distance`), the form on the class-centered logits
  ``c(v) = v - mean_c v_c``;
* ``detached``: ``detached_normalized_logit``, the paper's form with no gradient through its
  denominator ``||f(x)||^2`` (the paper does not say whether it flows; we let it, and this is the
  other reading): its value is the paper form's, its gradient the logit form's times
  ``2 / ||f(x)||^2`` per sample, so a common shift no longer lowers it.

Each is a method change of ours, so it never replaces the paper's form: it has its own results
file (``centered.json``, ``detached.json``), and the profile (recorded by every results file) is
left as it is.

Protocol, as ``spectral`` for the other forms: IR with the form, nu chosen by the ascending search
over the form's grid (the smallest nu whose mean validation SI reaches ``profile.si_target``;
when none does, the largest-SI nu, flagged ``reached_target: false``); on the chosen nu's runs,
:func:`nets.experiments.spectral.spectral_entry`: sigma_max(J), centered sigma_max, class-common
share and test-orbit accuracy, per seed and mean +- std. DA and the paper's three forms are not
retrained: their numbers are copied from the same folder's ``spectral.json`` (same profile
required) into ``comparison``, with that file's provenance, so the results file alone draws its
figure and report section.

Grids: :data:`CENTERED_NU_GRIDS` and :data:`DETACHED_NU_GRIDS`, chosen from pilots
(``scripts/centered_pilot.py [--form ...]``); the pilots' numbers and the paper runs' commands and
times are in docs/centered.md and docs/detached.md.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Mapping, Sequence

from nets.experiments.common import (SettingsMismatch, checkpoint_dir, finish, profile_differences, read_json,
                                     read_results, result_path)
from nets.experiments.profiles import REGULARIZERS, Profile, check_nu_grid
from nets.experiments.spectral import sigma_inputs, spectral_entry
from nets.experiments.table1 import tune
from nets.groups import get_group
from nets.results_io import ResultsFileError, recorded_precision
from nets.train import CENTERED_FORM, DETACHED_FORM, TrainConfig, resolve_device

__all__ = ["CENTERED_FORM", "DETACHED_FORM", "CENTERED_NU_GRIDS", "DETACHED_NU_GRIDS", "BeyondForm", "BEYOND_FORMS",
           "centered_grid", "MissingSpectralResults", "spectral_results", "spectral_comparison", "run_centered",
           "run_detached"]


#: nu tried (ascending) per profile name; ours, the paper has no such form. Pilot
#: (``scripts/centered_pilot.py``: quick sizes, 1 seed, 25 epochs, validation SI on 100 samples,
#: docs/centered.md): R4 SI 0.43 / 0.54 / 0.60 / 0.79 / 0.92 at nu = 1 / 3 / 10 / 30 / 100, then a
#: collapse to one predicted class (accuracy 10-14%, SI 0.1-0.5) at nu = 150 and above; T3 SI
#: 0.54 / 0.52 / 0.50 / 0.70 / 0.68 at nu = 1 / 3 / 10 / 30 / 50, collapse from nu = 70. With
#: the shift loophole closed, the remaining degenerate minimiser is a constant output. So the
#: paper grid starts at 10 (below it SI was at most 0.60, far from 0.95), is finer (30, 50, 100,
#: 150) where SI peaked just below the collapse, and keeps the paper normalized form's top
#: values 300 and 1000 (at 300 epochs that form's R4 SI still rose up to 1000): the ascending
#: search trains them only when every smaller nu missed. Quick and smoke try subsets (quick: the
#: pilot's pre-collapse peak of each group, 30 on T3 and 100 on R4, and 10 below them).
CENTERED_NU_GRIDS: dict[str, tuple[float, ...]] = {
    "paper": (10.0, 30.0, 50.0, 100.0, 150.0, 300.0, 1000.0),
    "quick": (10.0, 30.0, 100.0),
    "smoke": (10.0, 100.0),
}


#: nu tried (ascending) per profile name for the detached form: the centered form's grids, not tuned
#: again. Its pilot (``scripts/centered_pilot.py --form detached_normalized_logit``, quick sizes as
#: above; ``results/pilots/detached.json``, docs/detached.md) gave the same picture: R4 SI 0.40 /
#: 0.50 / 0.69 / 0.86 / 0.90 / 0.90 at nu = 0.3 / 1 / 3 / 10 / 20 / 30, then a collapse (accuracy
#: 28% at 50, 16% at 100); T3 SI 0.47 / 0.52 / 0.47 / 0.69 at nu = 0.3 / 1 / 3 / 10 (accuracy
#: 84%), collapse from 20. So nothing below 10 comes near SI 0.95, and at paper scale (the centered
#: form's collapse came at a larger nu there than in its pilot) the same ascending grid from 10
#: covers the peak.
DETACHED_NU_GRIDS: dict[str, tuple[float, ...]] = dict(CENTERED_NU_GRIDS)


@dataclass(frozen=True)
class BeyondForm:
    """One of our regularizer forms beyond the paper and the experiment that trains it."""

    experiment: str  # its subcommand and results file stem (``<experiment>.json``, ``figures/<experiment>``)
    name: str  # its name in nets.train.REGULARIZERS
    equation: str
    origin: str
    grids: Mapping[str, tuple[float, ...]]  # profile name -> nu grid


BEYOND_FORMS: dict[str, BeyondForm] = {
    "centered": BeyondForm(
        "centered", CENTERED_FORM, "||c(f(x)) - c(f(gx))||^2 / (||c(f(x))||^2 + 1e-6), c(v) = v - mean_c v_c",
        "ours, beyond the paper: the paper's normalized form (Section 4.4) on class-centered logits, which a "
        "class-common logit shift cannot lower", CENTERED_NU_GRIDS),
    "detached": BeyondForm(
        "detached", DETACHED_FORM, "||f(x) - f(gx)||^2 / sg(||f(x)||^2 + 1e-6), sg: no gradient through it",
        "ours, beyond the paper: the paper's normalized form (Section 4.4) with its denominator detached, the "
        "other reading of a formula the paper gives without saying where gradients flow; a class-common logit "
        "shift no longer lowers it through the denominator", DETACHED_NU_GRIDS),
}


class MissingSpectralResults(ResultsFileError):
    """The folder has no usable ``spectral.json`` for this profile (DA's numbers come from it)."""


def centered_grid(profile: Profile, experiment: str = "centered") -> tuple[float, ...]:
    """The nu grid of ``experiment``'s form (:data:`BEYOND_FORMS`) for ``profile`` (by its name);
    ``ValueError`` for a profile without one."""
    grids = BEYOND_FORMS[experiment].grids
    if profile.name not in grids:
        raise ValueError(f"no {experiment}-form nu grid for profile {profile.name!r}; known: {', '.join(grids)}")
    return grids[profile.name]


_COPIED = ("method", "regularizer", "nu", "key", "sigma_max", "sigma_max_centered", "common_logit_share", "accuracy")


def spectral_comparison(spectral: dict, group: str) -> dict:
    """DA's and the three paper forms' Figure 5 numbers for ``group`` from a ``spectral.json``
    dict (means +- std, and per seed), each model with ``reached_target`` of its nu selection
    (``None`` for DA). ``KeyError`` when the group is not in it."""
    entry = spectral["groups"][group]
    sels = entry.get("nu_selections") or {}
    out = {}
    for key, m in entry["models"].items():
        sel = sels.get(m.get("regularizer") or "") if m["method"] == "IR" else None
        out[key] = {**{k: m.get(k) for k in _COPIED},
                    "runs": [{k: r.get(k) for k in ("seed", *_COPIED[4:])} for r in m.get("runs", [])],
                    "reached_target": None if sel is None else bool(sel.get("reached_target", True))}
    return out


def comparison_text(profile: Profile) -> str:
    """The protocol line of what the comparison copies: DA and the paper's forms that ``spectral``
    trained (``profile.regularizers``; none: DA alone, ``--regularizers`` with no form)."""
    forms = list(profile.regularizers)
    which = ("DA and the three paper forms" if len(forms) == len(REGULARIZERS) else
             f"DA and the paper form{'s' if len(forms) > 1 else ''} {', '.join(forms)}" if forms else
             "DA alone (the profile's regularizers: none)")
    return f"{which}: copied from spectral.json of the same folder and profile (not retrained)."


def spectral_results(profile: Profile, results_root, needed_for: str, precision: str | None = "fp32") -> dict:
    """The folder's ``spectral.json``, required to be from this profile at training ``precision``
    (``None``: whichever it records) and to hold its groups; else :class:`MissingSpectralResults`,
    whose one line says what ``needed_for`` it and how to make it."""
    path = result_path(profile, "spectral", results_root)
    how = f"run `python -m nets spectral --profile {profile.name}` first (into the same --results folder)"
    try:
        sp = read_json(path)  # a damaged file: ResultsFileError naming it (left where it is)
    except FileNotFoundError:
        raise MissingSpectralResults(f"{path} is missing: {needed_for} come from it; {how}") from None
    meta = sp.get("meta", {})
    diff = profile_differences(meta, profile, recorded_precision(meta) if precision is None else precision)
    if diff:
        raise MissingSpectralResults(f"{path} was computed with other settings ({', '.join(diff[:3])}); {how}")
    missing = [g for g in profile.groups if g not in sp.get("groups", {})]
    if missing:
        raise MissingSpectralResults(f"{path} has no results for {', '.join(missing)}; {how}")
    return sp


def _check_grid(profile: Profile, results_root, grid: tuple[float, ...], experiment: str) -> None:
    """Refuse to merge with an ``<experiment>.json`` of this sweep whose groups used another nu grid."""
    path = result_path(profile, experiment, results_root)
    old = read_results(path)
    if old is not None and not profile_differences(old.get("meta", {}), profile):
        if [float(v) for v in old.get("nu_grid", grid)] != list(grid):
            raise SettingsMismatch(f"{path} used the nu grid "
                                   f"{old.get('nu_grid')}, this run {list(grid)}; move it away or write elsewhere "
                                   f"with --results")


def run_centered(profile: Profile, results_root=None, *, device: str = "auto", progress: bool = True,
                 command: str | None = None, grid: Sequence[float] | None = None,
                 experiment: str = "centered") -> dict:
    """Tune nu for ``experiment``'s form (:data:`BEYOND_FORMS`; default the centered form) over
    ``grid`` (default :func:`centered_grid`; ``--nu-grid``, checked by
    :func:`nets.experiments.profiles.check_nu_grid`), measure Figure 5's numbers on the chosen nu's
    runs, copy DA's and the paper forms' from ``spectral.json``; write ``<experiment>.json`` and its
    figure. A folder whose ``<experiment>.json`` of this sweep used another grid is refused
    (:class:`SettingsMismatch`): write elsewhere with ``--results``.

    Raises :class:`MissingSpectralResults` (before training anything) when the folder's
    ``spectral.json`` is missing, from other settings, or lacks one of the profile's groups."""
    started = time.time()
    spec = BEYOND_FORMS[experiment]
    grid = centered_grid(profile, experiment) if grid is None else check_nu_grid(grid)
    sp = spectral_results(profile, results_root, "DA's numbers for the comparison")
    _check_grid(profile, results_root, grid, experiment)
    dev = resolve_device(device)
    run_dir = checkpoint_dir(profile, results_root)
    splits, test, x_sigma = sigma_inputs(profile, dev)
    n_sigma = len(x_sigma)
    # the profile with one more grid, used for the search only (results record ``profile`` itself)
    tuning = replace(profile, nu_grids=(*profile.nu_grids, (spec.name, grid)))
    groups = {}
    for g in profile.groups:
        base = TrainConfig(method="IR", group=g, regularizer=spec.name, epochs=profile.epochs)
        selection, runs = tune(base, tuning, splits, device=dev, run_dir=run_dir, progress=progress)
        groups[g] = {"model": spectral_entry(runs, x_sigma, test, get_group(g), dev), "nu_selection": selection,
                     "comparison": spectral_comparison(sp, g)}
    sp_meta = sp.get("meta", {})
    results = {
        "form": {"name": spec.name, "equation": spec.equation, "origin": spec.origin},
        "nu_grid": list(grid),
        "protocol": {
            "nu": f"nu: the smallest of {list(grid)} (ascending search) whose mean validation SI reaches "
                  f"{profile.si_target}; if none does, the largest-SI nu (reached_target: false).",
            "measures": f"sigma_max(J), centered sigma_max and class-common share on the first {n_sigma} test "
                        "samples, accuracy over the full test orbit, as in spectral.json.",
            "comparison": comparison_text(profile),
            "n_sigma_samples": n_sigma,
        },
        "spectral_source": {"file": "spectral.json",
                            **{k: sp_meta.get(k) for k in ("command", "started_at", "git_commit")}},
        "groups": groups,
    }
    return finish(profile, experiment, results, results_root, device=str(dev), started=started, command=command)


def run_detached(profile: Profile, results_root=None, *, device: str = "auto", progress: bool = True,
                 command: str | None = None, grid: Sequence[float] | None = None) -> dict:
    """:func:`run_centered` for the detached form: writes ``detached.json`` and its figure."""
    return run_centered(profile, results_root, device=device, progress=progress, command=command, grid=grid,
                        experiment="detached")
