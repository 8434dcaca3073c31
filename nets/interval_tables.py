"""The rows of REPORT.md's interval tables: every Table 1 / Figure 2 / 4 / 5 number
with its 95% interval over seeds, the paper's values beside Table 1's with a
"within" column, and the paired comparisons of the Table 1 models.

Pure functions of the results dicts; the number formatter ``fmt`` (``nets.verdicts.fmt``)
is passed in, so this module depends on nothing above ``nets.evidence``.
"""

from __future__ import annotations

from typing import Callable, Mapping

import nets.evidence as ev
from nets.groups import group_label
from nets.stats import overlaps, tied_counts

__all__ = [
    "WITHIN_RULE",
    "table1_interval_rows",
    "table1_paired_rows",
    "seed_cell",
    "run_list_cell",
    "paired_ratio_cell",
    "bootstrap_cell",
    "spectral_bootstrap_rows",
]

Fmt = Callable[..., str]
MEASURES = ("accuracy", "LI", "DI", "SI")
#: Which Table 1 measures are compared as differences (bounded, same scale) and which
#: as log-ratios (positive, spanning orders of magnitude).
LOG_MEASURES = {"LI", "DI"}
PAIRS = (("DA", "WT"), ("IR", "WT"), ("IR", "DA"))

WITHIN_RULE = (
    "\"within\": our 95% t interval over seeds overlaps the paper's range, its mean ± (its reported std + half a "
    "unit of the last digit it prints for the std: "
    + ", ".join(f"{k} {v:g}" for k, v in ev.PAPER_ROUNDING.items())
    + "); \"n/a\" with one seed (no interval).")


def _scale(measure: str) -> float:
    return 100.0 if measure == "accuracy" else 1.0


def _seeds(method: Mapping, measure: str) -> ev.SeedValues:
    return ev.per_seed(method.get("runs"), ev.measure(measure, _scale(measure)))


def bootstrap_cell(entry: Mapping | None, fmt: Fmt, scale: float = 1.0) -> str:
    """``mean [low, high]`` of one bootstrap record of ``intervals.json``."""
    if not entry or entry.get("low") is None:
        return "n/a"
    return f"{fmt(scale * entry['mean'])} [{fmt(scale * entry['low'])}, {fmt(scale * entry['high'])}]"


def table1_interval_rows(t1: Mapping, paper: Mapping, paper_std: Mapping, group_names: Mapping,
                         fmt: Fmt, boot: Mapping | None = None) -> list[list[str]]:
    """One row per (group, model, measure): ours with its interval over seeds, the
    paper's mean ± std, the range :data:`WITHIN_RULE` uses, whether ours lies within
    it, and (with ``boot``, the ``intervals.json`` results) the bootstrap interval
    over test samples."""
    rows = []
    for g, entry in t1["groups"].items():
        for m, e in entry["methods"].items():
            for k, measure in enumerate(MEASURES):
                iv = ev.interval(_seeds(e, measure))
                extra = [] if boot is None else [bootstrap_cell(
                    boot.get("groups", {}).get(g, {}).get("table1", {}).get(m, {}).get(measure), fmt,
                    _scale(measure))]
                ref = paper.get(g, {}).get(m)
                if ref is None:
                    rows.append([group_names.get(g, g), m, measure, ev.iv_text(iv, fmt), *extra, "n/a", "n/a", "n/a"])
                    continue
                mean, std = ref[k], paper_std[g][m][k]
                lo, hi = ev.paper_range(mean, std, measure)
                # accuracies whose seeds agree exactly: an interval of no width, which can be chance (the
                # verdicts' tie rule), so no reading either way
                tied = measure == "accuracy" and tied_counts(iv)
                inside = None if iv is None or tied else overlaps(iv, lo, hi)
                within = "n/a (the seeds tie)" if tied else "n/a" if inside is None else ("yes" if inside else "**no**")
                rows.append([group_names.get(g, g), m, measure, ev.iv_text(iv, fmt), *extra, f"{mean:g} ± {std:g}",
                             f"[{fmt(lo)}, {fmt(hi)}]", within])
    return rows


