"""Own-model edge cases of the measures that a fresh-eyes review found: a model with no values yet
(the meta device), a model that edits its input in place, logits whose LI overflows their dtype, and
an audit on one sample. Each is refused in one line or measured right, never a silent inf or a
changed input."""

from __future__ import annotations

import math
import types
import warnings

import pytest
import torch
from torch import nn

from nets.auditing import audit
from nets.groups import R4
from nets.model_checks import LogProbabilities, output_kind
from nets.saliency_measure import SmoothingSpansImage
from nets.metrics import (
    distribution_invariance,
    integrated_gradients,
    jacobian_spectral_norm,
    logit_invariance,
    orbit_measures,
    saliency_invariance,
)

LABELS = torch.tensor([0, 1, 2, 3])

MEASURES = {
    "LI": lambda m, x: logit_invariance(m, x, R4),
    "DI": lambda m, x: distribution_invariance(m, x, R4),
    "orbit": lambda m, x: orbit_measures(m, x, LABELS[: x.shape[0]], R4),
    "IG": lambda m, x: integrated_gradients(m, x, 0, n_steps=3),
    "SI": lambda m, x: saliency_invariance(m, x, LABELS[: x.shape[0]], R4, n_steps=3),
    "sigma": lambda m, x: jacobian_spectral_norm(m, x),
}


def images(n: int = 4, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.randn(n, 1, 6, 6, generator=torch.Generator().manual_seed(1)).to(dtype)


def linear(scale: float = 1.0, dtype: torch.dtype = torch.float32) -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(36, 5))
    with torch.no_grad():
        model[1].weight.mul_(scale)
    return model.to(dtype).eval()


class ScalesInPlace(nn.Module):
    """Normalizes its input in place before a linear layer (``x.mul_``), as careless user code does."""

    def __init__(self) -> None:
        super().__init__()
        self.body = linear()

    def forward(self, x):
        x.mul_(2.0)
        return self.body(x)


@pytest.mark.parametrize("name", MEASURES)
def test_a_model_on_the_meta_device_is_refused_in_one_line_not_blamed_on_the_layout(name):
    with torch.device("meta"):
        model = nn.Sequential(nn.Flatten(), nn.Linear(36, 5))
    with pytest.raises(ValueError, match="meta device") as e:
        MEASURES[name](model, images())
    assert "\n" not in str(e.value) and "shape" not in str(e.value).split("(")[0]


@pytest.mark.parametrize("name", MEASURES)
def test_images_on_the_meta_device_are_refused_in_one_line(name):
    with pytest.raises(ValueError, match=r"^x is on the meta device \(a shape without values\)"):
        MEASURES[name](nn.Sequential(nn.Flatten(), nn.Linear(36, 5)).eval(), images().to("meta"))


@pytest.mark.parametrize("name", MEASURES)
def test_a_model_that_edits_its_input_in_place_is_refused_and_the_callers_images_are_unchanged(name):
    x = images()
    before = x.clone()
    with pytest.raises(ValueError, match="edits its input in place") as e:
        MEASURES[name](ScalesInPlace(), x)
    assert "\n" not in str(e.value) and "randomness" not in str(e.value)
    assert torch.equal(x, before)


def test_float16_logits_get_a_finite_li_equal_to_the_float32_computation_on_the_same_logits():
    model, x = linear(scale=3e3, dtype=torch.float16), images(dtype=torch.float16)
    with torch.no_grad():  # oracle: the same float16 logits, differences and squares in float64
        logits = torch.stack([model(R4.act(x, g)) for g in R4.elements]).double()
    expected = (0.5 * (logits[1:] - logits[0]).pow(2).sum(-1)).mean(0).mean()
    assert float(logits.abs().max()) < 65504 and float(expected) > 65504  # finite logits, LI beyond float16
    got = logit_invariance(model, x, R4)
    assert torch.isfinite(got) and got.dtype == torch.float32
    assert float(got) == pytest.approx(float(expected), rel=1e-5)


