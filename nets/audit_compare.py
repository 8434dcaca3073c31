"""Compare two image classifiers on the same images: is model B more invariant than model A, and
by how much, with an interval?

:func:`compare` measures both models with :func:`nets.auditing.sample_measures` on the same
samples and estimates, for every measure of :func:`nets.auditing.audit`, the effect of B relative
to A with a *paired* percentile-bootstrap interval over the samples (both models' values of a
sample stay together in every resample, as the paper's claims compare two models on the same
data): the difference ``B - A`` for the bounded measures (accuracy, SI) and the ratio of means
``B / A`` for the scales and errors (LI, DI, sigma_max, logit_scale, sigma_per_scale, each a ratio
of means itself for sigma_per_scale). The direction says where the interval lies: ``B < A`` or
``B > A`` when it excludes no effect (0 for a difference, 1 for a ratio), ``B = A`` when the
estimate and both ends are exactly no effect (every resample gave it: the models agree on every
sample, as a model compared with itself does), else ``undecided``. Accuracy is the exception to
``B = A``: two models right on every image (of a class, say) agree by chance, so where their
accuracies agree on every sample the interval is the exact bound that agreement allows
(:func:`nets.sample_bootstrap.share_difference`) and reads ``undecided``; a ratio whose A is exactly 0
(an exactly invariant model's LI), or one with resamples of 0 / 0, is ``undefined``; an effect of fewer than
:data:`MIN_DIRECTION_SAMPLES` samples (a small class) has its interval and ``too few samples``.

The intervals are over the test samples only: both trained models are fixed, so they say nothing
about another training seed (for that, the experiments' paired tests over seeds, docs/statistics.md).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence, Union

import numpy as np
import torch
from torch import nn

from nets.auditing import (DESCRIPTIONS, MEASURES, SAMPLE_MEANS, UNLABELLED_NOTE, check_names_have_labels,
                           sample_measures)
from nets.class_accuracy import MAX_ROWS, check_class_names, class_label, lowest
from nets.compare_effect import (MIN_DIRECTION_SAMPLES, Disagreement, Effect, EffectKind,  # noqa: F401
                                 direction)  # (re-exported)
from nets.groups import Group, GroupLike, as_group, group_record
from nets.model_checks import logit_width, parameter_dtype  # logit_width re-exported: the measures' own
from nets.sample_bootstrap import (
    bootstrap_mean,
    bootstrap_ratio,
    check_bootstrap,
    mean_difference,
    paired_bootstrap,
    ratio_of_means,
    share_difference,
    share_mean,
)

__all__ = ["EFFECTS", "Effect", "Comparison", "compare", "compare_samples", "images_per_model", "class_effects",
           "direction", "logit_width", "check_pair_names", "check_same_group_and_images", "MIN_DIRECTION_SAMPLES"]

Model = Union[nn.Module, Callable[[torch.Tensor], torch.Tensor]]
#: How B is set against A for each measure of :data:`nets.auditing.MEASURES`.
EFFECTS: dict[str, EffectKind] = {"accuracy": "difference", "SI": "difference", "LI": "ratio", "DI": "ratio",
                                  "sigma_max": "ratio", "logit_scale": "ratio", "sigma_per_scale": "ratio"}


def _mean_ratio(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
    return ratio_of_means(b, a, axis)


def _ratio_of_ratios(num_a: np.ndarray, den_a: np.ndarray, num_b: np.ndarray, den_b: np.ndarray,
                     axis: int = -1) -> np.ndarray:
    return ratio_of_means(num_b, den_b, axis) / ratio_of_means(num_a, den_a, axis)


@dataclass
class Comparison:
    """What :func:`compare` measured: ``effects`` per measure (:data:`nets.auditing.MEASURES` order);
    ``classes``: class -> (its number of samples, the effect B - A on its orbit accuracy, paired over
    its samples), ours (:mod:`nets.class_accuracy`); ``class_names`` (label order) name them in the table;
    ``disagreement``: the samples on which the two accuracies differ, with the exact sign test over them
    (:class:`~nets.compare_effect.Disagreement`; ``None`` without labels)."""

    a: str
    b: str
    group: str
    input_shape: tuple[int, ...]
    n_samples: int
    effects: dict[str, Effect]
    settings: dict[str, Any] = field(default_factory=dict)
    classes: dict[int, tuple[int, Effect]] = field(default_factory=dict)
    class_names: Optional[tuple[str, ...]] = None
    n_logits: Optional[tuple[int, int]] = None
    disagreement: Optional[Disagreement] = None

    @property
    def width_note(self) -> Optional[str]:
        """A sentence where A and B give different numbers of logits (:func:`compare` records them),
        else ``None``."""
        if self.n_logits is None or self.n_logits[0] == self.n_logits[1]:
            return None
        return (f"A gives {self.n_logits[0]} logits and B {self.n_logits[1]}: LI, DI, sigma_max and logit_scale "
                "sum over the logits, so B / A sets measures of different widths against each other; compare "
                "models of the same classes")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (NaN becomes ``None``)."""
        return {"a": self.a, "b": self.b, "group": self.group, "input_shape": list(self.input_shape),
                "n_samples": self.n_samples, "effects": {k: e.to_dict() for k, e in self.effects.items()},
                "classes": {str(c): {"n": n, **e.to_dict()} for c, (n, e) in self.classes.items()},
                "class_names": None if self.class_names is None else list(self.class_names),
                "n_logits": None if self.n_logits is None else dict(zip(("a", "b"), self.n_logits)),
                **({} if self.disagreement is None else {"accuracy_disagreement": self.disagreement.to_dict()}),
                "settings": dict(self.settings)}

    def to_markdown(self) -> str:
        """One row per measure: A, B (each with its interval), the effect with its paired interval, the direction."""
        pct = f"{100 * self.settings.get('confidence', 0.95):g}%"
        rows = [f"B = {self.b} against A = {self.a} under {self.group} on the same {self.n_samples} samples "
                f"(paired bootstrap over samples; the trained models are fixed)", "",
                *([UNLABELLED_NOTE, ""] if self.settings.get("labels") is False else []),
                *([f"**Note**: {self.width_note}.", ""] if self.width_note else []),
                f"| measure | A [{pct}] | B [{pct}] | effect | B vs A [{pct}] | direction |",
                "|---|---|---|---|---|---|"]
        for k, e in self.effects.items():
            what = "B - A" if e.kind == "difference" else "B / A"
            rows.append(f"| {k} | {e.a.text()} | {e.b.text()} | {what} | {e.effect.text()} | {e.direction} |")
        if self.disagreement is not None and "accuracy" in self.effects:
            rows += ["", self.disagreement.text(self.effects["accuracy"], self.settings.get("confidence", 0.95))]
        if self.classes:
            items = list(self.classes.items())
            # at most MAX_ROWS classes: those where B and A differ most
            keep, note = lowest([-abs(e.effect.value) for _, (_, e) in items], MAX_ROWS)
            rows += ["", "Accuracy over the orbit per class (paired over the class's samples):", "",
                     f"| class | samples | A [{pct}] | B [{pct}] | B - A [{pct}] | direction |",
                     "|---|---:|---|---|---|---|"]
            rows += [f"| {class_label(c, self.class_names)} | {n} | "
                     f"{e.a.text()} | {e.b.text()} | {e.effect.text()} | {e.direction} |"
                     for c, (n, e) in (items[i] for i in keep)]
            if note:
                rows += ["", f"The {MAX_ROWS} of {len(items)} classes with the largest |B - A|; "
                         "every class is in the JSON."]
        return "\n".join(rows) + "\n"


