"""Claim 4's checks from a ``drift.json`` (Figure 4), and the notes that say which seeds a check
left out.

Per group: DA's DI grows under drift (the paired log-ratio DI(beta_max) / DI(beta_min) >= the
threshold), WT's and IR's DI stays low (each seed's largest DI over beta <= the threshold), and WT
keeps at least DA's share of its accuracy (paired WT - DA of the mean accuracy ratio over the betas
above the smallest >= 0). A seed whose value is missing or not finite (``null`` on disk) is left out
of the check that reads it, and a note says so; a seed left out whose value lies, or may lie, on the
check's failing side (any value that is not finite, which a file cannot tell NaN from infinite; a DI
at beta_max of 0, or at both betas) keeps the check from holding (``left_out`` of
:func:`nets.claim_checks.check`).
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import nets.evidence as ev
from nets.claim_checks import Check, check, log_check, not_finite
from nets.groups import group_label

__all__ = ["drift_checks"]


def _di_at(i: int):
    def get(run: Mapping) -> float | None:  # None (not read) where the run has no DI at beta i
        curve = run.get("DI") or ()
        v = curve[i] if -len(curve) <= i < len(curve) else None
        return None if v is None else float(v)
    return get


def drift_checks(dr: Mapping[str, Any], t: Any) -> tuple[list[Check], list[str]]:
    """Claim 4's checks and notes from ``dr`` (a ``drift.json``) with the thresholds ``t``
    (:class:`nets.verdicts.Thresholds`: ``drift_da_growth_min``, ``drift_low_di_max``)."""
    checks: list[Check] = []
    notes: list[str] = []
    betas = list(dr["betas"])
    i0, i1 = betas.index(min(betas)), betas.index(max(betas))
    later = ev.later_accuracy_ratio(betas)

    for g, methods in dr["groups"].items():
        G = group_label(g)
        if "DA" in methods:
            runs = methods["DA"].get("runs")
            for i in dict.fromkeys((i0, i1)):
                notes += ev.left_out_notes(f"{G} DA: DI at beta={betas[i]:g}", runs, _di_at(i))
            growth, bad = ev.paired_log(ev.per_seed(runs, _di_at(i1)), ev.per_seed(runs, _di_at(i0)))
            notes += ev.log_left_out_notes(f"{G} DA DI growth", list(bad))
            no_growth = [s for s, r in bad.items() if r == -math.inf]
            zero_both = [s for s, r in bad.items() if math.isnan(r)]
            unread = sorted({*ev.left_out(runs, _di_at(i0)), *ev.left_out(runs, _di_at(i1))})
            label = f"{G} DA DI(beta={betas[i1]:g}) / DI(beta={betas[i0]:g})"
            checks.append(log_check(f"{G} DA DI(beta={betas[i1]:g})", growth, ">=", t.drift_da_growth_min,
                                    f"{t.drift_da_growth_min:g}", label,
                                    [(no_growth, "has no growth (DI 0 at the largest beta)"),
                                     (zero_both, "has DI 0 at both betas"),
                                     ([s for s, r in bad.items() if r == math.inf],
                                      "grows without bound (DI 0 at the smallest beta)", "holding"),
                                     not_finite(unread, "DI")]))
        for m in ("WT", "IR"):
            if m in methods:
                runs, worst = methods[m].get("runs"), ev.largest("DI")
                notes += ev.left_out_notes(f"{G} {m}: max DI over beta", runs, worst)
                checks.append(check(f"{G} {m} max DI over beta", ev.interval(ev.per_seed(runs, worst)), "<=",
                                    t.drift_low_di_max, left_out=[not_finite(ev.left_out(runs, worst), "DI")]))
        if "WT" in methods and "DA" in methods and later is not None:
            pair = [methods[m].get("runs") for m in ("WT", "DA")]
            for m, runs in zip(("WT", "DA"), pair):
                notes += ev.left_out_notes(f"{G} {m}: mean Acc ratio over beta>0", runs, later)
            diff = ev.paired_methods(methods, "WT", "DA", later)
            checks.append(check(f"{G} WT mean Acc ratio over beta>0", diff and diff.interval, ">=", 0.0,
                                "0 (WT keeps at least DA's share)", label=f"{G} WT - DA mean Acc ratio over beta>0",
                                test=diff, counts=True,
                                left_out=[not_finite(ev.unread(pair, later), "mean Acc ratio")]))
    return checks, notes
