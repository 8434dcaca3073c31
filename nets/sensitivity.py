"""Input sensitivity (Section 4.4, Figure 5): the spectral norm of the input Jacobian, and the
class-common share of the logits.

Images are ``x: (N, *S)`` (for images ``S = (*C, H, W)``); the model maps ``(M, *S)`` to logits
``(M, classes)`` and must not mix samples (:func:`nets.model_checks.check_model`).
"""

from __future__ import annotations

from typing import Callable, Literal

import torch

from nets.caller_warning import warn_at_caller
from nets.measure_inputs import check_finite_nonempty, check_floating, chunks, model_chunk, wide_dtype
from nets.model_checks import check_differentiable, check_model, model_logits
from nets.model_hooks import backward_hooks
from nets.pairwise import class_centered

__all__ = ["JacobianMethod", "JACREV_MAX_CLASSES", "JACREV_CHUNK_BYTES", "POWER_STREAK", "PowerNotConverged",
           "PlainAutograd", "auto_method", "jacobian_spectral_norm", "class_common_logit_share", "centered_logit_norm"]

JacobianMethod = Literal["auto", "jacrev", "power"]

DEFAULT_JAC_CHUNK = 256

#: ``method="auto"`` computes the dense Jacobian (exact) for models with up to this many classes and
#: runs power iteration above: jacrev costs ``C`` backward passes and a ``C x C`` eigenproblem per
#: sample, power iteration two passes an iteration whatever ``C``; side by side on a small CNN the
#: two cross between 100 and 300 classes (``benchmarks/sigma_methods.py``, benchmarks/README.md).
JACREV_MAX_CLASSES = 128

#: Most bytes of dense Jacobian (with its float64 copy) one jacrev pass holds: a chunk whose
#: ``(n, C, D)`` Jacobian would exceed it is split (per-sample values do not depend on the split).
#: It bounds the Jacobian, not the pass: the vmapped backward's activations come on top.
JACREV_CHUNK_BYTES = 512 * 2**20


def auto_method(classes: int) -> JacobianMethod:
    """The method ``method="auto"`` takes for a model with ``classes`` logits: ``"jacrev"`` (exact)
    up to :data:`JACREV_MAX_CLASSES`, ``"power"`` above."""
    return "jacrev" if classes <= JACREV_MAX_CLASSES else "power"


def _sigma_max_dense(J: torch.Tensor) -> torch.Tensor:
    """Largest singular value of each ``(C, D)`` matrix in ``J: (n, C, D)``, as
    ``sqrt(lambda_max(J J^T))`` in float64: for ``C << D`` the ``C x C`` Gram
    eigenproblem is orders of magnitude faster on CPU than ``svdvals`` of the
    wide matrix and, in float64, accurate to round-off relative to ``sigma_max``. The Gram
    matrices are formed on ``J``'s device and their eigenvalues found on the CPU (LAPACK): a batch
    of small eigenproblems is no work for a GPU, cuSOLVER's batched solver has returned wrong
    values before (cupy#4847), and loading it costs a process seconds."""
    J64 = J.to(wide_dtype(J))
    lam = torch.linalg.eigvalsh((J64 @ J64.mT).cpu())[..., -1].to(J.device)
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
    check_finite_nonempty(J, "the model's input Jacobian")  # finite logits, NaN gradients: no sigma_max
    return _sigma_max_dense(J)


#: Power iteration on a float16 / bfloat16 model stops for a sample once its remaining error,
#: extrapolated from its last two steps, has been within the tolerance this many iterations running:
#: there one such step can be the products' round-off (at float32 and wider, one step suffices).
POWER_STREAK = 3


class PlainAutograd(UserWarning):
    """sigma_max of a model torch.func cannot transform is measured by plain autograd: exact, one
    backward pass per class (slower than jacrev, and than power iteration for many classes)."""


