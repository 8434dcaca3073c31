"""Proposition 3.1 (invariance-induced spectral decay) and its extensions, as properties.

Notation of Section 3.3: ``h(x) = W x`` with ``W: (m, n)``; ``eps = x - G x``;
``Sigma = sum eps eps^T``; Eq. (5) ``dW/dt = -W Sigma``; Eq. (6) ``W(t) = W(0) exp(-Sigma t)``.

Hypothesis draws dimensions (n in 2..8, m in 1..6, N in 1..5 samples), bounded finite float64
arrays (``hypothesis.extra.numpy``), permutations (the group representation) and times.
Degenerate draws (eps = 0, an ill-conditioned Sigma for the limit) are assumed away.
Tolerances are relative and float64: a multiple of the unit roundoff ``u`` times the size of the
quantities involved, as derived in each check's docstring in ``theory.numeric``.

Set ``GI_HYPOTHESIS_SCALE=10`` to run ten times as many examples.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import pytest
import sympy as sp
import torch
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.linalg import expm

from nets.groups import get_group
from theory import images as im
from theory import linear_flow as lf
from theory import numeric as nm
from theory import symbolic as sy
from theory import task_flow as tl
from theory import tightness as tg
from theory.adam import adam_instance, adam_path, check_adam_can_grow_sigma_max
from theory._blas import single_threaded_blas
from theory.checks import EPS64

SCALE = int(os.environ.get("GI_HYPOTHESIS_SCALE", "1"))
FAST = settings(max_examples=30 * SCALE, deadline=None)
SLOW = settings(max_examples=10 * SCALE, deadline=None)

# Bounded finite float64 entries; magnitudes below 1e-6 become exactly 0 so that products of
# entries never underflow into subnormals (a rounding regime the tolerances do not model).
FINITE = st.floats(-3.0, 3.0, allow_nan=False, allow_infinity=False, allow_subnormal=False,
                   width=64).map(lambda v: v if abs(v) >= 1e-6 else 0.0)


@pytest.fixture(scope="module", autouse=True)
def _one_blas_thread() -> Iterator[None]:
    # Tiny matrices: BLAS threads only add overhead (see theory/_blas.py).
    with single_threaded_blas():
        yield


# ---------------------------------------------------------------------------------------
# Strategies
# ---------------------------------------------------------------------------------------
@dataclass
class RankOne:
    """One sample, one group element: W0 (m, n), x (n,), G (n, n) permutation, eps (n,)."""

    W0: np.ndarray
    x: np.ndarray
    G: np.ndarray
    eps: np.ndarray

    @property
    def s(self) -> float:
        return float(self.eps @ self.eps)


@dataclass
class Dataset:
    """N samples X (N, n) and a whole cyclic group Gs (k, n, n): eps (N*k, n), Sigma (n, n)."""

    W0: np.ndarray
    X: np.ndarray
    Gs: np.ndarray
    eps: np.ndarray
    Sigma: np.ndarray

    @property
    def lam_max(self) -> float:
        return float(np.linalg.eigvalsh(self.Sigma)[-1])


@st.composite
def rank_one(draw: st.DrawFn) -> RankOne:
    n = draw(st.integers(2, 8))
    m = draw(st.integers(1, 6))
    perm = np.array(draw(st.permutations(range(n))))
    x = draw(arrays(np.float64, n, elements=FINITE))
    W0 = draw(arrays(np.float64, (m, n), elements=FINITE))
    G = np.eye(n)[perm]  # (G x)[p] = x[perm[p]]
    eps = x - G @ x
    assume(eps @ eps > 1e-2)
    return RankOne(W0, x, G, eps)


@st.composite
def dataset(draw: st.DrawFn) -> Dataset:
    n = draw(st.integers(2, 8))
    m = draw(st.integers(1, 6))
    N = draw(st.integers(1, 5))
    Gs = lf.cyclic_group_matrices(draw(st.permutations(range(n))))
    X = draw(arrays(np.float64, (N, n), elements=FINITE))
    W0 = draw(arrays(np.float64, (m, n), elements=FINITE))
    eps = lf.invariance_residuals(X, Gs)
    Sigma = lf.invariance_covariance(eps)
    assume(np.trace(Sigma) > 1e-2)
    return Dataset(W0, X, Gs, eps, Sigma)


def scaled_times(scale: float, max_tau: float = 50.0) -> st.SearchStrategy[np.ndarray]:
    """Sorted times ``tau / scale`` with tau in (0, max_tau] (tau = t * lambda_max): t = 0 alone would
    make the bound checks' excess trivially 0."""
    taus = st.lists(st.floats(1e-3, max_tau, allow_nan=False), min_size=1, max_size=12)
    return taus.map(lambda ts: np.sort(np.asarray(ts, dtype=np.float64)) / scale)


