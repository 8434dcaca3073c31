"""The measures on any image classifier: images (N, *C, H, W), CNNs with channel axes, groups by name,
and the one-line errors for models and inputs they cannot measure. Oracles: loops over the group
elements, captum, a dense SVD of each sample's Jacobian."""

from __future__ import annotations

import functools

import pytest
import torch
from captum.attr import IntegratedGradients
from torch import nn

from nets.groups import R4, T3
from nets.model_checks import check_samplewise, device_mismatch
from nets.metrics import (
    class_common_logit_share,
    distribution_invariance,
    gaussian_smooth,
    integrated_gradients,
    jacobian_spectral_norm,
    layer_invariance_profile,
    logit_invariance,
    orbit_centroid_invariance,
    orbit_measures,
    saliency_invariance,
    saliency_map,
)

SIZE = 6


def cnn(channels: int, seed: int = 0, n_classes: int = 5) -> nn.Module:
    """A small CNN with pooling on (N, channels, 6, 6) images, float64, eval mode."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(channels, 4, 3, padding=1), nn.Tanh(), nn.MaxPool2d(2),
        nn.Conv2d(4, 4, 3, padding=1), nn.Softplus(), nn.Flatten(), nn.Linear(4 * 9, n_classes),
    ).double().eval()


def images(channels: int, n: int = 4, seed: int = 1) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, channels, SIZE, SIZE, generator=gen, dtype=torch.float64)


LABELS = torch.tensor([0, 1, 2, 3])
CHANNELS = [1, 3]


def orbit_logits_by_loop(model, x, group):
    """Oracle: the model on act(x, g), one element at a time, (|G|, N, C)."""
    with torch.no_grad():
        return torch.stack([model(group.act(x, g)) for g in group.elements])


# ---- every measure on (N, 1, H, W) and (N, 3, H, W) ------------------------------------------


@pytest.mark.parametrize("c", CHANNELS)
def test_logit_invariance_of_a_cnn_matches_a_loop_over_the_group(c):
    z = orbit_logits_by_loop(cnn(c), images(c), R4)
    expected = (0.5 * (z[1:] - z[0]).pow(2).sum(-1)).mean(0)
    torch.testing.assert_close(logit_invariance(cnn(c), images(c), R4, reduction="none"), expected)


@pytest.mark.parametrize("c", CHANNELS)
def test_distribution_invariance_of_a_cnn_matches_a_loop_over_the_group(c):
    z = orbit_logits_by_loop(cnn(c), images(c), R4)
    logp = torch.log_softmax(z, -1)
    expected = (logp[0].exp() * (logp[0] - logp[1:])).sum(-1).mean(0)
    torch.testing.assert_close(distribution_invariance(cnn(c), images(c), R4, reduction="none"), expected)


@pytest.mark.parametrize("c", CHANNELS)
def test_orbit_centroid_invariance_of_a_cnn_matches_a_loop_over_the_group(c):
    z = orbit_logits_by_loop(cnn(c), images(c), R4)
    expected = (0.5 * (z - z.mean(0)).pow(2).sum(-1)).mean(0)
    torch.testing.assert_close(orbit_centroid_invariance(cnn(c), images(c), R4, reduction="none"), expected)


@pytest.mark.parametrize("c", CHANNELS)
def test_orbit_accuracy_of_a_cnn_counts_correct_orbit_members(c):
    z = orbit_logits_by_loop(cnn(c), images(c), R4)
    expected = float((z.argmax(-1) == LABELS).double().mean())
    assert orbit_measures(cnn(c), images(c), LABELS, R4)["accuracy"] == expected


@pytest.mark.parametrize("c", CHANNELS)
def test_layer_profile_of_a_cnn_has_one_entry_per_submodule_and_the_logits(c):
    profile = layer_invariance_profile(cnn(c), images(c), R4)
    assert profile.shape == (8,)  # 7 modules of the Sequential, then the logits
    torch.testing.assert_close(profile[-2], profile[-1])  # the Linear's output is the logits


def test_layer_profile_is_the_same_whether_a_layer_is_followed_by_an_in_place_op_or_not():
    """torchvision's style (``nn.ReLU(inplace=True)``, ``out += identity``) overwrites the output a hook
    saw; each layer must keep its own value, not the in-place op's."""

    class Residual(nn.Module):
        def __init__(self, inplace: bool):
            super().__init__()
            self.conv, self.relu = nn.Conv2d(3, 3, 3, padding=1), nn.ReLU(inplace=inplace)
            self.inplace = inplace

        def forward(self, x):
            out = self.conv(x)
            if self.inplace:
                out += x
            else:
                out = out + x
            return self.relu(out)

    def net(inplace: bool) -> nn.Module:
        torch.manual_seed(0)
        return nn.Sequential(nn.Conv2d(3, 3, 3, padding=1), nn.ReLU(inplace=inplace), Residual(inplace),
                             nn.Flatten(), nn.Linear(3 * SIZE * SIZE, 5)).double().eval()

    x = images(3)
    plain, inplace = net(False), net(True)
    assert torch.equal(plain(x), inplace(x))
    torch.testing.assert_close(layer_invariance_profile(inplace, x, R4), layer_invariance_profile(plain, x, R4))
    assert not torch.isclose(layer_invariance_profile(plain, x, R4)[0], layer_invariance_profile(plain, x, R4)[1])


