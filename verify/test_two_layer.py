"""Extension (i), two linear layers ``h(x) = W2 W1 x``: the closed form of where the gradient flow of the
invariance error ends (``theory.two_layer.two_layer_limit``) against the flow integrated by ``solve_ivp``,
for one output, one residual in the plane and any hidden width."""

from __future__ import annotations

import numpy as np
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from theory import linear_flow as lf
from theory import two_layer as tw

ENTRIES = st.floats(-2.0, 2.0, allow_nan=False, allow_infinity=False, width=64)


@settings(max_examples=25, deadline=None)
@given(k=st.integers(1, 4), data=st.data())
def test_the_flow_ends_where_the_closed_form_says(k: int, data: st.DataObject) -> None:
    W1 = data.draw(arrays(np.float64, (k, 2), elements=ENTRIES))
    W2 = data.draw(arrays(np.float64, (1, k), elements=ENTRIES))
    eps = data.draw(arrays(np.float64, 2, elements=ENTRIES))
    s = float(eps @ eps)
    assume(s > 1e-2)
    e = eps / np.sqrt(s)
    a_e, b = W1 @ e, W2[0]
    flip = 1.0 if b @ a_e >= 0 else -1.0
    gap = float(np.sum((flip * a_e - b) ** 2))  # the rate P_e decays at is s / 2 times this, or more
    assume(gap > 1e-2)
    T = 40.0 / (s * gap)
    A, B = tw.two_layer_flow(W1, W2, lf.invariance_covariance(eps[None]), np.array([0.0, T]), rtol=1e-11)
    limit = tw.two_layer_limit(W1, W2, eps)
    end = float(lf.sigma_max(B[-1] @ A[-1]))
    assert abs(end - limit) <= 1e-6 * max(1.0, limit)
