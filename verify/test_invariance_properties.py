"""Properties of the invariance mathematics (Section 3.2, Eq. 1-3; Section 4.1).

The finite groups are enumerated exhaustively; Hypothesis draws the inputs
(numpy arrays converted to torch), image sizes, labels and integer seeds (the
model weights come from ``torch.manual_seed(seed)`` inside each test). All
checks run in float64, where "exact" means agreement to ~1e-12.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.special import rel_entr, softmax
from torch import nn

from nets.groups import CyclicTranslations, Group, get_group
from nets.metrics import (
    distribution_invariance,
    gaussian_smooth,
    integrated_gradients,
    layer_invariance_profile,
    logit_invariance,
    orbit_centroid_invariance,
    saliency_invariance,
    saliency_map,
)
from nets.models import InvariantMLP, MLP, check_invariance

GROUPS: list[Group] = [
    get_group("r4"),
    get_group("r2"),
    get_group("t3"),
    get_group("d4"),
    get_group("t2y"),
    CyclicTranslations(6, "y"),
]
SIZES = (6, 12)  # square sizes every group above acts on
N_CLASSES = 5
SETTINGS = settings(max_examples=20, deadline=None)
SLOW_SETTINGS = settings(max_examples=12, deadline=None)  # integrated gradients inside
SEEDS = st.integers(0, 2**31 - 1)

ROUNDOFF = 1e-12  # float64 agreement for quantities of order one


def group_id(g: Group) -> str:
    return g.name


@st.composite
def image_batches(draw, sizes: tuple[int, ...] = SIZES, max_n: int = 4) -> torch.Tensor:
    """Float64 images ``(N, S, S)`` with values in [-3, 3] (normalized-pixel range)."""
    n = draw(st.integers(1, max_n))
    s = draw(st.sampled_from(sizes))
    arr = draw(arrays(np.float64, (n, s, s), elements=st.floats(-3, 3, allow_nan=False, width=64),
                      fill=st.nothing()))  # every pixel drawn: the default fill makes most images constant
    return torch.from_numpy(arr)


@st.composite
def images_and_labels(draw, sizes: tuple[int, ...] = SIZES, max_n: int = 3):
    x = draw(image_batches(sizes, max_n))
    y = draw(arrays(np.int64, (x.shape[0],), elements=st.integers(0, N_CLASSES - 1)))
    return x, torch.from_numpy(y)


def weight_tied(group: Group, size: int, seed: int, pool: str = "max") -> InvariantMLP:
    torch.manual_seed(seed)
    return InvariantMLP(group, in_shape=(size, size), n_classes=N_CLASSES, hidden=12,
                        n_hidden_layers=2, pool=pool).double()


def plain(size: int, seed: int) -> MLP:
    torch.manual_seed(seed)
    return MLP(in_shape=(size, size), n_classes=N_CLASSES, hidden=12, n_hidden_layers=2).double()


class SortedPixels(nn.Module):
    """Logits = the C largest pixel values, scaled and shifted elementwise.

    A function of an invariant statistic (the sorted pixel values are the same
    for every permutation of the pixels), with no reductions, so its logits are
    bitwise identical over any orbit."""

    def __init__(self, seed: int, n_classes: int = N_CLASSES):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.scale = nn.Parameter(torch.randn(n_classes, generator=gen, dtype=torch.float64))
        self.shift = nn.Parameter(torch.randn(n_classes, generator=gen, dtype=torch.float64))
        self.n_classes = n_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        top = x.flatten(1).sort(dim=1).values[:, -self.n_classes:]
        return self.scale * top + self.shift


class OrbitMeanModel(nn.Module):
    """``f(x) = A softplus(B mean_g(g x) + c)``: a smooth function of the orbit mean."""

    def __init__(self, group: Group, size: int, seed: int, hidden: int = 10, n_classes: int = N_CLASSES):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.group = group
        self.B = nn.Parameter(torch.randn(hidden, size * size, generator=gen, dtype=torch.float64) / size)
        self.c = nn.Parameter(torch.randn(hidden, generator=gen, dtype=torch.float64))
        self.A = nn.Parameter(torch.randn(n_classes, hidden, generator=gen, dtype=torch.float64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = self.group.orbit(x).mean(0).flatten(1)
        return F.softplus(mean @ self.B.T + self.c) @ self.A.T


class ShiftedLogits(nn.Module):
    """``f(x) + s * x[:, 0, 0]``: a per-sample scalar added to every logit."""

    def __init__(self, base: nn.Module, s: float):
        super().__init__()
        self.base, self.s = base, s

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + self.s * x[:, :1, 0]


def trivial_stabilizer(group: Group, x: torch.Tensor, margin: float = 1e-3) -> bool:
    """Whether every non-identity element moves every image ``x: (N, H, W)`` by
    more than ``margin`` (max-norm), so that no point of the IG path
    ``b + a (x - b)`` is fixed by a group element even in float arithmetic.

    Needed for gradients of max-pooled weight-tied models: if ``g x = x`` the
    pooled responses ``W P_h x`` tie exactly in exact arithmetic but differ in
    float round-off (the sums run in different orders), so the max pool's
    gradient follows one arbitrary orbit element and is not equivariant. Such
    inputs are non-differentiable points of the model, where IG is ill-defined."""
    orbit = group.orbit(x)
    return bool(((orbit[1:] - orbit[0]).abs().flatten(2).amax(-1) > margin).all())


# ---- weight-tied models are exactly invariant ----------------------------------------------


@pytest.mark.parametrize("pool", ["max", "mean"])
@pytest.mark.parametrize("group", GROUPS, ids=group_id)
@SETTINGS
@given(x=image_batches(), seed=SEEDS)
def test_weight_tied_model_is_exactly_invariant(group: Group, pool: str, x: torch.Tensor, seed: int):
    model = weight_tied(group, x.shape[-1], seed, pool)
    with torch.no_grad():
        scale = 1.0 + float(model(x).abs().max())
    assert check_invariance(model, group, x) <= ROUNDOFF * scale


@pytest.mark.parametrize("group", GROUPS, ids=group_id)
@SETTINGS
@given(x=image_batches(), seed=SEEDS)
def test_weight_tied_model_has_zero_logit_invariance_error(group: Group, x: torch.Tensor, seed: int):
    model = weight_tied(group, x.shape[-1], seed)
    with torch.no_grad():
        scale = 1.0 + float(model(x).pow(2).sum(-1).max())
    assert float(logit_invariance(model, x, group)) <= ROUNDOFF**2 * scale


@pytest.mark.parametrize("group", GROUPS, ids=group_id)
@SETTINGS
@given(x=image_batches(), seed=SEEDS)
def test_weight_tied_model_has_zero_distribution_invariance_error(group: Group, x: torch.Tensor, seed: int):
    model = weight_tied(group, x.shape[-1], seed)
    assert float(distribution_invariance(model, x, group)) <= ROUNDOFF


@pytest.mark.parametrize("pool", ["max", "mean"])
@pytest.mark.parametrize("group", GROUPS, ids=group_id)
@SLOW_SETTINGS
@given(data=images_and_labels(), seed=SEEDS, n_steps=st.integers(2, 12))
def test_weight_tied_model_has_unit_saliency_invariance(group: Group, pool: str, data, seed: int, n_steps: int):
    x, y = data
    assume(pool == "mean" or trivial_stabilizer(group, x))
    model = weight_tied(group, x.shape[-1], seed, pool)
    si = saliency_invariance(model, x, y, group, n_steps=n_steps, reduction="none")
    # A map that is identically zero (dead ReLUs) has no direction and scores 0.
    # a map has a direction when any entry is nonzero (its norm can underflow to 0: entries near 1e-308)
    has_direction = saliency_map(model, x, y, n_steps=n_steps).flatten(1).abs().amax(dim=1) > 0
    expected = has_direction.to(si.dtype)
    torch.testing.assert_close(si, expected, atol=1e-9, rtol=0)


@pytest.mark.parametrize("group", GROUPS, ids=group_id)
@SLOW_SETTINGS
@given(data=images_and_labels(), seed=SEEDS, c=st.floats(-2, 2, allow_nan=False))
def test_integrated_gradients_of_invariant_model_are_equivariant(group: Group, data, seed: int, c: float):
    """With ``g b = b`` (a constant baseline), IG(g x) = g IG(x) for an invariant f."""
    x, y = data
    assume(trivial_stabilizer(group, x))
    model = weight_tied(group, x.shape[-1], seed)
    ig = integrated_gradients(model, x, y, baseline=c, n_steps=10)
    scale = 1e-10 * (1.0 + float(ig.abs().max()))
    for g in group.elements:
        ig_g = integrated_gradients(model, group.act(x, g), y, baseline=c, n_steps=10)
        torch.testing.assert_close(ig_g, group.act(ig, g), atol=scale, rtol=0)


@pytest.mark.parametrize("group", GROUPS, ids=group_id)
@SETTINGS
@given(x=image_batches(), seed=SEEDS)
def test_weight_tied_model_is_invariant_at_every_hidden_layer(group: Group, x: torch.Tensor, seed: int):
    model = weight_tied(group, x.shape[-1], seed)
    profile = layer_invariance_profile(model, x, group)
    # NaN only for a layer whose activations are all zero (0 / 0); never the logits, which hold the last bias.
    assert not torch.isnan(profile[-1])
    assert float(torch.nan_to_num(profile, nan=0.0).abs().max()) <= ROUNDOFF


# ---- relations between the measures -------------------------------------------------------------


@pytest.mark.parametrize("group", GROUPS, ids=group_id)
@SETTINGS
@given(x=image_batches(), seed=SEEDS)
def test_a_model_exactly_invariant_by_construction_has_zero_logit_and_distribution_error(
        group: Group, x: torch.Tensor, seed: int):
    model = SortedPixels(seed)
    li = logit_invariance(model, x, group, reduction="none")
    di = distribution_invariance(model, x, group, reduction="none")
    assert bool((li == 0).all())
    assert bool((di == 0).all())


@pytest.mark.parametrize("group", GROUPS, ids=group_id)
@SETTINGS
@given(x=image_batches(), seed=SEEDS, s=st.floats(-5, 5, allow_nan=False))
def test_distribution_error_ignores_per_sample_logit_shift(group: Group, x: torch.Tensor, seed: int, s: float):
    base = plain(x.shape[-1], seed)
    di = distribution_invariance(base, x, group, reduction="none")
    di_shifted = distribution_invariance(ShiftedLogits(base, s), x, group, reduction="none")
    torch.testing.assert_close(di_shifted, di, atol=1e-12, rtol=1e-9)


@pytest.mark.parametrize("group", GROUPS, ids=group_id)
@SETTINGS
@given(x=image_batches(), seed=SEEDS, s=st.floats(-5, 5, allow_nan=False))
def test_logit_error_sees_per_sample_logit_shift(group: Group, x: torch.Tensor, seed: int, s: float):
    """For an invariant f, LI(f + c) = C/2 mean_{g != e} (c(x) - c(gx))^2, c(x) = s x[0, 0]."""
    model = ShiftedLogits(SortedPixels(seed), s)
    li = logit_invariance(model, x, group, reduction="none")
    corner = group.orbit(x)[:, :, 0, 0]  # (|G|, N): c(gx) / s
    expected = 0.5 * N_CLASSES * (s * (corner[1:] - corner[0])).pow(2).mean(0)
    torch.testing.assert_close(li, expected, atol=1e-12, rtol=1e-9)


@pytest.mark.parametrize("group", GROUPS, ids=group_id)
@SETTINGS
@given(x=image_batches(), seed=SEEDS, scale=st.floats(0.1, 10))
def test_distribution_error_is_eq1s_kl_from_the_sample_to_its_transformed_copy(group: Group, x: torch.Tensor,
                                                                               seed: int, scale: float):
    """Eq. 1's direction, KL(u_x || q_gx), against scipy's rel_entr on softmaxes taken by scipy; the
    other direction, KL(q_gx || u_x), differs wherever the two distributions are not mirror images."""
    model = plain(x.shape[-1], seed)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(scale)
        orbit = group.orbit(x)  # (G, N, S, S)
        logits = model(orbit.reshape(-1, *x.shape[1:])).reshape(group.order, x.shape[0], -1).numpy()
    u = softmax(logits[0], axis=-1)
    others = [g for g in group.elements if g != group.identity]
    oracle = np.mean([rel_entr(u, softmax(logits[g], axis=-1)).sum(-1) for g in others], axis=0)
    ours = distribution_invariance(model, x, group, reduction="none").numpy()
    np.testing.assert_allclose(ours, oracle, rtol=1e-9, atol=1e-13)


@pytest.mark.parametrize("group", GROUPS, ids=group_id)
@SETTINGS
@given(x=image_batches(), seed=SEEDS, scale=st.floats(0.1, 30))
def test_distribution_error_is_nonnegative(group: Group, x: torch.Tensor, seed: int, scale: float):
    model = plain(x.shape[-1], seed)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(scale)  # large logits stress the log-softmax
    assert bool((distribution_invariance(model, x, group, reduction="none") >= 0).all())


@pytest.mark.parametrize("group", GROUPS, ids=group_id)
@SLOW_SETTINGS
@given(data=images_and_labels(), seed=SEEDS)
def test_saliency_similarity_of_absolute_maps_lies_in_unit_interval(group: Group, data, seed: int):
    x, y = data
    si = saliency_invariance(plain(x.shape[-1], seed), x, y, group, n_steps=6, reduction="none")
    assert bool((si >= 0).all()) and bool((si <= 1 + 1e-12).all())


@pytest.mark.parametrize("group", GROUPS, ids=group_id)
@SLOW_SETTINGS
@given(data=images_and_labels(), seed=SEEDS)
def test_function_of_orbit_mean_has_unit_saliency_similarity(group: Group, data, seed: int):
    x, y = data
    model = OrbitMeanModel(group, x.shape[-1], seed)
    si = saliency_invariance(model, x, y, group, n_steps=6, reduction="none")
    has_direction = saliency_map(model, x, y, n_steps=6).flatten(1).abs().amax(dim=1) > 0  # as above
    torch.testing.assert_close(si, has_direction.to(si.dtype), atol=1e-9, rtol=0)


@pytest.mark.parametrize("group", GROUPS, ids=group_id)
@SETTINGS
@given(x=image_batches(), seed=SEEDS)
def test_orbit_centroid_error_is_constant_on_orbits(group: Group, x: torch.Tensor, seed: int):
    model = plain(x.shape[-1], seed)
    ref = orbit_centroid_invariance(model, x, group, reduction="none")
    for g in group.elements:
        moved = orbit_centroid_invariance(model, group.act(x, g), group, reduction="none")
        torch.testing.assert_close(moved, ref, atol=1e-12, rtol=1e-9)


@pytest.mark.parametrize("group", GROUPS, ids=group_id)
@SETTINGS
@given(x=image_batches(), seed=SEEDS)
def test_orbit_centroid_error_is_all_pairs_logit_error(group: Group, x: torch.Tensor, seed: int):
    """1/|G| sum_g 1/2||f(gx) - c||^2 = 1/(2|G|^2) sum_{g,h} 1/2||f(gx) - f(hx)||^2."""
    model = plain(x.shape[-1], seed)
    with torch.no_grad():
        logits = model(group.orbit(x).flatten(0, 1)).view(group.order, x.shape[0], -1)
    pairs = 0.5 * (logits[:, None] - logits[None, :]).pow(2).sum(-1)  # (|G|, |G|, N)
    expected = pairs.sum((0, 1)) / (2 * group.order**2)
    torch.testing.assert_close(orbit_centroid_invariance(model, x, group, reduction="none"), expected,
                               atol=1e-12, rtol=1e-9)


# ---- the smoothing of the saliency map commutes with the group ----------------------------------


SMOOTH_GROUPS = GROUPS + [CyclicTranslations(4, "x"), CyclicTranslations(3, "y")]


def smoothing_size(group: Group, k: int) -> tuple[int, int]:
    """Square for rotations and flips; rectangular for translations."""
    if isinstance(group, CyclicTranslations):
        return (group.order * k, 5) if group.axis == "y" else (5, group.order * k)
    return (2 * k + 1, 2 * k + 1)


@pytest.mark.parametrize("group", SMOOTH_GROUPS, ids=group_id)
@SETTINGS
@given(data=st.data(), k=st.integers(1, 4))
def test_gaussian_smoothing_commutes_with_every_group_action(group: Group, data, k: int):
    H, W = smoothing_size(group, k)
    n = data.draw(st.integers(1, 3))
    maps = torch.from_numpy(data.draw(arrays(np.float64, (n, H, W), elements=st.floats(0, 10))))
    smoothed = gaussian_smooth(maps)
    for g in group.elements:
        torch.testing.assert_close(gaussian_smooth(group.act(maps, g)), group.act(smoothed, g),
                                   atol=1e-12, rtol=1e-12)


def test_zero_padded_smoothing_would_not_commute_with_translations():
    """Why the padding is circular: with zero padding, a point of saliency at the
    right border loses mass to the padding, while its cyclic shift does not."""
    group = get_group("t3")
    maps = torch.zeros(1, 4, 6, dtype=torch.float64)
    maps[0, 1, 5] = 1.0
    k = torch.tensor([1.0, 2.0, 1.0], dtype=torch.float64)
    k = torch.outer(k, k) / 16
    zero_pad = lambda m: F.conv2d(m.unsqueeze(1), k.view(1, 1, 3, 3), padding=1).squeeze(1)  # noqa: E731
    gap = (zero_pad(group.act(maps, 1)) - group.act(zero_pad(maps), 1)).abs().max()
    assert float(gap) > 0.1
    circular_gap = (gaussian_smooth(group.act(maps, 1)) - group.act(gaussian_smooth(maps), 1)).abs().max()
    assert float(circular_gap) < 1e-15
