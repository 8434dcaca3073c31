"""Invariance measures of Section 3.2 and the sensitivity measure of Section 4.4.

Every measure has the form ``measure(model, x, group, ...) -> tensor``:

* :func:`logit_invariance` (LI, Eq. 2), :func:`distribution_invariance` (DI, Eq. 1),
  :func:`saliency_invariance` (SI, Eq. 3): mean over samples by default,
  ``reduction="none"`` gives per-sample values ``(N,)`` (already averaged over
  the group elements), ``reduction="sum"`` sums over samples.
* :func:`orbit_centroid_invariance`, :func:`layer_invariance_profile`: extras.
* :func:`jacobian_spectral_norm`: ``sigma_max`` of the input Jacobian per sample (Section 4.4).

The saliency map ``m_f`` of Section 4.1 is :func:`saliency_map` (absolute
integrated gradients, threshold at 0.9 of the per-map maximum, 3x3 Gaussian with
sigma 1), built on :func:`integrated_gradients` (captum-compatible) and
:func:`gaussian_smooth`.

Why the group averages skip the identity by default. Eq. 1-3 write the sums
over ``g ~ G``; the identity contributes ``0`` to LI and DI and exactly ``1`` to
SI. Table 1 reports SI = 0.17 for the data-augmented model on R4; including the
identity in a 4-element average would force SI >= 1/4 = 0.25 for absolute
(non-negative) saliency maps, whose cosine similarities are all >= 0. So the
paper's averages run over the non-identity elements, and so do ours
(``include_identity=True`` restores the full-orbit average: LI and DI are then
multiplied by ``(|G|-1)/|G|`` and SI becomes ``((|G|-1) SI + 1)/|G|``).

Conventions. Images are ``x: (N, H, W)``. The model maps ``(M, H, W)`` to logits
``(M, C)``; ``x`` must be on the model's device and dtype. Work is done in chunks
of ``chunk_size`` samples (each chunk evaluates its whole orbit, ``|G|`` times
as many inputs, and integrated gradients ``n_steps`` times as many), so memory is
bounded independently of ``N``. The model's train/eval mode is never changed.
All returned tensors are detached.
"""

from __future__ import annotations

import math
import time
from typing import Callable, Literal, Optional, Sequence, Union, overload

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nets.groups import Group
from nets.train.losses import half_squared_logit_distance, kl_from_log_probs

__all__ = [
    "logit_invariance",
    "distribution_invariance",
    "orbit_measures",
    "saliency_invariance",
    "orbit_centroid_invariance",
    "layer_invariance_profile",
    "saliency_map",
    "gaussian_smooth",
    "gaussian_kernel",
    "integrated_gradients",
    "ig_quadrature",
    "jacobian_spectral_norm",
    "class_common_logit_share",
]

Reduction = Literal["mean", "none", "sum"]
IGMethod = Literal["riemann_trapezoid", "gausslegendre", "riemann_left", "riemann_right", "riemann_middle"]
JacobianMethod = Literal["auto", "jacrev", "power"]
SaliencyTarget = Literal["label", "predicted"]
Target = Union[int, torch.Tensor, Sequence[int]]
Baseline = Union[None, float, int, torch.Tensor]

IG_METHODS: tuple[str, ...] = ("riemann_trapezoid", "gausslegendre", "riemann_left", "riemann_right", "riemann_middle")

# Default chunk sizes (samples per chunk). LI/DI evaluate |G| * chunk inputs at
# once; integrated gradients n_steps * chunk (64 * 50 * 36 * 36 floats = 16 MB).
DEFAULT_CHUNK = 1024
DEFAULT_IG_CHUNK = 64
DEFAULT_JAC_CHUNK = 256
_FINITE_CHECK_CHUNK = 4096


# ---- input checks ---------------------------------------------------------------


def _check_chunk_size(chunk_size: int) -> int:
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive int, got {chunk_size!r}")
    return int(chunk_size)


def _check_finite_nonempty(x: torch.Tensor, what: str = "x") -> None:
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{what} must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim < 1 or x.shape[0] == 0:
        raise ValueError(f"{what} is an empty batch (shape {tuple(x.shape)}); need at least one sample")
    if x.is_floating_point() or x.is_complex():
        # chunked, so the boolean mask of a 50k-image test set is never held at once
        for start in range(0, x.shape[0], _FINITE_CHECK_CHUNK):
            if not bool(torch.isfinite(x[start:start + _FINITE_CHECK_CHUNK]).all()):
                raise ValueError(f"{what} contains NaN or inf values")


