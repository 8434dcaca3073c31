"""Invariance measures of Section 3.2 on any image classifier.

Every measure has the form ``measure(model, x, group, ...) -> tensor``:

* :func:`logit_invariance` (LI, Eq. 2), :func:`distribution_invariance` (DI, Eq. 1),
  :func:`saliency_invariance` (SI, Eq. 3): mean over samples by default,
  ``reduction="none"`` gives per-sample values ``(N,)`` (already averaged over
  the group elements), ``reduction="sum"`` sums over samples.
* :func:`orbit_measures`: accuracy over the full orbit, LI and DI from one pass.
* :func:`orbit_centroid_invariance`, :func:`layer_invariance_profile`: extras.

The saliency map, integrated gradients and smoothing live in :mod:`nets.attribution`, the
input sensitivity ``sigma_max(J)`` of Section 4.4 in :mod:`nets.sensitivity`; both are
re-exported here, so ``from nets.metrics import jacobian_spectral_norm`` keeps working.

Why the group averages skip the identity by default. Eq. 1-3 write the sums
over ``g ~ G``; the identity contributes ``0`` to LI and DI and exactly ``1`` to
SI. Table 1 reports SI = 0.17 for the data-augmented model on R4; including the
identity in a 4-element average would force SI >= 1/4 = 0.25 for absolute
(non-negative) saliency maps, whose cosine similarities are all >= 0. So the
paper's averages run over the non-identity elements, and so do ours
(``include_identity=True`` restores the full-orbit average: LI and DI are then
multiplied by ``(|G|-1)/|G|`` and SI becomes ``((|G|-1) SI + 1)/|G|``).

Conventions (:mod:`nets.measure_inputs`). Images are ``x: (N, *C, H, W)``: zero or more
channel axes, the group acting on the last two. The model is any ``nn.Module`` or callable
mapping ``(M, *C, H, W)`` to logits ``(M, classes)``; the orbit of a chunk of ``n`` samples
reaches it as one ``(|G| n, *C, H, W)`` batch (element-major). ``group`` is a
:class:`~nets.groups.Group` or its name (``"r4"``). ``x`` must be on the model's device and
have its dtype. Refused with a one-line ``ValueError``: images that are not floating or not
finite, a group that does not fit ``(H, W)``, a model that refuses the input shape (both
shapes named), an output that is not ``(M, classes)``, NaN or inf logits, and a model whose
output for one sample depends on the rest of the batch (batch normalization with batch
statistics, active dropout: call ``model.eval()``; the measures never change the mode).
Work is done in chunks of ``chunk_size`` samples (each chunk evaluates its whole orbit,
``|G|`` times as many inputs, and integrated gradients ``n_steps`` times as many), so memory
is bounded independently of ``N``. All returned tensors are detached.
"""

from __future__ import annotations

from typing import Callable, Literal, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import nn

from nets.attribution import (  # noqa: F401  (re-exported)
    DEFAULT_IG_CHUNK,
    IG_METHODS,
    Baseline,
    IGMethod,
    gaussian_kernel,
    gaussian_smooth,
    ig_quadrature,
    integrated_gradients,
    saliency_map,
)
from nets.groups import Group
from nets.layer_profile import layer_invariance_terms
from nets.measure_inputs import (  # noqa: F401  (cosine_similarity re-exported)
    Reduction,
    Target,
    as_group,
    check_chunk_size,
    check_images,
    check_model,
    check_reduction,
    chunks,
    class_targets,
    cosine_similarity,
    group_elements,
    model_logits,
    reduce,
)
from nets.measure_inputs import wide_dtype as _wide_dtype
from nets.pairwise import half_squared_logit_distance, kl_from_log_probs
from nets.sensitivity import (  # noqa: F401  (re-exported)
    DEFAULT_JAC_CHUNK,
    JacobianMethod,
    centered_logit_norm,
    class_common_logit_share,
    jacobian_spectral_norm,
)

__all__ = [
    "logit_invariance",
    "distribution_invariance",
    "orbit_measures",
    "orbit_terms",
    "ORBIT_TERMS",
    "saliency_invariance",
    "orbit_centroid_invariance",
    "layer_invariance_profile",
    "cosine_similarity",
    "saliency_map",
    "gaussian_smooth",
    "gaussian_kernel",
    "integrated_gradients",
    "ig_quadrature",
    "jacobian_spectral_norm",
    "class_common_logit_share",
    "centered_logit_norm",
]