class PixelColours(nn.Module):
    """A model written for channels-last images ``(N, H, W, channels)`` (2: an optical flow field)."""

    def __init__(self, channels: int = 3):
        super().__init__()
        torch.manual_seed(0)
        self.lin = nn.Linear(channels, 5).double()

    def forward(self, x):
        return self.lin(x).mean(dim=(1, 2))


def test_channels_last_images_the_group_does_not_refuse_are_warned_of_at_the_callers_line():
    """f2 acts on the last two axes: on (N, H, W, 3) it swaps the colour channels; measured, and warned of."""
    import inspect

    from nets import ChannelsLast

    x = torch.randn(4, SIZE, SIZE, 3, dtype=torch.float64)
    with pytest.warns(ChannelsLast, match=r"x of shape \(N, 6, 6, 3\) looks channels-last, \(N, H, W, C\): the "
                                          r"group acts on its last two axes, width and channels here") as record:
        line = inspect.currentframe().f_lineno + 1
        logit_invariance(PixelColours(), x, "f2")
    assert {(w.filename, w.lineno) for w in record if issubclass(w.category, ChannelsLast)} == {(__file__, line)}


def test_two_channel_channels_last_images_are_warned_of_too():
    """An optical flow field (N, H, W, 2) under f2: the group would swap its two components."""
    from nets import ChannelsLast

    with pytest.warns(ChannelsLast, match=r"x of shape \(N, 6, 6, 2\) looks channels-last"):
        logit_invariance(PixelColours(channels=2), torch.randn(4, SIZE, SIZE, 2, dtype=torch.float64), "f2")


def test_a_model_written_for_channels_last_refusing_channels_first_images_is_told_to_wrap_itself():
    with pytest.raises(ValueError, match=r"; it accepts \(M, 6, 6, 3\), channels-last: wrap it, forward\(x\) = "
                                         r"net\(x.permute\(0, 2, 3, 1\)\) \(images must be"):
        logit_invariance(PixelColours(), images(3), "r4")


def test_channels_first_images_get_no_channels_last_warning():
    import warnings

    from nets import ChannelsLast

    with warnings.catch_warnings():
        warnings.simplefilter("error", ChannelsLast)
        logit_invariance(cnn(3), images(3), "f2")


def test_channels_first_images_whose_first_axis_could_be_channels_get_no_channels_last_warning():
    # (N, 3, 8, 2): 3-channel 8 x 2 images as well as 3 x 8 two-channel ones; only the warning's test decides
    import warnings

    from nets import ChannelsLast

    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 2, 5)).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("error", ChannelsLast)
        logit_invariance(model, torch.randn(4, 3, 8, 2), "f2")


@pytest.mark.parametrize("c", CHANNELS)
def test_integrated_gradients_of_a_cnn_match_captum(c):
    model, x = cnn(c), images(c)
    ours = integrated_gradients(model, x, LABELS, n_steps=6)
    theirs = IntegratedGradients(model).attribute(x, target=LABELS, n_steps=6)
    torch.testing.assert_close(ours, theirs.detach(), atol=1e-7, rtol=1e-6)


