"""Extension (j), the KL invariance error of one linear layer (``theory.kl_flow``): its gradient is the
trainer's own ``kl`` regularizer differentiated by torch, it never moves the rows' mean, and the centered
logits' flow ends where ``centered_limit`` says."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.integrate import solve_ivp

from nets.train.losses import regularizer_members
from theory import kl_flow as kl

ENTRIES = st.floats(-3.0, 3.0, allow_nan=False, allow_infinity=False, width=64)


def instance(data: st.DataObject, m: int, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    W = data.draw(arrays(np.float64, (m, n), elements=ENTRIES))
    x = data.draw(arrays(np.float64, n, elements=ENTRIES))
    G = np.eye(n)[data.draw(st.permutations(range(n)))]
    return W, x, G


@settings(max_examples=40, deadline=None)
@given(m=st.integers(2, 5), n=st.integers(2, 5), data=st.data())
def test_the_gradient_is_the_trainers_kl_regularizer_differentiated_by_torch(m: int, n: int,
                                                                            data: st.DataObject) -> None:
    W, x, G = instance(data, m, n)
    Wt = torch.tensor(W, requires_grad=True)
    logits = torch.stack([Wt @ torch.tensor(x), Wt @ torch.tensor(G @ x)])[None, :, None, :]  # (S, |G|, B, C)
    regularizer_members(logits, "kl").sum().backward()
    np.testing.assert_allclose(kl.kl_gradient(W, x, G), Wt.grad.numpy(), rtol=1e-9, atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(m=st.integers(2, 5), n=st.integers(2, 5), data=st.data())
def test_the_flow_never_moves_the_rows_mean(m: int, n: int, data: st.DataObject) -> None:
    W, x, G = instance(data, m, n)
    np.testing.assert_allclose(kl.kl_gradient(W, x, G).sum(axis=0), 0.0, atol=1e-12)


@settings(max_examples=25, deadline=None)
@given(m=st.integers(2, 4), n=st.integers(2, 4), data=st.data())
def test_the_centered_flow_ends_where_the_closed_form_says(m: int, n: int, data: st.DataObject) -> None:
    W0 = data.draw(arrays(np.float64, (m, n), elements=ENTRIES))
    eps = data.draw(arrays(np.float64, n, elements=ENTRIES))
    s = float(eps @ eps)
    assume(s > 1e-2)
    C = np.eye(m) - 1.0 / m

    def rhs(_t: float, w: np.ndarray) -> np.ndarray:
        return -(C @ w.reshape(m, n) @ np.outer(eps, eps)).ravel()

    end = solve_ivp(rhs, (0.0, 40.0 / s), W0.ravel(), method="DOP853", rtol=1e-11, atol=1e-13).y[:, -1]
    np.testing.assert_allclose(end.reshape(m, n), kl.centered_limit(W0, eps), atol=1e-7 * max(1.0, np.abs(W0).max()))
