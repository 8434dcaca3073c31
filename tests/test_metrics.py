"""Unit tests of the invariance measures against oracles (captum, dense SVD,
brute-force loops over the group) and of their error handling."""

from __future__ import annotations

import contextlib
import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from captum.attr import IntegratedGradients
from torch import nn

from nets import ChannelsLast
from nets.attribution import smoothing_commutes
from nets.groups import D4, R4, T3, Group, get_group
from nets.metrics import (
    distribution_invariance,
    gaussian_kernel,
    gaussian_smooth,
    ig_quadrature,
    integrated_gradients,
    jacobian_spectral_norm,
    layer_invariance_profile,
    logit_invariance,
    orbit_centroid_invariance,
    orbit_measures,
    orbit_terms,
    saliency_invariance,
    saliency_map,
)
from nets.logit_terms import di_per_sample
from nets.models import InvariantMLP, MLP
from nets.pairwise import kl_from_log_probs

CAPTUM_METHODS = ["gausslegendre", "riemann_left", "riemann_right", "riemann_middle"]


class SmoothMLP(nn.Module):
    """tanh/softplus perceptron on (N, H, W) images: a smooth integrand for IG."""

    def __init__(self, size: int = 6, hidden: int = 16, n_classes: int = 5):
        super().__init__()
        self.l1 = nn.Linear(size * size, hidden)
        self.l2 = nn.Linear(hidden, hidden)
        self.l3 = nn.Linear(hidden, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.tanh(self.l1(x.flatten(1)))
        return self.l3(F.softplus(self.l2(h)))


def smooth_model(seed: int = 0) -> SmoothMLP:
    torch.manual_seed(seed)
    return SmoothMLP().double()


def small_mlp(seed: int = 0, size: int = 6) -> MLP:
    torch.manual_seed(seed)
    return MLP(in_shape=(size, size), n_classes=5, hidden=16, n_hidden_layers=3).double()


def images(n: int = 5, size: int = 6, seed: int = 1) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, size, size, generator=gen, dtype=torch.float64)


# ---- integrated gradients -------------------------------------------------------------------------


@pytest.mark.parametrize("method", CAPTUM_METHODS)
def test_integrated_gradients_match_captum(method):
    """Agreement to ~1e-8 (captum casts its quadrature weights to float32); with
    6 steps the methods, and 5 vs 6 steps, differ by 1e-5 or more."""
    model, x = smooth_model(), 2 * images()
    baseline = 0.3 * images(seed=7)
    target = torch.tensor([0, 1, 2, 3, 4])
    ours = integrated_gradients(model, x, target, baseline, n_steps=6, method=method)
    theirs = IntegratedGradients(model).attribute(x, baselines=baseline, target=target, n_steps=6, method=method)
    torch.testing.assert_close(ours, theirs.detach(), atol=1e-7, rtol=1e-6)


@pytest.mark.parametrize("method", CAPTUM_METHODS)
def test_convergence_delta_matches_captum(method):
    model, x = smooth_model(), images()
    target = 2
    _, ours = integrated_gradients(model, x, target, None, n_steps=5, method=method, return_convergence_delta=True)
    _, theirs = IntegratedGradients(model).attribute(x, target=target, n_steps=5, method=method,
                                                     return_convergence_delta=True)
    torch.testing.assert_close(ours, theirs.detach(), atol=1e-7, rtol=1e-6)


def test_trapezoid_rule_is_captums_rescaled_by_n_over_n_minus_1():
    """captum 0.9's riemann_trapezoid weights (1/n, halved ends) sum to (n-1)/n."""
    model, x, n = smooth_model(), images(), 9
    ours = integrated_gradients(model, x, 1, n_steps=n, method="riemann_trapezoid")
    theirs = IntegratedGradients(model).attribute(x, target=1, n_steps=n, method="riemann_trapezoid")
    torch.testing.assert_close(ours, theirs.detach() * n / (n - 1), atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("method", CAPTUM_METHODS + ["riemann_trapezoid"])
def test_quadrature_weights_sum_to_one(method):
    _, w = ig_quadrature(method, 13)
    assert w.sum() == pytest.approx(1.0, abs=1e-14)


@pytest.mark.parametrize("method", CAPTUM_METHODS + ["riemann_trapezoid"])
def test_integrated_gradients_are_complete_for_a_linear_model(method):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(36, 4)).double()
    _, delta = integrated_gradients(model, images(), 3, 0.5, n_steps=4, method=method, return_convergence_delta=True)
    assert float(delta.abs().max()) < 1e-12


@pytest.mark.parametrize("method", ["riemann_trapezoid", "riemann_middle", "gausslegendre"])
def test_completeness_gap_shrinks_as_steps_grow_on_a_smooth_model(method):
    model, x = smooth_model(), 2 * images()
    gaps = []
    for n in (2, 4, 8):
        _, delta = integrated_gradients(model, x, 0, n_steps=n, method=method, return_convergence_delta=True)
        gaps.append(float(delta.abs().mean()))
    assert gaps[0] > gaps[1] > gaps[2]


