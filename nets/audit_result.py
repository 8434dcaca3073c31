"""What :func:`nets.auditing.audit` returns: :class:`AuditResult`, the measures of one model with
their intervals, the per-class table and the layer profile, as a dict (JSON-ready), a Markdown table
and a figure; and the names and descriptions of the measures (:data:`MEASURES`, :data:`DESCRIPTIONS`)
that the audit, the comparison (:mod:`nets.audit_compare`) and the command line show.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from nets.class_accuracy import ClassBreakdown
from nets.layer_names import unhookable
from nets.layer_profile import left_out_text
from nets.sample_bootstrap import Estimate, fmt_value

__all__ = ["AuditResult", "MEASURES", "DESCRIPTIONS", "NO_LAYERS", "UNLABELLED_NOTE", "IGNORES_INPUT"]

MEASURES = ("accuracy", "LI", "DI", "SI", "sigma_max", "logit_scale", "sigma_per_scale")
#: What the audit of a plain callable says where the layer profile goes (``settings["no_layer_profile"]``
#: says why for another model without one: a TorchScript module, :func:`nets.layer_names.unhookable`).
NO_LAYERS = f"No layer profile: {unhookable(lambda x: x)}"

#: The line an audit or a comparison of unlabelled images begins its table with.
UNLABELLED_NOTE = "Unlabelled images: no accuracy, and SI's saliency maps target each input's own predicted class."


#: Under the measures' table of a model whose sigma_max, LI and DI are 0 on every sample.
IGNORES_INPUT = ("sigma_max, LI and DI are 0 on every sample: the logits do not respond to the image, so they "
                 "are 0 trivially, and SI, the agreement of saliency maps that are all 0, says nothing.")


DESCRIPTIONS = {
    "accuracy": "accuracy over the full orbit",
    "LI": "logit invariance error, Eq. 2 (0 = invariant)",
    "DI": "predictive distribution invariance error, Eq. 1 (0 = invariant)",
    "SI": "saliency invariance similarity, Eq. 3 (1 = invariant)",
    "sigma_max": "input sensitivity sigma_max(df/dx), Section 4.4",
    "logit_scale": "||f - mean_c f_c||, the norm of the centered logits (ours)",
    "sigma_per_scale": "sigma_max of the centered logits / logit_scale: unchanged by f -> a f (ours)",
}


@dataclass
class AuditResult:
    """What :func:`audit` measured. ``measures``: name -> :class:`Estimate` (:data:`MEASURES`);
    ``layers``: ``(submodule name, r_l)`` in forward order, the logits last; ``settings``: how;
    ``samples``: the per-sample values behind the measures (:func:`sample_measures`; not in
    :meth:`to_dict`), which :func:`nets.audit_compare.compare_samples` pairs with another model's;
    ``classes``: the orbit accuracy per class and the class each is most often taken for
    (:class:`nets.class_accuracy.ClassBreakdown`; ours, beyond the paper)."""

    model: str
    group: str
    input_shape: tuple[int, ...]
    n_samples: int
    measures: dict[str, Estimate]
    layers: list[tuple[str, Estimate]]
    settings: dict[str, Any] = field(default_factory=dict)
    samples: dict[str, np.ndarray] = field(default_factory=dict, repr=False, compare=False)
    classes: Optional[ClassBreakdown] = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (NaN becomes ``None``)."""
        return {
            "model": self.model,
            "group": self.group,
            "input_shape": list(self.input_shape),
            "n_samples": self.n_samples,
            "measures": {k: v.to_dict() for k, v in self.measures.items()},
            "layers": [{"name": n, **e.to_dict()} for n, e in self.layers],
            "settings": dict(self.settings),
            "classes": None if self.classes is None else self.classes.to_dict(),
        }

    def to_markdown(self) -> str:
        """The measures, then the layer profile, as markdown tables with their intervals."""
        pct = f"{100 * self.settings.get('confidence', 0.95):g}%"
        rows = [f"Audit of {self.model} under {self.group} on {self.n_samples} samples of shape "
                f"{tuple(self.input_shape[1:])}", "",
                *([UNLABELLED_NOTE, ""] if self.settings.get("labels") is False else []),
                f"| measure | value | {pct} interval | meaning |", "|---|---:|---|---|"]
        for k, e in self.measures.items():
            n = self.settings.get("n_samples_per_measure", {}).get(k, self.n_samples)
            what = DESCRIPTIONS[k] + ("" if n == self.n_samples else f"; first {n} samples")
            rows.append(f"| {k} | {fmt_value(e.value)} | [{fmt_value(e.low)}, {fmt_value(e.high)}] | {what} |")
        counts = self.settings.get("n_samples_per_measure", {})
        if min([self.n_samples, *counts.values()]) < 2:
            rows += ["", "A bootstrap interval needs at least 2 samples: measured on 1, its ends are nan (null in JSON)."]
        zero = [self.measures.get(k) for k in ("sigma_max", "LI", "DI")]
        if all(e is not None and e.value == e.low == e.high == 0 for e in zero):
            rows += ["", IGNORES_INPUT]
        if self.classes is not None:
            rows += ["", "Accuracy over the orbit per class (a class whose orbit meets another's, a 6 turned into a 9, "
                     "caps an invariant model there):", "",
                     self.classes.to_markdown(self.settings.get("confidence", 0.95)).rstrip("\n")]
        if not self.layers:
            return "\n".join(rows + ["", self._no_layers()]) + "\n"
        rows += ["", f"| layer | r_l | {pct} interval |", "|---|---:|---|"]
        rows += [f"| {self._label(n)} | {fmt_value(e.value)} | [{fmt_value(e.low)}, {fmt_value(e.high)}] |" for n, e in self.layers]
        left_out = self.settings.get("layers_left_out")
        if left_out:
            rows += ["", f"Left out of the layer profile: {left_out_text(left_out)}."]
        return "\n".join(rows) + "\n"

    def _no_layers(self) -> str:
        why = self.settings.get("no_layer_profile")
        return f"No layer profile: {why}" if why else NO_LAYERS

    def _label(self, name: str) -> str:
        kind = self.settings.get("layer_types", {}).get(name)
        return f"{name} ({kind})" if kind else name

    def figure(self):
        """A matplotlib figure: accuracy and SI with intervals (left), the layer profile r_l (right)."""
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt

        fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(10, 3.8), gridspec_kw={"width_ratios": [1, 2.4]})
        keys = [k for k in ("accuracy", "SI") if k in self.measures]
        for i, k in enumerate(keys):
            e = self.measures[k]
            ax0.bar(i, e.value, color="#4c72b0" if k == "accuracy" else "#dd8452")
            ax0.errorbar(i, e.value, yerr=[[e.value - e.low], [e.high - e.value]], color="k", capsize=4)
        ax0.set_xticks(range(len(keys)), keys)
        ax0.set_ylim(0, 1.05)
        li, di, sg = (self.measures.get(k) for k in ("LI", "DI", "sigma_max"))
        ax0.set_title("  ".join(f"{k}={fmt_value(e.value)}" for k, e in (("LI", li), ("DI", di), ("σmax", sg)) if e),
                      fontsize=8)
        names = [self._label(n) for n, _ in self.layers]
        vals = np.array([e.value for _, e in self.layers], dtype=float)
        lo = np.array([e.low for _, e in self.layers], dtype=float)
        hi = np.array([e.high for _, e in self.layers], dtype=float)
        floor = 1e-16
        x = np.arange(len(names))
        ax1.fill_between(x, np.clip(np.nan_to_num(lo, nan=floor), floor, None),
                         np.clip(np.nan_to_num(hi, nan=floor), floor, None), alpha=0.3)
        ax1.plot(x, np.clip(vals, floor, None), marker="o")
        ax1.set_yscale("log")
        ax1.set_xticks(x, names, rotation=60, ha="right", fontsize=7)
        ax1.set_ylabel("relative invariance error r_l")
        ax1.set_title(f"{self.model} under {self.group}: per-layer invariance", fontsize=9)
        left_out = self.settings.get("layers_left_out")
        if left_out and self.layers:  # as under the markdown table
            ax1.text(0.01, 0.99, textwrap.fill(f"left out: {', '.join(left_out)}", 80), ha="left", va="top",
                     fontsize=6, transform=ax1.transAxes)
        if not self.layers:
            ax1.set_axis_off()
            ax1.text(0.5, 0.5, textwrap.fill(self._no_layers(), 60), ha="center", va="center", fontsize=9,
                     transform=ax1.transAxes)
        fig.tight_layout()
        return fig