# ---------------------------------------------------------------------------------------
# Proposition 3.1: one sample, one group element, Sigma = eps eps^T
# ---------------------------------------------------------------------------------------
@FAST
@given(dataset())
def test_gradient_of_logit_invariance_error_is_W_Sigma(d: Dataset) -> None:
    """Proof of Prop. 3.1: grad_W of Eq. (2) is ``W Sigma`` (torch autograd as the oracle)."""
    W = torch.tensor(d.W0, requires_grad=True)
    X = torch.from_numpy(d.X)
    GX = torch.einsum("kab,nb->nka", torch.from_numpy(d.Gs), X)
    diff = X[:, None, :] @ W.T - GX @ W.T  # (N, k, m): h(x) - h(gx)
    (0.5 * (diff ** 2).sum()).backward()
    ours = lf.logit_invariance_grad(d.W0, d.X, d.Gs)
    # Both sum M*n products of size |W| |eps|^2: rounding <= (M + n) u |W|_F sum |eps|^2.
    tol = 10 * (len(d.eps) + d.W0.shape[1]) * EPS64 * np.linalg.norm(d.W0) * np.sum(d.eps ** 2)
    assert np.abs(W.grad.numpy() - ours).max() <= tol


@FAST
@given(rank_one(), st.lists(st.floats(0.0, 50.0), min_size=1, max_size=8))
# expm was 21 u off here on an AMD EPYC (Zen 5): within theory.checks.expm_rounding, kept as a case
@example(RankOne(W0=np.zeros((1, 2)), x=np.array([0.0, 1.0]), G=np.array([[0.0, 1.0], [1.0, 0.0]]),
                 eps=np.array([-1.0, 1.0])), [4.0])
def test_rank_one_closed_form_equals_expm(r: RankOne, taus: list[float]) -> None:
    """``exp(-Sigma t) = I - (1 - e^{-t s}) eps eps^T / s`` against ``scipy.linalg.expm``."""
    res = nm.check_closed_form_vs_expm(r.eps, np.asarray(taus) / r.s)
    assert res.value <= res.tolerance, res.line()


@SLOW
@given(rank_one())
def test_closed_form_flow_matches_ode_integrator(r: RankOne) -> None:
    """Eq. (6) is the solution of Eq. (5): ``solve_ivp`` (rtol 1e-12) agrees to 1e-9 relative."""
    ts = np.linspace(0.0, 5.0 / r.s, 11)
    res = nm.check_ode_vs_closed_form(r.W0, r.eps, ts)
    assert res.value <= res.tolerance, res.line()


@FAST
@given(rank_one(), st.floats(0.0, 200.0))
def test_exp_of_rank_one_sigma_has_unit_spectral_norm(r: RankOne, tau: float) -> None:
    """Proof step after Eq. (7): ``||exp(-Sigma t)||_2 = 1`` for t >= 0 and n >= 2, with
    ``exp`` computed by ``scipy.linalg.expm`` (not the closed form, whose norm is 1 by its shape)."""
    E = expm(-np.outer(r.eps, r.eps) * (tau / r.s))
    assert abs(float(lf.sigma_max(E)) - 1.0) <= 64 * r.eps.size * EPS64