@pytest.mark.parametrize("c", CHANNELS)
def test_saliency_map_sums_absolute_attributions_over_the_channels(c):
    model, x = cnn(c), images(c)
    a = IntegratedGradients(model).attribute(x, target=LABELS, n_steps=6).detach().abs().sum(1)
    a = torch.where(a >= 0.9 * a.amax(dim=(-2, -1), keepdim=True), a, torch.zeros_like(a))
    ours = saliency_map(model, x, LABELS, n_steps=6)
    assert ours.shape == (4, SIZE, SIZE)
    torch.testing.assert_close(ours, gaussian_smooth(a), atol=1e-7, rtol=1e-6)


@pytest.mark.parametrize("c", CHANNELS)
def test_saliency_invariance_of_a_cnn_matches_a_loop_realigning_with_the_inverse(c):
    model, x = cnn(c), images(c)
    ref = saliency_map(model, x, LABELS, n_steps=4).flatten(1)
    sims = []
    for g in (1, 2, 3):
        m = R4.act(saliency_map(model, R4.act(x, g), LABELS, n_steps=4), R4.inverse(g)).flatten(1)
        sims.append(torch.nn.functional.cosine_similarity(ref, m, dim=1))
    expected = torch.stack(sims).mean(0)
    torch.testing.assert_close(saliency_invariance(model, x, LABELS, R4, n_steps=4, reduction="none"), expected)


@pytest.mark.parametrize("c", CHANNELS)
def test_jacobian_spectral_norm_of_a_cnn_matches_a_dense_svd(c):
    model, x = cnn(c), images(c)
    oracle = []
    for xi in x:
        J = torch.autograd.functional.jacobian(lambda z: model(z.unsqueeze(0)).squeeze(0), xi)
        oracle.append(torch.linalg.svdvals(J.reshape(J.shape[0], -1))[0])
    torch.testing.assert_close(jacobian_spectral_norm(model, x), torch.stack(oracle), atol=0, rtol=1e-10)


@pytest.mark.parametrize("c", CHANNELS)
def test_class_common_share_of_cnn_logits_is_their_cosine_with_the_ones_vector(c):
    with torch.no_grad():
        logits = cnn(c)(images(c))
    share = class_common_logit_share(logits)
    cosine = torch.nn.functional.cosine_similarity(logits.double(), torch.ones_like(logits, dtype=torch.float64), dim=1)
    assert share.shape == (4,) and bool(((share >= 0) & (share <= 1)).all())
    torch.testing.assert_close(share, cosine.abs().to(share.dtype), rtol=1e-6, atol=0)  # |cos(f, 1)|


# ---- the orbit reaches the model as one batch ----------------------------------------------------


class Recorder(nn.Module):
    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner, self.shapes = inner, []

    def forward(self, x):
        self.shapes.append(tuple(x.shape))
        return self.inner(x)


def test_the_orbit_reaches_the_model_as_one_batch_with_the_channel_axis_intact():
    model = Recorder(cnn(3)).eval()  # in training mode, check_copies_agree's pairs would come first
    logit_invariance(model, images(3, n=5), R4)
    probe = [(2, 3, SIZE, SIZE), (2, 3, SIZE, SIZE), (1, 3, SIZE, SIZE)]  # check_samplewise, without gradients
    assert model.shapes == [*probe, (4 * 5, 3, SIZE, SIZE)]


def test_a_group_given_by_name_gives_the_same_numbers_as_the_group():
    assert float(logit_invariance(cnn(1), images(1), "r4")) == float(logit_invariance(cnn(1), images(1), R4))
    assert float(saliency_invariance(cnn(1), images(1), LABELS, "r4", n_steps=3)) == float(
        saliency_invariance(cnn(1), images(1), LABELS, R4, n_steps=3))


# ---- one-line errors ------------------------------------------------------------------------------

MEASURES = {
    "LI": lambda m, x: logit_invariance(m, x, R4),
    "DI": lambda m, x: distribution_invariance(m, x, R4),
    "orbit": lambda m, x: orbit_measures(m, x, LABELS[: x.shape[0]], R4),
    "profile": lambda m, x: layer_invariance_profile(m, x, R4),
    "IG": lambda m, x: integrated_gradients(m, x, 0, n_steps=3),
    "SI": lambda m, x: saliency_invariance(m, x, LABELS[: x.shape[0]], R4, n_steps=3),
    "sigma": lambda m, x: jacobian_spectral_norm(m, x),
    "sigma_power": lambda m, x: jacobian_spectral_norm(m, x, method="power", n_iter=3),  # too few: it warns so
}