SaliencyTarget = Literal["label", "predicted"]
GroupLike = Union[Group, str]

#: The per-sample terms :func:`orbit_terms` computes.
ORBIT_TERMS = ("correct", "LI", "DI")

# Default chunk size (samples per chunk). LI/DI evaluate |G| * chunk inputs at once.
DEFAULT_CHUNK = 1024


def _orbit_outputs(model: nn.Module, xc: torch.Tensor, group: Group) -> torch.Tensor:
    """Logits of the whole orbit of a chunk: ``(n, *C, H, W) -> (|G|, n, classes)``, ``[0]`` = identity.
    The model sees one ``(|G| n, *C, H, W)`` batch."""
    orbit = group.orbit(xc)  # (|G|, n, *C, H, W)
    G, n = orbit.shape[:2]
    out = model_logits(model, orbit.reshape(G * n, *xc.shape[1:]))
    return out.view(G, n, -1)


def _orbit_logit_measure(
    model: nn.Module,
    x: torch.Tensor,
    group: GroupLike,
    per_sample: Callable[[torch.Tensor], torch.Tensor],
    reduction: Reduction,
    chunk_size: int,
) -> torch.Tensor:
    """Shared body of the logit measures: validate, evaluate the orbit logits
    ``(|G|, n, C)`` chunk by chunk, map them to per-sample values ``(n,)`` with
    ``per_sample``, and reduce over the samples."""
    chunks_ = _orbit_logit_chunks(model, x, group, chunk_size)
    check_reduction(reduction)
    return reduce(torch.cat([per_sample(logits) for _, logits in chunks_]), reduction)


def _orbit_logit_chunks(model: nn.Module, x: torch.Tensor, group: GroupLike, chunk_size: int):
    """Validate ``x``, ``model`` and ``chunk_size`` now; return a lazy iterator of ``(start, logits)``
    with the orbit logits ``(|G|, n, C)`` of ``x[start : start + chunk_size]``."""
    group = as_group(group)
    check_images(x, group)
    check_model(model, x)
    chunk_size = check_chunk_size(chunk_size)
    return ((s, _orbit_outputs(model, x[s : s + chunk_size], group)) for s in chunks(x.shape[0], chunk_size))


# ---- LI, DI, orbit centroid, per-layer profile ---------------------------------------
def _li_per_sample(logits: torch.Tensor, elems: list[int]) -> torch.Tensor:
    """Orbit logits ``(|G|, n, C)`` -> per-sample LI ``(n,)``: mean over ``elems`` of 1/2 ||f(x) - f(gx)||^2."""
    return half_squared_logit_distance(logits[0], logits[elems]).mean(0)


def _di_per_sample(logits: torch.Tensor, elems: list[int]) -> torch.Tensor:
    """Orbit logits ``(|G|, n, C)`` -> per-sample DI ``(n,)``: mean over ``elems`` of KL(u_x || q_gx), in float64."""
    logp = F.log_softmax(logits.to(_wide_dtype(logits)), dim=-1)
    p0 = logp[0]
    kl = kl_from_log_probs(p0, logp[elems]).clamp_min(0)  # (|elems|, n)
    return kl.mean(0).to(logits.dtype)


