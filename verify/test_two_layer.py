"""Extension (i), two linear layers ``h(x) = W2 W1 x``: the closed form of where the gradient flow of the
invariance error ends (``theory.two_layer.two_layer_limit``) against the flow integrated by ``solve_ivp``,
for one output, one residual and any hidden width and input dimension."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from theory import linear_flow as lf
from theory import two_layer as tw

ENTRIES = st.floats(-2.0, 2.0, allow_nan=False, allow_infinity=False, width=64)


@settings(max_examples=25, deadline=None)
@given(k=st.integers(1, 4), n=st.integers(2, 4), data=st.data())
def test_the_flow_ends_where_the_closed_form_says(k: int, n: int, data: st.DataObject) -> None:
    W1 = data.draw(arrays(np.float64, (k, n), elements=ENTRIES))
    W2 = data.draw(arrays(np.float64, (1, k), elements=ENTRIES))
    eps = data.draw(arrays(np.float64, n, elements=ENTRIES))
    assume(float(eps @ eps) > 1e-2)
    rate = tw.slowest_rate(W1, W2, eps)
    assume(rate > 1e-2)
    A, B = tw.two_layer_flow(W1, W2, lf.invariance_covariance(eps[None]), np.array([0.0, 40.0 / rate]), rtol=1e-11)
    limit = tw.two_layer_limit(W1, W2, eps)
    end = float(lf.sigma_max(B[-1] @ A[-1]))
    assert abs(end - limit) <= 1e-6 * max(1.0, limit)


def test_the_closed_form_refuses_more_than_one_output() -> None:
    with pytest.raises(ValueError, match=r"one output: W2 \(1, k\), W1 \(k, n\), eps \(n,\); got W2 \(2, 3\)"):
        tw.two_layer_limit(np.ones((3, 2)), np.ones((2, 3)), np.array([1.0, -1.0]))