@pytest.mark.parametrize("name", MEASURES)
def test_a_cnn_given_images_without_their_channel_axis_names_both_shapes(name):
    with pytest.raises(ValueError, match=r"refused input of shape \(M, 6, 6\) \(M = \d+, the batch the measure built\); "
                                         r"it accepts \(M, 1, 6, 6\)"):
        MEASURES[name](cnn(1), images(1).squeeze(1))


class AssertsRGB(nn.Module):
    """A user's model that checks its input layout with ``assert``, not a shape error of torch's."""

    def forward(self, x):
        assert x.ndim == 4 and x.shape[1] == 3, f"expected (N, 3, H, W), got {tuple(x.shape)}"
        return x.mean(dim=(2, 3))


@pytest.mark.parametrize("name", MEASURES)
def test_a_model_that_asserts_on_its_input_is_refused_in_one_line_naming_what_it_raised(name):
    with pytest.raises(ValueError, match=r"refused input of shape \(M, 1, 6, 6\).*AssertionError: expected") as e:
        MEASURES[name](AssertsRGB().double(), images(1))
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("name", MEASURES)
def test_batch_norm_using_batch_statistics_is_refused(name):
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(32, 5)).double().train()
    with pytest.raises(ValueError, match="batch statistics.*model.eval"):
        MEASURES[name](model, images(1))


def _wrappers(net):
    """Ways a researcher hands a network to a measure inside a plain callable."""
    class Normalizing:
        def __init__(self, net):
            self.net = net

        def __call__(self, z):
            return self.net(2 * z - 1)

    class Predictor:  # not callable itself: its bound method is the model
        def __init__(self, net):
            self.net = net

        def predict(self, z):
            return self.net(z)

    class Slotted:
        __slots__ = ("net",)

        def __init__(self, net):
            self.net = net

        def __call__(self, z):
            return self.net(z)

    class Lookup:  # attributes looked up in a table
        def __init__(self, net):
            self.table = {"net": net}

        def __getattr__(self, name):
            try:
                return self.__dict__["table"][name]
            except KeyError:
                raise AttributeError(name) from None

        def __call__(self, z):
            return self.net(z)

    nets_by_name = {"a": net}
    return {"lambda": lambda z: net(2 * z - 1), "bound forward": net.forward,
            "partial": functools.partial(net.forward), "callable object": Normalizing(net),
            "method of a plain object": Predictor(net).predict, "dict of networks": lambda z: nets_by_name["a"](z),
            "slots": Slotted(net), "getattr lookup": Lookup(net),
            "three steps": functools.partial(lambda z, f: f(z), f=Normalizing(net))}


WRAPPERS = ["lambda", "bound forward", "partial", "callable object", "method of a plain object", "dict of networks",
            "slots", "getattr lookup", "three steps"]


@pytest.mark.parametrize("how", WRAPPERS)
def test_a_callable_running_a_training_mode_network_is_refused_before_it_runs_leaving_its_statistics(how):
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(32, 5)).double().train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    with pytest.raises(ValueError, match=r"runs a module whose output depends on the rest of the batch or on chance: "
                                         r"BatchNorm2d using batch statistics; call .eval\(\) on the network"):
        MEASURES["LI"](_wrappers(net)[how], images(1))
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


@pytest.mark.parametrize("how", WRAPPERS)
def test_a_callable_running_an_evaluation_mode_network_is_measured(how):
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(32, 5)).double().eval()
    MEASURES["LI"](_wrappers(net)[how], images(1))


def test_a_training_mode_network_the_callable_holds_but_never_runs_is_no_reason_to_refuse():
    used = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(32, 5)).double().eval()
    unused = nn.Sequential(nn.BatchNorm2d(1)).double().train()  # a teacher, say, in training
    MEASURES["LI"](lambda z, pair=(used, unused): pair[0](z), images(1))


def test_batch_norm_without_running_statistics_is_refused_without_suggesting_eval():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2, track_running_stats=False), nn.Flatten(),
                          nn.Linear(32, 5)).double().eval()
    with pytest.raises(ValueError, match="track_running_stats=False.*cannot fix it") as e:
        MEASURES["LI"](model, images(1))
    assert "call model.eval()" not in str(e.value)