def _check_images(x: torch.Tensor, group: Optional[Group] = None) -> tuple[int, int, int]:
    """Validate ``x: (N, H, W)`` (non-empty, finite, acted on by ``group``); return ``(N, H, W)``."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim != 3:
        raise ValueError(f"x must be a batch of images of shape (N, H, W), got {tuple(x.shape)}")
    N, H, W = x.shape
    if N == 0:
        raise ValueError(f"x is an empty batch (shape {tuple(x.shape)}); need at least one sample")
    if group is not None:
        if not isinstance(group, Group):
            raise ValueError(f"group must be a nets.groups.Group, got {type(group).__name__}")
        group.check_shape(H, W)  # the group's own ValueError (e.g. non-square for R4)
    _check_finite_nonempty(x)
    return N, H, W


def _check_reduction(reduction: str) -> None:
    if reduction not in ("mean", "none", "sum"):
        raise ValueError(f"reduction must be 'mean', 'none' or 'sum', got {reduction!r}")


def _reduce(values: torch.Tensor, reduction: Reduction) -> torch.Tensor:
    if reduction == "mean":
        return values.mean()
    if reduction == "sum":
        return values.sum()
    return values


def _elements(group: Group, include_identity: bool) -> list[int]:
    elems = [g for g in group.elements if include_identity or g != group.identity]
    if not elems:  # the trivial group without its identity: nothing to average over
        raise ValueError(f"{group.name} has no non-identity elements; use include_identity=True")
    return elems


def _wide_dtype(t: torch.Tensor) -> torch.dtype:
    """float64 where the device has it (MPS does not), for round-off-sensitive sums."""
    return torch.float32 if t.device.type == "mps" else torch.float64


def _chunks(n: int, chunk_size: int) -> range:
    return range(0, n, chunk_size)


def _orbit_outputs(model: nn.Module, xc: torch.Tensor, group: Group) -> torch.Tensor:
    """Logits of the whole orbit of a chunk: ``(n, H, W) -> (|G|, n, C)``, ``[0]`` = identity."""
    orbit = group.orbit(xc)  # (|G|, n, H, W)
    G, n = orbit.shape[:2]
    out = model(orbit.reshape(G * n, *xc.shape[1:]))
    if out.ndim != 2 or out.shape[0] != G * n:
        raise ValueError(f"model must map (M, H, W) to logits (M, C); got output of shape {tuple(out.shape)}")
    return out.view(G, n, -1)


def _orbit_logit_measure(
    model: nn.Module,
    x: torch.Tensor,
    group: Group,
    per_sample: Callable[[torch.Tensor], torch.Tensor],
    reduction: Reduction,
    chunk_size: int,
) -> torch.Tensor:
    """Shared body of the logit measures: validate, evaluate the orbit logits
    ``(|G|, n, C)`` chunk by chunk, map them to per-sample values ``(n,)`` with
    ``per_sample``, and reduce over the samples."""
    chunks = _orbit_logit_chunks(model, x, group, chunk_size)
    _check_reduction(reduction)
    return _reduce(torch.cat([per_sample(logits) for _, logits in chunks]), reduction)


def _orbit_logit_chunks(model: nn.Module, x: torch.Tensor, group: Group, chunk_size: int):
    """Validate ``x`` and ``chunk_size`` now; return a lazy iterator of ``(start, logits)``
    with the orbit logits ``(|G|, n, C)`` of ``x[start : start + chunk_size]``."""
    _check_images(x, group)
    chunk_size = _check_chunk_size(chunk_size)
    return ((s, _orbit_outputs(model, x[s : s + chunk_size], group)) for s in _chunks(x.shape[0], chunk_size))


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
def orbit_measures(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    group: Group,
    *,
    include_identity: bool = False,
    chunk_size: int = DEFAULT_CHUNK,
) -> dict[str, float]:
    """Accuracy over the full orbit, LI (Eq. 2) and DI (Eq. 1) from one pass over the orbit logits.

    The same numbers as ``nets.train.orbit_accuracy``, :func:`logit_invariance` and
    :func:`distribution_invariance` (up to float round-off in the batching), at a third
    of their cost: each orbit input is classified once. x: ``(N, H, W)``, y: ``(N,)``.
    Returns ``{"accuracy", "LI", "DI"}`` (LI/DI averaged as those functions do).
    """
    chunks = _orbit_logit_chunks(model, x, group, chunk_size)  # validates x; nothing evaluated yet
    N = x.shape[0]
    if not isinstance(y, torch.Tensor) or y.shape != (N,):
        raise ValueError(f"y must be a tensor of shape ({N},) matching x, got "
                         f"{tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__}")
    elems = _elements(group, include_identity)
    y = y.to(x.device)
    correct, li, di = 0, [], []
    for s, logits in chunks:  # logits: (|G|, n, C)
        correct += int((logits.argmax(-1) == y[s : s + logits.shape[1]]).sum())
        li.append(_li_per_sample(logits, elems))
        di.append(_di_per_sample(logits, elems))
    return {"accuracy": correct / (group.order * N), "LI": float(torch.cat(li).mean()),
            "DI": float(torch.cat(di).mean())}


@torch.no_grad()
def logit_invariance(
    model: nn.Module,
    x: torch.Tensor,
    group: Group,
    *,
    include_identity: bool = False,
    reduction: Reduction = "mean",
    chunk_size: int = DEFAULT_CHUNK,
) -> torch.Tensor:
    """Logit invariance error LI_f (Eq. 2): mean over samples ``x`` and group
    elements ``g`` of ``1/2 ||f(x) - f(g x)||_2^2``.

    The average over ``g`` skips the identity unless ``include_identity=True``
    (see the module docstring). x: ``(N, H, W)``. Returns a scalar, or ``(N,)``
    with ``reduction="none"``.
    """
    elems = _elements(group, include_identity)
    return _orbit_logit_measure(model, x, group, lambda z: _li_per_sample(z, elems), reduction, chunk_size)


@torch.no_grad()
def distribution_invariance(
    model: nn.Module,
    x: torch.Tensor,
    group: Group,
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
    x: ``(N, H, W)``. Returns a scalar, or ``(N,)`` with ``reduction="none"``.
    """
    elems = _elements(group, include_identity)
    return _orbit_logit_measure(model, x, group, lambda z: _di_per_sample(z, elems), reduction, chunk_size)