@pytest.mark.parametrize("name", ["LI", "orbit"])
def test_an_li_that_overflows_float32_is_refused_in_one_line_not_reported_as_inf(name):
    with pytest.raises(ValueError, match="LI overflows torch.float32.*float64") as e:
        MEASURES[name](linear(scale=1e30), images())
    assert "\n" not in str(e.value)


def _loop_li(model: nn.Module, x: torch.Tensor) -> float:
    """LI (Eq. 2) element by element, in float64: half the squared logit distance to the identity's, averaged
    over the non-identity elements and the samples."""
    with torch.no_grad():
        logits = torch.stack([model(R4.act(x, g)) for g in R4.elements]).double()
    return float((0.5 * (logits[1:] - logits[0]).pow(2).sum(-1)).mean())


def test_the_same_huge_logits_in_float64_are_measured():
    model, x = linear(scale=1e30, dtype=torch.float64), images(dtype=torch.float64)
    assert float(logit_invariance(model, x, R4)) == pytest.approx(_loop_li(model, x), rel=1e-12)


def test_an_audit_of_one_sample_says_why_its_intervals_are_nan():
    result = audit(linear(), images(1), LABELS[:1], R4, n_steps=3, n_resamples=100)
    si = result.measures["SI"]
    assert math.isfinite(si.value) and math.isnan(si.low) and math.isnan(si.high)
    assert result.to_dict()["measures"]["SI"]["low"] is None
    assert "needs at least 2 samples" in result.to_markdown()


def test_an_audit_of_many_samples_has_no_such_note():
    assert "needs at least 2 samples" not in audit(linear(), images(4), LABELS, R4, n_steps=3,
                                                   n_resamples=100).to_markdown()


class _DetachedLogits(nn.Module):
    """Logits cut from the graph: input gradients cannot be taken."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(36 * 36, 4)

    def forward(self, x):
        return self.lin(x.flatten(1)).detach()


def test_sigma_max_and_si_refuse_logits_that_carry_no_gradient_in_one_line():
    from nets.attribution import integrated_gradients
    from nets.sensitivity import jacobian_spectral_norm

    x = torch.randn(3, 36, 36)
    for measure, needs in ((lambda: jacobian_spectral_norm(_DetachedLogits(), x), "sigma_max"),
                           (lambda: integrated_gradients(_DetachedLogits(), x, torch.zeros(3, dtype=torch.long)),
                            r"integrated gradients \(SI\)")):
        with pytest.raises(ValueError, match=needs + r" differentiates the logits .* carry no gradient") as e:
            measure()
        assert "\n" not in str(e.value)


class _Preprocessed(nn.Module):
    """A linear model behind a preprocessing of its input: its logits keep their gradient to the weights."""

    def __init__(self, pre):
        super().__init__()
        self.pre, self.lin = pre, nn.Linear(36 * 36, 4)

    def forward(self, x):
        return self.lin(self.pre(x).flatten(1))


@pytest.mark.parametrize("pre", [lambda x: x.detach(), lambda x: (x * 255).to(torch.uint8).float() / 255],
                         ids=["input detached", "input cast to integers"])
def test_sigma_max_and_si_refuse_an_input_cut_from_the_graph_whose_weights_still_have_gradients(pre):
    from nets.attribution import integrated_gradients
    from nets.sensitivity import jacobian_spectral_norm

    x, model = torch.rand(3, 36, 36), _Preprocessed(pre).eval()
    for measure in (lambda: jacobian_spectral_norm(model, x),
                    lambda: integrated_gradients(model, x, torch.zeros(3, dtype=torch.long))):
        with pytest.raises(ValueError, match=r"carry no gradient to the images \(only to the model's parameters\)"):
            measure()  # sigma_max read 0 for every sample, SI raised autograd's own error


def test_sigma_max_of_a_model_that_rounds_its_input_warns_that_it_reads_zero():
    from nets.model_checks import ZeroInputGradient
    from nets.sensitivity import jacobian_spectral_norm

    model = _Preprocessed(lambda x: torch.round(x * 255) / 255).eval()
    with pytest.warns(ZeroInputGradient, match=r"^sigma_max: the logits' gradient with respect to the images is zero"):
        assert float(jacobian_spectral_norm(model, torch.rand(3, 36, 36)).abs().max()) == 0.0


def test_si_and_sigma_max_through_a_gradient_editing_backward_hook_warn_naming_the_hooked_module():
    """A guided-backpropagation hook left registered: the logits are the model's, their gradients are not."""
    from nets.attribution import integrated_gradients
    from nets.model_hooks import BackwardHooks
    from nets.sensitivity import PlainAutograd, jacobian_spectral_norm

    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(36 * 36, 8), nn.Tanh(), nn.Linear(8, 4)).eval()
    x, y = torch.rand(3, 36, 36), torch.zeros(3, dtype=torch.long)
    own = jacobian_spectral_norm(model, x)
    handle = model[2].register_full_backward_hook(lambda m, grad_in, grad_out: (grad_in[0].clamp(min=0),))
    with pytest.warns(BackwardHooks, match=r"^sigma_max differentiates .* through the model's backward hooks \(2\)"), \
            pytest.warns(PlainAutograd, match=r"the model uses backward hooks \(their autograd.Function\)"):
        hooked = jacobian_spectral_norm(model, x)
    with pytest.warns(BackwardHooks, match=r"^integrated gradients .* through the model's backward hooks \(2\)"):
        integrated_gradients(model, x, y, n_steps=4)
    assert not torch.allclose(hooked, own)  # the hook's gradients, not the model's
    handle.remove()
    with warnings.catch_warnings():
        warnings.simplefilter("error", BackwardHooks)
        torch.testing.assert_close(jacobian_spectral_norm(model, x), own)