@torch.no_grad()
def orbit_terms(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    group: GroupLike,
    *,
    include_identity: bool = False,
    chunk_size: int = DEFAULT_CHUNK,
    terms: Sequence[str] = ORBIT_TERMS,
) -> dict[str, torch.Tensor]:
    """Per-sample terms of :func:`orbit_measures` from one pass over the orbit logits:
    ``{"correct": (N,) long, "LI": (N,), "DI": (N,)}``, with ``correct[i]`` the number of
    elements ``g`` (all of ``G``) with ``argmax f(g x_i) = y_i`` (the one count behind every
    accuracy over the orbit, the trainer's :func:`nets.train.orbit_accuracy` included) and LI/DI
    as :func:`logit_invariance` / :func:`distribution_invariance` with ``reduction="none"``.
    x: ``(N, *C, H, W)``, y: ``(N,)`` integer labels in ``[0, classes)`` (else ``ValueError``).
    ``terms``: which of :data:`ORBIT_TERMS` to compute (and return).
    """
    unknown = sorted(set(terms) - set(ORBIT_TERMS))
    if unknown:
        raise ValueError(f"unknown orbit terms {unknown}; known: {', '.join(ORBIT_TERMS)}")
    group = as_group(group)
    chunks_ = _orbit_logit_chunks(model, x, group, chunk_size)  # validates x; nothing evaluated yet
    N = x.shape[0]
    if not isinstance(y, torch.Tensor) or y.shape != (N,):
        raise ValueError(f"y must be a tensor of shape ({N},) matching x, got "
                         f"{tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__}")
    if y.dtype.is_floating_point or y.dtype.is_complex or y.dtype == torch.bool:
        raise ValueError(f"y must hold integer class labels, got dtype {y.dtype}")
    elems = group_elements(group, include_identity)
    y = y.to(x.device)
    per_sample = {"correct": lambda logits, s: (logits.argmax(-1) == y[s : s + logits.shape[1]]).sum(0),
                  "LI": lambda logits, s: _li_per_sample(logits, elems),
                  "DI": lambda logits, s: _di_per_sample(logits, elems)}
    out: dict[str, list[torch.Tensor]] = {t: [] for t in ORBIT_TERMS if t in terms}
    for s, logits in chunks_:  # logits: (|G|, n, C)
        if s == 0 and (int(y.min()) < 0 or int(y.max()) >= logits.shape[-1]):
            raise ValueError(f"labels y must be in [0, {logits.shape[-1]}) for a model with {logits.shape[-1]} "
                             f"classes, got values in [{int(y.min())}, {int(y.max())}]")
        for t, values in out.items():
            values.append(per_sample[t](logits, s))
    return {t: torch.cat(values) for t, values in out.items()}


def orbit_measures(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    group: GroupLike,
    *,
    include_identity: bool = False,
    chunk_size: int = DEFAULT_CHUNK,
) -> dict[str, float]:
    """Accuracy over the full orbit, LI (Eq. 2) and DI (Eq. 1) from one pass over the orbit logits.

    The same numbers as ``nets.train.orbit_accuracy``, :func:`logit_invariance` and
    :func:`distribution_invariance` (up to float round-off in the batching), at a third
    of their cost: each orbit input is classified once. x: ``(N, *C, H, W)``, y: ``(N,)``.
    Returns ``{"accuracy", "LI", "DI"}`` (LI/DI averaged as those functions do); the
    per-sample terms are :func:`orbit_terms`.
    """
    group = as_group(group)
    t = orbit_terms(model, x, y, group, include_identity=include_identity, chunk_size=chunk_size)
    return {"accuracy": int(t["correct"].sum()) / (group.order * x.shape[0]), "LI": float(t["LI"].mean()),
            "DI": float(t["DI"].mean())}


@torch.no_grad()
def logit_invariance(
    model: nn.Module,
    x: torch.Tensor,
    group: GroupLike,
    *,
    include_identity: bool = False,
    reduction: Reduction = "mean",
    chunk_size: int = DEFAULT_CHUNK,
) -> torch.Tensor:
    """Logit invariance error LI_f (Eq. 2): mean over samples ``x`` and group
    elements ``g`` of ``1/2 ||f(x) - f(g x)||_2^2``.

    The average over ``g`` skips the identity unless ``include_identity=True``
    (see the module docstring). x: ``(N, *C, H, W)``. Returns a scalar, or ``(N,)``
    with ``reduction="none"``.
    """
    elems = group_elements(as_group(group), include_identity)
    return _orbit_logit_measure(model, x, group, lambda z: _li_per_sample(z, elems), reduction, chunk_size)


@torch.no_grad()
def distribution_invariance(
    model: nn.Module,
    x: torch.Tensor,
    group: GroupLike,
    *,
    include_identity: bool = False,
    reduction: Reduction = "mean",
    chunk_size: int = DEFAULT_CHUNK,
) -> torch.Tensor:
    """Predictive distribution invariance error DI_f (Eq. 1): mean over ``x`` and
    ``g`` of ``KL(u_x || q_{gx})`` with ``u_x = softmax f(x)``, ``q_{gx} = softmax f(gx)``.

    Computed from ``log_softmax`` (``sum_c u_c (log u_c - log q_c)``), which is
    stable for large logits, in float64: KL is second order in the logit
    difference, but round-off in the log-probabilities enters at first order,
    so float32 would report ~1e-8 for logits equal to round-off (a weight-tied
    model). Round-off that makes a value slightly negative is clamped to 0
    (KL >= 0). The result has the logits' dtype. Invariant to adding a per-sample constant to the
    logits, unlike LI, so ``LI = 0`` implies ``DI = 0`` but not conversely.
    x: ``(N, *C, H, W)``. Returns a scalar, or ``(N,)`` with ``reduction="none"``.
    """
    elems = group_elements(as_group(group), include_identity)
    return _orbit_logit_measure(model, x, group, lambda z: _di_per_sample(z, elems), reduction, chunk_size)