class PowerNotConverged(UserWarning):
    """Power iteration reached ``n_iter`` before its tolerance on some samples: their ``sigma_max``
    are lower bounds further below than the tolerance."""


def _needs_setup_context(e: RuntimeError) -> bool:
    """Whether torch.func refused a custom ``torch.autograd.Function`` written without ``setup_context``
    (the older style, ``forward(ctx, x)``): plain autograd still differentiates it."""
    return "setup_context" in str(e)


def _spectral_norm_autograd(model: Callable, xc: torch.Tensor) -> torch.Tensor:
    """The dense per-sample Jacobians by plain autograd, one backward pass of the batch-summed logits
    per class (as :func:`_spectral_norm_jacrev`, without torch.func), then the Gram eigenproblem:
    for a model that torch.func cannot transform. Exact up to round-off; ``C`` passes."""
    xg = xc.detach().requires_grad_(True)
    out = model(xg)
    rows = [torch.autograd.grad(out[:, c].sum(), xg, retain_graph=c + 1 < out.shape[1])[0]
            for c in range(out.shape[1])]
    J = torch.stack(rows, 1).reshape(xc.shape[0], out.shape[1], -1)  # (n, C, D)
    check_finite_nonempty(J, "the model's input Jacobian")
    return _sigma_max_dense(J)