def test_integrated_gradients_do_not_depend_on_chunking():
    model, x = smooth_model(), images(n=7)
    full = integrated_gradients(model, x, 1, chunk_size=64)
    chunked = integrated_gradients(model, x, 1, chunk_size=3)
    torch.testing.assert_close(chunked, full, atol=1e-14, rtol=1e-12)


def test_integrated_gradients_leave_parameter_gradients_untouched():
    model = smooth_model()
    integrated_gradients(model, images(), 0)
    assert all(p.grad is None for p in model.parameters())


def test_integrated_gradients_work_inside_no_grad():
    model, x = smooth_model(), images()
    with torch.no_grad():
        inside = integrated_gradients(model, x, 0)
    torch.testing.assert_close(inside, integrated_gradients(model, x, 0))


def test_integrated_gradients_reject_a_target_of_the_wrong_shape():
    with pytest.raises(ValueError, match=r"shape \(N,\)"):
        integrated_gradients(smooth_model(), images(n=5), torch.zeros(4, dtype=torch.long))


def test_integrated_gradients_reject_an_out_of_range_target():
    with pytest.raises(ValueError, match=r"\[0, 5\)"):
        integrated_gradients(smooth_model(), images(), 5)


def test_integrated_gradients_reject_a_float_target():
    with pytest.raises(ValueError, match="integer"):
        integrated_gradients(smooth_model(), images(), torch.zeros(5))


def test_integrated_gradients_reject_an_unknown_method():
    with pytest.raises(ValueError, match="method"):
        integrated_gradients(smooth_model(), images(), 0, method="simpson")  # type: ignore[arg-type]


def test_integrated_gradients_reject_a_baseline_that_does_not_broadcast():
    with pytest.raises(ValueError, match="broadcast"):
        integrated_gradients(smooth_model(), images(), 0, baseline=torch.zeros(5, 5))


# ---- saliency maps -----------------------------------------------------------------------------


def test_gaussian_kernel_is_normalised():
    assert float(gaussian_kernel(3, 1.0, dtype=torch.float64).sum()) == pytest.approx(1.0, abs=1e-15)


@pytest.mark.parametrize("g", D4.elements)
def test_gaussian_kernel_is_fixed_by_every_rotation_and_flip(g):
    k = gaussian_kernel(3, 1.0, dtype=torch.float64)
    torch.testing.assert_close(D4.act(k, g), k, atol=0, rtol=0)


def test_gaussian_kernel_has_the_sigma_one_weights():
    k = gaussian_kernel(3, 1.0, dtype=torch.float64)
    e = torch.exp(torch.tensor(-0.5, dtype=torch.float64))
    assert float(k[0, 0] / k[1, 1]) == pytest.approx(float(e**2), rel=1e-12)
    assert float(k[0, 1] / k[1, 1]) == pytest.approx(float(e), rel=1e-12)


def test_circular_smoothing_keeps_a_constant_map_constant():
    maps = torch.full((2, 5, 7), 3.0, dtype=torch.float64)
    torch.testing.assert_close(gaussian_smooth(maps), maps, atol=1e-14, rtol=0)


def test_thresholded_saliency_keeps_only_values_near_the_maximum():
    model, x = small_mlp(), images()
    raw = integrated_gradients(model, x, 0).abs()
    maps = saliency_map(model, x, 0, smooth=False)
    keep = raw >= 0.9 * raw.amax(dim=(1, 2), keepdim=True)
    torch.testing.assert_close(maps, torch.where(keep, raw, torch.zeros_like(raw)), atol=0, rtol=0)


def test_saliency_map_is_smoothed_thresholded_absolute_ig():
    model, x = small_mlp(), images()
    torch.testing.assert_close(saliency_map(model, x, 1), gaussian_smooth(saliency_map(model, x, 1, smooth=False)))


# ---- LI, DI, SI against brute-force loops ------------------------------------------------------------


@pytest.mark.parametrize("group", [R4, T3, D4], ids=lambda g: g.name)
def test_logit_invariance_is_equation_2(group):
    model, x = small_mlp(), images()
    with torch.no_grad():
        f = model(x)
        terms = [0.5 * (f - model(group.act(x, g))).pow(2).sum(1) for g in group.elements if g != 0]
    expected = torch.stack(terms).mean(0)
    torch.testing.assert_close(logit_invariance(model, x, group, reduction="none"), expected)