def table1_paired_rows(t1: Mapping, fmt: Fmt) -> list[list[str]]:
    """Paired comparisons of the Table 1 models over their common seeds: for
    accuracy (points) and SI the mean per-seed difference, for LI and DI the
    geometric-mean ratio (a paired t-test on log-ratios; a seed with a value <= 0, which has none, is
    left out and named); each with its 95% interval and two-sided p-value."""
    rows = []
    for g, entry in t1["groups"].items():
        methods = entry["methods"]
        for measure in MEASURES:
            log = measure in LOG_MEASURES
            for a, b in PAIRS:
                if a not in methods or b not in methods:
                    continue
                pair = _seeds(methods[a], measure), _seeds(methods[b], measure)
                test, bad = ev.paired_log(*pair) if log else (ev.paired(*pair), {})
                if test is None and not bad:  # no seed in common
                    continue
                what = f"{a} / {b} (ratio)" if log else f"{a} - {b}" + (" (points)" if measure == "accuracy" else "")
                shown = "n/a" if test is None else ev.ratio_text(test, fmt) if log else ev.iv_text(test.interval, fmt)
                if bad:  # a value <= 0 has no log-ratio: the seed is named, not the row dropped
                    shown += f"; {_nonpositive_text(bad)}"
                rows.append([group_label(g), measure, what, shown, "n/a" if test is None else ev.p_text(test)])
    return rows


def seed_cell(runs: object, measure: str, fmt: Fmt, scale: float = 1.0) -> str:
    """``mean [95% t interval]`` of one scalar per-seed measure of ``runs``."""
    return ev.iv_text(ev.interval(ev.per_seed(runs, ev.measure(measure, scale))), fmt)  # type: ignore[arg-type]


def run_list_cell(runs: object, measure: str, index: int, fmt: Fmt) -> str:
    """``mean [95% t interval]`` of element ``index`` of a per-seed list (drift curves)."""
    return ev.iv_text(ev.interval(ev.per_seed(runs, lambda r: r[measure][index])), fmt)  # type: ignore[arg-type]


def _nonpositive_text(bad: Mapping[int, float]) -> str:
    """How a paired ratio names the seeds :func:`nets.evidence.paired_log` left out for a value <= 0."""
    return f"{ev.seeds_text(sorted(bad))} left out (a value <= 0)"


def paired_ratio_cell(runs_a: object, runs_b: object, measure: str, fmt: Fmt) -> str:
    """The geometric-mean ratio a / b of a positive measure over common seeds, its
    95% interval and p-value (paired t-test on log-ratios); a seed where either value is <= 0 (no
    log-ratio), or missing or not finite (:func:`nets.evidence.unread`), is left out and named."""
    test, bad = ev.paired_log(ev.per_seed(runs_a, ev.measure(measure)),  # type: ignore[arg-type]
                              ev.per_seed(runs_b, ev.measure(measure)))  # type: ignore[arg-type]
    unread = ev.unread([runs_a, runs_b], ev.measure(measure))  # type: ignore[list-item]
    parts = []
    if bad:
        parts.append(_nonpositive_text(bad))
    if unread:
        parts.append(f"{ev.seeds_text(unread)} left out (not finite)")
    left = "; ".join(parts)
    if test is None:
        return left or "n/a"
    return f"{ev.ratio_text(test, fmt)}; {ev.p_text(test)}" + (f"; {left}" if left else "")


def spectral_bootstrap_rows(boot: Mapping, fmt: Fmt) -> list[list[str]]:
    """Figure 5's numbers with their bootstrap interval over test samples (models
    fixed) from ``intervals.json``: sigma_max, centered sigma_max, class-common
    share, and the IR / DA ratio of mean sigma_max (samples paired)."""
    rows = []
    for g, entry in boot.get("groups", {}).items():
        for key, m in entry.get("spectral", {}).items():
            r = m.get("sigma_max_ratio_to_DA")
            ratio = "—" if not r else f"{fmt(r['ratio'])} [{fmt(r['low'])}, {fmt(r['high'])}]"
            rows.append([group_label(g), key, bootstrap_cell(m.get("sigma_max"), fmt),
                         bootstrap_cell(m.get("sigma_max_centered"), fmt), ratio,
                         bootstrap_cell(m.get("common_logit_share"), fmt)])
    return rows
