"""nets.auditing on models the paper never saw: invariant models audit as invariant, every number has
a bootstrap interval around it, and the per-layer profile reads nn.Sequential, a CNN with pooling and
residual networks (torchvision's ResNet-18 on 3-channel images built from MNIST)."""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
import types

import numpy as np
import pytest
import torch
from scipy import stats
from torch import nn

from nets.auditing import IGNORES_INPUT, MEASURES, NO_LAYERS, audit, bootstrap_mean
from nets.data import load_splits
from nets.experiments.scale import scale_measures
from nets.groups import R4
from nets.layer_profile import default_layers
from nets.models import InvariantMLP
from nets.sample_bootstrap import mean_difference, paired_bootstrap


@pytest.fixture(scope="module")
def mnist():
    test = load_splits("mnist", progress=False).test
    return test.x[:64], test.y[:64]


def small_cnn(channels: int = 1, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(channels, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(3), nn.Flatten(),
                         nn.Linear(36, 9)).eval()


class OrbitAveraged(nn.Module):
    """f(x) = mean_g h(g x): invariant by construction, whatever h is."""

    def __init__(self, h: nn.Module):
        super().__init__()
        self.h = h

    def forward(self, x):
        orbit = R4.orbit(x)  # (|G|, M, C, H, W)
        return self.h(orbit.reshape(-1, *x.shape[1:])).view(R4.order, x.shape[0], -1).mean(0)


def test_an_orbit_averaged_cnn_audits_as_exactly_invariant(mnist):
    x, y = mnist
    r = audit(OrbitAveraged(small_cnn().double()), x[:16].unsqueeze(1).double(), y[:16], "r4", n_steps=4,
              n_resamples=200)
    # LI is second order in the round-off; DI first order (log-probabilities, distribution_invariance)
    assert r.measures["LI"].value < 1e-24 and r.measures["DI"].value < 1e-14
    assert abs(r.measures["SI"].value - 1) < 1e-9


def test_the_weight_tied_paper_model_audits_as_exactly_invariant_on_images_without_channels(mnist):
    x, y = mnist
    torch.manual_seed(0)
    r = audit(InvariantMLP(R4, hidden=16, n_hidden_layers=2).double().eval(), x[:16].double(), y[:16], R4,
              n_steps=4, n_resamples=200)
    # LI is second order in the round-off; DI first order (log-probabilities, distribution_invariance)
    assert r.measures["LI"].value < 1e-24 and r.measures["DI"].value < 1e-14
    assert abs(r.measures["SI"].value - 1) < 1e-9
    assert max(e.value for _, e in r.layers) < 1e-20  # every hooked layer after the tied one


def test_every_bootstrap_interval_contains_its_point_estimate(mnist):
    x, y = mnist
    r = audit(small_cnn(), x[:32].unsqueeze(1), y[:32], R4, n_steps=4, n_resamples=500)
    for name, e in [*r.measures.items(), *r.layers]:
        assert e.low <= e.value <= e.high, name


def test_bootstrap_interval_of_a_constant_is_the_constant():
    e = bootstrap_mean(torch.full((50,), 0.25).numpy())
    assert (e.value, e.low, e.high) == (0.25, 0.25, 0.25)


def test_the_default_bootstrap_interval_is_95_percent_wide_as_normal_theory_says():
    """For 2,000 normal values the percentile interval's half-width is about 1.96 standard errors (a 90%
    one, 1.64; a 99% one, 2.58): the default is the 95% the reports say."""
    values = np.random.default_rng(0).normal(size=2000)
    e = bootstrap_mean(values)
    se = values.std(ddof=1) / np.sqrt(values.size)
    assert 1.85 < (e.high - e.low) / 2 / se < 2.07


@pytest.mark.parametrize("confidence", [0.8, 0.99])
def test_another_confidence_level_is_scipys_percentile_interval_at_that_level(confidence):
    """The level given is the level used: scipy's percentile bootstrap with the same resamples and seed,
    for one model's mean and for a paired difference (a 90% table must not show 95% intervals)."""
    g = np.random.default_rng(1)
    a, b = g.normal(size=60), g.normal(0.3, 1.0, size=60)
    ref = stats.bootstrap((a,), np.mean, confidence_level=confidence, method="percentile", n_resamples=2000,
                          rng=np.random.default_rng(0)).confidence_interval
    e = bootstrap_mean(a, confidence=confidence)
    assert (e.low, e.high) == pytest.approx((ref.low, ref.high), rel=1e-12)
    diff = stats.bootstrap((a, b), lambda u, v, axis=-1: v.mean(axis) - u.mean(axis), paired=True, vectorized=True,
                           confidence_level=confidence, method="percentile", n_resamples=2000,
                           rng=np.random.default_rng(0)).confidence_interval
    d = paired_bootstrap((a, b), mean_difference, confidence=confidence)
    assert (d.low, d.high) == pytest.approx((diff.low, diff.high), rel=1e-12)


@pytest.mark.parametrize("setting, value", [("si_samples", 0), ("sigma_samples", -3), ("n_resamples", 1),
                                            ("n_resamples", 99), ("confidence", 1.0), ("seed", -1)])
def test_a_sample_count_or_interval_setting_that_measures_nothing_is_refused_before_the_work(mnist, setting, value):
    x, y = mnist
    calls = []

    def model(inputs):
        calls.append(inputs.shape[0])
        return small_cnn()(inputs)

    with pytest.raises(ValueError, match=setting) as e:
        audit(model, x[:4].unsqueeze(1), y[:4], R4, n_steps=2, **{setting: value})
    assert "\n" not in str(e.value)
    if setting in ("n_resamples", "confidence", "seed"):
        assert calls == []  # checked before any model call


def test_one_layer_named_by_a_string_is_that_layer_not_its_letters(mnist):
    x, y = mnist
    model = small_cnn()
    as_str = audit(model, x[:8].unsqueeze(1), y[:8], R4, n_steps=2, n_resamples=100, layers="1")
    as_list = audit(model, x[:8].unsqueeze(1), y[:8], R4, n_steps=2, n_resamples=100, layers=["1"])
    assert as_str.to_dict()["layers"] == as_list.to_dict()["layers"]
    assert [n for n, _ in as_str.layers] == ["1", "logits"]


def test_the_audit_is_reproducible_with_its_seed(mnist):
    x, y = mnist
    a = audit(small_cnn(), x[:16].unsqueeze(1), y[:16], R4, n_steps=3, n_resamples=200, seed=3)
    b = audit(small_cnn(), x[:16].unsqueeze(1), y[:16], R4, n_steps=3, n_resamples=200, seed=3)
    assert a.to_dict() == b.to_dict()


class Affine(nn.Module):
    """``a h(x) + b``: the same classifier at another logit scale, shifted in every class alike."""

    def __init__(self, h: nn.Module, a: float, b: float):
        super().__init__()
        self.h, self.a, self.b = h, a, b

    def forward(self, x):
        return self.a * self.h(x) + self.b


def test_scaling_the_logits_scales_the_logit_scale_but_not_the_sensitivity_per_unit_of_it(mnist):
    x, y = mnist
    x = x[:12].unsqueeze(1).double()
    base = audit(small_cnn().double(), x, y[:12], R4, n_steps=2, n_resamples=100).measures
    moved = audit(Affine(small_cnn().double(), 3.0, -7.0), x, y[:12], R4, n_steps=2, n_resamples=100).measures
    assert moved["logit_scale"].value == pytest.approx(3.0 * base["logit_scale"].value, rel=1e-10)
    assert moved["sigma_max"].value == pytest.approx(3.0 * base["sigma_max"].value, rel=1e-10)
    for end in ("value", "low", "high"):
        assert getattr(moved["sigma_per_scale"], end) == pytest.approx(getattr(base["sigma_per_scale"], end),
                                                                       rel=1e-10)


def test_each_samples_sigma_max_and_logit_scale_are_those_of_its_dense_jacobian_and_logits(mnist):
    """The oracle: each sample's Jacobian built by autograd, its spectral norm by torch.linalg (an SVD),
    for the logits and for the centered logits ``f - mean_c f_c``, whose norm is the logit scale."""
    x, y = mnist
    model, x = small_cnn().double(), x[:6].unsqueeze(1).double()
    r = audit(model, x, y[:6], R4, n_steps=2, n_resamples=100)
    centered = lambda z: model(z) - model(z).mean(-1, keepdim=True)  # noqa: E731
    for i in range(6):
        xi = x[i : i + 1]
        for key, f in (("sigma_max", model), ("sigma_max_centered", centered)):
            J = torch.autograd.functional.jacobian(f, xi).reshape(9, -1)
            assert r.samples[key][i] == pytest.approx(torch.linalg.matrix_norm(J, 2).item(), rel=1e-9)
        assert r.samples["logit_scale"][i] == pytest.approx(torch.linalg.vector_norm(centered(xi)).item(), rel=1e-12)


def test_the_sensitivity_per_unit_of_scale_is_the_one_the_scale_experiment_measures(mnist):
    x, y = mnist
    model, x = small_cnn().double(), x[:12].unsqueeze(1).double()
    r = audit(model, x, y[:12], R4, n_steps=2, n_resamples=100, sigma_samples=8)
    expected = scale_measures(model, x[:8])
    assert r.measures["sigma_per_scale"].value == pytest.approx(expected["relative_sensitivity"], rel=1e-10)
    assert r.measures["logit_scale"].value == pytest.approx(expected["logit_scale"], rel=1e-10)
    assert r.settings["n_samples_per_measure"]["sigma_per_scale"] == 8


def test_the_record_has_every_measure_and_every_layer_in_json_markdown_and_a_figure(mnist):
    x, y = mnist
    r = audit(small_cnn(), x[:16].unsqueeze(1), y[:16], R4, n_steps=3, n_resamples=200)
    d = json.loads(json.dumps(r.to_dict(), allow_nan=False))
    assert list(d["measures"]) == list(MEASURES)
    assert [layer["name"] for layer in d["layers"]] == [*default_layers(small_cnn()), "logits"]
    table = r.to_markdown()
    assert all(f"| {k} |" in table for k in MEASURES)
    assert len(r.figure().axes) == 2


class Block(nn.Module):
    """A residual block with batch normalization (ResNet's BasicBlock, one width)."""

    def __init__(self, c: int):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)
        self.conv2, self.bn2 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)

    def forward(self, x):
        return torch.relu(x + self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x))))))


class TinyResNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3, padding=1)
        self.layer1 = nn.Sequential(Block(4), Block(4))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(4, 9)

    def forward(self, x):
        return self.fc(self.pool(self.layer1(self.stem(x))).flatten(1))


def test_a_residual_network_is_profiled_block_by_block(mnist):
    x, y = mnist
    torch.manual_seed(0)
    r = audit(TinyResNet().eval(), x[:16].unsqueeze(1).repeat(1, 3, 1, 1), y[:16], R4, n_steps=3,
              n_resamples=200)
    assert [n for n, _ in r.layers] == ["stem", "layer1.0", "layer1.1", "pool", "fc", "logits"]


def _torchvision_models():
    """``torchvision.models``, or None where torchvision is not installed.

    PyPI's torchvision wheels for Linux are built against CUDA torch: beside a CPU build of torch
    their compiled operators (nms, roi_align, ...) cannot load, and ``import torchvision`` fails
    with "operator torchvision::nms does not exist" while registering them. The model definitions
    are pure Python and use none of them, so then ``torchvision.models`` is imported without
    running ``torchvision/__init__.py`` (which loads those operators and the image I/O only)."""
    try:
        import torchvision
        return torchvision.models
    except ImportError:
        return None
    except RuntimeError as e:
        if "torchvision::" not in str(e):
            raise
    for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        del sys.modules[name]  # the half-imported package
    spec = importlib.util.find_spec("torchvision")
    package = types.ModuleType("torchvision")
    package.__path__, package.__file__ = list(spec.submodule_search_locations), spec.origin
    sys.modules["torchvision"] = package
    return importlib.import_module("torchvision.models")