@pytest.mark.parametrize("group", [R4, T3, D4], ids=lambda g: g.name)
def test_orbit_measures_equal_the_separate_measures_from_one_pass(group):
    from nets.data import Split
    from nets.train import orbit_accuracy

    model, x = small_mlp(), images(n=23)
    y = torch.arange(23) % 5
    out = orbit_measures(model, x, y, group, chunk_size=7)
    assert out["accuracy"] == orbit_accuracy(model, Split(x, y), group)
    with torch.no_grad():  # the oracle: every element of every orbit classified one by one
        right = [(model(group.act(x, g)).argmax(1) == y).double().mean() for g in range(group.order)]
    assert out["accuracy"] == pytest.approx(float(torch.stack(right).mean()), rel=1e-12)
    assert out["LI"] == pytest.approx(float(logit_invariance(model, x, group)), rel=1e-12)
    assert out["DI"] == pytest.approx(float(distribution_invariance(model, x, group)), rel=1e-12)


def test_di_is_never_negative_where_the_kl_divergence_rounds_below_zero():
    """Orbit logits that differ by 1e-10: KL is about 1e-19, below float64's rounding of its sum."""
    g = torch.Generator().manual_seed(0)
    f = 10 * torch.randn(1, 50, 9, generator=g, dtype=torch.float64)
    orbit = torch.cat([f, f + 1e-10 * torch.randn(3, 50, 9, generator=g, dtype=torch.float64)])
    logp = F.log_softmax(orbit, -1)
    assert bool((kl_from_log_probs(logp[0], logp[1:]) < 0).any())  # the case exists
    di = di_per_sample(orbit, [1, 2, 3])
    assert bool((di >= 0).all()) and float(di.max()) < 1e-15


def test_orbit_terms_computes_only_the_terms_asked_for_with_the_same_values():
    model, x = small_mlp(), images(n=11)
    y = torch.arange(11) % 5
    full = orbit_terms(model, x, y, R4, chunk_size=4)
    only = orbit_terms(model, x, y, R4, chunk_size=4, terms=("correct",))
    assert set(only) == {"correct"} and torch.equal(only["correct"], full["correct"])
    with pytest.raises(ValueError, match="unknown orbit terms"):
        orbit_terms(model, x, y, R4, terms=("accuracy",))


def test_orbit_measures_reject_labels_that_do_not_match_the_images():
    with pytest.raises(ValueError, match="y must be a tensor of shape"):
        orbit_measures(small_mlp(), images(n=4), torch.zeros(3, dtype=torch.long), R4)


def test_orbit_measures_without_labels_name_the_measures_that_need_none():
    with pytest.raises(ValueError, match="orbit_measures gives the orbit accuracy, which needs labels y of shape "
                                         r"\(N,\); for unlabelled images, logit_invariance and distribution_"):
        orbit_measures(small_mlp(), images(n=4), None, R4)


@pytest.mark.parametrize("group", [R4, T3, D4], ids=lambda g: g.name)
def test_distribution_invariance_is_equation_1(group):
    model, x = small_mlp(), images()
    with torch.no_grad():
        u = F.softmax(model(x), dim=1)
        terms = []
        for g in range(1, group.order):
            q = F.softmax(model(group.act(x, g)), dim=1)
            terms.append((u * (u.log() - q.log())).sum(1))
    expected = torch.stack(terms).mean(0)
    torch.testing.assert_close(distribution_invariance(model, x, group, reduction="none"), expected)


@pytest.mark.parametrize("group", [R4, T3, D4], ids=lambda g: g.name)
def test_saliency_invariance_is_equation_3(group):
    model, x = small_mlp(), images()
    y = torch.tensor([0, 1, 2, 3, 4])
    m = saliency_map(model, x, y, n_steps=8)
    terms = []
    for g in range(1, group.order):
        aligned = group.act(saliency_map(model, group.act(x, g), y, n_steps=8), group.inverse(g))
        terms.append(F.cosine_similarity(m.flatten(1), aligned.flatten(1), dim=1))
    expected = torch.stack(terms).mean(0)
    torch.testing.assert_close(saliency_invariance(model, x, y, group, n_steps=8, reduction="none"), expected)


class QuadrantSwap(Group):
    """Swaps the top two quadrants of the image, leaving the bottom half: a pixel permutation the
    smoothing does not commute with (it breaks up the neighbourhoods where the halves meet)."""

    name, order = "quadswap", 2

    def compose(self, a, b):
        return (a + b) % 2

    def inverse(self, a):
        return a

    def _act_reference(self, grid, g):
        if g == 0:
            return grid
        out, h, w = grid.clone(), grid.shape[-2] // 2, grid.shape[-1] // 2
        out[:h, :w], out[:h, w:2 * w] = grid[:h, w:2 * w], grid[:h, :w]
        return out


class OrbitAveraged(nn.Module):
    """``f(x) = mean_g h(g x)``: exactly invariant to ``group``."""

    def __init__(self, inner: nn.Module, group):
        super().__init__()
        self.inner, self.group = inner, group

    def forward(self, x):
        return torch.stack([self.inner(self.group.act(x, g)) for g in self.group.elements]).mean(0)