@FAST
@given(st.data())
def test_sigma_max_never_exceeds_initial_along_rank_one_flow(data: st.DataObject) -> None:
    """Proposition 3.1: ``sigma_max(W(t)) <= sigma_max(W(0))`` (W(t) from scipy expm)."""
    r = data.draw(rank_one())
    ts = data.draw(scaled_times(r.s))
    res = nm.check_sigma_max_bound(r.W0, np.outer(r.eps, r.eps), ts)
    assert res.value <= res.tolerance, res.line()


# ---------------------------------------------------------------------------------------
# (a) dataset and whole orbit: Sigma = sum eps eps^T, any rank
# ---------------------------------------------------------------------------------------
@FAST
@given(dataset())
def test_orbit_sigma_is_the_sum_of_outer_products_of_orbit_residuals(d: Dataset) -> None:
    """Extension (a): ``Sigma = sum_x sum_g (x - gx)(x - gx)^T`` (a Gram matrix, hence PSD), against
    a loop over samples and group elements (the CLI's check)."""
    res = nm.check_orbit_covariance(d.X, d.Gs)
    assert res.value <= res.tolerance, res.line()


@FAST
@given(st.data())
def test_sigma_max_bound_holds_for_dataset_and_orbit_sigma(data: st.DataObject) -> None:
    """Extension (a): the bound of Prop. 3.1 holds for PSD Sigma of any rank."""
    d = data.draw(dataset())
    ts = data.draw(scaled_times(d.lam_max))
    res = nm.check_sigma_max_bound(d.W0, d.Sigma, ts)
    assert res.value <= res.tolerance, res.line()


@SLOW
@given(dataset())
def test_the_measured_flow_solves_eq5_for_sigma_of_any_rank(d: Dataset) -> None:
    """Extension (a): ``flow_expm``, the W(t) every bound check measures, agrees with ``solve_ivp``
    integrating ``dW/dt = -W Sigma`` for the dataset and orbit's Sigma (not only rank one)."""
    res = nm.check_flow_expm_vs_ode(d.W0, d.Sigma, np.linspace(0.0, 5.0 / d.lam_max, 11))
    assert res.passed, res.line()


def test_the_flow_check_fails_for_a_contraction_at_another_rate(monkeypatch: pytest.MonkeyPatch) -> None:
    """W0 expm(-2 Sigma t) also contracts, so every bound check passes on it; the flow check does not."""
    eps = lf.invariance_residuals(np.array([[1.0, 0.0, 0.0]]), lf.cyclic_group_matrices([1, 2, 0]))
    monkeypatch.setattr(nm, "flow_expm", lambda W0, S, ts: lf.flow_expm(W0, 2 * S, ts))
    res = nm.check_flow_expm_vs_ode(np.eye(2, 3), lf.invariance_covariance(eps), np.linspace(0.0, 1.0, 5))
    assert not res.passed and res.value > 0.1, res.line()


@FAST
@given(st.data())
def test_every_singular_value_is_nonincreasing_along_flow(data: st.DataObject) -> None:
    """Extension (a): not only sigma_max: each sigma_i(W(t)) is non-increasing in t."""
    d = data.draw(dataset())
    ts = data.draw(scaled_times(d.lam_max))
    res = nm.check_singular_values_nonincreasing(d.W0, d.Sigma, ts)
    assert res.value <= res.tolerance, res.line()


# ---------------------------------------------------------------------------------------
# (b) the limit t -> infinity
# ---------------------------------------------------------------------------------------
def _well_conditioned(eps: np.ndarray, max_cond: float = 1e8) -> bool:
    """Sigma's nonzero spectrum is resolvable: lambda_max / lambda_min+ <= max_cond."""
    P, r = lf.span_projector(eps)
    lam = np.linalg.eigvalsh(lf.invariance_covariance(eps))[::-1]
    return r >= 1 and lam[r - 1] > 0 and lam[0] / lam[r - 1] <= max_cond