@torch.no_grad()
def orbit_centroid_invariance(
    model: nn.Module,
    x: torch.Tensor,
    group: GroupLike,
    *,
    reduction: Reduction = "mean",
    chunk_size: int = DEFAULT_CHUNK,
) -> torch.Tensor:
    """Spread of the logits over the orbit around their centroid:
    ``1/|G| sum_g 1/2 ||f(gx) - c(x)||^2`` with ``c(x) = 1/|G| sum_h f(hx)``.

    Unlike LI, which measures distances to the reference point ``f(x)``, this
    depends on the orbit only (the same for every ``x`` in one orbit), and equals
    the all-pairs average ``1/(2|G|^2) sum_{g,h} 1/2 ||f(gx) - f(hx)||^2``.
    x: ``(N, *C, H, W)``. Returns a scalar, or ``(N,)`` with ``reduction="none"``.
    """

    def per_sample(logits: torch.Tensor) -> torch.Tensor:
        c = logits.mean(0, keepdim=True)
        return 0.5 * (logits - c).pow(2).sum(-1).mean(0)

    return _orbit_logit_measure(model, x, group, per_sample, reduction, chunk_size)


@torch.no_grad()
def layer_invariance_profile(
    model: nn.Module,
    x: torch.Tensor,
    group: GroupLike,
    *,
    include_identity: bool = False,
    chunk_size: int = DEFAULT_CHUNK,
    layers: Optional[Sequence[str]] = None,
) -> torch.Tensor:
    """Relative logit-invariance error of every hidden layer and of the logits.

    For the activations ``a_l`` after layer ``l`` (and the logits last):

        r_l = E_{x,g} ||a_l(x) - a_l(gx)||^2 / E_{x,g} (||a_l(x)||^2 + ||a_l(gx)||^2) / 2,

    averaged over the non-identity elements by default. ``r_l = 0`` for an
    invariant layer; two orthogonal activations of equal norm give 2 (the
    maximum for non-negative ReLU activations). Shows where invariance builds
    up: a weight-tied model is exactly invariant from layer 1 on.

    Which activations: with ``layers=None`` and a model that provides
    ``hidden_activations(x) -> list of (M, d_l)`` (as :class:`nets.models.MLP`
    does), those (after each ReLU). Otherwise the outputs of the named submodules
    ``layers`` read with forward hooks (default
    :func:`nets.layer_profile.default_layers`; the names and the per-sample terms
    come from :func:`nets.layer_profile.layer_invariance_terms`, summed here in
    float64). x: ``(N, *C, H, W)``. Returns ``(L + 1,)``, the logits last; NaN for
    a layer whose activations are all zero.
    """
    group = as_group(group)
    check_images(x, group)
    check_model(model, x)
    chunk_size = check_chunk_size(chunk_size)
    elems = group_elements(group, include_identity)
    if layers is not None or not callable(getattr(model, "hidden_activations", None)):
        _, num_i, den_i = layer_invariance_terms(model, x, group, elems, layers=layers, chunk_size=chunk_size)
        return (num_i.sum(0) / den_i.sum(0)).to(x.dtype)
    num: Optional[torch.Tensor] = None
    den: Optional[torch.Tensor] = None
    for s in chunks(x.shape[0], chunk_size):
        xc = x[s : s + chunk_size]
        orbit = group.orbit(xc)
        G, n = orbit.shape[:2]
        flat = orbit.reshape(G * n, *xc.shape[1:])
        acts = list(model.hidden_activations(flat)) + [model_logits(model, flat)]
        nums, dens = [], []
        for a in acts:
            a = a.reshape(G, n, -1)
            ref, other = a[0], a[elems]
            nums.append((other - ref).pow(2).sum(-1).sum())
            dens.append(0.5 * (ref.pow(2).sum(-1) + other.pow(2).sum(-1)).sum())
        num = torch.stack(nums) if num is None else num + torch.stack(nums)
        den = torch.stack(dens) if den is None else den + torch.stack(dens)
    assert num is not None and den is not None
    return num / den


# ---- saliency invariance ---------------------------------------------------------------