def _spectral_norm_power(model: Callable, xc: torch.Tensor, n_iter: int, tol: float,
                         generator: torch.Generator) -> torch.Tensor:
    """Batched power iteration on ``J^T J``; samples are independent, so one
    vjp/jvp of the batched model gives ``J_i^T u_i`` / ``J_i v_i`` for every sample.

    The jvp is the vjp of the (linear) vjp function, which reuses one forward
    pass for all iterations (``torch.func.jvp`` reruns the forward in
    forward-mode and was several times slower here). The vectors, norms and estimates are
    kept in float64 (the products run in the model's dtype). A sample's estimate ``s_k``
    rises towards ``sigma_max`` geometrically; it is done once ``d_k / (1 - r_k)`` (``d_k =
    s_k - s_(k-1)``, ``r_k = d_k / d_(k-1)``: the rest of the geometric climb) is at most
    ``max(tol, eps) s_k``, ``eps`` the model dtype's (for a float16 / bfloat16 model, :data:`POWER_STREAK`
    iterations running); the largest estimate seen is returned (each is a lower bound up to round-off).
    (Before 2026-12-07 it stopped on one step smaller than ``tol``: up to 4.9e-4 below the dense SVD on
    the benchmark's float32 CNN, ``benchmarks/results/sigma_methods_cpu.json``, and 20-25% below on a
    float16 / bfloat16 one, whose products round at about its ``eps``, a floor of ``100 eps`` on ``tol``.)
    The extrapolation reads the rate from two steps: where the top singular values nearly coincide
    (1 and 0.999, a rate's 1 - r of 0.002) round-off can hide it, and the iteration stop early, further
    below than ``tol``; :class:`PowerNotConverged`'s "up to" is an estimate too. Use jacrev there."""
    n = xc.shape[0]
    wide = wide_dtype(xc)
    bview = (n,) + (1,) * (xc.ndim - 1)
    out, vjp_fn = torch.func.vjp(model, xc)
    _, jvp_t = torch.func.vjp(lambda u: vjp_fn(u)[0], torch.zeros_like(out))
    v = torch.randn(xc.shape, generator=generator, dtype=torch.float64).to(device=xc.device, dtype=wide)
    v = v / v.reshape(n, -1).norm(dim=1).view(bview)
    tol = max(float(tol), torch.finfo(xc.dtype).eps)
    needed = POWER_STREAK if torch.finfo(xc.dtype).eps > 1e-4 else 1
    tiny = torch.finfo(wide).tiny
    est = best = torch.zeros(n, dtype=wide, device=xc.device)
    step = torch.full_like(est, float("inf"))
    streak = torch.zeros(n, dtype=torch.long, device=xc.device)
    for k in range(n_iter):
        (u,) = jvp_t(v.to(xc.dtype))  # J v, (n, C)
        (w,) = vjp_fn(u)  # J^T J v, (n, *S)
        u, w = u.to(wide), w.to(wide)
        un = u.norm(dim=1)
        wn = w.reshape(n, -1).norm(dim=1)
        # ||J^T J v|| / ||J v|| lies in [||J v||, sigma_max]: the tighter lower bound.
        new = torch.where(un > 0, wn / un.clamp_min(tiny), un)
        # NaN never converges: refuse it at once, not after n_iter passes
        check_finite_nonempty(new, "the model's input Jacobian (power iteration's estimate)")
        d = new - est
        rate = (d / step).nan_to_num(0.0).clamp(0.0, 0.999)
        left = torch.where(d > 0, d / (1 - rate), torch.zeros_like(d))
        streak = torch.where((left <= tol * new) & (k > 0), streak + 1, torch.zeros_like(streak))
        est, step, best = new, d, torch.maximum(best, new)
        if bool((streak >= needed).all()):
            break
        v = w / wn.clamp_min(tiny).view(bview)
    else:
        short = streak < needed
        below = float((left / new)[short].max().detach())
        warn_at_caller(f"sigma_max: power iteration reached n_iter={n_iter} before its tolerance on "
                       f"{int(short.sum())} of {n} samples (too few iterations for how close their top singular "
                       f"values are): those values are lower bounds, up to {below:.2g} below by the rest of their "
                       f"climb extrapolated; raise n_iter, or use method='jacrev'", PowerNotConverged)
    return best.to(xc.dtype)


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
        ``"jacrev"``: the dense per-sample Jacobians ``(C, D)`` from one
            ``torch.func.jacrev`` of the batch-summed logits (``C``
            vector-Jacobian products for the whole chunk; valid because samples
            do not interact, which :func:`nets.model_checks.check_model`
            enforces), then ``sigma_max = sqrt(lambda_max(J J^T))`` from the
            ``C x C`` Gram matrix in float64. Exact up to round-off.
        ``"power"``: batched power iteration on ``J^T J`` with jvp/vjp, stopped
            when every sample's remaining error, extrapolated from its last steps, is within
            ``tol`` (relative; at least the model dtype's eps; for a float16 / bfloat16 model
            :data:`POWER_STREAK` iterations running), or after ``n_iter`` iterations; a lower bound that converges at
            rate ``(sigma_2 / sigma_1)^2`` per iteration. Cheaper only when ``C`` is
            large.
        ``"auto"``: ``"jacrev"`` up to :data:`JACREV_MAX_CLASSES` classes, ``"power"``
            above (an ImageNet model's 1,000). For the paper's MLP (C = 9, 36x36) at
            random init on 1,000 samples, on a shared 2-core CPU (load average
            2-7), jacrev took 1.5-5.6 s and power iteration 25-127 s
            (``benchmarks/measures_random_init.py``): the dense Jacobian costs
            C = 9 backward passes, power iteration two passes per iteration
            and about 70 iterations per chunk at the default tol (a chunk
            stops with its slowest sample; sigma_2 / sigma_1 has median 0.79
            and maximum 0.98 over 200 of these samples).

    The model must not mix samples: one with batch normalization in training mode
    (or active dropout), or whose logits a probe on two samples finds random or
    batch-dependent, is refused with a ``ValueError``
    (:func:`nets.model_checks.check_model`); so are NaN or inf logits, a Jacobian with
    NaN or inf entries (finite logits, undefined gradients: ``sqrt(x**2)`` at 0) and a
    model that refuses the input shape. x: ``(N, *S)``, for images
    ``(N, *C, H, W)``. ``chunk_size`` samples go through the model at once (jacrev splits a chunk
    further where its dense Jacobian would pass :data:`JACREV_CHUNK_BYTES`). A model that torch.func
    cannot transform (a custom ``torch.autograd.Function`` without ``setup_context``) gets the dense
    Jacobian by plain autograd, one backward pass per class, whichever the method. Returns ``(N,)`` (detached).
    """
    check_finite_nonempty(x)
    check_floating(x)
    check_model(model, x)
    check_differentiable(model, x, "sigma_max")
    chunk_size = model_chunk(model, chunk_size)
    if method not in ("auto", "jacrev", "power"):
        raise ValueError(f"method must be 'auto', 'jacrev' or 'power', got {method!r}")
    if n_iter < 1 or not tol > 0:
        raise ValueError(f"power iteration needs n_iter >= 1 and tol > 0, got n_iter={n_iter}, tol={tol}")
    x = x.detach()
    gen = torch.Generator().manual_seed(seed)
    out = []
    plain = False  # torch.func refused the model: every later chunk goes to plain autograd at once
    for s in chunks(x.shape[0], chunk_size):
        xc = x[s : s + chunk_size]
        xc = xc.clone() if xc.is_inference() else xc  # made under inference_mode: autograd cannot save it
        with torch.no_grad():  # shape, refusal and NaN checks, outside the torch.func transforms
            classes = model_logits(model, xc).shape[-1]
        use = method if method != "auto" else auto_method(classes)
        per_sample = classes * xc[0].numel() * (xc.element_size() + 8)  # J and its float64 copy
        step = max(1, JACREV_CHUNK_BYTES // per_sample)
        with torch.enable_grad():
            if not plain:
                try:
                    if use == "jacrev":
                        out += [_spectral_norm_jacrev(model, xc[i : i + step]).detach()
                                for i in range(0, len(xc), step)]
                    else:
                        out.append(_spectral_norm_power(model, xc, n_iter, tol, gen).detach())
                    continue
                except RuntimeError as e:  # an old-style autograd.Function: the dense Jacobian by plain autograd
                    if not _needs_setup_context(e):
                        raise
                    plain = True
                    what = ("backward hooks (their autograd.Function), or a custom autograd.Function without "
                            "setup_context, which torch.func cannot transform" if backward_hooks(model)
                            else "a custom autograd.Function torch.func cannot transform (no setup_context)")
                    warn_at_caller(f"sigma_max: the model uses {what}: measured by plain autograd instead, the dense "
                                   f"Jacobian by {classes} backward passes per chunk ({use} was asked)",
                                   PlainAutograd)
            out += [_spectral_norm_autograd(model, xc[i : i + step]).detach() for i in range(0, len(xc), step)]
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
    check_finite_nonempty(logits, "logits")
    f = logits.detach().to(wide_dtype(logits))
    norm = torch.linalg.vector_norm(f, dim=1)
    common = f.mean(dim=1).abs() * f.shape[1] ** 0.5
    return torch.where(norm > 0, common / norm.clamp_min(torch.finfo(f.dtype).tiny), torch.zeros_like(norm))


def centered_logit_norm(logits: torch.Tensor) -> torch.Tensor:
    """The logit scale the softmax sees: ``||f - mean_c f_c||`` per sample, the norm of the
    class-centered logits (a shift common to every class does not count).

    ``f -> a f`` multiplies it by ``|a|``, as it does ``sigma_max`` of the centered logits'
    Jacobian, so their ratio is a sensitivity per unit of logit scale (``python -m nets scale``).

    logits: ``(N, C)``. Returns ``(N,)`` in float64 (float32 on MPS), detached.
    """
    if logits.dim() != 2:
        raise ValueError(f"logits must be (N, C), got shape {tuple(logits.shape)}")
    check_finite_nonempty(logits, "logits")
    f = logits.detach().to(wide_dtype(logits))
    return torch.linalg.vector_norm(class_centered(f), dim=1)