@FAST
@given(dataset())
def test_limit_of_flow_is_W0_times_complement_of_span_projector(d: Dataset) -> None:
    """Extension (b): ``W0 expm(-Sigma T) -> W0 (I - P)``, P projector onto span{x - gx}."""
    assume(_well_conditioned(d.eps))
    res = nm.check_limit_is_projection(d.W0, d.eps)
    assert res.value <= res.tolerance, res.line()


@FAST
@given(dataset())
def test_limit_has_zero_logit_invariance_error_on_the_data(d: Dataset) -> None:
    """Extension (b): ``W0 (I - P)`` maps every ``x - g x`` of the data to 0."""
    res = nm.check_limit_is_invariant(d.W0, d.X, d.Gs)
    assert res.value <= res.tolerance, res.line()


# ---------------------------------------------------------------------------------------
# (c) discrete gradient descent
# ---------------------------------------------------------------------------------------
@FAST
@given(dataset(), st.floats(1e-3, 2.0), st.integers(1, 30))
def test_gd_with_step_at_most_two_over_lambda_max_never_increases_sigma_max(
        d: Dataset, factor: float, steps: int) -> None:
    """Extension (c): ``W <- W (I - alpha Sigma)``, ``alpha <= 2/lambda_max``: sigma_max non-increasing."""
    res = nm.check_gd_below_step_bound(d.W0, d.Sigma, factor, steps)
    assert res.value <= res.tolerance, res.line()


@FAST
@given(dataset(), st.floats(2.5, 5.0), st.integers(1, 6))
def test_gd_step_above_bound_multiplies_sigma_max_of_top_eigenvector_rows(
        d: Dataset, factor: float, m: int) -> None:
    """Extension (c), counterexample: for ``alpha = factor / lambda_max`` with factor > 2 and W0
    with rows along the top eigenvector, one step multiplies sigma_max by ``factor - 1 > 1``."""
    lam, U = np.linalg.eigh(d.Sigma)
    W0 = np.outer(np.arange(1.0, m + 1), U[:, -1])
    s = lf.sigma_max(lf.gradient_descent(W0, d.Sigma, factor / lam[-1], 1))
    assert s[1] / s[0] == pytest.approx(factor - 1.0, rel=1e-10)


# ---------------------------------------------------------------------------------------
# (d) with a task loss the bound can fail (one constructed instance)
# ---------------------------------------------------------------------------------------
def test_task_loss_plus_invariance_can_increase_sigma_max() -> None:
    """Extension (d): ``1/2||Wx - y||^2 + 1/2||Wx - WGx||^2`` with a large target y increases
    sigma_max, while the invariance term alone (same W0, same time) does not."""
    rng = np.random.default_rng(0)
    n, m = 5, 3
    W0 = rng.standard_normal((m, n)) / np.sqrt(n)
    x = rng.standard_normal(n)
    G = np.eye(n)[np.roll(np.arange(n), 1)]
    y = 50.0 * np.ones(m)
    T = 10.0 / float(x @ x)
    W_T = lf.task_loss_flow(W0, x, G, y, 1.0, np.array([T]))[-1]
    assert lf.sigma_max(W_T) > 2 * lf.sigma_max(W0)


@FAST
@given(rank_one(), arrays(np.float64, 6, elements=FINITE), st.floats(0.0, 3.0))
def test_the_task_loss_flow_moves_along_minus_the_loss_gradient(r: RankOne, y6: np.ndarray, nu: float) -> None:
    """Extension (d): the velocity the counterexample integrates is ``-grad`` of Eq. (4)'s loss
    ``1/2 ||Wx - y||^2 + nu/2 ||Wx - WGx||^2`` (central differences as the oracle)."""
    res = tl.check_task_flow_is_gradient_flow(r.W0, r.x, r.G, 10 * y6[: r.W0.shape[0]], nu)
    assert res.passed, res.line()