def compare(
    model_a: Model,
    model_b: Model,
    x: torch.Tensor,
    y: Optional[torch.Tensor],
    group: GroupLike,
    *,
    names: tuple[str, str] = ("A", "B"),
    n_steps: int = 50,
    si_samples: Optional[int] = None,
    sigma_samples: Optional[int] = None,
    include_identity: bool = False,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
    chunk_size: int = 256,
    class_names: Optional[Sequence[str]] = None,
) -> Comparison:
    """Measure ``model_a`` and ``model_b`` on the same images ``x (N, *C, H, W)``, labels ``y (N,)``
    (or ``None``: no accuracy, SI on each input's predicted class, as :func:`nets.auditing.audit`),
    under ``group`` and estimate the effect of B relative to A for every measure (module docstring).

    Arguments as :func:`nets.auditing.audit`'s; both models must take the same ``x`` (same device
    and dtype), except that two modules of different parameter dtypes (float16 and float32) each get
    ``x`` in their own (:func:`images_per_model`). Each model's own estimates equal
    :func:`~nets.auditing.audit`'s with the same settings; ``class_names`` (label order) name the
    classes of the per-class table. Raises
    ``ValueError`` (one line) for any input the measures refuse, naming the model.
    """
    given, group = group, as_group(group)
    check_bootstrap(confidence, n_resamples, seed)
    check_pair_names(names)
    check_class_names(class_names)  # before the work, not after it
    check_names_have_labels(y, class_names)
    kw = dict(n_steps=n_steps, si_samples=si_samples, sigma_samples=sigma_samples,
              include_identity=include_identity, chunk_size=chunk_size)
    values, widths = [], []
    per_model = images_per_model(x, model_a, model_b, names=(f"model {names[0]}", f"model {names[1]}"))
    for label, model, xm in zip(names, (model_a, model_b), per_model):
        try:
            values.append(sample_measures(model, xm, y, group, **kw))
        except ValueError as e:
            raise ValueError(f"model {label}: {e}") from None
        widths.append(logit_width(model, xm))
    a, b = values
    return compare_samples(a, b, given, names=names, input_shape=tuple(x.shape), confidence=confidence,
                           n_resamples=n_resamples, seed=seed, class_names=class_names,
                           settings={"n_steps": n_steps, "include_identity": include_identity},
                           n_logits=(widths[0], widths[1]))


