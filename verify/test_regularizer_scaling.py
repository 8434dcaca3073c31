"""How the regularizer forms of Section 4.4 respond to the scale of the logits.

Proposition 3.1's spectral decay comes from the logit invariance error growing with
the scale of the network: for ``f(x) = W x`` the error ``||W (x - g x)||^2`` is
homogeneous of degree 2 in ``W``, so its gradient always has a component along
``W`` (Euler: ``<grad R, W> = 2 R``) that shrinks ``W``. The normalized form
``||f(x) - f(gx)||^2 / ||f(x)||^2`` is homogeneous of degree 0 in the logits, so
its gradient has *no* component along the last layer's parameters: it exerts no
pull on the network's scale. These properties explain why, in our Figure 5, the
normalized form does not reduce sigma_max(J) the way the logit and KL forms do; the
trained models grow their logits along the class-common direction the softmax ignores
(``verify/test_class_common_logits.py``).

The ``eps`` guard in the normalized form's denominator (``NORMALIZED_LOGIT_EPS``)
breaks the degree-0 homogeneity by a relative amount ``eps / ||f(x)||^2``, so
inputs are kept where ``||f(x)||^2 >= 1`` and the tolerance is ``1e-5``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from nets.groups import get_group
from nets.models import MLP
from nets.train import NORMALIZED_LOGIT_EPS, invariance_regularizer

SETTINGS = settings(max_examples=30, deadline=None)
SEEDS = st.integers(0, 2**31 - 1)
EPS_TOLERANCE = 1e-5  # relative effect of the eps guard when ||f(x)||^2 >= 1 (eps = 1e-6)


@st.composite
def logit_orbits(draw) -> torch.Tensor:
    """Float64 logits of whole orbits ``(|G|, B, C)``: member 0 the reference."""
    g = draw(st.integers(2, 4))
    b = draw(st.integers(1, 4))
    c = draw(st.integers(2, 6))
    arr = draw(arrays(np.float64, (g, b, c), elements=st.floats(-5, 5, allow_nan=False, width=64)))
    return torch.from_numpy(arr)


def _reference_norms_sq(logits_orbit: torch.Tensor) -> torch.Tensor:
    return logits_orbit[0].pow(2).sum(-1)


@SETTINGS
@given(logits=logit_orbits(), c=st.floats(0.1, 10))
def test_logit_regularizer_scales_with_the_square_of_the_logits(logits: torch.Tensor, c: float):
    base = invariance_regularizer(logits, "logit")
    scaled = invariance_regularizer(c * logits, "logit")
    assert scaled.item() == pytest.approx(c**2 * base.item(), rel=1e-10, abs=1e-12)


@SETTINGS
@given(logits=logit_orbits(), c=st.floats(0.5, 10))
def test_normalized_logit_regularizer_ignores_the_scale_of_the_logits(logits: torch.Tensor, c: float):
    assume(bool((_reference_norms_sq(logits) >= 1.0 / min(c, 1.0) ** 2).all()))
    base = invariance_regularizer(logits, "normalized_logit")
    scaled = invariance_regularizer(c * logits, "normalized_logit")
    assert scaled.item() == pytest.approx(base.item(), rel=EPS_TOLERANCE, abs=1e-12)


def _last_layer_radial_pull(form: str, seed: int, size: int = 12) -> tuple[float, float, float, float]:
    """``(R, <grad R, theta_L>, sum |grad R * theta_L|, min ||f(x)||^2)`` for the regularizer ``R`` of a random float64
    MLP on the R4 orbit of random images, ``theta_L`` the last layer's weight and bias (scaling
    ``theta_L`` by ``c`` scales every logit by ``c``)."""
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = MLP(in_shape=(size, size), n_classes=5, hidden=16, n_hidden_layers=2).double()
    x = torch.randn(3, size, size, generator=gen, dtype=torch.float64)
    orbit = get_group("r4").orbit(x)  # (|G|, B, H, W)
    logits = model(orbit.reshape(-1, size, size)).reshape(orbit.shape[0], x.shape[0], -1)
    reg = invariance_regularizer(logits, form)
    last = model.layers[-1]
    grads = torch.autograd.grad(reg, (last.weight, last.bias))
    products = [g * p for g, p in zip(grads, (last.weight, last.bias))]
    radial = sum(t.sum() for t in products)
    magnitude = sum(t.abs().sum() for t in products)  # scale of the float64 roundoff in `radial`
    return reg.item(), radial.item(), magnitude.item(), _reference_norms_sq(logits).min().item()


@SETTINGS
@given(seed=SEEDS)
def test_logit_regularizer_pulls_the_last_layer_toward_zero(seed: int):
    """Euler's theorem for a degree-2 homogeneous function: <grad R, theta_L> = 2 R > 0,
    so a gradient step on R always shrinks the last layer (the decay of Prop. 3.1)."""
    reg, radial, _, _ = _last_layer_radial_pull("logit", seed)
    assume(reg > 1e-8)
    assert radial == pytest.approx(2 * reg, rel=1e-9)


@SETTINGS
@given(seed=SEEDS)
def test_normalized_logit_regularizer_has_no_radial_pull_on_the_last_layer(seed: int):
    """Degree-0 homogeneity: <grad R, theta_L> = 0 up to the eps guard, so gradient descent
    on R alone does not change the last layer's norm to first order. With the guard, each
    sample's term is ``2 R_i eps / (||f(x_i)||^2 + eps)``, hence the bound below."""
    reg, radial, magnitude, min_norm_sq = _last_layer_radial_pull("normalized_logit", seed)
    assume(reg > 1e-8 and min_norm_sq > 0)
    roundoff = 1e-12 * magnitude
    assert -roundoff <= radial <= 2 * reg * NORMALIZED_LOGIT_EPS / min_norm_sq + roundoff


@SETTINGS
@given(seed=SEEDS)
def test_detaching_the_normalized_forms_denominator_restores_the_logit_forms_pull(seed: int):
    """With ``||f(x)||^2`` detached the form is degree-2 homogeneous in the last layer as far as its
    gradient sees, so <grad R, theta_L> = 2 R, as for the logit form: it shrinks the last layer."""
    reg, radial, _, _ = _last_layer_radial_pull("detached_normalized_logit", seed)
    assume(reg > 1e-8)
    assert radial == pytest.approx(2 * reg, rel=1e-9)