@pytest.mark.parametrize("wrong", ["gradient ascent", "no invariance term"])
def test_the_task_flow_check_fails_for_another_velocity(monkeypatch: pytest.MonkeyPatch, wrong: str) -> None:
    r = np.random.default_rng(0)
    W0, x, y = r.standard_normal((3, 5)), r.standard_normal(5), 10 * r.standard_normal(3)
    G = lf.cyclic_group_matrices([1, 2, 3, 4, 0])[1]
    velocity = {"gradient ascent": lambda W, x, G, y, nu: -lf.task_loss_velocity(W, x, G, y, nu),
                "no invariance term": lambda W, x, G, y, nu: lf.task_loss_velocity(W, x, G, y, 0.0)}[wrong]
    monkeypatch.setattr(tl, "task_loss_velocity", velocity)
    res = tl.check_task_flow_is_gradient_flow(W0, x, G, y, 1.0)
    assert not res.passed and res.value > 1e-3, res.line()


@SLOW
@given(rank_one(), arrays(np.float64, 6, elements=FINITE), st.floats(0.0, 3.0))
def test_the_integrated_task_flow_is_the_exact_gradient_flow_of_its_loss(r: RankOne, y6: np.ndarray,
                                                                         nu: float) -> None:
    res = tl.check_task_flow_vs_exact(r.W0, r.x, r.G, 10 * y6[: r.W0.shape[0]], nu)
    assert res.passed, res.line()


@pytest.mark.parametrize("wrong", ["twice as fast", "30 times the invariance weight"])
def test_the_exact_flow_check_fails_for_another_integrated_flow(monkeypatch: pytest.MonkeyPatch, wrong: str) -> None:
    """Flows the velocity check at W0 cannot see (another speed, another weight inside the
    integration) are caught against the exact gradient flow of the loss."""
    r = np.random.default_rng(1)
    W0, x, y = r.standard_normal((3, 5)), r.standard_normal(5), 10 * r.standard_normal(3)
    G = lf.cyclic_group_matrices([1, 2, 3, 4, 0])[1]
    flow = {"twice as fast": lambda W0, x, G, y, nu, ts: lf.task_loss_flow(W0, x, G, y, nu, 2 * ts),
            "30 times the invariance weight": lambda W0, x, G, y, nu, ts: lf.task_loss_flow(W0, x, G, y, 30 * nu, ts)}
    monkeypatch.setattr(tl, "task_loss_flow", flow[wrong])
    res = tl.check_task_flow_vs_exact(W0, x, G, y, 1.0)
    assert not res.passed and res.value > 1e-3, res.line()


# ---------------------------------------------------------------------------------------
# (e) the paper's groups acting on images
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("gname", ["r4", "t3"])
@SLOW
@given(images=arrays(np.float64, st.tuples(st.integers(1, 3), st.just(6), st.just(6)),
                     elements=FINITE),
       W0=arrays(np.float64, st.tuples(st.integers(1, 6), st.just(36)), elements=FINITE))
def test_sigma_max_bound_holds_for_group_acting_on_images(gname: str, images: np.ndarray,
                                                          W0: np.ndarray) -> None:
    """Extension (e): with G the permutation representation of R4 / T3 on 6x6 images."""
    eps = im.image_residuals(get_group(gname), images)
    Sigma = lf.invariance_covariance(eps)
    lam_max = float(np.linalg.eigvalsh(Sigma)[-1])
    assume(lam_max > 1e-2)
    res = nm.check_sigma_max_bound(W0, Sigma, np.linspace(0.0, 50.0, 11) / lam_max)
    assert res.value <= res.tolerance, res.line()


@pytest.mark.parametrize("gname", ["r4", "t3"])
@SLOW
@given(images=arrays(np.float64, st.tuples(st.integers(1, 3), st.just(6), st.just(6)),
                     elements=FINITE),
       W0=arrays(np.float64, st.tuples(st.integers(1, 6), st.just(36)), elements=FINITE))
def test_limit_for_group_acting_on_images_is_projection(gname: str, images: np.ndarray,
                                                        W0: np.ndarray) -> None:
    """Extension (e): ``W(oo) = W0 (I - P)``, P the projector onto span{x - P_g x}."""
    eps = im.image_residuals(get_group(gname), images)
    assume(np.abs(eps).max() > 1e-1 and _well_conditioned(eps))
    res = nm.check_limit_is_projection(W0, eps)
    assert res.value <= res.tolerance, res.line()