def images_per_model(x: torch.Tensor, model_a: Model, model_b: Model,
                     names: tuple[str, str] = ("model A", "model B")) -> tuple[torch.Tensor, torch.Tensor]:
    """The images each model is measured on: ``x`` for both, except where the two are modules whose
    floating-point parameters differ in dtype (a float16 model against its float32 original), which no
    one ``x`` can serve: each then gets ``x`` cast to its own (:func:`~nets.model_checks.parameter_dtype`;
    give ``x`` in the wider dtype, since a cast to the narrower loses digits). A one-line ``ValueError``,
    naming the model by ``names``, where finite images pass its dtype's range (values up to 1e5 for a
    float16 model), which the cast would turn into infinities."""
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():  # the measures refuse it, naming the model
        return x, x
    dtypes = [parameter_dtype(m, None) if isinstance(m, nn.Module) else None for m in (model_a, model_b)]
    if None in dtypes or dtypes[0] == dtypes[1]:
        return x, x
    cast = []
    for name, dtype in zip(names, dtypes):
        xm = x.to(dtype)
        if not bool(torch.isfinite(xm).all()) and bool(torch.isfinite(x).all()):
            raise ValueError(f"x does not fit {name}'s {str(dtype).removeprefix('torch.')}: its values reach "
                             f"{float(x.abs().max()):.3g}, past that type's largest, {torch.finfo(dtype).max:.3g}; "
                             f"scale the images as the model was trained")
        cast.append(xm)
    return cast[0], cast[1]


def check_pair_names(names: Sequence[str]) -> tuple[str, str]:
    """``names`` as a pair, A's and B's: a one-line ``ValueError`` unless they are two different
    strings (the table, the JSON and every message tell A from B by them)."""
    pair = tuple(names) if isinstance(names, (tuple, list)) else ()
    if len(pair) != 2 or not all(isinstance(n, str) and n.strip() for n in pair):
        raise ValueError(f"names must be two non-empty strings, A's and B's, got {names!r}")
    if pair[0] == pair[1]:
        raise ValueError(f"names must tell A from B, got {pair[0]!r} for both; give two different names")
    return pair


