"""Integrated gradients and the paper's saliency map (Section 4.1, "Saliency map function").

* :func:`integrated_gradients`: IG of a target logit (captum-compatible quadratures, :func:`ig_quadrature`).
* :func:`saliency_map`: ``m_f(x, t)``, absolute IG summed over the channel axes, thresholded at 0.9 of the
  per-map maximum, smoothed by a 3x3 Gaussian with sigma 1 (:func:`gaussian_smooth`, :func:`gaussian_kernel`).

Images are ``x: (N, *C, H, W)`` (zero or more channel axes); the model maps ``(M, *C, H, W)`` to logits
``(M, classes)`` (conventions of :mod:`nets.measure_inputs`). Work is done in chunks of ``chunk_size``
samples (each one forward/backward on ``n_steps * chunk_size`` inputs). All returned tensors are detached.
"""

from __future__ import annotations

from typing import Callable, Literal, Optional, Union, overload

import numpy as np
import torch
import torch.nn.functional as F

from nets.measure_inputs import Target, check_finite_nonempty, check_floating, chunks, class_targets, model_chunk
from nets.model_checks import check_differentiable, check_model, model_logits

__all__ = [
    "IG_METHODS",
    "IGMethod",
    "Baseline",
    "ig_quadrature",
    "integrated_gradients",
    "SMOOTHING_KERNEL",
    "gaussian_kernel",
    "smoothing_commutes",
    "gaussian_smooth",
    "saliency_map",
    "as_baseline",
]

IGMethod = Literal["riemann_trapezoid", "gausslegendre", "riemann_left", "riemann_right", "riemann_middle"]
Baseline = Union[None, float, int, torch.Tensor]

IG_METHODS: tuple[str, ...] = ("riemann_trapezoid", "gausslegendre", "riemann_left", "riemann_right", "riemann_middle")

#: Side of the saliency map's Gaussian smoothing kernel (the paper's 3x3, sigma 1).
SMOOTHING_KERNEL = 3

# samples per chunk: integrated gradients evaluates n_steps * chunk inputs (64 * 50 * 36 * 36 floats = 16 MB)
DEFAULT_IG_CHUNK = 64


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


def as_baseline(baseline: Baseline, x: torch.Tensor) -> torch.Tensor:
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

    Raises ``ValueError`` (one line) where the model's input gradients on the path are NaN or inf
    (finite logits, undefined gradients: ``sqrt(x**2)`` at 0), which would make a saliency map of 0.
    """
    check_finite_nonempty(x)
    check_floating(x)
    check_model(model, x)
    check_differentiable(model, x, "integrated gradients (SI)")
    chunk_size = model_chunk(model, chunk_size)
    alphas_np, weights_np = ig_quadrature(method, n_steps)
    N = x.shape[0]
    x = x.detach()
    tgt = class_targets(target, N, x.device)
    base = as_baseline(baseline, x).detach()
    S = len(alphas_np)
    rest = x.shape[1:]
    bshape = (S, 1) + (1,) * len(rest)
    alphas = torch.as_tensor(alphas_np, dtype=x.dtype, device=x.device).view(bshape)
    weights = torch.as_tensor(weights_np, dtype=x.dtype, device=x.device).view(bshape)
    attributions = torch.empty_like(x)
    deltas = torch.empty(N, dtype=x.dtype, device=x.device) if return_convergence_delta else None
    for s in chunks(N, chunk_size):
        xc, bc, tc = x[s : s + chunk_size], base[s : s + chunk_size], tgt[s : s + chunk_size]
        n = xc.shape[0]
        diff = xc - bc
        path = (bc + alphas * diff).reshape(S * n, *rest)  # step-major, as captum
        with torch.enable_grad():
            path.requires_grad_(True)
            logits = model_logits(model, path)
            C = logits.shape[1]
            if int(tc.min()) < 0 or int(tc.max()) >= C:
                raise ValueError(f"target must be class indices in [0, {C}), got values in "
                                 f"[{int(tc.min())}, {int(tc.max())}]")
            selected = logits.gather(1, tc.repeat(S).unsqueeze(1)).sum()
            (grads,) = torch.autograd.grad(selected, path)
        # a model whose logits are finite can still have NaN gradients (sqrt(x^2) at 0, ...): the
        # saliency map and SI would come out 0 silently
        check_finite_nonempty(grads, "the model's input gradients (integrated gradients' path)")
        avg_grad = (weights * grads.view(S, n, *rest)).sum(0)
        attributions[s : s + n] = avg_grad * diff
        if deltas is not None:
            with torch.no_grad():
                ends = model_logits(model, torch.cat([xc, bc]))
                ft = ends.gather(1, tc.repeat(2).unsqueeze(1)).squeeze(1)
                deltas[s : s + n] = attributions[s : s + n].reshape(n, -1).sum(1) - (ft[:n] - ft[n:])
    if deltas is not None:
        return attributions, deltas
    return attributions


# ---- saliency maps ---------------------------------------------------------------------


def gaussian_kernel(kernel_size: int = SMOOTHING_KERNEL, sigma: float = 1.0, dtype: torch.dtype = torch.float32,
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


def gaussian_smooth(maps: torch.Tensor, kernel_size: int = SMOOTHING_KERNEL, sigma: float = 1.0) -> torch.Tensor:
    """Gaussian smoothing with circular (wrap-around) padding, ``(..., H, W) -> (..., H, W)``.

    Circular padding makes the grid a torus, on which convolution commutes with
    every cyclic translation; the kernel is invariant under the dihedral group,
    so on square images convolution also commutes with rotations by 90 degrees
    and flips. Hence ``smooth(g m) = g smooth(m)`` for every group of
    ``nets.groups``, and a weight-tied model gets SI = 1 (zero padding would
    break translation equivariance at the image border); for other groups see
    :func:`smoothing_commutes`.
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