def test_sigma_max_and_si_under_inference_mode_name_the_callers_inference_mode_not_the_model():
    from nets.attribution import integrated_gradients
    from nets.sensitivity import jacobian_spectral_norm

    model, x = nn.Sequential(nn.Flatten(), nn.Linear(36 * 36, 4)).eval(), torch.randn(3, 36, 36)
    for measure in (lambda: jacobian_spectral_norm(model, x),
                    lambda: integrated_gradients(model, x, torch.zeros(3, dtype=torch.long))):
        with torch.inference_mode(), pytest.raises(ValueError, match=r"called under torch.inference_mode\(\)") as e:
            measure()
        assert "\n" not in str(e.value) and "in its forward" not in str(e.value)


class Outputs(nn.Module):
    """Logits wrapped as a library may return them: a dict, an object with a logits field (a Hugging
    Face ModelOutput), or a tuple with other tensors."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind, self.body = kind, nn.Sequential(nn.Flatten(), nn.Linear(36, 5))

    def forward(self, x):
        logits = self.body(x)
        if self.kind == "dict":
            return {"logits": logits, "hidden": x}
        if self.kind == "object":
            return types.SimpleNamespace(logits=logits)
        return logits, x


@pytest.mark.parametrize("kind, hint", [
    ("dict", r'got output dict, whose logits field holds \(\d+, 5\): .*`return model\(x\)\["logits"\]`'),
    ("object", r"got output SimpleNamespace, whose logits field holds \(\d+, 5\): .*`return model\(x\).logits`"),
    ("tuple", r"got output tuple of \(\d+, 5\), \(\d+, 1, 6, 6\): give a module that returns the logits alone"),
])
def test_logits_inside_another_output_are_pointed_to(kind, hint):
    with pytest.raises(ValueError, match=hint):
        MEASURES["LI"](Outputs(kind).eval(), images())


def test_a_fully_convolutional_heads_n_c_1_1_output_is_pointed_to_flatten():
    model = nn.Sequential(nn.Conv2d(1, 5, 3, padding=1), nn.AdaptiveAvgPool2d(1)).eval()
    with pytest.raises(ValueError, match=r"got output \(\d+, 5, 1, 1\); a fully convolutional head's .* out.flatten\(1\)"):
        MEASURES["LI"](model, images())


class _DropPath(nn.Module):
    """Stochastic depth as timm's DropPath draws it: one keep-or-drop per sample, in training mode."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x):
        if not self.training:
            return x
        keep = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(1 - self.p)
        return x * keep / (1 - self.p)