def compare_samples(
    a: dict[str, np.ndarray],
    b: dict[str, np.ndarray],
    group: GroupLike,
    *,
    names: tuple[str, str] = ("A", "B"),
    input_shape: tuple[int, ...] = (),
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
    settings: Optional[dict[str, Any]] = None,
    class_names: Optional[Sequence[str]] = None,
    n_logits: Optional[tuple[int, int]] = None,
) -> Comparison:
    """:func:`compare` from the per-sample values of both models (:func:`nets.auditing.sample_measures`,
    or an :class:`~nets.auditing.AuditResult`'s ``samples``), which must be of the same samples:
    raises ``ValueError`` when a measure has a different number of samples in A and B, or was
    measured for one of them only (``accuracy`` needs labels: give both or neither). ``n_logits``:
    A's and B's numbers of logits (:func:`logit_width`), recorded; where they differ, the
    comparison says so (:attr:`Comparison.width_note`) and a ``UserWarning`` is given."""
    as_group(group)  # refuses an unknown group
    record = group_record(group)  # a custom group by its spec, as given
    check_bootstrap(confidence, n_resamples, seed)
    names = check_pair_names(names)
    for k in (*SAMPLE_MEANS, "sigma_max_centered"):
        if k != "accuracy" and (k not in a or k not in b):
            raise ValueError(f"{k} is missing from {names[0] if k not in a else names[1]}'s values; give "
                             "nets.auditing.sample_measures' output for both")
        if (k in a) != (k in b):
            raise ValueError(f"{k} was measured for {names[0] if k in a else names[1]} only; measure both models "
                             "with labels or both without")
        if k in a and a[k].shape != b[k].shape:
            raise ValueError(f"{k} has {a[k].shape[0]} samples for {names[0]} but {b[k].shape[0]} for {names[1]}; "
                             "compare the two models on the same samples")
    check_same_group_and_images(a, b, as_group(group), names)
    boot = dict(confidence=confidence, n_resamples=n_resamples, seed=seed)
    effects: dict[str, Effect] = {}
    measured = [k for k in MEASURES if k != "accuracy" or k in a]  # no accuracy without labels
    for k in measured:
        kind = EFFECTS[k]
        if k in SAMPLE_MEANS:
            mean = share_mean if k == "accuracy" else bootstrap_mean  # an accuracy all right: an exact bound
            est_a, est_b = mean(a[k], **boot), mean(b[k], **boot)
            if k == "accuracy":  # models agreeing on every sample: an exact bound, not [0, 0]
                eff = share_difference(a[k], b[k], **boot)
            else:
                eff = paired_bootstrap((a[k], b[k]), mean_difference if kind == "difference" else _mean_ratio, **boot)
        else:  # sigma_per_scale: a ratio of means per model
            pair = ("sigma_max_centered", "logit_scale")
            est_a, est_b = (bootstrap_ratio(v[pair[0]], v[pair[1]], **boot) for v in (a, b))
            eff = paired_bootstrap((a[pair[0]], a[pair[1]], b[pair[0]], b[pair[1]]), _ratio_of_ratios, **boot)
        effects[k] = Effect(k, kind, est_a, est_b, eff, n=int(a[k if k in a else "logit_scale"].shape[0]))
    settings = {
        **(settings or {}), "confidence": confidence, "n_resamples": n_resamples, "seed": seed,
        "interval": "paired percentile bootstrap over samples (scipy.stats.bootstrap, paired=True, "
                    "method='percentile'); for accuracy, where every sample has one share (each model), or B's "
                    "differs from A's by the same amount on every sample (the effect), the exact bound of that "
                    "(nets.sample_bootstrap.share_mean, share_difference)",
        "n_samples_per_measure": {k: int(a[k].shape[0]) for k in SAMPLE_MEANS if k in a},
        "labels": "labels" in a,
        "effects": {k: ("B - A" if v == "difference" else "B / A") for k, v in EFFECTS.items()},
        "descriptions": DESCRIPTIONS,
    }
    out = Comparison(a=names[0], b=names[1], group=record, input_shape=tuple(input_shape),
                     n_samples=int(a["LI"].shape[0]), effects=effects, settings=settings,
                     classes=class_effects(a, b, names=names, **boot),
                     class_names=check_class_names(class_names, int(a["labels"].max()) + 1 if "labels" in a else 0),
                     n_logits=None if n_logits is None else (int(n_logits[0]), int(n_logits[1])),
                     disagreement=Disagreement.of(a["accuracy"], b["accuracy"]) if "accuracy" in a else None)
    if out.width_note:
        warnings.warn(out.width_note, stacklevel=2)
    return out


