"""Audit any image classifier: is it genuinely invariant, and where does invariance build up?

:func:`audit` measures one model on labelled images under one group and returns an
:class:`AuditResult`: the paper's LI (Eq. 2), DI (Eq. 1), SI (Eq. 3), the input sensitivity
``sigma_max(J)`` (Section 4.4), the accuracy over the full orbit, the logit scale and the
sensitivity per unit of it (ours, beyond the paper: a small ``sigma_max`` may be only small
logits; docs/findings.md), the accuracy over the orbit per class with the class each is most
often taken for (ours: :mod:`nets.class_accuracy`), and the per-layer relative
invariance error ``r_l`` of :func:`nets.metrics.layer_invariance_profile` over the model's named
submodules (forward hooks; :func:`nets.layer_names.default_layers`). Every number comes with a
95% bootstrap interval over the samples.

Intervals: :mod:`nets.sample_bootstrap` (percentile bootstrap over the samples, the model fixed).

Conventions of :mod:`nets.measure_inputs`: x ``(N, *C, H, W)``, any ``nn.Module`` or callable
returning logits ``(N, classes)``, group a :class:`~nets.groups.Group` or its name. Errors are
``ValueError`` with one line naming the problem. Usage: ``docs/audit.md``.
"""

from __future__ import annotations

import hashlib
from typing import Callable, Optional, Sequence, Union

import numpy as np
import torch
from torch import nn

from nets.groups import Group, group_record
from nets.layer_names import unhookable
from nets.layer_profile import layer_invariance_terms
from nets.measure_inputs import as_group, check_images, group_elements, model_chunk
from nets.model_checks import check_model, logit_width
from nets.class_accuracy import check_class_names, class_breakdown_from_predictions
from nets.metrics import ORBIT_TERMS, orbit_terms, saliency_invariance
from nets.models import CenteredLogits
from nets.precision import exact_float32
from nets.sample_bootstrap import (  # noqa: F401  (re-exported: the audit's intervals)
    MIN_RESAMPLES,
    Estimate,
    bootstrap_mean,
    bootstrap_ratio,
    check_bootstrap,
    fmt_value,
    paired_bootstrap,
    ratio_of_means,
    share_mean,
)
from nets.sensitivity import auto_method, centered_logit_norm, jacobian_spectral_norm
from nets.audit_result import (  # noqa: F401  (re-exported: where they were defined before)
    DESCRIPTIONS, IGNORES_INPUT, MEASURES, NO_LAYERS, UNLABELLED_NOTE, AuditResult)

__all__ = ["Estimate", "AuditResult", "audit", "sample_measures", "SAMPLE_MEANS", "MEASURES", "UNLABELLED_NOTE",
           "check_names_have_labels", "images_fingerprint", "bootstrap_mean",
           "bootstrap_ratio", "paired_bootstrap", "ratio_of_means", "check_bootstrap", "MIN_RESAMPLES"]


def check_names_have_labels(y: Optional[torch.Tensor], class_names: Optional[Sequence[str]]) -> None:
    """Refuse ``class_names`` without labels ``y`` (they name the per-class table, which needs labels)."""
    if y is None and class_names is not None:
        raise ValueError("class_names name the classes of the per-class table, which needs labels y; "
                         "pass y or leave out class_names")


def _first(x: torch.Tensor, n: Optional[int], what: str) -> torch.Tensor:
    """The first ``n`` samples of ``x`` (all for ``None``); ``n`` must be a positive int."""
    if n is None:
        return x
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"{what} must be a positive int or None (all samples), got {n!r}")
    return x[: int(n)]


#: The measures of :func:`audit` that are means of per-sample values (``sigma_per_scale`` is a ratio).
SAMPLE_MEANS = ("accuracy", "LI", "DI", "SI", "sigma_max", "logit_scale")