TORCHVISION_MODELS = _torchvision_models()


@pytest.mark.skipif(TORCHVISION_MODELS is None,
                    reason="torchvision is not installed (scripts/setup.sh installs the release made for the "
                           "installed torch)")
def test_a_random_torchvision_resnet18_audits_on_three_channel_mnist(mnist):
    x, y = mnist
    torch.manual_seed(0)
    model = TORCHVISION_MODELS.resnet18(num_classes=9).eval()
    r = audit(model, x.unsqueeze(1).repeat(1, 3, 1, 1), y, R4, n_steps=4, si_samples=16, sigma_samples=16,
              n_resamples=200)
    names = [n for n, _ in r.layers]
    assert names == ["conv1", "bn1", "relu", "maxpool", "layer1.0", "layer1.1", "layer2.0", "layer2.1", "layer3.0",
                     "layer3.1", "layer4.0", "layer4.1", "avgpool", "fc", "logits"]
    assert all(e.low <= e.value <= e.high for e in r.measures.values())
    assert 0 <= r.measures["accuracy"].value <= 1 and r.measures["LI"].value > 0


def test_a_plain_callable_is_audited_and_says_it_has_no_layer_profile():
    model = nn.Sequential(nn.Flatten(), nn.Linear(36, 3)).eval()
    result = audit(lambda z: model(z), torch.rand(4, 6, 6), torch.tensor([0, 1, 2, 0]), "r4", n_steps=4)
    assert result.layers == [] and result.to_markdown().rstrip().endswith(NO_LAYERS)


