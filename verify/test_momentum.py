"""Extension (h): SGD with momentum on the invariance error alone (``theory.momentum``).

torch's ``SGD(momentum=beta)`` is the heavy-ball recurrence ``W_k = W0 p_k(alpha Sigma)``; below
``beta = 0.8`` it keeps sigma_max non-increasing wherever gradient descent does (``alpha lambda_max
<= 2``), and at ``beta = 0.9`` a step with ``alpha lambda_max`` between the roots of
``a^2 - (2 + beta) a + 2`` raises it, though gradient descent at that step does not."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from theory import linear_flow as lf
import theory.momentum as tm
from theory.momentum import (breaks_bound, check_momentum_can_grow_sigma_max, check_momentum_unsafe_steps,
                             heavy_ball_polynomials, second_step_roots, sgd_momentum_path)
from test_proposition import FAST, Dataset, dataset


@FAST
@given(dataset(), st.floats(0.0, 0.99), st.floats(1e-3, 3.0), st.integers(1, 20))
def test_torch_sgd_with_momentum_is_the_heavy_ball_polynomial_of_sigma(
        d: Dataset, beta: float, factor: float, steps: int) -> None:
    lam, U = np.linalg.eigh(d.Sigma)
    alpha = factor / lam[-1]
    p = heavy_ball_polynomials(alpha * lam, beta, steps)  # (steps + 1, n)
    expected = np.einsum("mi,ki,ji->kmj", d.W0 @ U, p, U)
    got = sgd_momentum_path(d.W0, d.Sigma, alpha, beta, steps)
    scale = np.abs(expected).max() + np.abs(d.W0).max()
    assert np.abs(got - expected).max() <= 1e-10 * scale


@FAST
@given(dataset(), st.floats(0.0, 0.8), st.floats(1e-3, 2.0), st.integers(1, 40))
def test_momentum_up_to_0_8_keeps_sigma_max_wherever_gradient_descent_does(
        d: Dataset, beta: float, factor: float, steps: int) -> None:
    lam = np.linalg.eigvalsh(d.Sigma)
    s = lf.sigma_max(sgd_momentum_path(d.W0, d.Sigma, factor / lam[-1], beta, steps))
    assert s.max() <= s[0] * (1 + 1e-9)


def test_momentum_0_9_at_a_step_gradient_descent_keeps_raises_sigma_max_by_p2() -> None:
    rng = np.random.default_rng(0)
    A = rng.normal(size=(6, 4))
    Sigma = A @ A.T
    res = check_momentum_can_grow_sigma_max(Sigma, m=3)
    p2 = (1 - 1.5) * (1 + 0.9 - 1.5) - 0.9  # -1.1
    assert res.passed and res.value == pytest.approx(abs(p2) - 1, abs=1e-9), res.line()
    lam, U = np.linalg.eigh(Sigma)
    W0 = np.outer([1.0, 2.0, 3.0], U[:, -1])
    gd = lf.sigma_max(sgd_momentum_path(W0, Sigma, 1.5 / lam[-1], 0.0, 60))  # the same step, no momentum
    assert gd.max() <= gd[0] * (1 + 1e-12)


def test_the_second_step_overshoots_only_above_momentum_2_sqrt_2_minus_2() -> None:
    edge = 2 * math.sqrt(2) - 2
    assert second_step_roots(edge - 1e-9) is None and second_step_roots(edge + 1e-6) is not None
    lo, hi = second_step_roots(0.9)
    assert (lo, hi) == pytest.approx((1.1298, 1.7702), abs=1e-4)
    assert heavy_ball_polynomials(np.array([lo, hi]), 0.9, 2)[2] == pytest.approx([-1.0, -1.0], abs=1e-12)


def test_at_momentum_0_9_exactly_the_steps_between_p2s_roots_break_the_bound() -> None:
    res = check_momentum_unsafe_steps()
    assert res.passed, res.line()


@pytest.mark.parametrize("beta", [0.8285, 0.85, 0.93])
def test_up_to_momentum_0_93_the_breaking_steps_are_exactly_p2s_interval(beta: float) -> None:
    res = check_momentum_unsafe_steps(beta, safe_betas=())
    assert res.passed, res.line()


def test_at_momentum_0_95_the_third_step_breaks_the_bound_below_p2s_interval_too() -> None:
    res = check_momentum_unsafe_steps(beta=0.95)
    assert not res.passed and "([0.6918, 0.8648], [1.0562, 1.8940])" in res.detail, res.line()
    assert np.abs(heavy_ball_polynomials(np.array([0.7, 0.8]), 0.95, 3)[3]).min() > 1  # p_3, outside (1.056, 1.894)
    assert not check_momentum_unsafe_steps(beta=0.94, safe_betas=()).passed


def test_a_momentum_that_breaks_the_bound_listed_as_safe_fails_the_check() -> None:
    assert not check_momentum_unsafe_steps(safe_betas=(0.9,)).passed


@pytest.mark.parametrize("beta", [0.8284, 0.9])
def test_500_steps_find_every_step_that_breaks_the_bound(beta: float) -> None:
    grid = np.linspace(2.0 / 4001, 2.0, 4001)
    assert np.array_equal(breaks_bound(beta, grid, 500), breaks_bound(beta, grid, 5000))


def test_the_counterexample_fails_where_torchs_path_is_not_the_recurrence(monkeypatch) -> None:
    # any growth above 0.05 passed: a Nesterov step grew by 8e6 and the check still read PASS
    rng = np.random.default_rng(0)
    A = rng.normal(size=(6, 4))

    def nesterov(W0, Sigma, lr, beta, steps):
        W = torch.tensor(np.asarray(W0, dtype=np.float64), requires_grad=True)
        opt, out = torch.optim.SGD([W], lr=lr, momentum=beta, nesterov=True), [W.detach().numpy().copy()]
        for _ in range(steps):
            opt.zero_grad()
            (0.5 * ((W @ torch.tensor(Sigma)) * W).sum()).backward()
            opt.step()
            out.append(W.detach().numpy().copy())
        return np.stack(out)

    monkeypatch.setattr(tm, "sgd_momentum_path", nesterov)
    res = check_momentum_can_grow_sigma_max(A @ A.T)
    assert not res.passed and "they differ" in res.detail, res.line()
