"""Accuracy over the orbit per class, and the classes a group confuses (ours, beyond the paper).

A group need not be a symmetry of the labels: turned by 180 degrees a 6 is a 9, which is why the
paper's MNIST drops the 9. A genuinely invariant model gives a sample and every transformed copy one
answer, so on such classes its orbit accuracy is capped, and the overall accuracy hides where. This
module breaks the accuracy over the full orbit (the count behind Table 1's orbit accuracy,
:func:`nets.metrics.orbit_terms`) down by true class and says which class each one is taken for.

- :func:`orbit_confusion`: ``(C, C)`` fractions, row ``c`` the share of the orbit predictions of
  the class-``c`` samples that are each class (a row sums to 1; a class with no sample is NaN).
- :func:`class_breakdown_from_predictions` / :func:`class_breakdown`: a :class:`ClassBreakdown`,
  the orbit accuracy of every class present with its percentile-bootstrap interval over that
  class's samples (:func:`nets.sample_bootstrap.share_mean`, the model fixed; an exact bound where
  every sample has the same share of its orbit right: all, none, or one element each) and its
  confusion matrix.
- :func:`per_class_over_seeds` / :func:`per_class_rows`: the same for trained methods over seeds
  (``python -m nets own-data`` and ``python -m nets per-class``): each seed's per-class orbit
  accuracy, and a table of the means with WT - DA's paired t interval over seeds
  (:func:`nets.stats.paired_t`).

Many classes (an ImageNet model's 1,000): the JSON keeps the confusion matrix up to
:data:`MAX_CONFUSION_CLASSES` classes (every class's accuracy and the class it is taken for always),
and a markdown table shows at most ``max_rows`` classes, those with the lowest orbit accuracy.

Orbit predictions are ``(N, |G|)`` integer arrays, column ``g`` the argmax of ``f(g x)`` over every
element of the group, the identity included (as the orbit accuracy). Errors: one-line
``ValueError``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional, Sequence, Union

import numpy as np
import torch
from torch import nn

from nets.compare_effect import MIN_DIRECTION_SAMPLES
from nets.groups import GroupLike, as_group, group_record
from nets.model_checks import logit_width
from nets.metrics import orbit_terms
from nets.sample_bootstrap import Estimate, check_bootstrap, constant_share_bound, fmt_value, share_mean
from nets.stats import paired_t

__all__ = ["MAX_CONFUSION_CLASSES", "MAX_ROWS", "ClassBreakdown", "orbit_correct_share", "orbit_confusion",
           "taken_for", "taken_for_dict", "class_label", "check_class_names", "lowest",
           "class_breakdown_from_predictions", "class_breakdown",
           "per_class_over_seeds", "per_class_rows"]


#: Widest confusion matrix written to JSON (a 1,000-class one would be a million numbers).
MAX_CONFUSION_CLASSES = 100
#: Most classes a markdown table shows (those with the lowest orbit accuracy).
MAX_ROWS = 20


def _check(predictions: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p, t = np.asarray(predictions), np.asarray(y)
    if p.ndim != 2 or t.shape != (p.shape[0],) or p.shape[0] == 0:
        raise ValueError(f"orbit predictions must be (N, |G|) with labels y (N,), N >= 1; got {p.shape} and {t.shape}")
    if not (np.issubdtype(p.dtype, np.integer) and np.issubdtype(t.dtype, np.integer)):
        raise ValueError(f"orbit predictions and labels must be integer classes, got {p.dtype} and {t.dtype}")
    if min(int(p.min()), int(t.min())) < 0:
        raise ValueError("orbit predictions and labels must be classes >= 0")
    return p, t


def orbit_correct_share(predictions: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per sample, the share of its orbit predictions ``(N, |G|)`` equal to its label: ``(N,)`` float64
    (the per-sample orbit accuracy; a class's orbit accuracy is its samples' mean)."""
    p, t = _check(predictions, y)
    return (p == t[:, None]).mean(1)


def orbit_confusion(predictions: np.ndarray, y: np.ndarray, n_classes: int) -> np.ndarray:
    """``(n_classes, n_classes)`` float64: entry ``[c, k]`` the fraction of the orbit predictions
    ``(N, |G|)`` of the samples labelled ``c`` that are ``k`` (rows of absent classes NaN). Raises
    ``ValueError`` for a class outside ``[0, n_classes)``."""
    p, t = _check(predictions, y)
    if max(int(p.max()), int(t.max())) >= n_classes:
        raise ValueError(f"classes reach {max(int(p.max()), int(t.max()))}, but n_classes is {n_classes}")
    counts = np.zeros((n_classes, n_classes), dtype=np.float64)
    np.add.at(counts, (np.repeat(t, p.shape[1]), p.reshape(-1)), 1.0)
    with np.errstate(invalid="ignore"):
        return counts / counts.sum(1, keepdims=True)