def smoothing_commutes(group, H: int, W: int) -> bool:
    """Whether :func:`gaussian_smooth` commutes with every element of ``group`` on ``H x W`` maps,
    ``smooth(g m) = g smooth(m)``: true of every group of ``nets.groups`` (cyclic shifts on the torus,
    rotations and flips of a dihedral-invariant kernel), not of every pixel permutation (one that moves
    image tiles breaks up neighbourhoods). Checked on one random float64 map."""
    m = torch.rand(H, W, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    return torch.allclose(gaussian_smooth(group.orbit(m)), group.orbit(gaussian_smooth(m)), rtol=0.0, atol=1e-12)


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
       unchanged, so IG of an invariant model is then equivariant). For
       multi-channel images ``(N, *C, H, W)`` the map is ``sum_c |IG_c(x)|``,
       the absolute attributions summed over the channel axes (as captum's
       ``visualize_image_attr`` does with ``sign="absolute_value"``), one map
       per image; for ``(N, H, W)`` it is ``|IG(x)|`` itself;
    2. values below ``threshold * max(a)`` (per map) are set to 0 (``None`` or 0
       disables this);
    3. a 3x3 Gaussian filter with sigma 1 and circular padding (:func:`gaussian_smooth`).

    Every step commutes with pixel permutations that commute with the
    smoothing, so ``m(gx) = g m(x)`` for an exactly invariant model.
    x: ``(N, *C, H, W)``; target: int or ``(N,)``. Returns ``(N, H, W)``.
    """
    if not isinstance(x, torch.Tensor) or x.ndim < 3:
        raise ValueError(f"x must be a batch of images (N, *C, H, W), got "
                         f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}")
    attr = integrated_gradients(model, x, target, baseline, n_steps, method, chunk_size=chunk_size).abs()
    if attr.ndim > 3:  # sum |IG| over the channel axes: one (H, W) map per image
        attr = attr.sum(dim=tuple(range(1, attr.ndim - 2)))
    if threshold is not None and threshold > 0:
        peak = attr.amax(dim=(-2, -1), keepdim=True)
        attr = torch.where(attr >= threshold * peak, attr, torch.zeros_like(attr))
    if smooth:
        attr = gaussian_smooth(attr)
    return attr

