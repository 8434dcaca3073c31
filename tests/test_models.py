"""Unit tests of the paper's models (Section 4.1, "Models")."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from nets.groups import D4, R4, T3, get_group
from nets.models import InvariantMLP, MLP, check_invariance, count_parameters

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.first_layer import compare_first_layer_implementations, first_layer_input_orbit  # noqa: E402


def test_default_mlp_has_233225_parameters():
    assert count_parameters(MLP()) == 233_225


def test_four_hidden_layers_would_give_216713_parameters():
    """The other reading of "5-layer perceptron" (five Linear maps) misses "230k"."""
    assert count_parameters(MLP(n_hidden_layers=4)) == 216_713


def test_default_mlp_has_six_linear_maps_of_the_documented_shapes():
    shapes = {k: tuple(v.shape) for k, v in MLP().state_dict().items()}
    expected = {"layers.0.weight": (128, 1296), "layers.0.bias": (128,)}
    for i in range(1, 5):
        expected[f"layers.{i}.weight"] = (128, 128)
        expected[f"layers.{i}.bias"] = (128,)
    expected["layers.5.weight"] = (9, 128)
    expected["layers.5.bias"] = (9,)
    assert shapes == expected


@pytest.mark.parametrize("group", [R4, T3, D4], ids=lambda g: g.name)
def test_invariant_mlp_has_the_parameters_of_the_mlp(group):
    plain = {k: v.shape for k, v in MLP().state_dict().items()}
    tied = {k: v.shape for k, v in InvariantMLP(group).state_dict().items()}
    assert tied == plain


def test_trainable_only_parameter_count_skips_frozen_parameters():
    model = MLP()
    model.layers[0].requires_grad_(False)
    assert count_parameters(model, trainable_only=True) == 233_225 - (1296 * 128 + 128)


@pytest.mark.parametrize("make", [lambda: MLP(), lambda: InvariantMLP(R4)], ids=["mlp", "invariant"])
def test_models_accept_images_and_flattened_images_alike(make):
    torch.manual_seed(0)
    model = make()
    x = torch.randn(5, 36, 36)
    torch.testing.assert_close(model(x), model(x.reshape(5, 1296)), rtol=0, atol=0)


@pytest.mark.parametrize("make", [lambda: MLP(), lambda: InvariantMLP(R4)], ids=["mlp", "invariant"])
def test_logits_are_the_last_layer_applied_to_the_features(make):
    torch.manual_seed(0)
    model = make()
    x = torch.randn(3, 36, 36)
    feats = model.features(x)
    assert feats.shape == (3, 128)
    torch.testing.assert_close(model(x), model.layers[-1](feats))


@pytest.mark.parametrize("make", [lambda: MLP(), lambda: InvariantMLP(R4)], ids=["mlp", "invariant"])
def test_hidden_activations_end_with_the_features(make):
    torch.manual_seed(0)
    model = make()
    x = torch.randn(3, 36, 36)
    acts = model.hidden_activations(x)
    assert [tuple(a.shape) for a in acts] == [(3, 128)] * 5
    torch.testing.assert_close(acts[-1], model.features(x))


@pytest.mark.parametrize("shape", [(2, 1, 36, 36), (2, 36, 35), (2, 1295), (36, 36), (1296,), (2, 3, 36, 12)])
@pytest.mark.parametrize("make", [lambda: MLP(), lambda: InvariantMLP(R4)], ids=["mlp", "invariant"])
def test_models_reject_bad_shapes_naming_the_expected_shape(make, shape):
    with pytest.raises(ValueError, match=r"\(N, 36, 36\).*\(N, 1296\)"):
        make()(torch.zeros(shape))


def test_invariant_mlp_rejects_a_size_rotations_cannot_act_on():
    with pytest.raises(ValueError, match="square"):
        InvariantMLP(R4, in_shape=(36, 30))


def test_invariant_mlp_rejects_a_width_translations_cannot_act_on():
    with pytest.raises(ValueError, match="divisible"):
        InvariantMLP(T3, in_shape=(36, 35))


def test_invariant_mlp_rejects_an_unknown_pool():
    with pytest.raises(ValueError, match="pool"):
        InvariantMLP(R4, pool="sum")  # type: ignore[arg-type]


@pytest.mark.parametrize("bad, message", [(dict(n_hidden_layers=0), "n_hidden_layers must be >= 1, got 0"),
                                          (dict(hidden=0), "hidden must be >= 1, got 0"),
                                          (dict(n_classes=0), "n_classes must be >= 1, got 0"),
                                          (dict(in_shape=(36,)), r"in_shape must be \(H, W\) with positive sizes")])
def test_mlp_rejects_bad_sizes(bad, message):
    with pytest.raises(ValueError, match=message):
        MLP(**bad)


@pytest.mark.parametrize("pool", ["max", "mean"])
@pytest.mark.parametrize("group", [R4, T3, D4, get_group("t2y")], ids=lambda g: g.name)
def test_tied_first_layer_is_the_pool_of_relu_responses_over_the_input_orbit(group, pool):
    """Oracle: pool_g relu(W (g x) + b), with g x from the group's own action."""
    torch.manual_seed(0)
    model = InvariantMLP(group, in_shape=(12, 12), hidden=16, pool=pool).double()
    x = torch.randn(7, 12, 12, dtype=torch.float64)
    layer = model.layers[0]
    responses = torch.stack([F.relu(layer(group.act(x, g).reshape(7, -1))) for g in group.elements])
    expected = responses.amax(0) if pool == "max" else responses.mean(0)
    torch.testing.assert_close(model.hidden_activations(x)[0], expected, atol=1e-12, rtol=1e-12)