def taken_for(confusion: np.ndarray, c: int) -> tuple[int, float] | None:
    """The class other than ``c`` that class ``c``'s orbit is most often predicted as in a
    :func:`orbit_confusion` matrix, with that share of the orbit (the smallest such class on a tie);
    ``None`` when it never is."""
    row = np.nan_to_num(np.asarray(confusion, dtype=np.float64)[c], nan=0.0)
    row[c] = -1.0
    k = int(np.argmax(row))
    return (k, float(row[k])) if row[k] > 0 else None


def taken_for_dict(confusion: np.ndarray, c: int) -> dict[str, Any] | None:
    """:func:`taken_for` as JSON: ``{"class": k, "fraction": f}`` or ``None``."""
    t = taken_for(confusion, c)
    return None if t is None else {"class": t[0], "fraction": t[1]}


def _matrix_json(confusion: np.ndarray) -> list | None:
    """The matrix as nested lists (NaN -> ``None``), or ``None`` past :data:`MAX_CONFUSION_CLASSES`."""
    if confusion.shape[0] > MAX_CONFUSION_CLASSES:
        return None
    return [[None if not np.isfinite(v) else float(v) for v in row] for row in confusion]


def check_class_names(names: Any, n_labels: int = 0) -> tuple[str, ...] | None:
    """``names`` (class ``c``'s at index ``c``) as a tuple of ``str``, or ``None`` for ``None``. Raises a
    one-line ``ValueError`` naming the first bad entry unless ``names`` is a list or tuple of strings,
    each non-empty, without ``|`` or control characters (they would break a table's row), distinct
    once stripped of surrounding blanks, and at least ``n_labels`` of them (one for every label)."""
    if names is None:
        return None
    if isinstance(names, (str, bytes)) or not isinstance(names, (list, tuple)):
        raise ValueError(f"class names must be a list of strings in label order, got {type(names).__name__}")
    seen: dict[str, int] = {}
    for i, s in enumerate(names):
        if not isinstance(s, str):
            raise ValueError(f"class name {i} must be a string, got {type(s).__name__} {s!r}")
        if not s.strip() or "|" in s or any(ord(ch) < 32 or ord(ch) == 127 for ch in s):
            raise ValueError(f"class name {i} must be non-empty, without '|' or control characters, got {s!r}")
        if s.strip() in seen:
            raise ValueError(f"class names {seen[s.strip()]} and {i} are both {s.strip()!r}")
        seen[s.strip()] = i
    if len(names) < n_labels:
        raise ValueError(f"a label is class {n_labels - 1}, but the class names name only {len(names)} classes")
    return tuple(names)


def class_label(c: int, names: Sequence[str] | None = None) -> str:
    """How a table names class ``c``: ``"6"``, or ``"6 Shirt"`` where ``names`` (label order) names it."""
    return f"{c} {names[c]}" if names is not None and 0 <= c < len(names) else str(c)


def lowest(values: Sequence[float], max_rows: int) -> tuple[list[int], str]:
    """Indices (ascending) of the ``max_rows`` lowest ``values`` (all when there are no more), and the
    note a table of them needs (``""`` when it shows every class)."""
    if len(values) <= max_rows:
        return list(range(len(values))), ""
    keep = sorted(int(i) for i in np.argsort(np.asarray(values, dtype=float), kind="stable")[:max_rows])
    return keep, f"The {max_rows} of {len(values)} classes with the lowest orbit accuracy; every class is in the JSON."