def _check_invariant_baseline(baseline: Baseline, group: Group, H: int, W: int, like: torch.Tensor) -> Baseline:
    """SI needs ``g b = b``; accept a number, an ``(H, W)`` tensor (the same for every channel) or a
    tensor of one image's shape ``(*C, H, W)``, fixed by the group."""
    if baseline is None or (isinstance(baseline, (int, float)) and not isinstance(baseline, bool)):
        return baseline
    image_shape = tuple(like.shape[1:])
    if not isinstance(baseline, torch.Tensor) or tuple(baseline.shape) not in ((H, W), (1, H, W), image_shape):
        raise ValueError(f"saliency_invariance needs a baseline that is None, a number, an ({H}, {W}) tensor "
                         f"or one of shape {image_shape}")
    b = baseline.to(device=like.device, dtype=like.dtype)
    b = b.reshape(image_shape) if tuple(b.shape) == image_shape and len(image_shape) > 2 else b.reshape(H, W)
    if not bool((group.orbit(b) == b).all()):
        raise ValueError(
            f"the baseline must be invariant under {group.name} (g b = b for every g), otherwise "
            f"saliency maps of an invariant model are not equivariant"
        )
    return b


def saliency_invariance(
    model: nn.Module,
    x: torch.Tensor,
    y: Optional[torch.Tensor],
    group: GroupLike,
    *,
    target: SaliencyTarget = "label",
    n_steps: int = 50,
    method: IGMethod = "gausslegendre",
    baseline: Baseline = None,
    include_identity: bool = False,
    reduction: Reduction = "mean",
    threshold: Optional[float] = 0.9,
    smooth: bool = True,
    chunk_size: int = DEFAULT_IG_CHUNK,
) -> torch.Tensor:
    """Saliency invariance similarity SI_f (Eq. 3): mean over ``x`` and ``g`` of
    the cosine similarity between ``m(x)`` and ``g^{-1} m(gx)`` (flattened maps).

    ``m`` is :func:`saliency_map`. The target class is the true label ``y``
    (``target="label"``, the same for the whole orbit) or each input's own
    predicted class (``target="predicted"``, ``argmax f(gx)`` for ``m(gx)``; y
    may be None). The baseline must be fixed by the group (zero by default).
    A map that is all zero has no direction; its similarity is defined as 0.

    With absolute maps every similarity is in ``[0, 1]``; the identity would
    contribute exactly 1, hence the default average over non-identity elements
    (module docstring). Multi-channel images: ``m`` sums ``|IG|`` over the channel
    axes (:func:`saliency_map`), so maps are ``(H, W)`` and ``g^{-1}`` realigns them on
    the spatial axes. x: ``(N, *C, H, W)``, y: ``(N,)`` integer labels. Returns a
    scalar, or ``(N,)`` with ``reduction="none"``.
    """
    group = as_group(group)
    N, H, W = check_images(x, group)
    check_model(model, x)
    check_reduction(reduction)
    chunk_size = check_chunk_size(chunk_size)
    if target not in ("label", "predicted"):
        raise ValueError(f"target must be 'label' or 'predicted', got {target!r}")
    if target == "label":
        if y is None:
            raise ValueError("target='label' needs labels y of shape (N,)")
        y = class_targets(y, N, x.device)
    baseline = _check_invariant_baseline(baseline, group, H, W, x)
    elems = group_elements(as_group(group), include_identity)
    G = group.order
    inv = torch.tensor([group.inverse(g) for g in group.elements], device=x.device)
    out = []
    for s in chunks(N, chunk_size):
        xc = x[s : s + chunk_size]
        n = xc.shape[0]
        flat = group.orbit(xc).reshape(G * n, *xc.shape[1:])  # element-major: flat[g*n + i] = g x_i
        if target == "label":
            assert y is not None
            tgt = y[s : s + n].repeat(G)
        else:
            with torch.no_grad():
                tgt = torch.cat([model_logits(model, flat[i : i + chunk_size]).argmax(-1)
                                 for i in range(0, G * n, chunk_size)])
        maps = saliency_map(model, flat, tgt, n_steps=n_steps, baseline=baseline, threshold=threshold,
                            smooth=smooth, method=method, chunk_size=chunk_size)
        aligned = group.act(maps, inv.repeat_interleave(n)).view(G, n, H * W)  # g^{-1} m(g x)
        out.append(cosine_similarity(aligned[0], aligned[elems]).mean(0))
    return reduce(torch.cat(out), reduction)