def sample_measures(
    model: Union[nn.Module, Callable[[torch.Tensor], torch.Tensor]],
    x: torch.Tensor,
    y: Optional[torch.Tensor],
    group: Union[Group, str],
    *,
    n_steps: int = 50,
    si_samples: Optional[int] = None,
    sigma_samples: Optional[int] = None,
    include_identity: bool = False,
    chunk_size: int = 256,
) -> dict[str, np.ndarray]:
    """The per-sample values behind :func:`audit`'s measures, float64 ``(n,)`` arrays: ``accuracy``
    (fraction of the orbit classified correctly), ``LI``, ``DI`` (all ``N`` samples), ``SI`` (the
    first ``si_samples``), ``sigma_max``, ``sigma_max_centered`` (of the centered logits) and
    ``logit_scale`` (the first ``sigma_samples``); ``orbit_predictions``, int64 ``(N, |G|)``
    (the predicted class of every ``g x``, :mod:`nets.class_accuracy`) and ``labels``, int64 ``(N,)``
    (``y``); ``group`` (its name), ``images_sha256`` (:func:`images_fingerprint` of ``x``) and
    ``images_dtype``, 0-d string arrays, and the settings the values depend on, ``n_steps`` and
    ``include_identity`` (0-d int and bool arrays), for :func:`nets.audit_compare.compare_samples` to pair
    only values of one group, images and settings. Without labels (``y=None``) there is no
    ``accuracy`` and no ``labels``, and SI takes
    each input's own predicted class as its target. Arguments as :func:`audit`'s; raises its
    ``ValueError``s."""
    group = as_group(group)
    check_images(x, group)
    labelled = y is not None
    with exact_float32(x.device):  # on CUDA: IEEE float32, cuDNN deterministic (nets.precision)
        check_model(model, x)
        terms = orbit_terms(model, x, y, group, include_identity=include_identity, chunk_size=chunk_size,
                            terms=(*(ORBIT_TERMS if labelled else ("LI", "DI")), "predictions"))
        xs = _first(x, si_samples, "si_samples")
        ys = _first(y, si_samples, "si_samples") if labelled else None
        si = saliency_invariance(model, xs, ys, group, target="label" if labelled else "predicted",
                                 n_steps=n_steps, include_identity=include_identity, reduction="none",
                                 chunk_size=max(1, chunk_size // 4))
        x_sigma = _first(x, sigma_samples, "sigma_samples")
        sigma = jacobian_spectral_norm(model, x_sigma, chunk_size=chunk_size)
        sigma_centered = jacobian_spectral_norm(CenteredLogits(model), x_sigma, chunk_size=chunk_size)
        with torch.no_grad():
            scale = torch.cat([centered_logit_norm(model(c)) for c in x_sigma.split(model_chunk(model, chunk_size))])
    per_sample = {
        **({"accuracy": terms["correct"].double() / group.order} if labelled else {}),
        "LI": terms["LI"], "DI": terms["DI"], "SI": si, "sigma_max": sigma, "logit_scale": scale,
        "sigma_max_centered": sigma_centered,
    }
    return {**{k: v.detach().double().cpu().numpy() for k, v in per_sample.items()},
            "orbit_predictions": terms["predictions"].cpu().numpy(),
            **({"labels": y.cpu().long().numpy()} if labelled else {}),
            "group": np.array(group.name), "images_sha256": np.array(images_fingerprint(x)),
            "images_dtype": np.array(str(x.dtype).removeprefix("torch.")),
            "n_steps": np.array(int(n_steps)), "include_identity": np.array(bool(include_identity))}


def images_fingerprint(x: torch.Tensor) -> str:
    """SHA-256 of images ``x`` (dtype, shape and bytes): :func:`sample_measures` records it, so that
    :func:`nets.audit_compare.compare_samples` pairs two models' values of the same images only."""
    h = hashlib.sha256(f"{x.dtype}{tuple(x.shape)}".encode())
    for part in x.detach().split(1024):  # a chunk on the host at a time, not the whole set
        h.update(part.cpu().contiguous().reshape(-1).view(torch.uint8).numpy())
    return h.hexdigest()


def audit(
    model: Union[nn.Module, Callable[[torch.Tensor], torch.Tensor]],
    x: torch.Tensor,
    y: Optional[torch.Tensor],
    group: Union[Group, str],
    *,
    n_steps: int = 50,
    si_samples: Optional[int] = None,
    sigma_samples: Optional[int] = None,
    layers: Optional[Sequence[str]] = None,
    include_identity: bool = False,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
    name: Optional[str] = None,
    chunk_size: int = 256,
    class_names: Optional[Sequence[str]] = None,
) -> AuditResult:
    """Measure ``model`` on images ``x (N, *C, H, W)`` with labels ``y (N,)`` under ``group``.

    LI, DI and accuracy use all ``N`` samples, SI the first ``si_samples`` and ``sigma_max`` the
    first ``sigma_samples`` (default: all; SI costs ``|G| n_steps`` forward/backward passes per
    sample); ``logit_scale`` and ``sigma_per_scale`` use the sigma samples too (the latter the ratio
    of the means of sigma_max of the centered logits ``f - mean_c f_c`` and of their norm, as
    ``python -m nets scale``; its interval the paired bootstrap of that ratio). SI uses the true
    labels, ``n_steps`` Gauss-Legendre points and a zero baseline, as Table 1. Averages over ``g``
    skip the identity unless ``include_identity`` (see :mod:`nets.metrics`). The layer profile is
    over ``layers`` (names of submodules; default :func:`nets.layer_names.default_layers`) and
    needs an ``nn.Module``. Intervals: module docstring. ``class_names`` (label order) name the
    classes of the per-class table.

    Unlabelled images (``y=None``): LI, DI, SI, sigma_max and the layer profile need no labels, so
    they are measured as above, except that SI's saliency maps take each input's own predicted class
    (``argmax f(g x)`` for ``m(g x)``) as their target; there is no ``accuracy`` and no per-class
    table (``classes`` is ``None``; ``settings["labels"]`` says which). Raises ``ValueError`` (one
    line) for any input the measures refuse, and for ``class_names`` without labels.
    """
    record, group = group_record(group), as_group(group)  # a custom group recorded by its spec, as given
    check_bootstrap(confidence, n_resamples, seed)  # before the work, not after it
    check_class_names(class_names)
    check_names_have_labels(y, class_names)
    per_sample = sample_measures(model, x, y, group, n_steps=n_steps, si_samples=si_samples,
                                 sigma_samples=sigma_samples, include_identity=include_identity, chunk_size=chunk_size)
    boot = dict(confidence=confidence, n_resamples=n_resamples, seed=seed)
    measured = [k for k in SAMPLE_MEANS if k in per_sample]  # no accuracy without labels
    measures = {k: (share_mean if k == "accuracy" else bootstrap_mean)(per_sample[k], **boot) for k in measured}
    measures["sigma_per_scale"] = bootstrap_ratio(per_sample["sigma_max_centered"], per_sample["logit_scale"], **boot)
    names, layer_types, layers_left_out, prof = [], {}, {}, []
    with exact_float32(x.device):  # the layer profile's forward passes, as sample_measures'
        width = logit_width(model, x)  # the confusion matrix's size, and how sigma_max was computed
        if unhookable(model) is None:
            names, num, den, layers_left_out = layer_invariance_terms(
                model, x, group, group_elements(group, include_identity), layers=layers, chunk_size=chunk_size)
    if names:
        modules = dict(model.named_modules())
        layer_types = {n: type(modules[n]).__name__ for n in names if n in modules}
        prof = [(n, bootstrap_ratio(num[:, j].cpu().numpy(), den[:, j].cpu().numpy(), **boot))
                for j, n in enumerate(names)]
    settings = {
        "n_steps": n_steps, "include_identity": include_identity, "confidence": confidence, "n_classes": width,
        "sigma_max_method": {"jacrev": "jacrev: the dense Jacobian, exact",
                             "power": "power iteration on J^T J, a lower bound within its tolerance"}[auto_method(width)],
        "n_resamples": n_resamples, "seed": seed,
        "interval": "percentile bootstrap over samples (scipy.stats.bootstrap, method='percentile'); for "
                    "accuracy, where every sample has one share (all right, say), the exact bound of that "
                    "(nets.sample_bootstrap.share_mean)",
        "n_samples_per_measure": {**{k: int(per_sample[k].shape[0]) for k in measured},
                                  "sigma_per_scale": int(per_sample["logit_scale"].shape[0])},
        "layer_types": layer_types,
        "layers_left_out": layers_left_out,
        **({"no_layer_profile": why} if (why := unhookable(model)) is not None else {}),
        "labels": y is not None,
        "saliency": "|IG| summed over channel axes, threshold 0.9 of the maximum, 3x3 Gaussian sigma 1, "
                    f"{'true-label' if y is not None else 'predicted-class (no labels)'} target, zero baseline",
    }
    classes = None if y is None else class_breakdown_from_predictions(
        per_sample["orbit_predictions"], per_sample["labels"], record, n_classes=width, class_names=class_names,
        **boot)
    return AuditResult(model=name or type(model).__name__, group=record, input_shape=tuple(x.shape),
                       n_samples=int(x.shape[0]), measures=measures, layers=prof, settings=settings,
                       samples=per_sample, classes=classes)