@dataclass
class ClassBreakdown:
    """Orbit accuracy per class: ``classes`` (the labels present, ascending), ``counts`` (samples of
    each), ``accuracy`` (an :class:`~nets.sample_bootstrap.Estimate` each), ``confusion`` (the
    :func:`orbit_confusion` matrix over ``n_classes``), the group's name and the class names
    (label order; ``None``: classes are shown by number)."""

    group: str
    classes: list[int]
    counts: list[int]
    accuracy: list[Estimate]
    confusion: np.ndarray
    class_names: Optional[tuple[str, ...]] = None

    def taken_for(self, c: int) -> tuple[int, float] | None:
        """:func:`taken_for` of class ``c`` in this confusion matrix."""
        return taken_for(self.confusion, c)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (NaN becomes ``None``); ``confusion`` is ``None`` past :data:`MAX_CONFUSION_CLASSES`."""
        return {"group": self.group,
                "classes": [{"class": c, "n": n, "accuracy": e.to_dict(),
                             "taken_for": taken_for_dict(self.confusion, c)}
                            for c, n, e in zip(self.classes, self.counts, self.accuracy)],
                "confusion": _matrix_json(self.confusion),
                "class_names": None if self.class_names is None else list(self.class_names)}

    def to_markdown(self, confidence: float = 0.95, max_rows: int = MAX_ROWS) -> str:
        """One row per class (at most ``max_rows``, the lowest, with a note): samples, orbit accuracy with
        its interval, the class most often predicted instead; the note names the classes of fewer than
        :data:`~nets.compare_effect.MIN_DIRECTION_SAMPLES` samples whose interval is the bootstrap's, which
        there covers far less than its level."""
        keep, note = lowest([e.value for e in self.accuracy], max_rows)
        few = [i for i in keep if 2 <= self.counts[i] < MIN_DIRECTION_SAMPLES  # a bootstrap interval, not
               # share_mean's exact bound (every sample of the class at one share: all right, all wrong, ...)
               and self.accuracy[i] != constant_share_bound(self.accuracy[i].value, self.counts[i], confidence)]
        rows = [f"| class | samples | orbit accuracy | {100 * confidence:g}% interval | most often taken for |",
                "|---|---:|---:|---|---|"]
        for i in keep:
            c, n, e = self.classes[i], self.counts[i], self.accuracy[i]
            t, name = self.taken_for(c), class_label(c, self.class_names)
            other = "never wrong" if t is None else \
                f"{class_label(t[0], self.class_names)} ({fmt_value(t[1])} of the orbit)"
            rows.append(f"| {name} | {n} | {fmt_value(e.value)} | [{fmt_value(e.low)}, {fmt_value(e.high)}] | {other} |")
        if few:
            names = ", ".join(class_label(self.classes[i], self.class_names) for i in few)
            note = (f"{note} " if note else "") + (
                f"Fewer than {MIN_DIRECTION_SAMPLES} samples in class{'es' if len(few) > 1 else ''} {names}: a "
                f"bootstrap interval there covers far less than {100 * confidence:g}%.")
        return "\n".join(rows + ([] if not note else ["", note])) + "\n"


def class_breakdown_from_predictions(predictions: np.ndarray, y: np.ndarray, group: str, *,
                                     n_classes: int | None = None, confidence: float = 0.95,
                                     n_resamples: int = 2000, seed: int = 0,
                                     class_names: Sequence[str] | None = None) -> ClassBreakdown:
    """The :class:`ClassBreakdown` of orbit predictions ``(N, |G|)`` against labels ``y (N,)``;
    ``n_classes`` defaults to one more than the largest class seen. Each class's interval resamples
    its own samples with the same ``seed``. ``class_names`` (label order) name the classes in tables
    (:func:`check_class_names`)."""
    check_bootstrap(confidence, n_resamples, seed)
    p, t = _check(predictions, y)
    names = check_class_names(class_names, int(t.max()) + 1)
    width = max(int(p.max()), int(t.max())) + 1 if n_classes is None else int(n_classes)
    confusion = orbit_confusion(p, t, width)
    correct = orbit_correct_share(p, t)
    classes = [int(c) for c in np.unique(t)]
    counts = [int((t == c).sum()) for c in classes]
    accuracy = [share_mean(correct[t == c], confidence=confidence, n_resamples=n_resamples, seed=seed)
                for c in classes]
    return ClassBreakdown(group=group, classes=classes, counts=counts, accuracy=accuracy, confusion=confusion,
                          class_names=names)


def class_breakdown(model: Union[nn.Module, Callable[[torch.Tensor], torch.Tensor]], x: torch.Tensor,
                    y: torch.Tensor, group: GroupLike, *, confidence: float = 0.95, n_resamples: int = 2000,
                    seed: int = 0, chunk_size: int = 256, class_names: Sequence[str] | None = None
                    ) -> ClassBreakdown:
    """Orbit accuracy per class of ``model`` on images ``x (N, *C, H, W)`` with labels ``y (N,)``
    under ``group`` (module docstring), over the model's logit width; ``class_names`` (label order)
    name the classes in tables. Raises the measures'
    one-line ``ValueError``s (:mod:`nets.measure_inputs`, :mod:`nets.model_checks`)."""
    if y is None:
        raise ValueError("class_breakdown needs labels y of shape (N,): its table is per true class (for unlabelled "
                         "images, nets.audit(..., y=None) measures everything else)")
    record, group = group_record(group), as_group(group)  # a custom group recorded by its spec, as given
    check_bootstrap(confidence, n_resamples, seed)
    predictions = orbit_terms(model, x, y, group, chunk_size=chunk_size, terms=("predictions",))["predictions"]
    width = logit_width(model, x)
    return class_breakdown_from_predictions(predictions.cpu().numpy(), y.cpu().numpy(), record,
                                            n_classes=width, confidence=confidence, n_resamples=n_resamples,
                                            seed=seed, class_names=class_names)


def per_class_over_seeds(models: Mapping[str, Sequence[nn.Module]], x: torch.Tensor, y: torch.Tensor,
                         group: GroupLike, *, chunk_size: int = 256) -> dict[str, Any]:
    """Orbit accuracy per class of trained methods over seeds, JSON-ready: ``models`` maps a method
    (``"WT"``, ...) to its models, one per seed in seed order, on ``x (N, *C, H, W)``, ``y (N,)``.
    Returns ``{"classes", "counts", "methods": {m: {"accuracy": [per seed: [per class]],
    "taken_for": [per class: :func:`taken_for_dict`], "confusion": (C, C) mean over seeds, ``None``
    past :data:`MAX_CONFUSION_CLASSES`}}}`` over each model's logit width."""
    if y is None:
        raise ValueError("per_class_over_seeds needs labels y of shape (N,): its table is per true class")
    group = as_group(group)
    t = y.cpu().numpy()
    classes = [int(c) for c in np.unique(t)]
    out: dict[str, Any] = {"classes": classes, "counts": [int((t == c).sum()) for c in classes], "methods": {}}
    for m, ms in models.items():
        accs, confs = [], []
        for model in ms:
            pred = orbit_terms(model, x, y, group, chunk_size=chunk_size, terms=("predictions",))["predictions"]
            seed_conf = orbit_confusion(pred.cpu().numpy(), t, logit_width(model, x))
            accs.append([float(seed_conf[c, c]) for c in classes])  # the diagonal: a count over n_c |G|, exact
            confs.append(seed_conf)
        mean_conf = np.mean(confs, axis=0)
        out["methods"][m] = {"accuracy": accs, "taken_for": [taken_for_dict(mean_conf, c) for c in classes],
                             "confusion": _matrix_json(mean_conf)}
    return out