# ---- without labels ---------------------------------------------------------------------
def test_without_labels_the_label_free_measures_equal_the_labelled_audits(mnist):
    x, y = mnist[0][:16, None], mnist[1][:16]
    kw = dict(n_steps=4, n_resamples=100)
    labelled, unlabelled = audit(small_cnn(), x, y, "r4", **kw), audit(small_cnn(), x, None, "r4", **kw)
    assert "accuracy" not in unlabelled.measures and unlabelled.classes is None
    assert unlabelled.settings["labels"] is False and labelled.settings["labels"] is True
    for k in ("LI", "DI", "sigma_max", "logit_scale", "sigma_per_scale"):
        assert unlabelled.measures[k] == labelled.measures[k], k
    assert unlabelled.layers == labelled.layers
    assert "Unlabelled images" in unlabelled.to_markdown() and "Unlabelled" not in labelled.to_markdown()


def test_without_labels_si_targets_each_inputs_own_predicted_class(mnist):
    from nets import saliency_invariance

    x = mnist[0][:8, None]
    model = small_cnn()
    rec = audit(model, x, None, "r4", n_steps=4, n_resamples=100)
    expected = saliency_invariance(model, x, None, "r4", target="predicted", n_steps=4, reduction="none")
    torch.testing.assert_close(torch.from_numpy(rec.samples["SI"]), expected.double())


def test_class_names_without_labels_are_refused_before_the_work(mnist):
    with pytest.raises(ValueError, match="needs labels y"):
        audit(small_cnn(), mnist[0][:4, None], None, "r4", class_names=[str(c) for c in range(9)])


class _IgnoresInput(nn.Module):
    """Constant logits, the images entering only as 0 * x (so they carry a gradient, of zero)."""

    def __init__(self) -> None:
        super().__init__()
        self.b = nn.Parameter(torch.tensor([0.3, -0.1, 0.5]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b.expand(x.shape[0], -1) + 0 * x.flatten(1).sum(1, keepdim=True)


@pytest.mark.filterwarnings("ignore::nets.model_checks.ZeroInputGradient")
def test_a_model_that_ignores_its_input_is_said_to_under_the_table():
    x, y = torch.randn(6, 1, 6, 6, generator=torch.Generator().manual_seed(0)), torch.tensor([0, 1, 2, 0, 1, 2])
    text = audit(_IgnoresInput().eval(), x, y, "r4", n_steps=4, n_resamples=100).to_markdown()
    assert IGNORES_INPUT in text
    assert IGNORES_INPUT not in audit(nn.Sequential(nn.Flatten(), nn.Linear(36, 3)).eval(), x, y, "r4", n_steps=4,
                                      n_resamples=100).to_markdown()


class _Rounds(nn.Module):
    """Logits of the rounded image: no input gradient (sigma_max 0), yet not invariant (LI > 0)."""

    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Linear(36, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.round(2 * x).flatten(1))


@pytest.mark.filterwarnings("ignore::nets.model_checks.ZeroInputGradient")
def test_a_model_of_zero_input_gradient_that_is_not_invariant_gets_no_such_note():
    torch.manual_seed(0)
    x, y = torch.randn(6, 1, 6, 6, generator=torch.Generator().manual_seed(0)), torch.tensor([0, 1, 2, 0, 1, 2])
    result = audit(_Rounds().eval(), x, y, "r4", n_steps=4, n_resamples=100)
    assert result.measures["sigma_max"].value == 0 and result.measures["LI"].value > 0
    assert IGNORES_INPUT not in result.to_markdown()
