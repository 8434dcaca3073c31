"""REPORT.md's subsection for the logit-scale experiment (``scale.json``; ours, beyond the paper),
under Figure 5: each model's sigma_max(J) of the centered logits split into their scale and the
sensitivity per unit of scale, each IR model against DA.

The rule. Per IR model and measure, the paired t-test over common seeds of log(IR / DA)
(:func:`nets.evidence.paired_log`); its 95% interval entirely below 0 reads "lower", entirely above
"higher", else "not distinguishable" (strictly: an interval of no width at 0 is neither). A seed with
no log-ratio (a value <= 0, or not finite) is left out of the test and named
(:func:`nets.evidence.paired_log`); where its limit lies on the other side (IR's value 0 against "higher", DA's against "lower", or unknown),
the direction is "not distinguishable", and with every seed left out too. Since sigma = scale x relative
per seed, log(sigma ratio) = log(scale ratio) + log(relative ratio) exactly, and the share of the
first in the sum says how much of IR's drop in sigma_max its smaller scale carries. An IR model's
mechanism: "smaller scale" when its scale is lower and its relative sensitivity is not,
"smoother" when the reverse, "both", or "undecided". The reading of docs/centered.md (a scale-free
form smooths the function but does not pull the scale down) is "supported" on a group when the
centered form is "smoother" there, "not supported" when its relative sensitivity is higher or
its scale lower, else "undecided".

Pure: a results dict in, Markdown lines out; nothing when ``scale.json`` is absent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Mapping

from nets.evidence import measure, paired_log, per_seed, ratio_text, seeds_text, unread
from nets.groups import group_label
from nets.markdown import figure_lines, markdown_table, model_label
from nets.stats import PairedTest
from nets.train import CENTERED_FORM
from nets.verdicts import pm_text

__all__ = ["TITLE", "RatioTest", "direction", "ratio_tests", "mechanism", "scale_reading", "scale_section"]

MEASURES = ("sigma_max_centered", "logit_scale", "relative_sensitivity")


@dataclass(frozen=True)
class RatioTest:
    """One measure's paired log-ratio test of a model against DA (None: no seed to test), and the
    seeds both ran that it leaves out, each with the limit its log-ratio stands for: ``-inf`` (the
    model's value is 0), ``inf`` (DA's is), NaN (both, or a value not finite)."""

    test: PairedTest | None
    left_out: dict[int, float] = field(default_factory=dict)


def direction(rt: RatioTest | None) -> str:
    """``lower`` / ``higher`` / ``not distinguishable`` for a log-ratio test against 0; ``not
    measured`` with no test and no seed left out (see the module's rule for left-out seeds)."""
    if rt is None or (rt.test is None and not rt.left_out):
        return "not measured"
    if rt.test is None:
        return "not distinguishable"
    iv = rt.test.interval  # strictly on one side: an interval of no width at 0 (identical models) is neither
    d = "lower" if iv.defined and iv.high < 0 else "higher" if iv.defined and iv.low > 0 else "not distinguishable"
    same_side = {"lower": lambda v: v < 0, "higher": lambda v: v > 0}.get(d)  # False for NaN: side unknown
    return d if same_side is None or all(map(same_side, rt.left_out.values())) else "not distinguishable"


def ratio_tests(model: Mapping, da: Mapping) -> dict[str, RatioTest]:
    """Per measure, the paired log-ratio test of ``model`` against ``da`` over the common seeds
    with a log-ratio, and the common seeds left out (:class:`RatioTest`)."""
    out = {}
    for k in MEASURES:
        runs = (model.get("runs"), da.get("runs"))
        test, bad = paired_log(*(per_seed(r, measure(k)) for r in runs))
        unknown = dict.fromkeys(unread(runs, measure(k)), math.nan)
        out[k] = RatioTest(test, dict(sorted({**bad, **unknown}.items())))
    return out


def mechanism(tests: Mapping[str, RatioTest]) -> str:
    """How an IR model's sigma_max differs from DA's (see the module's rule)."""
    scale, rel = direction(tests["logit_scale"]), direction(tests["relative_sensitivity"])
    if scale == "lower":
        return "both" if rel == "lower" else "smaller scale"
    return "smoother" if rel == "lower" else "undecided"


def scale_reading(tests: Mapping[str, RatioTest] | None) -> str:
    """The scale-free reading on one group, from the centered form's tests (None: not measured)."""
    if tests is None:
        return "not measured"
    scale, rel = direction(tests["logit_scale"]), direction(tests["relative_sensitivity"])
    if rel == "higher" or scale == "lower":
        return "not supported"
    return "supported" if rel == "lower" else "undecided"


def _ratio_cell(rt: RatioTest, fmt: Callable[..., str]) -> str:
    """The ratio with its interval, the direction when it is decided, and the seeds left out."""
    d = direction(rt)
    if rt.test is None:
        return d if not rt.left_out else f"— ({seeds_text(list(rt.left_out))} left out: no log-ratio)"
    return (ratio_text(rt.test, fmt) + (f" **{d}**" if d in ("lower", "higher") else "")
            + (f" ({seeds_text(list(rt.left_out))} left out: no log-ratio)" if rt.left_out else ""))


def _scale_share(tests: Mapping[str, RatioTest]) -> str:
    s, sc = tests["sigma_max_centered"].test, tests["logit_scale"].test
    if tests["sigma_max_centered"].left_out.keys() != tests["logit_scale"].left_out.keys():
        return "—"  # the two means rest on different seeds: their ratio is no share
    if s is None or sc is None or abs(s.interval.estimate) < 0.05:  # sigma within ~5% of DA's: no drop to split
        return "—"
    return f"{100 * sc.interval.estimate / s.interval.estimate:.0f}%"


TITLE = "### Beyond the paper: Figure 5 split into logit scale and sensitivity per unit of scale"


def scale_section(scale: Mapping | None, *, fmt: Callable[..., str], fig_dir: str = "figures",
                  available_figures: set[str] | None = None, with_figure: bool = True, title: str = TITLE,
                  stem: str = "scale") -> list[str]:
    """The Markdown lines of the subsection headed ``title`` (``[]`` when ``scale`` is ``None``);
    ``with_figure=False`` leaves out the figure's lines (a notebook shows the figure itself), else
    the figure is ``<fig_dir>/<stem>.png``. The centered form's reading is given only when some
    group has the centered form (``cnn_scale.json`` has none)."""
    if not scale:
        return []
    lines = [title + "\n",
             " ".join(f"{k}: {v}" for k, v in scale.get("protocol", {}).items() if isinstance(v, str))
             + " Ratios to DA: geometric mean over seeds [95% paired t interval]; lower / higher: the interval "
               "is entirely below / above 1 (bold). Scale's share: log(scale ratio) / log(σ ratio), the part of IR's "
               "change in σ_max that its logit scale carries (σ = scale × σ per unit of scale, exactly).\n"]
    rows, mechanisms, readings = [], [], []
    for g, entry in scale["groups"].items():
        models = entry["models"]
        da = models.get("DA")
        centered = next((m for m in models.values() if m.get("regularizer") == CENTERED_FORM), None)
        centered_tests = None  # its tests against DA (from the table's loop), for the scale-free reading
        for key, m in models.items():
            label = model_label(m)
            nu = "" if m.get("nu") is None else f"{m['nu']:g}"
            row = [group_label(g), label, nu] + [pm_text(m.get(k)) for k in MEASURES]
            if m["method"] == "IR" and da is not None:
                tests = ratio_tests(m, da)
                row += [_ratio_cell(tests[k], fmt) for k in MEASURES] + [_scale_share(tests)]
                mechanisms.append(f"{group_label(g)} {label}: {mechanism(tests)}")
                if m is centered:
                    centered_tests = tests
            else:
                row += ["", "", "", ""]
            rows.append(row)
        if centered is not None:
            readings.append(f"{group_label(g)}: {scale_reading(centered_tests)}")
    lines += [markdown_table(["group", "model", "ν", "σ_max(J), centered logits", "logit scale",
                              "σ_max per unit of scale", "σ_max: IR / DA", "scale: IR / DA",
                              "σ_max per scale: IR / DA", "scale's share"], rows), ""]
    lines.append("**How each IR model's σ_max differs from DA's** (smaller scale: scale lower, σ per unit of "
                 "scale not; smoother: the reverse): " + "; ".join(mechanisms) + ".\n")
    if readings:
        lines.append("**Does a scale-free form smooth the function without pulling the logit scale down** (the "
                     "reading of the centered form's result; supported when its σ per unit of scale is lower than "
                     "DA's and its scale is not)? " + "; ".join(readings) + ".\n")
    if not with_figure:
        return lines
    cap = "σ_max(J) of the centered logits against their scale, per model and seed (dashed: DA's σ per unit of scale)."
    return lines + figure_lines(fig_dir, stem, cap, available_figures)