@pytest.mark.parametrize("pool", ["max", "mean"])
def test_weight_gather_and_input_orbit_first_layers_agree(pool):
    torch.manual_seed(0)
    model = InvariantMLP(R4, pool=pool)
    x = torch.randn(16, 36, 36)
    torch.testing.assert_close(model.first_layer(x), first_layer_input_orbit(model, x), atol=1e-5, rtol=1e-5)


def test_first_layer_timing_helper_reports_both_implementations():
    torch.manual_seed(0)
    out = compare_first_layer_implementations(InvariantMLP(R4, in_shape=(6, 6), hidden=8), torch.randn(4, 6, 6),
                                              repeats=2, backward=True)
    assert set(out) == {"weight_gather", "input_orbit", "max_abs_diff"}
    assert out["max_abs_diff"] < 1e-5


@pytest.mark.parametrize("pool", ["max", "mean"])
@pytest.mark.parametrize("group", [R4, T3, D4], ids=lambda g: g.name)
def test_invariant_mlp_is_invariant_at_float32_roundoff(group, pool):
    torch.manual_seed(0)
    model = InvariantMLP(group, pool=pool)
    assert check_invariance(model, group, torch.randn(64, 36, 36)) < 1e-5


def test_plain_mlp_is_not_invariant():
    torch.manual_seed(0)
    assert check_invariance(MLP(), R4, torch.randn(64, 36, 36)) > 1e-3


@pytest.mark.parametrize("make", [lambda: MLP(in_shape=(6, 6), hidden=8, n_hidden_layers=2),
                                  lambda: InvariantMLP(R4, in_shape=(6, 6), hidden=8, n_hidden_layers=2)],
                         ids=["mlp", "invariant"])
def test_stacked_seed_parameters_run_through_functional_call_under_vmap(make):
    """The trainer's pattern: one module, parameters stacked over seeds, vmap over them."""
    models = []
    for seed in range(3):
        torch.manual_seed(seed)
        models.append(make())
    params = {k: torch.stack([dict(m.named_parameters())[k].detach() for m in models]) for k, _ in
              models[0].named_parameters()}
    x = torch.randn(4, 6, 6)
    out = torch.func.vmap(lambda p: torch.func.functional_call(models[0], p, (x,)))(params)
    expected = torch.stack([m(x) for m in models])
    torch.testing.assert_close(out, expected)


def test_weight_tied_layer_uses_every_orbit_element():
    """A weight concentrated on one pixel sees that pixel's whole orbit."""
    model = InvariantMLP(R4, in_shape=(4, 4), hidden=1, n_hidden_layers=1, pool="mean")
    with torch.no_grad():
        model.layers[0].weight.zero_()
        model.layers[0].bias.zero_()
        model.layers[0].weight[0, 0] = 1.0  # pixel (0, 0)
    x = torch.zeros(1, 4, 4)
    x[0, 3, 3] = 4.0  # the opposite corner, in the orbit of (0, 0) under R4
    assert float(model.hidden_activations(x)[0].detach()) == pytest.approx(1.0)