@pytest.mark.parametrize("name", MEASURES)
@pytest.mark.filterwarnings("ignore::nets.sensitivity.PowerNotConverged")  # sigma_power stops at n_iter=3
def test_batch_norm_in_eval_mode_is_measured(name):
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(32, 5)).double().eval()
    MEASURES[name](model, images(1))


@pytest.mark.parametrize("name", MEASURES)
def test_active_dropout_is_refused(name):
    model = nn.Sequential(nn.Flatten(), nn.Dropout(0.5), nn.Linear(36, 5)).double().train()
    with pytest.raises(ValueError, match="Dropout in training mode"):
        MEASURES[name](model, images(1))


@pytest.mark.parametrize("name", MEASURES)
def test_float64_images_for_a_float32_model_are_refused_in_one_line(name):
    with pytest.raises(ValueError, match="dtype torch.float64 but the model's parameters are torch.float32"):
        MEASURES[name](cnn(1).float(), images(1))


def test_images_on_another_device_than_the_model_are_refused_naming_both():
    """The message each measure gives (tests/test_cuda.py refuses a real CUDA model so): both
    devices named, and how to move either."""
    cpu, gpu = torch.device("cpu"), torch.device("cuda", 0)
    assert device_mismatch({gpu}, cpu) == ("x is on cpu but the model's parameters and buffers are on cuda:0; "
                                           "move one of them (model.to('cpu') or x.to('cuda:0'))")
    assert device_mismatch({cpu}, gpu) == ("x is on cuda:0 but the model's parameters and buffers are on cpu; "
                                           "move one of them (model.to('cuda:0') or x.to('cpu'))")


@pytest.mark.parametrize("name", MEASURES)
def test_every_measure_refuses_in_the_line_of_its_device_check(name, monkeypatch):
    """The wiring, on a CPU: the check is told the devices of the model's tensors and of the images, and
    its line is the measure's refusal (tests/test_cuda.py refuses a real CUDA model so)."""
    seen = []

    def told(model_devices, x_device):
        seen.append((model_devices, x_device))
        return "x is on cpu but the model's parameters and buffers are on cuda:0; move one of them"

    monkeypatch.setattr("nets.model_checks.device_mismatch", told)
    with pytest.raises(ValueError, match=r"^x is on cpu but the model's parameters and buffers are on cuda:0"):
        MEASURES[name](cnn(1), images(1))
    assert seen[0] == ({torch.device("cpu")}, torch.device("cpu"))


def test_a_model_split_across_devices_or_without_tensors_takes_images_on_any_of_its_devices():
    cpu, gpu0, gpu1 = torch.device("cpu"), torch.device("cuda", 0), torch.device("cuda", 1)
    assert device_mismatch({cpu, gpu0}, gpu0) is None and device_mismatch(set(), gpu1) is None
    assert device_mismatch({gpu0, gpu1}, cpu).endswith("are on cuda:0, cuda:1; move x to one of them")


@pytest.mark.parametrize("name", MEASURES)
def test_integer_images_are_refused(name):
    with pytest.raises(ValueError, match="floating-point images"):
        MEASURES[name](cnn(1), (images(1) * 100).to(torch.uint8))


class NaNModel(nn.Module):
    def forward(self, x):
        return torch.full((x.shape[0], 5), float("nan"), dtype=x.dtype) + 0 * x.flatten(1).sum(1, keepdim=True)


@pytest.mark.parametrize("name", MEASURES)
def test_nan_logits_are_refused(name):
    with pytest.raises(ValueError, match="NaN or inf logits"):
        MEASURES[name](NaNModel(), images(1))