class _Residual(nn.Module):
    def __init__(self, p: float) -> None:
        super().__init__()
        self.conv, self.drop = nn.Conv2d(1, 1, 3, padding=1), _DropPath(p)

    def forward(self, x):
        return x + self.drop(torch.relu(self.conv(x)))


def test_drop_path_left_in_training_mode_is_refused_naming_it():
    from nets.model_checks import check_copies_agree

    torch.manual_seed(0)
    model = nn.Sequential(_Residual(0.5), nn.Flatten(), nn.Linear(36, 5))  # training mode, as built
    with pytest.raises(ValueError, match=r"differs between two copies of one sample in one batch .*drop-path"):
        check_copies_agree(model, images())  # one call: two calls on two samples miss it as often as none drops
    with pytest.raises(ValueError, match=r"randomness .*drop-path"):
        logit_invariance(model, images(), R4)  # whichever probe sees it first
    logit_invariance(model.eval(), images(), R4)  # the same model in eval mode is measured


def test_a_module_that_updates_running_statistics_in_training_mode_is_refused_and_put_back():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.InstanceNorm2d(2, track_running_stats=True), nn.Flatten(),
                          nn.Linear(32, 5))
    before = [b.clone() for b in model.buffers()]
    with pytest.raises(ValueError, match=r"changes its buffers as it runs \(1.running_mean, 1.running_var"):
        logit_invariance(model, images(), R4)
    assert all(torch.equal(a, b) for a, b in zip(before, model.buffers()))


class _HiddenBatchNorm(nn.Module):
    """A BatchNorm held in a plain list: not registered, so model.eval() and named_modules() miss it."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.head, self.hidden = nn.Conv2d(1, 2, 3), nn.Linear(32, 5), [nn.BatchNorm2d(2)]

    def forward(self, x):
        return self.head(self.hidden[0](self.conv(x)).flatten(1))


def test_an_unregistered_batch_norm_in_training_mode_is_refused_before_it_runs():
    model = _HiddenBatchNorm().eval()
    with pytest.raises(ValueError, match=r"the model runs a module it does not register whose output depends on"):
        logit_invariance(model, images(), R4)
    assert float(model.hidden[0].running_mean.abs().max()) == 0.0 and int(model.hidden[0].num_batches_tracked) == 0


class _NaNSentinel(nn.Module):
    """A buffer holding NaN on purpose (a sentinel), never changed: NaN != NaN must not read as a change."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(36, 5)
        self.register_buffer("sentinel", torch.tensor([float("nan")]))

    def forward(self, x):
        return self.lin(x.flatten(1))