def test_an_invariant_model_gets_si_1_under_a_group_the_smoothing_does_not_commute_with():
    group = QuadrantSwap()
    assert not smoothing_commutes(group, 6, 6) and smoothing_commutes(R4, 6, 6)
    model, x, y = OrbitAveraged(small_mlp(), group), images(), torch.tensor([0, 1, 2, 3, 4])
    torch.testing.assert_close(saliency_invariance(model, x, y, group, n_steps=8, reduction="none"),
                               torch.ones(5, dtype=torch.float64))


def test_under_such_a_group_si_compares_the_maps_realigned_then_smoothed():
    group, model, x, y = QuadrantSwap(), small_mlp(), images(), torch.tensor([0, 1, 2, 3, 4])
    raw = lambda z: saliency_map(model, z, y, n_steps=8, smooth=False)  # noqa: E731
    aligned = group.act(raw(group.act(x, 1)), 1)
    expected = F.cosine_similarity(gaussian_smooth(raw(x)).flatten(1), gaussian_smooth(aligned).flatten(1), dim=1)
    torch.testing.assert_close(saliency_invariance(model, x, y, group, n_steps=8, reduction="none"), expected)


def test_predicted_target_saliency_uses_each_inputs_own_prediction():
    model, x = small_mlp(), images()
    with torch.no_grad():
        pred = [model(R4.act(x, g)).argmax(1) for g in R4.elements]
    m = saliency_map(model, x, pred[0], n_steps=8)
    terms = []
    for g in range(1, 4):
        aligned = R4.act(saliency_map(model, R4.act(x, g), pred[g], n_steps=8), R4.inverse(g))
        terms.append(F.cosine_similarity(m.flatten(1), aligned.flatten(1), dim=1))
    si = saliency_invariance(model, x, None, R4, target="predicted", n_steps=8, reduction="none")
    torch.testing.assert_close(si, torch.stack(terms).mean(0))


def test_saliency_without_labels_names_the_predicted_target():
    with pytest.raises(ValueError, match="target='predicted'"):
        saliency_invariance(small_mlp(), images(), None, R4, n_steps=8)


@pytest.mark.parametrize("measure", [logit_invariance, distribution_invariance, orbit_centroid_invariance])
def test_output_measures_do_not_depend_on_chunking(measure):
    model, x = small_mlp(), images(n=9)
    torch.testing.assert_close(measure(model, x, R4, reduction="none", chunk_size=2),
                               measure(model, x, R4, reduction="none"), atol=1e-14, rtol=1e-12)


def test_saliency_invariance_does_not_depend_on_chunking():
    model, x = small_mlp(), images(n=5)
    y = torch.tensor([0, 1, 2, 3, 4])
    torch.testing.assert_close(saliency_invariance(model, x, y, R4, n_steps=6, reduction="none", chunk_size=2),
                               saliency_invariance(model, x, y, R4, n_steps=6, reduction="none"))


@pytest.mark.parametrize("measure", [logit_invariance, distribution_invariance, orbit_centroid_invariance])
def test_reduction_none_gives_one_value_per_sample_whose_mean_is_the_default(measure):
    model, x = small_mlp(), images(n=6)
    per_sample = measure(model, x, R4, reduction="none")
    assert per_sample.shape == (6,)
    torch.testing.assert_close(measure(model, x, R4), per_sample.mean())
    torch.testing.assert_close(measure(model, x, R4, reduction="sum"), per_sample.sum())


def test_saliency_reduction_none_gives_one_value_per_sample():
    model, x = small_mlp(), images(n=3)
    si = saliency_invariance(model, x, torch.tensor([0, 1, 2]), R4, n_steps=4, reduction="none")
    assert si.shape == (3,)


@pytest.mark.parametrize("measure", [logit_invariance, distribution_invariance])
@pytest.mark.parametrize("group", [R4, T3, D4], ids=lambda g: g.name)
def test_including_the_identity_scales_output_errors_by_g_minus_one_over_g(measure, group):
    model, x = small_mlp(), images()
    without = measure(model, x, group, reduction="none")
    with_identity = measure(model, x, group, include_identity=True, reduction="none")
    torch.testing.assert_close(with_identity, without * (group.order - 1) / group.order)


def test_including_the_identity_pulls_saliency_similarity_towards_one():
    model, x, y = small_mlp(), images(), torch.tensor([0, 1, 2, 3, 4])
    without = saliency_invariance(model, x, y, R4, n_steps=6, reduction="none")
    with_identity = saliency_invariance(model, x, y, R4, n_steps=6, include_identity=True, reduction="none")
    torch.testing.assert_close(with_identity, (3 * without + 1) / 4)


def test_saliency_similarity_with_identity_cannot_fall_below_one_over_order():
    """Why the default skips the identity: Table 1's SI = 0.17 (DA, R4) < 1/4."""
    model, x, y = small_mlp(), images(), torch.tensor([0, 1, 2, 3, 4])
    with_identity = saliency_invariance(model, x, y, R4, n_steps=6, include_identity=True, reduction="none")
    assert bool((with_identity >= 0.25 - 1e-12).all())