class NaNGradientModel(nn.Module):
    """Finite logits, NaN input gradients where a pixel is 0 (d sqrt(x^2) / dx at 0 is 0/0)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.linear = nn.Linear(SIZE * SIZE, 5).double()

    def forward(self, x):
        return self.linear(torch.sqrt(x**2).flatten(1))


def images_with_zero_pixels() -> torch.Tensor:
    x = images(1)
    x[:2, :, 0, :] = 0
    return x


@pytest.mark.parametrize("measure", [
    lambda m, x: integrated_gradients(m, x, LABELS, n_steps=2),
    lambda m, x: saliency_invariance(m, x, LABELS, R4, n_steps=2, reduction="none"),
    lambda m, x: jacobian_spectral_norm(m, x, method="jacrev"),
    lambda m, x: jacobian_spectral_norm(m, x, method="power"),
], ids=["integrated_gradients", "saliency_invariance", "sigma_max_jacrev", "sigma_max_power"])
def test_nan_input_gradients_behind_finite_logits_are_refused_not_measured_as_zero(measure):
    model, x = NaNGradientModel(), images_with_zero_pixels()
    assert torch.isfinite(model(x)).all()
    with pytest.raises(ValueError, match="input (gradients|Jacobian).* contains NaN or inf"):
        measure(model, x)


@pytest.mark.parametrize("name", MEASURES)
def test_an_output_that_is_not_batch_by_classes_is_refused(name):
    model = nn.Sequential(nn.Conv2d(1, 2, 3)).double()  # (N, 2, 4, 4) feature maps, not logits
    with pytest.raises(ValueError, match=r"logits \(\d+, classes\)"):
        MEASURES[name](model, images(1))


class CastLogits(nn.Module):
    """A CNN whose forward ends in a cast of its logits to ``dtype`` (or a comparison, for bool)."""

    def __init__(self, dtype: torch.dtype) -> None:
        super().__init__()
        self.net, self.dtype = cnn(1), dtype

    def forward(self, x):
        z = self.net(x)
        return z > 0 if self.dtype == torch.bool else (100 * z).to(self.dtype)


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.bool, torch.complex128])
@pytest.mark.parametrize("name", MEASURES)
def test_logits_that_are_not_real_floating_point_are_refused_naming_their_dtype(name, dtype):
    """Integer logits gave LI a number and DI torch's mean() error; bool and complex, torch's own errors."""
    with pytest.raises(ValueError, match=rf"model returned {str(dtype)[6:]} logits, where the measures need real "
                                         r"floating-point logits"):
        MEASURES[name](CastLogits(dtype), images(1))


def test_labels_out_of_range_are_refused():
    with pytest.raises(ValueError, match=r"labels y must be in \[0, 5\)"):
        orbit_measures(cnn(1), images(1), torch.tensor([0, 1, 2, 7]), R4)


def test_saliency_invariance_refuses_labels_out_of_range_naming_its_own_argument():
    """It said IG's "target must be class indices in [0, 5)", naming an argument SI does not have."""
    with pytest.raises(ValueError, match=r"^labels y must be in \[0, 5\) for a model with 5 classes, got values in "
                                         r"\[0, 7\]$"):
        saliency_invariance(cnn(1), images(1), torch.tensor([0, 1, 2, 7]), R4, n_steps=2)


def test_a_group_that_does_not_fit_the_spatial_axes_is_refused():
    with pytest.raises(ValueError, match="divisible"):
        logit_invariance(cnn(1), torch.zeros(2, 1, 6, 7, dtype=torch.float64), T3)


def test_cosine_similarity_of_parallel_vectors_is_one_even_when_their_norms_product_underflows():
    from nets.metrics import cosine_similarity

    a = torch.full((2, 36), 6.3e-158, dtype=torch.float64)
    a[1] = 0.0
    cos = cosine_similarity(a, 3 * a)
    assert cos[0].item() == pytest.approx(1.0, abs=1e-12) and cos[1].item() == 0.0


@pytest.mark.parametrize("dtype, scale", [(torch.float32, 1e-25), (torch.float32, 1e25),
                                          (torch.float64, 1e-170), (torch.float64, 1e170)])
def test_cosine_similarity_of_parallel_vectors_is_one_at_either_end_of_the_float_range(dtype, scale):
    from nets.metrics import cosine_similarity

    a = torch.tensor([[1.0, 2.0, 0.5]], dtype=dtype) * scale  # squares underflow to 0 / overflow to inf
    assert cosine_similarity(a, 3 * a).item() == pytest.approx(1.0, abs=1e-6)
    assert cosine_similarity(a, -a).item() == pytest.approx(-1.0, abs=1e-6)


# ---- models that mix samples or draw at random, whatever their modules ---------------------------


class BatchMeanMix(nn.Module):
    """Adds the batch mean of its hidden units to each sample's: no BatchNorm module to spot."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        z = self.inner(x)
        return torch.tanh(z + z.mean(0, keepdim=True))


class FunctionalDropout(nn.Module):
    """F.dropout with its default training=True: random even after model.eval()."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return torch.nn.functional.dropout(self.inner(x), 0.5)


