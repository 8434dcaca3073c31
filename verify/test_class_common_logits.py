"""The class-common direction of the logits, which the softmax ignores.

Adding the same amount ``s`` to every logit changes neither the prediction, nor the
cross-entropy, nor DI. It does change the normalized logit error of Section 4.4,
``||f(x) - f(gx)||^2 / ||f(x)||^2``: a shift common to ``x`` and ``gx`` leaves the
numerator alone and grows the denominator, so a network can lower this error without
becoming any more invariant. The Figure 5 diagnostics (``sigma_max`` of the centered
logits, ``class_common_logit_share``) measure whether trained models do so; these
tests check the facts they rest on.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from nets.groups import get_group
from nets.metrics import class_common_logit_share, jacobian_spectral_norm
from nets.models import MLP, CenteredLogits
from nets.train import invariance_regularizer

SETTINGS = settings(max_examples=25, deadline=None)
SEEDS = st.integers(0, 2**31 - 1)
SHIFTS = st.floats(-1e3, 1e3, allow_nan=False)


def small_mlp(seed: int, shift: float = 0.0) -> MLP:
    """A random float64 MLP on 6x6 images; ``shift`` is added to every output bias."""
    torch.manual_seed(seed)
    model = MLP(in_shape=(6, 6), n_classes=5, hidden=8, n_hidden_layers=2).double().eval()
    with torch.no_grad():
        model.layers[-1].bias += shift
    return model


def images(seed: int, n: int = 4) -> torch.Tensor:
    return torch.randn(n, 6, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))


@given(SEEDS, SHIFTS)
@SETTINGS
def test_centered_logits_ignore_a_class_common_shift(seed: int, shift: float) -> None:
    x = images(seed)
    plain, shifted = small_mlp(seed), small_mlp(seed, shift)
    assert torch.allclose(CenteredLogits(shifted)(x), CenteredLogits(plain)(x), atol=1e-9 * (1 + abs(shift)))
    assert torch.allclose(torch.softmax(shifted(x), -1), torch.softmax(plain(x), -1), atol=1e-9)


@pytest.mark.filterwarnings("ignore::nets.model_checks.ZeroInputGradient")  # a small ReLU net may be dead there
@given(SEEDS)
@SETTINGS
def test_centering_never_raises_the_jacobian_spectral_norm(seed: int) -> None:
    """Centering is an orthogonal projection of the logits, so ``||P J||_2 <= ||J||_2``."""
    x, model = images(seed), small_mlp(seed)
    full = jacobian_spectral_norm(model, x)
    centered = jacobian_spectral_norm(CenteredLogits(model), x)
    assert bool((centered <= full * (1 + 1e-12) + 1e-12).all())


@given(arrays(np.float64, st.tuples(st.integers(1, 5), st.integers(2, 7)),
              elements=st.floats(-1e3, 1e3, allow_nan=False)))
@SETTINGS
def test_class_common_share_is_the_absolute_cosine_with_the_ones_vector(f: np.ndarray) -> None:
    logits = torch.from_numpy(f)
    share = class_common_logit_share(logits)
    ones = torch.ones(f.shape[1], dtype=torch.float64)
    norms = logits.norm(dim=1)
    expected = torch.where(norms > 0, (logits @ ones).abs() / (norms * ones.norm()).clamp_min(1e-300),
                           torch.zeros_like(norms))
    assert torch.allclose(share, expected, atol=1e-12)
    assert bool(((share >= 0) & (share <= 1 + 1e-12)).all())


def test_class_common_share_is_one_for_a_pure_shift_and_zero_for_centered_logits() -> None:
    shift = torch.full((3, 4), -2.5)
    centered = torch.randn(3, 4, generator=torch.Generator().manual_seed(0))
    centered = centered - centered.mean(1, keepdim=True)
    assert torch.allclose(class_common_logit_share(shift), torch.ones(3, dtype=torch.float64))
    assert torch.allclose(class_common_logit_share(centered), torch.zeros(3, dtype=torch.float64), atol=1e-7)


def test_class_common_share_refuses_a_batch_that_is_not_two_dimensional() -> None:
    with pytest.raises(ValueError, match=r"\(N, C\)"):
        class_common_logit_share(torch.zeros(4))


@given(SEEDS)
@SETTINGS
def test_a_class_common_shift_lowers_the_normalized_error_but_not_the_centered_one(seed: int) -> None:
    """The degenerate way to satisfy the normalized logit form: a large shift common to
    every class drives ``||f(x) - f(gx)||^2 / ||f(x)||^2`` towards 0 while the logits the
    softmax sees, and hence how invariant the model is, stay exactly as they were."""
    r4 = get_group("r4")
    x = images(seed)
    orbit = r4.orbit(x)  # (|G|, N, 6, 6)

    @torch.no_grad()
    def errors(model: MLP) -> tuple[float, float]:
        logits = model(orbit.flatten(0, 1)).unflatten(0, (r4.order, x.shape[0]))
        centered = logits - logits.mean(-1, keepdim=True)
        return (float(invariance_regularizer(logits, "normalized_logit")),
                float(invariance_regularizer(centered, "normalized_logit")))

    plain, shifted = errors(small_mlp(seed)), errors(small_mlp(seed, 1e3))
    assert np.isclose(shifted[1], plain[1], rtol=1e-6, atol=1e-12)
    assert shifted[0] <= plain[0] * 1e-3 + 1e-12


@given(SEEDS, SHIFTS)
@SETTINGS
def test_the_centered_normalized_form_ignores_a_class_common_shift_that_moves_the_paper_form(
        seed: int, shift: float) -> None:
    """Our centered normalized form (``centered_normalized_logit``, not the paper's) closes the
    loophole: a class-common shift of the output bias, which the softmax ignores, leaves it
    unchanged, while the paper's normalized form changes with it (its denominator moves)."""
    r4 = get_group("r4")
    x = images(seed)
    orbit = r4.orbit(x)

    @torch.no_grad()
    def forms(model: MLP) -> tuple[float, float]:
        logits = model(orbit.flatten(0, 1)).unflatten(0, (r4.order, x.shape[0]))
        return (float(invariance_regularizer(logits, "normalized_logit")),
                float(invariance_regularizer(logits, "centered_normalized_logit")))

    (plain_paper, plain_ours), (shifted_paper, shifted_ours) = forms(small_mlp(seed)), forms(small_mlp(seed, shift))
    # float64 logits of size ~|shift|: centering cancels the shift up to round-off ~1e-16 |shift|
    assert np.isclose(shifted_ours, plain_ours, rtol=1e-6 * (1 + abs(shift)), atol=1e-12)
    if abs(shift) >= 1.0:  # a shift of at least 1 moves the paper's form measurably
        assert not np.isclose(shifted_paper, plain_paper, rtol=1e-6, atol=0)