@torch.no_grad()
def orbit_centroid_invariance(
    model: nn.Module,
    x: torch.Tensor,
    group: Group,
    *,
    reduction: Reduction = "mean",
    chunk_size: int = DEFAULT_CHUNK,
) -> torch.Tensor:
    """Spread of the logits over the orbit around their centroid:
    ``1/|G| sum_g 1/2 ||f(gx) - c(x)||^2`` with ``c(x) = 1/|G| sum_h f(hx)``.

    Unlike LI, which measures distances to the reference point ``f(x)``, this
    depends on the orbit only (the same for every ``x`` in one orbit), and equals
    the all-pairs average ``1/(2|G|^2) sum_{g,h} 1/2 ||f(gx) - f(hx)||^2``.
    x: ``(N, H, W)``. Returns a scalar, or ``(N,)`` with ``reduction="none"``.
    """

    def per_sample(logits: torch.Tensor) -> torch.Tensor:
        c = logits.mean(0, keepdim=True)
        return 0.5 * (logits - c).pow(2).sum(-1).mean(0)

    return _orbit_logit_measure(model, x, group, per_sample, reduction, chunk_size)


@torch.no_grad()
def layer_invariance_profile(
    model: nn.Module,
    x: torch.Tensor,
    group: Group,
    *,
    include_identity: bool = False,
    chunk_size: int = DEFAULT_CHUNK,
) -> torch.Tensor:
    """Relative logit-invariance error of every hidden layer and of the logits.

    For the activations ``a_l`` after hidden layer ``l`` (and ``a_{L+1}`` = logits):

        r_l = E_{x,g} ||a_l(x) - a_l(gx)||^2 / E_{x,g} (||a_l(x)||^2 + ||a_l(gx)||^2) / 2,

    averaged over the non-identity elements by default. ``r_l = 0`` for an
    invariant layer; two orthogonal activations of equal norm give 2 (the
    maximum for non-negative ReLU activations). Shows where invariance builds
    up: a weight-tied model is exactly invariant from layer 1 on.

    The model must provide ``hidden_activations(x) -> list of (M, d_l)`` (as
    :class:`nets.models.MLP` does). x: ``(N, H, W)``. Returns ``(L + 1,)``;
    NaN for a layer whose activations are all zero.
    """
    _check_images(x, group)
    chunk_size = _check_chunk_size(chunk_size)
    if not callable(getattr(model, "hidden_activations", None)):
        raise TypeError(f"{type(model).__name__} has no hidden_activations(x) method")
    elems = _elements(group, include_identity)
    num: Optional[torch.Tensor] = None
    den: Optional[torch.Tensor] = None
    for s in _chunks(x.shape[0], chunk_size):
        xc = x[s : s + chunk_size]
        orbit = group.orbit(xc)
        G, n = orbit.shape[:2]
        flat = orbit.reshape(G * n, *xc.shape[1:])
        acts = list(model.hidden_activations(flat)) + [model(flat)]
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