#: The settings :func:`nets.auditing.sample_measures` records that change the values themselves, and how.
MEASURE_SETTINGS = {"n_steps": "SI's integrated-gradients steps", "include_identity": "the identity in LI, DI and SI's "
                    "averages scales them by (|G| - 1) / |G|"}


def check_same_group_and_images(a: dict[str, np.ndarray], b: dict[str, np.ndarray], group: Group,
                                names: tuple[str, str] = ("A", "B")) -> None:
    """A one-line ``ValueError`` where ``a`` and ``b`` (:func:`nets.auditing.sample_measures`) were
    measured under another group than ``group`` (their ``group``, or their orbits' size), with other
    :data:`MEASURE_SETTINGS` than each other, or on other images than each other (``images_sha256``,
    where both were measured in one dtype: a float16 model's images are a cast of the others'); values
    that do not record them are not checked."""
    for name, v in zip(names, (a, b)):
        got = str(v["group"]) if "group" in v else None
        size = v["orbit_predictions"].shape[-1] if "orbit_predictions" in v else group.order
        if (got is not None and got != group.name) or size != group.order:
            was = f"group {got!r}" if got is not None else f"a group of {size} elements"
            raise ValueError(f"{name}'s values were measured under {was}, not {group.name!r} ({group.order} "
                             f"elements); measure both models under the group you compare them under")
    for setting, what in MEASURE_SETTINGS.items():
        if setting in a and setting in b and a[setting].item() != b[setting].item():
            raise ValueError(f"{names[0]} and {names[1]} were measured with different {setting} ({a[setting].item()} "
                             f"and {b[setting].item()}: {what}); measure both models with the same settings")
    same_dtype = str(a.get("images_dtype")) == str(b.get("images_dtype"))  # a float16 model's are its own cast
    hashes = [str(v["images_sha256"]) for v in (a, b) if "images_sha256" in v]
    if same_dtype and len(hashes) == 2 and hashes[0] != hashes[1]:
        raise ValueError(f"{names[0]} and {names[1]} were measured on different images (their SHA-256 differ); "
                         "compare the two models on the same samples")


def class_effects(a: dict[str, np.ndarray], b: dict[str, np.ndarray], *, names: tuple[str, str] = ("A", "B"),
                  confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0) -> dict[int, tuple[int, Effect]]:
    """Per class of the ``labels`` both sample dicts hold (:func:`nets.auditing.sample_measures`):
    its number of samples and the :class:`Effect` B - A on its orbit ``accuracy``, a paired bootstrap
    over that class's samples (:func:`~nets.sample_bootstrap.share_difference`: where both models agree on
    every sample of the class, the exact bound of that agreement). Empty when either lacks labels;
    ``ValueError`` when the labels differ."""
    if "labels" not in a or "labels" not in b:
        return {}
    if a["labels"].shape != b["labels"].shape or not np.array_equal(a["labels"], b["labels"]):
        raise ValueError(f"{names[0]} and {names[1]} were measured on different labels; "
                         "compare them on the same samples")
    boot = dict(confidence=confidence, n_resamples=n_resamples, seed=seed)
    out = {}
    for c in np.unique(a["labels"]):
        idx = a["labels"] == c
        va, vb = a["accuracy"][idx], b["accuracy"][idx]
        out[int(c)] = (int(idx.sum()), Effect(f"accuracy, class {int(c)}", "difference", share_mean(va, **boot),
                                              share_mean(vb, **boot),
                                              share_difference(va, vb, **boot), n=int(idx.sum())))
    return out