def per_class_rows(entry: Mapping[str, Any], methods: Sequence[str] = ("WT", "DA", "IR"),
                   max_rows: int = MAX_ROWS, class_names: Sequence[str] | None = None) -> tuple[list, list, str]:
    """Header, rows and note (:func:`lowest`) of a markdown table of :func:`per_class_over_seeds`'s
    ``entry``: per class the samples, each method's orbit accuracy (%, mean over seeds), WT - DA in
    points with its 95% paired t interval over seeds, and the class WT's orbit is most often taken for
    (mean share of the orbit); at most ``max_rows`` classes, those with the lowest mean accuracy of
    the first method. ``class_names`` (label order) name the classes."""
    ms = [m for m in methods if m in entry["methods"]]
    header = ["class", "test samples", *(f"{m} Acc. (%)" for m in ms), "WT - DA (points) [95%]", "WT takes it for"]
    per_seed = {m: np.array([[np.nan if v is None else v for v in seed] for seed in entry["methods"][m]["accuracy"]],
                            dtype=float) for m in ms}  # (seeds, classes); a null (not finite when written) is NaN
    means = per_seed[ms[0]].mean(axis=0)
    keep, note = lowest(list(means), max_rows)
    rows = []
    for j in keep:
        c = entry["classes"][j]
        acc = {m: per_seed[m][:, j] for m in ms}
        row = [class_label(c, class_names), str(entry["counts"][j]), *(f"{100 * acc[m].mean():.1f}" for m in ms)]
        if "WT" in acc and "DA" in acc:
            ok = np.isfinite(acc["WT"]) & np.isfinite(acc["DA"])  # a seed not finite in either is left out, said
            if ok.any():
                iv = paired_t(100 * acc["WT"][ok], 100 * acc["DA"][ok]).interval
                row.append(f"{iv.estimate:.3g} [{iv.low:.3g}, {iv.high:.3g}]"
                           + ("" if ok.all() else f" (n = {int(ok.sum())} of {ok.size}: not finite on the others)"))
            else:
                row.append("— (not finite)")
        else:
            row.append("")
        other = entry["methods"]["WT"]["taken_for"][j] if "WT" in entry["methods"] else None
        row.append("" if "WT" not in entry["methods"] else "never wrong" if other is None
                   else f"{class_label(other['class'], class_names)} ({other['fraction']:.2f})")
        rows.append(row)
    return header, rows, note
