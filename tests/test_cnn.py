"""The small CNN of the claims-on-a-CNN experiment (:mod:`nets.cnn`): its size, its split at the
first layer, and the trainer's weight tying on it being exactly invariant."""

from __future__ import annotations

import pytest
import torch

from nets.cnn import CNN_PARAMETERS, SmallCNN
from nets.groups import R4, T3
from nets.models import MLP, count_parameters
from nets.train import GroupPooled, wt_pooling_of


def test_parameter_count_is_the_stated_one_and_within_one_percent_of_the_papers_mlp():
    cnn, mlp = SmallCNN(), MLP()
    assert count_parameters(cnn) == CNN_PARAMETERS == 232_825
    assert count_parameters(mlp) == 233_225
    assert abs(count_parameters(cnn) - count_parameters(mlp)) / count_parameters(mlp) < 0.01


def _multiply_adds(model: torch.nn.Module, x: torch.Tensor) -> int:
    """Multiply-adds of one forward pass of ``x`` (one image), counted from each convolution's and linear
    layer's output shape by forward hooks: out elements x (in channels / groups x kernel area)."""
    total = []

    def hook(m, inp, out):
        if isinstance(m, torch.nn.Conv2d):
            total.append(out.numel() * m.in_channels // m.groups * m.kernel_size[0] * m.kernel_size[1])
        elif isinstance(m, torch.nn.Linear):
            total.append(out.numel() * m.in_features)

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    return sum(total)


def test_one_image_costs_about_4_7_million_multiply_adds_20_times_the_mlps():
    """docs/cnn.md's figures: about 4.7 M multiply-adds per image, 20 times the paper MLP's."""
    cnn, mlp = _multiply_adds(SmallCNN(), torch.zeros(1, 36, 36)), _multiply_adds(MLP(), torch.zeros(1, 36, 36))
    assert round(cnn / 1e6, 1) == 4.7
    assert round(cnn / mlp) == 20


def test_takes_images_with_or_without_the_channel_axis_and_returns_logits():
    torch.manual_seed(0)
    model, x = SmallCNN(), torch.randn(5, 1, 36, 36)
    out = model(x)
    assert out.shape == (5, 9)
    torch.testing.assert_close(model(x[:, 0]), out, rtol=0, atol=0)


def test_forward_is_after_first_layer_of_first_layer():
    torch.manual_seed(1)
    model, x = SmallCNN(), torch.randn(3, 1, 36, 36)
    h = model.first_layer(x)
    assert h.shape == (3, 32, 18, 18) and bool((h >= 0).all())  # the ReLU is part of the first layer
    torch.testing.assert_close(model.after_first_layer(h), model(x), rtol=0, atol=0)


@pytest.mark.parametrize("group", [R4, T3], ids=["r4", "t3"])
def test_weight_tied_cnn_pools_the_first_layer_and_is_exactly_invariant(group):
    torch.manual_seed(2)
    model = SmallCNN()
    assert wt_pooling_of(model, "max") == "first_layer-max"
    wt, x = GroupPooled(model, group, "max").eval(), torch.randn(4, 1, 36, 36)
    with torch.no_grad():
        base = wt(x)
        for k in range(group.order):
            # max over the orbit does not depend on its order: bit for bit the same logits
            torch.testing.assert_close(wt(group.act(x, k)), base, rtol=0, atol=0)


def test_bad_sizes_are_refused_in_one_line():
    with pytest.raises(ValueError, match="equal length"):
        SmallCNN(channels=(8, 8), strides=(2,))
    with pytest.raises(ValueError, match=">= 1"):
        SmallCNN(n_classes=0)


@pytest.mark.parametrize("pool", ["max", "mean"])
def test_wt_pooling_at_the_first_layer_pools_its_responses_to_the_orbit_by_hand(pool):
    """``after_first_layer(pool_g first_layer(g x))``, each response computed on its own."""
    torch.manual_seed(0)
    mlp = MLP((6, 6), 5, 8, 2).double()
    x = torch.randn(7, 6, 6, dtype=torch.float64)
    wt = GroupPooled(mlp, R4, pool)
    assert wt.pooling == f"first_layer-{pool}"
    with torch.no_grad():
        h = torch.stack([mlp.first_layer(R4.act(x, g)) for g in R4.elements])
        expected = mlp.after_first_layer(h.amax(0) if pool == "max" else h.mean(0))
        torch.testing.assert_close(wt(x), expected, rtol=1e-12, atol=1e-12)


def test_wt_pooling_of_the_logits_is_their_orbit_average():
    torch.manual_seed(0)
    cnn = torch.nn.Sequential(torch.nn.Conv2d(1, 3, 3), torch.nn.ReLU(), torch.nn.Flatten(),
                              torch.nn.Linear(3 * 6 * 6, 4)).double().eval()
    wt = GroupPooled(cnn, R4, "max").eval()  # no first_layer: the logits are pooled, by their mean
    x = torch.randn(5, 1, 8, 8, dtype=torch.float64)
    assert wt.pooling == "logits-mean"
    with torch.no_grad():
        torch.testing.assert_close(wt(x), torch.stack([cnn(R4.act(x, g)) for g in R4.elements]).mean(0),
                                   rtol=1e-12, atol=1e-12)
