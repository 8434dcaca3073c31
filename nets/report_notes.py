"""The notes above REPORT.md's verdicts when its results are not one whole sweep at its profile's settings.

Each is plain text from a results dict (or its ``meta.profile``), for :func:`nets.report.render_report`
to set in a ``> **...**`` line, and names the option that made the difference:

* :func:`completeness`: what a sweep is missing, one phrase per gap (an experiment not run, groups
  still pending); empty for a complete sweep.
* :func:`grid_notes`: one sentence per IR form whose nu grid is not its named profile's (``--nu-grid``).
* :func:`epochs_note`: a sentence when the training length is not its named profile's (``--epochs``),
  else ``None``.

The last two give none for a profile this package does not know
(:data:`nets.experiments.profiles.PROFILES`).
All three are re-exported by :mod:`nets.report`.
"""

from __future__ import annotations

from typing import Mapping

from nets.experiments.profiles import PROFILES
from nets.groups import group_label
from nets.results_io import EXPERIMENTS

__all__ = ["completeness", "grid_notes", "epochs_note"]


def completeness(results: Mapping[str, Mapping]) -> list[str]:
    """What is missing from a sweep, one phrase per gap (empty when every
    experiment ran on every group): experiments not run, groups still pending."""
    gaps = []
    for name in EXPERIMENTS:
        r = results.get(name)
        if not r:
            gaps.append(f"`{name}` has not run")
        elif r.get("pending_groups"):
            done = ", ".join(group_label(g) for g in r.get("groups", {})) or "none"
            gaps.append(f"`{name}` covers {done} only ({', '.join(group_label(g) for g in r['pending_groups'])} pending)")
    return gaps


def grid_notes(profile: Mapping) -> list[str]:
    """One sentence per regularizer form whose recorded nu grid (a results file's ``meta.profile``)
    is not its named profile's (``table1 --nu-grid``); none for a profile this package does not know."""
    default = PROFILES.get(profile.get("name"))
    if default is None:
        return []
    base = {form: [float(nu) for nu in grid] for form, grid in default.nu_grids}
    used = {form: [float(nu) for nu in grid] for form, grid in (profile.get("nu_grids") or {}).items()}
    rest = "; every other setting is the profile's." if epochs_note(profile) is None else "."
    return [f"IR's {form.replace('_', '-')} form searched ν over {', '.join(f'{nu:g}' for nu in grid)} "
            f"(`--nu-grid`), not the `{profile['name']}` profile's {', '.join(f'{nu:g}' for nu in base[form])}{rest}"
            for form, grid in used.items() if form in base and grid != base[form]]


def epochs_note(profile: Mapping) -> str | None:
    """A sentence when the recorded training length (a results file's ``meta.profile``) is not its
    named profile's (``--epochs``); ``None`` otherwise, or for a profile this package does not know."""
    default = PROFILES.get(profile.get("name"))
    if default is None or profile.get("epochs") in (None, default.epochs):
        return None
    n = profile["epochs"]
    return (f"the MLPs trained {n} epoch{'s' if n != 1 else ''} (`--epochs`), not the `{profile['name']}` "
            f"profile's {default.epochs}.")