def test_layer_profile_has_one_entry_per_hidden_layer_and_the_logits():
    profile = layer_invariance_profile(small_mlp(), images(), R4)
    assert profile.shape == (4,)
    assert bool((profile > 0).all())


def test_layer_profile_of_a_weight_tied_model_vanishes():
    torch.manual_seed(0)
    model = InvariantMLP(R4, in_shape=(6, 6), n_classes=5, hidden=16, n_hidden_layers=3).double()
    assert float(layer_invariance_profile(model, images(), R4).abs().max()) < 1e-12


def test_layer_profile_without_hidden_activations_reads_every_submodule_by_hooks():
    """SmoothMLP has l1, l2, l3 and no hidden_activations: one entry each, then the logits,
    which l3 returns (so the last two entries agree)."""
    profile = layer_invariance_profile(smooth_model(), images(), R4)
    assert profile.shape == (4,)
    torch.testing.assert_close(profile[2], profile[3], atol=0, rtol=1e-12)


# ---- input sensitivity (Section 4.4) --------------------------------------------------------------


@pytest.mark.parametrize("method", ["auto", "jacrev", "power"])
def test_spectral_norm_of_a_linear_model_is_the_operator_norm_of_its_weight(method):
    torch.manual_seed(0)
    linear = nn.Linear(36, 7).double()
    model = nn.Sequential(nn.Flatten(), linear)
    sigma = jacobian_spectral_norm(model, images(n=3), method=method, tol=1e-11, n_iter=10_000)
    expected = torch.linalg.matrix_norm(linear.weight.detach(), ord=2)
    torch.testing.assert_close(sigma, expected.expand(3), atol=0, rtol=1e-8)