# ---------------------------------------------------------------------------------------
# Symbolic pieces (sympy), one test each
# ---------------------------------------------------------------------------------------
def test_symbolic_gradient_of_logit_invariance_error_is_W_eps_epsT() -> None:
    assert sy.check_gradient(3, 2).value == 0


def test_symbolic_W0_exp_minus_Sigma_t_solves_gradient_flow() -> None:
    assert sy.check_flow_solves_ode(2, 2).value == 0


def test_symbolic_rank_one_closed_form_solves_ode_with_identity_start() -> None:
    assert sy.check_closed_form_solves_ode(3).value == 0


def test_symbolic_closed_form_equals_sympy_matrix_exponential() -> None:
    assert sy.check_closed_form_matches_sympy_exp().value == 0


def test_symbolic_closed_form_has_eigenvalues_one_and_decay_and_unit_norm() -> None:
    assert sy.check_closed_form_spectrum(3).value == 0


def test_symbolic_limit_is_orthogonal_projector_annihilating_eps() -> None:
    assert sy.check_limit_is_projector(3).value == 0


def test_symbolic_check_detects_a_wrong_closed_form(monkeypatch: pytest.MonkeyPatch) -> None:
    """The symbolic ODE and spectrum checks can fail: with the decay rate off by a factor 2 they
    report nonzero entries."""

    def wrong(eps: sp.Matrix, t: sp.Expr) -> sp.Matrix:
        s = (eps.T * eps)[0, 0]
        return sp.eye(eps.shape[0]) - (1 - sp.exp(-2 * t * s)) * (eps * eps.T) / s

    monkeypatch.setattr(sy, "rank_one_exp_closed_form", wrong)
    res = sy.check_closed_form_solves_ode(2)
    assert res.value > 0 and not res.passed
    assert not sy.check_closed_form_spectrum(2).passed  # the spectrum is read off the same closed form


def test_symbolic_closed_form_and_its_unit_norm_hold_in_every_dimension() -> None:
    assert sy.check_any_n_in_the_projector_algebra().passed


# ---------------------------------------------------------------------------------------
# The bound check can fail, and (f) how much decay the proposition gives
# ---------------------------------------------------------------------------------------
@FAST
@given(rank_one())
def test_the_bound_check_fails_for_a_flow_that_grows_w(r: RankOne) -> None:
    """The check is not vacuous: the flow of the opposite sign, W(t) = W0 exp(+Sigma t), grows
    sigma_max wherever W0's top right singular vector v has a component along eps
    (||W0 E v||^2 >= sigma_1^2 (1 + 2 c (v . eps/|eps|)^2), c = e - 1 at t = 1 / |eps|^2), and the
    check reports it."""
    assume(np.linalg.norm(r.W0) > 1e-2)
    v = np.linalg.svd(r.W0)[2][0]
    assume(abs(v @ r.eps) > 1e-2 * np.sqrt(r.s))
    res = nm.check_sigma_max_bound(r.W0, -np.outer(r.eps, r.eps), np.array([1.0 / r.s]))
    assert not res.passed, res.line()


def test_the_bound_check_looks_at_every_time_not_only_the_best() -> None:
    """A path that first dips below sigma_max(W0) and then grows past it (an indefinite Sigma):
    sigma_max 0.670, 0.675, 3.69 against 1; the check reports the largest excess, 2.69."""
    v, e = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    res = nm.check_sigma_max_bound(np.diag([1.0, 0.5]), 4 * np.outer(v, v) - np.outer(e, e),
                                   np.array([0.1, 0.3, 2.0]))
    assert not res.passed and res.value == pytest.approx(0.5 * np.exp(2.0) - 1.0, rel=1e-12), res.line()