class _LazyCache(nn.Module):
    """Registers a buffer of its own in its first forward: the buffers before and after differ in number."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(36, 5)
        self.register_buffer("first", torch.zeros(3))

    def forward(self, x):
        if "cache" not in self._buffers:
            self.register_buffer("cache", torch.zeros(7))
        return self.lin(x.flatten(1))


@pytest.mark.parametrize("make", [lambda: _NaNSentinel().eval(), _NaNSentinel, _LazyCache],
                         ids=["NaN buffer, eval", "NaN buffer, training mode", "buffer made in forward"])
def test_buffers_that_do_not_change_or_are_new_are_measured(make):
    torch.manual_seed(0)
    model, x = make(), images()
    assert float(logit_invariance(model, x, R4)) == pytest.approx(_loop_li(model, x), rel=1e-5)


class _TrackedNormThenDropout(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv, self.norm = nn.Conv2d(1, 2, 3), nn.InstanceNorm2d(2, track_running_stats=True)
        self.head = nn.Linear(32, 5)

    def forward(self, x):
        return self.head(torch.nn.functional.dropout(self.norm(self.conv(x)), 0.5).flatten(1))


def test_buffers_a_probe_changed_are_put_back_whichever_probe_refuses_the_model():
    torch.manual_seed(0)
    model = _TrackedNormThenDropout()
    with pytest.raises(ValueError, match="changes its buffers as it runs"):  # the telling cause, as for spectral_norm
        logit_invariance(model, images(), R4)
    assert float(model.norm.running_mean.abs().max()) == 0.0 and int(model.norm.num_batches_tracked) == 0


@pytest.mark.parametrize("measure", MEASURES)
def test_a_model_that_returns_probabilities_is_refused_by_every_measure(measure):
    model = nn.Sequential(linear(), nn.Softmax(-1)).eval()
    with pytest.raises(ValueError, match=r"returns probabilities \(each row >= 0 and summing to 1\)") as e:
        MEASURES[measure](model, images())
    assert "\n" not in str(e.value)


def test_log_probabilities_are_measured_with_a_warning_and_keep_the_logits_di():
    """DI (Eq. 1) compares softmaxes, which a shift per sample leaves alone; LI does not."""
    logits, logp = linear(), nn.Sequential(linear(), nn.LogSoftmax(-1)).eval()
    with pytest.warns(LogProbabilities, match="returns log-probabilities"):
        di = distribution_invariance(logp, images(), R4)
    torch.testing.assert_close(di, distribution_invariance(logits, images(), R4))
    with pytest.warns(LogProbabilities):
        assert not torch.allclose(logit_invariance(logp, images(), R4), logit_invariance(logits, images(), R4))


def test_integer_outputs_are_neither_probabilities_nor_log_probabilities():
    assert output_kind(torch.tensor([[0, 1], [1, 0]])) == "logits"
    assert output_kind(torch.tensor([[0.25, 0.75], [1.0, 0.0]])) == "probabilities"


def test_spectral_norm_in_training_mode_is_refused_for_its_power_iteration_not_for_randomness():
    from torch.nn.utils.parametrizations import spectral_norm

    model = nn.Sequential(nn.Flatten(), spectral_norm(nn.Linear(36, 4))).train()
    u = model[1].parametrizations.weight[0]._u.clone()
    with pytest.raises(ValueError, match=r"changes its buffers as it runs \(1\.parametrizations\.weight\.0\._u, .*"
                                         r"spectral_norm's power iteration\?\).*call model\.eval\(\)") as e:
        logit_invariance(model, images(3), R4)
    assert "randomness" not in str(e.value) and torch.equal(model[1].parametrizations.weight[0]._u, u)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.ao.quantization's own
@pytest.mark.filterwarnings("ignore:.*quantiz:UserWarning")
def test_a_dynamically_quantized_model_is_refused_naming_its_quantized_layer_not_batch_norm():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(36, 16), nn.ReLU(), nn.Linear(16, 4)).eval()
    quantized = torch.ao.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8)
    with pytest.raises(ValueError, match=r"depends on the rest of the batch .*: its layer 1 \(Linear\) is dynamically "
                                         r"quantized .*measure the float model") as e:
        logit_invariance(quantized, images(3), R4)
    assert "BatchNorm" not in str(e.value)


def _random_mlp(side: int) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(side * side, 16), nn.Tanh(), nn.Linear(16, 3)).double().eval()


@pytest.mark.parametrize("side", [2, 3])
def test_si_warns_where_the_smoothing_spans_the_image_and_it_would_read_a_random_model_as_invariant(side):
    """The 3x3 smoothing spans a 2x2 or 3x3 image: the maps come out nearly flat, and a random model's SI
    with smoothing is far above its SI without (the maps' own disagreement)."""
    model, x = _random_mlp(side), torch.randn(64, 1, side, side, dtype=torch.float64)
    y = torch.randint(0, 3, (64,), generator=torch.Generator().manual_seed(0))
    with pytest.warns(SmoothingSpansImage, match=rf"spans a whole side of the {side}x{side} images"):
        smoothed = float(saliency_invariance(model, x, y, R4, n_steps=8))
    with warnings.catch_warnings():
        warnings.simplefilter("error", SmoothingSpansImage)
        plain = float(saliency_invariance(model, x, y, R4, n_steps=8, smooth=False))
    assert smoothed > 0.9 > plain + 0.4


def test_si_does_not_warn_about_the_smoothing_on_images_wider_than_its_kernel():
    x = torch.randn(8, 1, 4, 4, dtype=torch.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("error", SmoothingSpansImage)
        saliency_invariance(_random_mlp(4), x, torch.zeros(8, dtype=torch.long), R4, n_steps=4)