@pytest.mark.parametrize("measure", [logit_invariance, distribution_invariance])
def test_a_model_that_mixes_the_samples_of_a_batch_is_refused_in_one_line(measure):
    with pytest.raises(ValueError, match="depends on the rest of the batch") as e:
        measure(BatchMeanMix(cnn(3)).eval(), images(3), R4)
    assert len(str(e.value).splitlines()) == 1


class BatchStandardize(nn.Module):
    """Divides its hidden units by their standard deviation over the batch (a hand-written batch norm left in
    training mode): NaN for a sample alone, finite and batch-mixing on two or more."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        z = self.inner(x)
        return (z - z.mean(0)) / z.std(0)


@pytest.mark.filterwarnings("ignore:std.*degrees of freedom")
@pytest.mark.parametrize("measure", [logit_invariance, distribution_invariance])
def test_a_model_whose_logits_are_nan_only_for_a_sample_alone_is_refused_as_batch_dependent(measure):
    # the probe returned early on the lone sample's NaN, and LI came out 2e4x its eval-mode value, silently
    with pytest.raises(ValueError, match="maps two samples but not the first alone") as e:
        measure(BatchStandardize(cnn(3)).eval(), images(3), R4)
    assert len(str(e.value).splitlines()) == 1 and "batch statistics" in str(e.value)


def test_a_model_that_mixes_the_samples_is_refused_even_when_the_first_samples_are_duplicates():
    x = images(3)
    with pytest.raises(ValueError, match="depends on the rest of the batch"):
        logit_invariance(BatchMeanMix(cnn(3)).eval(), torch.cat([x[:1], x[:1], x]), R4)


def test_a_model_random_in_eval_mode_is_refused_in_one_line():
    with pytest.raises(ValueError, match="changes from one call to the next") as e:
        logit_invariance(FunctionalDropout(cnn(1)).eval(), images(1), R4)
    assert len(str(e.value).splitlines()) == 1


def test_the_sample_wise_probe_works_on_a_single_image_and_a_plain_callable():
    model = cnn(1)
    check_samplewise(lambda t: model(t), images(1, n=1))  # no error: the CNN maps each sample on its own
    with pytest.raises(ValueError, match="rest of the batch"):
        check_samplewise(BatchMeanMix(model), images(1, n=1))


class FlattenByView(nn.Module):
    """A linear classifier that flattens with .view(), which needs contiguous images."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.fc = nn.Linear(3 * 8 * 8, 4)

    def forward(self, x):
        return self.fc(x.view(x.shape[0], -1))


def test_images_in_the_channels_last_memory_format_are_named_with_the_fix_not_a_layout_to_wrap():
    """The shape is right, the strides are not: the refusal said 'wrap it, forward(x) = net(x.permute(...))'."""
    x = torch.randn(6, 3, 8, 8)
    with pytest.raises(ValueError, match=r"stored in another memory format \(torch.channels_last\?\), and takes them "
                                         r"contiguous: pass x.contiguous\(\)") as e:
        logit_invariance(FlattenByView().eval(), x.to(memory_format=torch.channels_last), R4)
    assert "permute" not in str(e.value) and "batch statistics" not in str(e.value)
    assert torch.isfinite(logit_invariance(FlattenByView().eval(), x, R4))  # as the fix says


class EditsItsInput(nn.Module):
    def forward(self, x):
        return x.mul_(2).flatten(1)[:, :4]


def test_a_refusal_that_comes_from_gradients_is_not_blamed_on_the_memory_format():
    """The retry ran without gradients on a detached copy, so an in-place edit of a leaf read as channels_last."""
    from nets.model_logits import MemoryFormatRefused, model_logits

    x = torch.randn(4, 3, 8, 8).to(memory_format=torch.channels_last).requires_grad_()
    with pytest.raises(ValueError) as e:
        model_logits(EditsItsInput(), x)
    assert not isinstance(e.value, MemoryFormatRefused) and "in-place" in str(e.value)


def test_the_memory_format_retry_runs_two_samples_not_the_batch():
    sizes = []

    class Counting(FlattenByView):
        def forward(self, x):
            sizes.append(x.shape[0])
            return super().forward(x)

    from nets.model_logits import model_logits

    with pytest.raises(ValueError, match="pass x.contiguous"):
        model_logits(Counting().eval(), torch.randn(50, 3, 8, 8).to(memory_format=torch.channels_last))
    assert sizes == [50, 2]  # the batch that failed, then two samples of it contiguous
