"""Extension (h): SGD with momentum on the invariance error alone (``theory.momentum``).

torch's ``SGD(momentum=beta)`` is the heavy-ball recurrence ``W_k = W0 p_k(alpha Sigma)``; below
``beta = 0.8`` it keeps sigma_max non-increasing wherever gradient descent does (``alpha lambda_max
<= 2``), and at ``beta = 0.9`` a step with ``alpha lambda_max`` between the roots of
``a^2 - (2 + beta) a + 2`` raises it, though gradient descent at that step does not."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from theory import linear_flow as lf
from theory.momentum import (check_momentum_can_grow_sigma_max, check_momentum_unsafe_steps, heavy_ball_polynomials,
                             second_step_roots, sgd_momentum_path)
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
    assert second_step_roots(edge - 1e-9) is None
    lo, hi = second_step_roots(0.9)
    assert (lo, hi) == pytest.approx((1.1298, 1.7702), abs=1e-4)
    assert heavy_ball_polynomials(np.array([lo, hi]), 0.9, 2)[2] == pytest.approx([-1.0, -1.0], abs=1e-12)


def test_at_momentum_0_9_exactly_the_steps_between_p2s_roots_break_the_bound() -> None:
    res = check_momentum_unsafe_steps()
    assert res.passed, res.line()


def test_at_momentum_0_95_later_steps_break_the_bound_below_p2s_roots() -> None:
    # the scan's interval is p_2's only up to some momentum: at 0.95 steps from about 0.69 break it
    res = check_momentum_unsafe_steps(beta=0.95)
    assert not res.passed and "in [0.69" in res.detail, res.line()