# ---- integrated gradients ----------------------------------------------------------


def ig_quadrature(method: IGMethod, n_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Points ``alpha_k`` in ``[0, 1]`` and weights ``w_k`` of the path integral
    ``int_0^1 g(alpha) d alpha ~ sum_k w_k g(alpha_k)``, both ``(n_steps,)`` float64.

    ``gausslegendre`` and the left/right/middle Riemann rules are captum's
    (``captum.attr._utils.approximation_methods``; Gauss-Legendre from numpy's
    ``leggauss`` mapped from ``[-1, 1]`` to ``[0, 1]``). ``riemann_trapezoid`` is
    the textbook trapezoid rule on ``n_steps`` equispaced points including both
    ends (weights ``1/(n-1)``, halved at the ends). captum 0.9's version uses
    weights ``1/n`` halved at the ends, which sum to ``(n-1)/n``, so its
    attributions are ours times ``(n-1)/n`` and miss completeness by ``1/n``
    even for a linear model (tested in ``tests/test_metrics.py``).
    """
    if method not in IG_METHODS:
        raise ValueError(f"method must be one of {IG_METHODS}, got {method!r}")
    if isinstance(n_steps, bool) or not isinstance(n_steps, (int, np.integer)):
        raise ValueError(f"n_steps must be an int, got {n_steps!r}")
    n = int(n_steps)
    if n < (1 if method == "gausslegendre" else 2):
        raise ValueError(f"n_steps must be >= {1 if method == 'gausslegendre' else 2} for {method}, got {n}")
    if method == "gausslegendre":
        pts, wts = np.polynomial.legendre.leggauss(n)
        return 0.5 * (1.0 + pts), 0.5 * wts
    if method == "riemann_trapezoid":
        w = np.full(n, 1.0 / (n - 1))
        w[[0, -1]] /= 2
        return np.linspace(0.0, 1.0, n), w
    w = np.full(n, 1.0 / n)
    if method == "riemann_left":
        return np.arange(n) / n, w
    if method == "riemann_right":
        return np.arange(1, n + 1) / n, w
    return (np.arange(n) + 0.5) / n, w  # riemann_middle


def _as_target(target: Target, n: int, device: torch.device) -> torch.Tensor:
    """An int or a length-``n`` integer sequence/tensor -> ``(n,)`` long tensor."""
    if isinstance(target, bool):
        raise ValueError("target must be an int or an (N,) integer tensor, got a bool")
    if isinstance(target, (int, np.integer)):
        return torch.full((n,), int(target), dtype=torch.long, device=device)
    t = torch.as_tensor(target, device=device)
    if t.dtype.is_floating_point or t.dtype.is_complex or t.dtype == torch.bool:
        raise ValueError(f"target must hold integer class indices, got dtype {t.dtype}")
    if t.ndim == 0:
        return t.long().expand(n).clone()
    if t.shape != (n,):
        raise ValueError(f"target must be an int or have shape (N,) = ({n},), got shape {tuple(t.shape)}")
    return t.long()


def _as_baseline(baseline: Baseline, x: torch.Tensor) -> torch.Tensor:
    """``None`` (zeros), a number, or a tensor broadcastable to ``x`` -> tensor of ``x.shape``."""
    if baseline is None:
        return torch.zeros_like(x)
    if isinstance(baseline, (int, float)) and not isinstance(baseline, bool):
        return torch.full_like(x, float(baseline))
    if not isinstance(baseline, torch.Tensor):
        raise ValueError(f"baseline must be None, a number or a tensor, got {type(baseline).__name__}")
    try:
        b = torch.broadcast_to(baseline.to(device=x.device, dtype=x.dtype), x.shape)
    except RuntimeError as e:
        raise ValueError(
            f"baseline of shape {tuple(baseline.shape)} does not broadcast to x of shape {tuple(x.shape)}"
        ) from e
    if not bool(torch.isfinite(b).all()):
        raise ValueError("baseline contains NaN or inf values")
    return b


@overload
def integrated_gradients(
    model: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, target: Target, baseline: Baseline = ...,
    n_steps: int = ..., method: IGMethod = ..., return_convergence_delta: Literal[False] = ...,
    chunk_size: int = ...,
) -> torch.Tensor: ...


@overload
def integrated_gradients(
    model: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, target: Target, baseline: Baseline = ...,
    n_steps: int = ..., method: IGMethod = ..., return_convergence_delta: Literal[True] = ...,
    chunk_size: int = ...,
) -> tuple[torch.Tensor, torch.Tensor]: ...


def integrated_gradients(
    model: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    target: Target,
    baseline: Baseline = None,
    n_steps: int = 50,
    method: IGMethod = "gausslegendre",
    return_convergence_delta: bool = False,
    chunk_size: int = DEFAULT_IG_CHUNK,
) -> Union[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    """Integrated gradients (Sundararajan et al., 2017) of the target logit:

        IG_i(x) = (x_i - b_i) int_0^1 d f_t(b + a (x - b)) / d x_i  da
                ~ (x_i - b_i) sum_k w_k d f_t(b + a_k (x - b)) / d x_i,

    with the quadrature ``(a_k, w_k)`` of :func:`ig_quadrature`. Same method
    names, default (``gausslegendre``) and numbers as captum's
    ``IntegratedGradients.attribute`` (except ``riemann_trapezoid``, see
    :func:`ig_quadrature`). Batched over samples and steps: each chunk of
    ``chunk_size`` samples is one forward/backward on ``n_steps * chunk_size``
    inputs.

    Args:
        model: maps ``(M, *S)`` to logits ``(M, C)``; samples must not interact
            (no batch statistics).
        x: ``(N, *S)`` inputs.
        target: class index, an int or ``(N,)`` integers in ``[0, C)``.
        baseline: ``None`` (zeros), a number, or a tensor broadcastable to ``x``.
        n_steps: number of quadrature points.
        method: quadrature rule.
        return_convergence_delta: also return the completeness gap
            ``sum_i IG_i(x) - (f_t(x) - f_t(b))``, ``(N,)``.
        chunk_size: samples per forward/backward.

    Returns:
        attributions ``(N, *S)`` (detached), and the gap ``(N,)`` if asked.
    """
    _check_finite_nonempty(x)
    chunk_size = _check_chunk_size(chunk_size)
    alphas_np, weights_np = ig_quadrature(method, n_steps)
    N = x.shape[0]
    x = x.detach()
    tgt = _as_target(target, N, x.device)
    base = _as_baseline(baseline, x).detach()
    S = len(alphas_np)
    rest = x.shape[1:]
    bshape = (S, 1) + (1,) * len(rest)
    alphas = torch.as_tensor(alphas_np, dtype=x.dtype, device=x.device).view(bshape)
    weights = torch.as_tensor(weights_np, dtype=x.dtype, device=x.device).view(bshape)
    attributions = torch.empty_like(x)
    deltas = torch.empty(N, dtype=x.dtype, device=x.device) if return_convergence_delta else None
    for s in _chunks(N, chunk_size):
        xc, bc, tc = x[s : s + chunk_size], base[s : s + chunk_size], tgt[s : s + chunk_size]
        n = xc.shape[0]
        diff = xc - bc
        path = (bc + alphas * diff).reshape(S * n, *rest)  # step-major, as captum
        with torch.enable_grad():
            path.requires_grad_(True)
            logits = model(path)
            if logits.ndim != 2 or logits.shape[0] != S * n:
                raise ValueError(
                    f"model must map (M, ...) to logits (M, C); got output of shape {tuple(logits.shape)}"
                )
            C = logits.shape[1]
            if int(tc.min()) < 0 or int(tc.max()) >= C:
                raise ValueError(f"target must be class indices in [0, {C}), got values in "
                                 f"[{int(tc.min())}, {int(tc.max())}]")
            selected = logits.gather(1, tc.repeat(S).unsqueeze(1)).sum()
            (grads,) = torch.autograd.grad(selected, path)
        avg_grad = (weights * grads.view(S, n, *rest)).sum(0)
        attributions[s : s + n] = avg_grad * diff
        if deltas is not None:
            with torch.no_grad():
                ends = model(torch.cat([xc, bc]))
                ft = ends.gather(1, tc.repeat(2).unsqueeze(1)).squeeze(1)
                deltas[s : s + n] = attributions[s : s + n].reshape(n, -1).sum(1) - (ft[:n] - ft[n:])
    if deltas is not None:
        return attributions, deltas
    return attributions


# ---- saliency maps ---------------------------------------------------------------------


def gaussian_kernel(kernel_size: int = 3, sigma: float = 1.0, dtype: torch.dtype = torch.float32,
                    device: torch.device | str | None = None) -> torch.Tensor:
    """Normalised 2-D Gaussian ``(k, k)``, ``K[i, j] ∝ exp(-((i-c)^2 + (j-c)^2) / (2 sigma^2))``.

    Symmetric under the dihedral group of the square (``K^T = K``, flips of
    rows/columns leave it unchanged), which is what makes :func:`gaussian_smooth`
    commute with rotations by 90 degrees and flips.
    """
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be a positive odd int, got {kernel_size}")
    if not sigma > 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    r = torch.arange(kernel_size, dtype=torch.float64) - (kernel_size - 1) / 2
    g = torch.exp(-(r**2) / (2 * sigma**2))
    k = torch.outer(g, g)
    return (k / k.sum()).to(dtype=dtype, device=device)


def gaussian_smooth(maps: torch.Tensor, kernel_size: int = 3, sigma: float = 1.0) -> torch.Tensor:
    """Gaussian smoothing with circular (wrap-around) padding, ``(..., H, W) -> (..., H, W)``.

    Circular padding makes the grid a torus, on which convolution commutes with
    every cyclic translation; the kernel is invariant under the dihedral group,
    so on square images convolution also commutes with rotations by 90 degrees
    and flips. Hence ``smooth(g m) = g smooth(m)`` for every group of
    ``nets.groups``, and a weight-tied model gets SI = 1 (zero padding would
    break translation equivariance at the image border).
    """
    if maps.ndim < 2:
        raise ValueError(f"maps must have shape (..., H, W), got {tuple(maps.shape)}")
    H, W = maps.shape[-2:]
    p = kernel_size // 2
    if p > min(H, W):
        raise ValueError(f"kernel_size {kernel_size} is too large for {H}x{W} maps")
    k = gaussian_kernel(kernel_size, sigma, dtype=maps.dtype, device=maps.device)
    flat = maps.reshape(-1, 1, H, W)
    out = F.conv2d(F.pad(flat, (p, p, p, p), mode="circular"), k.view(1, 1, kernel_size, kernel_size))
    return out.view(maps.shape)


def saliency_map(
    model: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    target: Target,
    *,
    n_steps: int = 50,
    baseline: Baseline = None,
    threshold: Optional[float] = 0.9,
    smooth: bool = True,
    method: IGMethod = "gausslegendre",
    chunk_size: int = DEFAULT_IG_CHUNK,
) -> torch.Tensor:
    """The saliency map ``m_f(x, t)`` of Section 4.1 ("Saliency map function"):

    1. ``a = |IG(x)|``, absolute integrated gradients of the target logit from
       ``baseline`` (zero by default; in normalized data space zero is the mean
       pixel, a constant image, which every pixel-permutation group leaves
       unchanged, so IG of an invariant model is then equivariant);
    2. values below ``threshold * max(a)`` (per map) are set to 0 (``None`` or 0
       disables this);
    3. a 3x3 Gaussian filter with sigma 1 and circular padding (:func:`gaussian_smooth`).

    Every step commutes with pixel permutations that commute with the
    smoothing, so ``m(gx) = g m(x)`` for an exactly invariant model.
    x: ``(N, H, W)``; target: int or ``(N,)``. Returns ``(N, H, W)``.
    """
    if not isinstance(x, torch.Tensor) or x.ndim != 3:
        raise ValueError(f"x must be a batch of images (N, H, W), got "
                         f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}")
    attr = integrated_gradients(model, x, target, baseline, n_steps, method, chunk_size=chunk_size).abs()
    if threshold is not None and threshold > 0:
        peak = attr.amax(dim=(-2, -1), keepdim=True)
        attr = torch.where(attr >= threshold * peak, attr, torch.zeros_like(attr))
    if smooth:
        attr = gaussian_smooth(attr)
    return attr


def _check_invariant_baseline(baseline: Baseline, group: Group, H: int, W: int, like: torch.Tensor) -> Baseline:
    """SI needs ``g b = b``; accept a number or an ``(H, W)`` tensor fixed by the group."""
    if baseline is None or (isinstance(baseline, (int, float)) and not isinstance(baseline, bool)):
        return baseline
    if not isinstance(baseline, torch.Tensor) or tuple(baseline.shape) not in ((H, W), (1, H, W)):
        raise ValueError(f"saliency_invariance needs a baseline that is None, a number or an ({H}, {W}) tensor")
    b = baseline.to(device=like.device, dtype=like.dtype).reshape(H, W)
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
    group: Group,
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
    (module docstring). x: ``(N, H, W)``, y: ``(N,)`` integer labels. Returns a
    scalar, or ``(N,)`` with ``reduction="none"``.
    """
    N, H, W = _check_images(x, group)
    _check_reduction(reduction)
    chunk_size = _check_chunk_size(chunk_size)
    if target not in ("label", "predicted"):
        raise ValueError(f"target must be 'label' or 'predicted', got {target!r}")
    if target == "label":
        if y is None:
            raise ValueError("target='label' needs labels y of shape (N,)")
        y = _as_target(y, N, x.device)
    baseline = _check_invariant_baseline(baseline, group, H, W, x)
    elems = _elements(group, include_identity)
    G = group.order
    inv = torch.tensor([group.inverse(g) for g in group.elements], device=x.device)
    out = []
    for s in _chunks(N, chunk_size):
        xc = x[s : s + chunk_size]
        n = xc.shape[0]
        flat = group.orbit(xc).reshape(G * n, H, W)  # element-major: flat[g*n + i] = g x_i
        if target == "label":
            assert y is not None
            tgt = y[s : s + n].repeat(G)
        else:
            with torch.no_grad():
                tgt = torch.cat([model(flat[i : i + chunk_size]).argmax(-1)
                                 for i in range(0, G * n, chunk_size)])
        maps = saliency_map(model, flat, tgt, n_steps=n_steps, baseline=baseline, threshold=threshold,
                            smooth=smooth, method=method, chunk_size=chunk_size)
        aligned = group.act(maps, inv.repeat_interleave(n)).view(G, n, H * W)  # g^{-1} m(g x)
        ref, other = aligned[0], aligned[elems]
        dot = (ref * other).sum(-1)
        norms = ref.norm(dim=-1) * other.norm(dim=-1)
        cos = torch.where(norms > 0, dot / norms.clamp_min(torch.finfo(norms.dtype).tiny), torch.zeros_like(dot))
        out.append(cos.mean(0))
    return _reduce(torch.cat(out), reduction)


# ---- input sensitivity (Section 4.4) -----------------------------------------------------


def _sigma_max_dense(J: torch.Tensor) -> torch.Tensor:
    """Largest singular value of each ``(C, D)`` matrix in ``J: (n, C, D)``, as
    ``sqrt(lambda_max(J J^T))`` in float64: for ``C << D`` the ``C x C`` Gram
    eigenproblem is orders of magnitude faster on CPU than ``svdvals`` of the
    wide matrix and, in float64, accurate to round-off relative to ``sigma_max``."""
    J64 = J.to(_wide_dtype(J))
    lam = torch.linalg.eigvalsh(J64 @ J64.mT)[..., -1]
    return lam.clamp_min(0).sqrt().to(J.dtype)


def _spectral_norm_jacrev(model: Callable, xc: torch.Tensor) -> torch.Tensor:
    """Dense per-sample Jacobians from ``jacrev`` of the batch-summed logits:
    because samples do not interact, ``d sum_i f(x_i)_c / d x_j = d f(x_j)_c / d x_j``,
    so one reverse pass vmapped over the ``C`` basis vectors gives every
    sample's ``(C, D)`` Jacobian (``vmap(jacrev(f))`` per sample computes the same
    numbers but was slower here and needs a vmap-compatible forward)."""
    n = xc.shape[0]
    J = torch.func.jacrev(lambda z: model(z).sum(0))(xc)  # (C, n, *S)
    J = J.reshape(J.shape[0], n, -1).transpose(0, 1)  # (n, C, D)
    return _sigma_max_dense(J)


def _spectral_norm_power(model: Callable, xc: torch.Tensor, n_iter: int, tol: float,
                         generator: torch.Generator) -> torch.Tensor:
    """Batched power iteration on ``J^T J``; samples are independent, so one
    vjp/jvp of the batched model gives ``J_i^T u_i`` / ``J_i v_i`` for every sample.

    The jvp is the vjp of the (linear) vjp function, which reuses one forward
    pass for all iterations (``torch.func.jvp`` reruns the forward in
    forward-mode and was several times slower here)."""
    n = xc.shape[0]
    bview = (n,) + (1,) * (xc.ndim - 1)
    out, vjp_fn = torch.func.vjp(model, xc)
    _, jvp_t = torch.func.vjp(lambda u: vjp_fn(u)[0], torch.zeros_like(out))
    v = torch.randn(xc.shape, generator=generator, dtype=torch.float64).to(xc)
    v = v / v.reshape(n, -1).norm(dim=1).view(bview)
    tol = max(float(tol), 100 * torch.finfo(xc.dtype).eps)
    est = torch.zeros(n, dtype=xc.dtype, device=xc.device)
    for _ in range(n_iter):
        (u,) = jvp_t(v)  # J v, (n, C)
        (w,) = vjp_fn(u)  # J^T J v, (n, *S)
        un = u.norm(dim=1)
        wn = w.reshape(n, -1).norm(dim=1)
        # ||J^T J v|| / ||J v|| lies in [||J v||, sigma_max]: the tighter lower bound.
        new = torch.where(un > 0, wn / un.clamp_min(torch.finfo(un.dtype).tiny), un)
        converged = bool(((new - est).abs() <= tol * new).all())
        est = new
        if converged:
            break
        v = w / wn.clamp_min(torch.finfo(wn.dtype).tiny).view(bview)
    return est


def jacobian_spectral_norm(
    model: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    *,
    method: JacobianMethod = "auto",
    chunk_size: int = DEFAULT_JAC_CHUNK,
    n_iter: int = 500,
    tol: float = 1e-6,
    seed: int = 0,
) -> torch.Tensor:
    """Input sensitivity ``sigma_max(J(x))`` per sample (Section 4.4, Figure 5),
    with ``J = d f(x) / d x`` the ``(C, prod S)`` Jacobian of the logits.

    Methods:
        ``"jacrev"``: the dense per-sample Jacobian by ``vmap(jacrev)`` (``C``
            vector-Jacobian products), then ``torch.linalg.matrix_norm(ord=2)``.
            Exact up to round-off; needs a vmap-compatible model.
        ``"power"``: batched power iteration on ``J^T J`` with jvp/vjp, stopped
            when every sample's estimate changes by less than ``tol`` (relative)
            or after ``n_iter`` iterations; a lower bound that converges at rate
            ``(sigma_2 / sigma_1)^2`` per iteration. Cheaper only when ``C`` is
            large.
        ``"auto"``: ``"jacrev"``. For the paper's MLP (C = 9, 36x36) at
            random init on 1,000 samples, on a shared 2-core CPU (load average
            2-7), jacrev took 1.5-5.6 s and power iteration 25-127 s
            (``benchmarks/measures_random_init.py``): the dense Jacobian costs
            C = 9 backward passes, power iteration two passes per iteration
            and about 70 iterations per chunk at the default tol (a chunk
            stops with its slowest sample; sigma_2 / sigma_1 has median 0.79
            and maximum 0.98 over 200 of these samples).

    x: ``(N, *S)``. Returns ``(N,)`` (detached).
    """
    _check_finite_nonempty(x)
    chunk_size = _check_chunk_size(chunk_size)
    if method not in ("auto", "jacrev", "power"):
        raise ValueError(f"method must be 'auto', 'jacrev' or 'power', got {method!r}")
    if method == "auto":
        method = "jacrev"
    x = x.detach()
    gen = torch.Generator().manual_seed(seed)
    out = []
    for s in _chunks(x.shape[0], chunk_size):
        xc = x[s : s + chunk_size]
        with torch.enable_grad():
            if method == "jacrev":
                out.append(_spectral_norm_jacrev(model, xc).detach())
            else:
                out.append(_spectral_norm_power(model, xc, n_iter, tol, gen).detach())
    return torch.cat(out)


def class_common_logit_share(logits: torch.Tensor) -> torch.Tensor:
    """Share of each logit vector's norm along the all-ones direction, which the
    softmax ignores: ``|mean_c f_c| sqrt(C) / ||f||`` (the |cosine| between ``f`` and
    ``1``), in [0, 1]; 0 where ``f = 0``.

    A model can shrink the normalized logit error ``||f(x) - f(gx)||^2 / ||f(x)||^2``
    (Section 4.4) by growing a shift common to every class instead of becoming
    invariant; this share shows how much of ``f`` such a shift makes up.

    logits: ``(N, C)``. Returns ``(N,)``.
    """
    if logits.dim() != 2:
        raise ValueError(f"logits must be (N, C), got shape {tuple(logits.shape)}")
    _check_finite_nonempty(logits, "logits")
    f = logits.detach().to(_wide_dtype(logits))
    norm = torch.linalg.vector_norm(f, dim=1)
    common = f.mean(dim=1).abs() * f.shape[1] ** 0.5
    return torch.where(norm > 0, common / norm.clamp_min(torch.finfo(f.dtype).tiny), torch.zeros_like(norm))