# ---------------------------------------------------------------------------------------
# (g) Adam, the paper's optimizer, is not covered
# ---------------------------------------------------------------------------------------
def test_adam_on_the_invariance_error_alone_raises_sigma_max() -> None:
    """Extension (g): at the paper's learning rate, Adam stops where W eps = 0 on the line through W0
    along sign(eps) (W0 = (1, 0, 1), eps = (4, -3, -1), W0 eps = 3, ||eps||_1 = 8: at
    W0 - (3/8)(1, -1, -1) = (0.625, 0.375, 1.375)), larger than W0, where the gradient flow's limit
    is smaller (extension (b))."""
    res = check_adam_can_grow_sigma_max()
    predicted = np.linalg.norm([0.625, 0.375, 1.375]) / np.sqrt(2.0) - 1  # 0.1004
    assert res.passed and res.value == pytest.approx(predicted, abs=1e-5), res.line()


def test_plain_gradient_steps_on_the_adam_instance_do_not_raise_sigma_max() -> None:
    """The counterexample is Adam's, not the instance's: torch's SGD at the same learning rate and
    step count (alpha far below 2 / lambda_max) keeps sigma_max non-increasing."""
    W0, x, G = adam_instance()
    eps = x - G @ x
    W = torch.tensor(W0, requires_grad=True)
    opt, out = torch.optim.SGD([W], lr=8e-4), [float(lf.sigma_max(W0))]
    for _ in range(5000):
        opt.zero_grad()
        (0.5 * (W @ torch.tensor(eps)).square().sum()).backward()
        opt.step()
        out.append(float(torch.linalg.matrix_norm(W.detach(), ord=2)))
    assert np.diff(out).max() <= 4 * EPS64 * out[0] and out[-1] < out[0]
    assert adam_path(W0, eps, 8e-4, 5000).max() > out[0]


@FAST
@given(rank_one())
def test_sigma_max_stays_where_w0s_top_direction_is_orthogonal_to_eps(r: RankOne) -> None:
    """(f) The bound is attained: no decay at all when W0's top right singular vector is
    orthogonal to eps, at any time."""
    assume(r.eps.size >= 2 and np.linalg.norm(r.W0) > 1e-2)
    sv = lf.singular_values(r.W0)
    assume(sv[0] - (sv[1] if len(sv) > 1 else 0.0) > 1e-3 * sv[0])  # a unique top direction
    vt = np.linalg.svd(r.W0)[2][0]
    assume(np.linalg.norm(vt - (vt @ r.eps) * r.eps / r.s) > 1e-3)  # not along eps already
    res = tg.check_sigma_max_can_stay(r.W0, r.eps, np.array([0.5, 5.0, 50.0]) / r.s)
    assert res.passed, res.line()


@FAST
@given(dataset())
def test_the_decay_stops_at_the_next_singular_value(d: Dataset) -> None:
    """(f) sigma_max(W(oo)) >= sigma_{r+1}(W0), r the rank of the residuals (Cauchy interlacing)."""
    res = tg.check_decay_floor(d.W0, d.eps)
    assert res.passed, res.line()


def test_the_decay_floor_is_reached_where_w0s_top_direction_is_eps() -> None:
    """The floor is tight: with W0's top right singular vector along eps, sigma_max(W(oo)) is
    exactly sigma_2(W0)."""
    eps = np.array([1.0, -1.0, 0.0, 0.0])
    V = np.linalg.qr(np.column_stack([eps, np.eye(4)[:, :3]]))[0]
    W0 = np.diag([3.0, 2.0, 1.0]) @ V[:, :3].T
    P, _ = lf.span_projector(eps[None])
    assert float(lf.sigma_max(W0 @ (np.eye(4) - P))) == pytest.approx(2.0, rel=1e-12)
    assert tg.check_decay_floor(W0, eps).value == pytest.approx(0.0, abs=1e-12)


def test_a_sample_the_group_element_fixes_leaves_w_where_it_is() -> None:
    """eps = x - Gx = 0: Sigma = 0, the closed form is the identity at every t (not NaN)."""
    closed_form = lf.rank_one_exp(np.zeros(4), np.array([0.0, 1.0, 1e6]))
    assert np.array_equal(closed_form, np.broadcast_to(np.eye(4), (3, 4, 4)))