def dense_sigma_max(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Oracle: SVD of each sample's Jacobian from torch.autograd.functional.jacobian."""
    out = []
    for xi in x:
        J = torch.autograd.functional.jacobian(lambda z: model(z.unsqueeze(0)).squeeze(0), xi)
        out.append(torch.linalg.svdvals(J.reshape(J.shape[0], -1))[0])
    return torch.stack(out)


@pytest.mark.parametrize("method", ["jacrev", "power"])
@pytest.mark.parametrize("make", [small_mlp, smooth_model,
                                  lambda: InvariantMLP(R4, in_shape=(6, 6), n_classes=5, hidden=16).double()],
                         ids=["mlp", "smooth", "invariant"])
def test_spectral_norm_methods_agree_with_dense_svd(method, make):
    torch.manual_seed(0)
    model, x = make(), images(n=6)
    sigma = jacobian_spectral_norm(model, x, method=method, tol=1e-11, n_iter=10_000, chunk_size=4)
    torch.testing.assert_close(sigma, dense_sigma_max(model, x), atol=0, rtol=1e-8)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_power_iteration_at_its_default_tolerance_reaches_the_dense_svd_in_the_models_own_precision(dtype):
    """A 200-class CNN (where "auto" takes power iteration) in its own dtype, against the dense SVD of the same
    weights in float64: within 2% for every sample, as jacrev is (a stop on one small step of a float16 /
    bfloat16 model's rounded products read 20-25% low)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 16, 3, padding=1, stride=2),
                          nn.ReLU(), nn.Flatten(), nn.Linear(16 * 6 * 6, 200)).eval()
    x = torch.randn(8, 3, 12, 12)
    exact = dense_sigma_max(copy.deepcopy(model).double(), x.double())
    sigma = jacobian_spectral_norm(copy.deepcopy(model).to(dtype), x.to(dtype), method="power").double()
    assert float((sigma / exact - 1).abs().max()) < 0.02


@pytest.mark.parametrize("scale", [1e-4, 1.0, 1e4])
def test_power_iterations_tolerance_is_relative_so_its_accuracy_does_not_depend_on_the_scale(scale):
    """A linear model whose top two singular values are close (1 and 0.97: slow convergence), scaled by
    ``scale``: at the default tolerance the estimate is within 1e-5 of the exact value at every scale (an
    absolute tolerance stops at once on a model of scale 1e-4, far below)."""
    gen = torch.Generator().manual_seed(0)
    U, _ = torch.linalg.qr(torch.randn(10, 10, generator=gen, dtype=torch.float64))
    V, _ = torch.linalg.qr(torch.randn(36, 10, generator=gen, dtype=torch.float64))
    lin = nn.Linear(36, 10, bias=False).double()
    with torch.no_grad():
        lin.weight.copy_(scale * (U * torch.tensor([1.0, 0.97] + [0.5] * 8, dtype=torch.float64)) @ V.T)
    x = torch.randn(4, 6, 6, generator=gen, dtype=torch.float64)
    sigma = jacobian_spectral_norm(nn.Sequential(nn.Flatten(), lin), x, method="power")
    assert float((sigma / scale - 1).abs().max()) < 1e-5


@pytest.mark.parametrize("n_iter, tol", [(0, 1e-6), (-3, 1e-6), (10, 0.0)])
def test_power_iteration_settings_that_run_nothing_are_refused_in_one_line(n_iter, tol):
    with pytest.raises(ValueError, match=r"^power iteration needs n_iter >= 1 and tol > 0"):
        jacobian_spectral_norm(small_mlp(), images(n=2), method="power", n_iter=n_iter, tol=tol)


def test_power_iteration_that_reaches_n_iter_before_its_tolerance_says_its_values_are_further_below():
    from nets.sensitivity import PowerNotConverged

    torch.manual_seed(0)
    with pytest.warns(PowerNotConverged, match=r"^sigma_max: power iteration reached n_iter=2 before its tolerance "
                                               r"on 3 of 3 samples .* lower bounds, up to [0-9.e-]+ below"):
        jacobian_spectral_norm(small_mlp(), images(n=3), method="power", n_iter=2)


class _OldStyleSwish(torch.autograd.Function):
    """A custom Function in the older style (forward(ctx, x), no setup_context), as memory-efficient
    activations were written: torch.func (jacrev, vjp) refuses it; plain autograd differentiates it."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * torch.sigmoid(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        s = torch.sigmoid(x)
        return g * s * (1 + x * (1 - s))


class _SwishNet(nn.Module):
    def __init__(self, old_style: bool) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.old_style, self.conv, self.head = old_style, nn.Conv2d(1, 4, 3, padding=1), nn.Linear(4, 9)

    def forward(self, x):
        h = self.conv(x)
        return self.head((_OldStyleSwish.apply(h) if self.old_style else F.silu(h)).mean((-2, -1)))


@pytest.mark.parametrize("method", ["jacrev", "power"])
def test_sigma_max_of_a_model_with_an_old_style_autograd_function_is_its_dense_svd(method):
    from nets.sensitivity import PlainAutograd

    x = torch.randn(4, 1, 12, 12, generator=torch.Generator().manual_seed(0))
    with pytest.warns(PlainAutograd, match=r"measured by plain autograd instead, the dense Jacobian by 9 backward") as w:
        sigma = jacobian_spectral_norm(_SwishNet(old_style=True).eval(), x, method=method, chunk_size=2)
    assert sum(issubclass(r.category, PlainAutograd) for r in w) == 1  # two chunks, one warning
    expected = dense_sigma_max(_SwishNet(old_style=False).eval(), x)  # the same function, torch's own silu
    torch.testing.assert_close(sigma, expected, rtol=1e-5, atol=0)


def test_auto_is_the_exact_dense_jacobian_up_to_the_class_limit_and_power_iteration_above(monkeypatch):
    from nets import sensitivity

    torch.manual_seed(0)
    x = images(n=3)
    few = nn.Sequential(nn.Flatten(), nn.Linear(36, 16), nn.Tanh(), nn.Linear(16, 5)).double()
    many = nn.Sequential(nn.Flatten(), nn.Linear(36, 16), nn.Tanh(), nn.Linear(16, 40)).double()
    monkeypatch.setattr(sensitivity, "JACREV_MAX_CLASSES", 10)
    calls = []
    for name in ("_spectral_norm_jacrev", "_spectral_norm_power"):
        real = getattr(sensitivity, name)
        monkeypatch.setattr(sensitivity, name, lambda *a, real=real, name=name: calls.append(name) or real(*a))
    torch.testing.assert_close(jacobian_spectral_norm(few, x), dense_sigma_max(few, x), atol=0, rtol=1e-10)
    assert calls == ["_spectral_norm_jacrev"]
    calls.clear()
    sigma = jacobian_spectral_norm(many, x, tol=1e-11, n_iter=10_000)
    assert calls == ["_spectral_norm_power"]
    torch.testing.assert_close(sigma, dense_sigma_max(many, x), atol=0, rtol=1e-8)


def test_the_audit_records_which_method_computed_sigma_max(monkeypatch):
    from nets import sensitivity
    from nets.auditing import audit

    torch.manual_seed(0)
    x, y = images(n=4).unsqueeze(1), torch.tensor([0, 1, 2, 3])
    model = nn.Sequential(nn.Flatten(), nn.Linear(36, 5)).double().eval()
    assert audit(model, x, y, "r4", n_steps=2, n_resamples=100).settings["sigma_max_method"].startswith("jacrev")
    monkeypatch.setattr(sensitivity, "JACREV_MAX_CLASSES", 4)
    assert audit(model, x, y, "r4", n_steps=2, n_resamples=100).settings["sigma_max_method"].startswith("power")


def test_a_chunk_whose_dense_jacobian_is_too_large_is_split_with_the_same_values(monkeypatch):
    from nets import sensitivity

    torch.manual_seed(0)
    model, x = small_mlp(), images(n=7)
    whole = jacobian_spectral_norm(model, x, method="jacrev")
    sizes = []
    real = sensitivity._spectral_norm_jacrev
    monkeypatch.setattr(sensitivity, "_spectral_norm_jacrev", lambda m, xc: sizes.append(len(xc)) or real(m, xc))
    classes = model(x[:1]).shape[-1]
    monkeypatch.setattr(sensitivity, "JACREV_CHUNK_BYTES", 3 * classes * x[0].numel() * (8 + 8))  # 3 samples
    split = jacobian_spectral_norm(model, x, method="jacrev")
    assert sizes == [3, 3, 1]
    torch.testing.assert_close(split, whole, atol=0, rtol=1e-12)


def test_spectral_norm_returns_one_value_per_sample():
    assert jacobian_spectral_norm(small_mlp(), images(n=5)).shape == (5,)


def test_spectral_norm_rejects_an_unknown_method():
    with pytest.raises(ValueError, match="method"):
        jacobian_spectral_norm(small_mlp(), images(), method="lanczos")  # type: ignore[arg-type]


# ---- bad inputs ------------------------------------------------------------------------------------

ALL_MEASURES = {
    "LI": lambda m, x, g: logit_invariance(m, x, g),
    "DI": lambda m, x, g: distribution_invariance(m, x, g),
    "SI": lambda m, x, g: saliency_invariance(m, x, torch.zeros(x.shape[0] if x.ndim else 0, dtype=torch.long), g),
    "OCI": lambda m, x, g: orbit_centroid_invariance(m, x, g),
    "profile": lambda m, x, g: layer_invariance_profile(m, x, g),
}


@pytest.mark.parametrize("name", ALL_MEASURES)
def test_measures_surface_the_groups_error_for_non_square_images(name):
    torch.manual_seed(0)
    model = MLP(in_shape=(6, 8), n_classes=5, hidden=8).double()
    with pytest.raises(ValueError, match="square"):
        ALL_MEASURES[name](model, torch.zeros(2, 6, 8, dtype=torch.float64), R4)


@pytest.mark.parametrize("name", ALL_MEASURES)
def test_measures_surface_the_groups_error_for_indivisible_widths(name):
    torch.manual_seed(0)
    model = MLP(in_shape=(6, 7), n_classes=5, hidden=8).double()
    with pytest.raises(ValueError, match="divisible"):
        ALL_MEASURES[name](model, torch.zeros(2, 6, 7, dtype=torch.float64), T3)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
@pytest.mark.parametrize("name", ALL_MEASURES)
def test_measures_reject_non_finite_inputs(name, bad):
    x = images()
    x[1, 2, 3] = bad
    with pytest.raises(ValueError, match="NaN or inf"):
        ALL_MEASURES[name](small_mlp(), x, R4)


@pytest.mark.parametrize("name", ALL_MEASURES)
def test_measures_reject_an_empty_batch(name):
    with pytest.raises(ValueError, match="empty"):
        ALL_MEASURES[name](small_mlp(), torch.zeros(0, 6, 6, dtype=torch.float64), R4)


@pytest.mark.parametrize("name", ALL_MEASURES)
def test_measures_reject_inputs_that_are_not_image_batches(name):
    with pytest.raises(ValueError, match=r"\(N, \*C, H, W\)"):
        ALL_MEASURES[name](small_mlp(), torch.zeros(2, 36, dtype=torch.float64), R4)


def test_integrated_gradients_reject_non_finite_inputs():
    x = images()
    x[0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN or inf"):
        integrated_gradients(small_mlp(), x, 0)


def test_spectral_norm_rejects_an_empty_batch():
    with pytest.raises(ValueError, match="empty"):
        jacobian_spectral_norm(small_mlp(), torch.zeros(0, 6, 6, dtype=torch.float64))


def test_saliency_invariance_rejects_labels_of_the_wrong_length():
    with pytest.raises(ValueError, match=r"shape \(5,\) matching x, got \(3,\)"):
        saliency_invariance(small_mlp(), images(n=5), torch.zeros(3, dtype=torch.long), R4)


@pytest.mark.parametrize("labels", [np.zeros(5, dtype=np.int64), [0, 0, 0, 0, 0], 0])
def test_saliency_invariance_takes_labels_as_the_other_measures_do_a_tensor(labels):
    with pytest.raises(ValueError, match=r"y must be a tensor of shape \(5,\)"):
        saliency_invariance(small_mlp(), images(n=5), labels, R4)


def test_saliency_invariance_needs_labels_for_the_label_target():
    with pytest.raises(ValueError, match="labels"):
        saliency_invariance(small_mlp(), images(), None, R4)


def test_saliency_invariance_rejects_a_baseline_the_group_moves():
    baseline = torch.zeros(6, 6, dtype=torch.float64)
    baseline[0, 0] = 1.0
    with pytest.raises(ValueError, match="invariant"):
        saliency_invariance(small_mlp(), images(), torch.zeros(5, dtype=torch.long), R4, baseline=baseline)


def test_saliency_invariance_with_a_baseline_the_group_fixes_is_equation_3_from_that_baseline():
    model, x, y = small_mlp(), images(), torch.zeros(5, dtype=torch.long)
    baseline = torch.ones(6, 6, dtype=torch.float64)
    baseline[2:4, 2:4] = 2.0  # centre block: fixed by every rotation
    m = saliency_map(model, x, y, n_steps=4, baseline=baseline)
    expected = torch.stack([F.cosine_similarity(m.flatten(1), R4.act(saliency_map(model, R4.act(x, g), y, n_steps=4,
                                                                                  baseline=baseline),
                                                                     R4.inverse(g)).flatten(1), dim=1)
                            for g in (1, 2, 3)]).mean(0)
    si = saliency_invariance(model, x, y, R4, baseline=baseline, n_steps=4, reduction="none")
    torch.testing.assert_close(si, expected)
    assert not torch.allclose(si, saliency_invariance(model, x, y, R4, n_steps=4, reduction="none"))


@pytest.mark.parametrize("reduction", ["max", None])
def test_measures_reject_an_unknown_reduction(reduction):
    with pytest.raises(ValueError, match="reduction"):
        logit_invariance(small_mlp(), images(), R4, reduction=reduction)  # type: ignore[arg-type]


def test_trivial_group_without_identity_has_nothing_to_average():
    with pytest.raises(ValueError, match="t1 is the identity alone: every model is invariant to it, so there is nothing to measure"):
        logit_invariance(small_mlp(), images(), get_group("t1"))


def _circular_3x3_sigma_one(maps: torch.Tensor) -> torch.Tensor:
    """The SI maps' smoothing written out: sum over shifts (a, b) in -1..1 of exp(-(a^2 + b^2) / 2) / Z
    times the map rolled by (a, b)."""
    weights = {(a, b): math.exp(-(a * a + b * b) / 2) for a in (-1, 0, 1) for b in (-1, 0, 1)}
    total = sum(weights.values())
    return sum(w / total * torch.roll(maps, shifts=(a, b), dims=(-2, -1)) for (a, b), w in weights.items())


def test_saliency_maps_are_smoothed_with_the_3x3_sigma_one_circular_kernel_by_default():
    torch.manual_seed(0)
    maps = torch.rand(3, 7, 9, dtype=torch.float64)
    torch.testing.assert_close(gaussian_smooth(maps), _circular_3x3_sigma_one(maps), rtol=1e-12, atol=1e-14)
    model = nn.Sequential(nn.Flatten(), nn.Linear(36, 16), nn.Tanh(), nn.Linear(16, 5)).double().eval()
    x = torch.randn(4, 6, 6, dtype=torch.float64)
    torch.testing.assert_close(saliency_map(model, x, 1),
                               _circular_3x3_sigma_one(saliency_map(model, x, 1, smooth=False)), rtol=1e-12, atol=1e-14)


class _OrbitSummed(nn.Module):
    """f(x) = sum_g W vec(g x) in float32: R4-invariant up to the order of the float32 sum."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(36 * 36, 10)
        torch.nn.init.normal_(self.lin.weight, std=0.5, generator=torch.Generator().manual_seed(0))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.lin(R4.orbit(z).flatten(2)).sum(0)


def test_di_of_a_float32_model_invariant_up_to_round_off_is_second_order_in_it():
    # KL is second order in the logit change; log-probabilities in float32 would put round-off in at first
    # order (about 6e-8 here), which is why DI sums in float64 (about 2e-12)
    x = torch.randn(64, 36, 36, generator=torch.Generator().manual_seed(1))
    assert float(distribution_invariance(_OrbitSummed().eval(), x, "r4", reduction="none").max()) < 1e-10


def test_orbit_accuracy_without_labels_is_refused_and_the_label_free_terms_are_not():
    model, x = small_mlp(), images()
    with pytest.raises(ValueError, match="needs labels"):
        orbit_terms(model, x, None, R4)
    free = orbit_terms(model, x, None, R4, terms=("LI", "DI", "predictions"))
    torch.testing.assert_close(free["LI"], logit_invariance(model, x, R4, reduction="none"))


@pytest.mark.parametrize("group", ["r4", "f2"])
def test_channels_last_images_are_refused_naming_the_permute_that_fixes_them(group):
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.Flatten(),
                                torch.nn.LazyLinear(5)).eval()
    model(torch.zeros(1, 3, 12, 12))  # materialize the lazy layer for 12 x 12 images
    x = torch.randn(2, 12, 12, 3)
    fits = pytest.warns(ChannelsLast) if group == "f2" else contextlib.nullcontext()  # f2 fits 12 x 3: a warning first
    with fits, pytest.raises(ValueError, match=r"looks channels-last, \(N, H, W, C\) = \(N, 12, 12, 3\): give "
                                               r"x\.permute\(0, 3, 1, 2\)"):
        logit_invariance(model, x, group)
    logit_invariance(model, x.permute(0, 3, 1, 2), group)  # the fix named works
