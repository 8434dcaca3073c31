"""A binary classifier of one logit: refused by every measure and the trainer, with the way out
(nets.TwoLogits) named, and measured exactly through that wrapper (docs/audit.md#one-logit)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nets import TwoLogits, audit, distribution_invariance, logit_invariance, saliency_invariance
from nets.data import Split, Splits
from nets.groups import R4
from nets.model_spec import load_weights
from nets.sensitivity import jacobian_spectral_norm
from nets.train import TrainConfig, train_runs


class OneLogit(nn.Module):
    """A small CNN on (N, 1, 12, 12) images with one logit; ``flat``: output (N,) instead of (N, 1)."""

    def __init__(self, flat: bool = False) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.flat = flat
        self.conv = nn.Conv2d(1, 3, 3, padding=1)
        self.head = nn.Linear(3 * 12 * 12, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.head(torch.tanh(self.conv(x)).flatten(1))
        return z[:, 0] if self.flat else z


@pytest.fixture
def data():
    g = torch.Generator().manual_seed(0)
    return torch.randn(10, 1, 12, 12, generator=g), torch.arange(10) % 2


MEASURES = {
    "LI": lambda m, x, y: logit_invariance(m, x, "r4"),
    "DI": lambda m, x, y: distribution_invariance(m, x, "r4"),
    "SI": lambda m, x, y: saliency_invariance(m, x, y, "r4", n_steps=4),
    "sigma_max": lambda m, x, y: jacobian_spectral_norm(m, x),
    "audit": lambda m, x, y: audit(m, x, y, "r4", n_steps=4),
}


@pytest.mark.parametrize("flat", [False, True], ids=["(N, 1)", "(N,)"])
@pytest.mark.parametrize("measure", sorted(MEASURES))
def test_every_measure_refuses_one_logit_naming_two_logits(measure, flat, data):
    with pytest.raises(ValueError, match=r"one logit per image.*nets\.TwoLogits\(model\)") as e:
        MEASURES[measure](OneLogit(flat).eval(), *data)
    assert "\n" not in str(e.value)


def test_two_logits_give_the_sigmoid_probabilities_and_the_binary_cross_entropy(data):
    x, y = data
    model = OneLogit().eval()
    z, logits = model(x)[:, 0], TwoLogits(model)(x)
    assert torch.allclose(logits.softmax(-1)[:, 1], torch.sigmoid(z), atol=1e-7)
    assert torch.allclose(F.cross_entropy(logits, y), F.binary_cross_entropy_with_logits(z, y.float()), atol=1e-6)
    assert torch.equal(logits.argmax(-1), (z > 0).long())


def test_di_of_two_logits_is_the_bernoulli_kl_over_the_rotations(data):
    x, _ = data
    model = OneLogit().eval()
    p = torch.sigmoid(model(x)[:, 0].double())
    kl = []
    for g in (1, 2, 3):
        q = torch.sigmoid(model(R4.act(x, g))[:, 0].double())
        kl.append(p * (p / q).log() + (1 - p) * ((1 - p) / (1 - q)).log())
    assert distribution_invariance(TwoLogits(model), x, "r4").item() == pytest.approx(
        torch.stack(kl).mean().item(), rel=1e-5)


def test_li_of_two_logits_is_half_the_one_logit_li(data):
    x, _ = data
    model = OneLogit().eval()
    z = model(x)[:, 0]
    one_logit_li = torch.stack([0.5 * (z - model(R4.act(x, g))[:, 0]) ** 2 for g in (1, 2, 3)]).mean()
    assert logit_invariance(TwoLogits(model), x, "r4").item() == pytest.approx(one_logit_li.item() / 2, rel=1e-5)


def test_si_of_two_logits_is_the_same_whichever_label(data):
    x, _ = data
    wrapped = TwoLogits(OneLogit().eval())
    zeros, ones = torch.zeros(len(x), dtype=torch.long), torch.ones(len(x), dtype=torch.long)
    a = saliency_invariance(wrapped, x, zeros, "r4", n_steps=8, reduction="none")
    b = saliency_invariance(wrapped, x, ones, "r4", n_steps=8, reduction="none")
    assert torch.allclose(a, b, atol=1e-6)


def test_sigma_max_of_two_logits_is_the_gradient_norm_over_root_two(data):
    x, _ = data
    model = OneLogit().eval()
    xg = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(model(xg).sum(), xg)
    expected = grad.flatten(1).norm(dim=1) / math.sqrt(2)
    assert torch.allclose(jacobian_spectral_norm(TwoLogits(model), x), expected, rtol=1e-4)


def test_two_logits_refuses_a_model_of_several_logits(data):
    x, _ = data
    with pytest.raises(ValueError, match=r"one logit per image, \(10, 1\) or \(10,\); the model returned \(10, 3\)"):
        TwoLogits(nn.Sequential(nn.Flatten(), nn.Linear(144, 3)))(x)


def test_a_config_of_one_class_is_refused_naming_two_logits():
    with pytest.raises(ValueError, match=r"n_classes must be >= 2.*nets\.TwoLogits"):
        TrainConfig(n_classes=1)


def _splits() -> Splits:
    g = torch.Generator().manual_seed(1)
    part = lambda k: Split(torch.randn(k, 12, 12, generator=g), torch.arange(k) % 2)  # noqa: E731
    return Splits("synthetic", part(24), part(12), part(4), 0.0, 1.0, 0)


def _config(method: str) -> TrainConfig:
    return TrainConfig(method=method, model="binary", epochs=1, batch_size=8, n_classes=2,
                       nu=1.0 if method == "IR" else 0.0)


def test_the_trainer_refuses_one_logit_naming_two_logits():
    def factory(config):
        one = OneLogit()
        one.input_shape = (1, 12, 12)
        return one

    with pytest.raises(ValueError, match=r"r4-DA.*one logit per image.*nets\.TwoLogits"):
        train_runs([_config("DA")], [0], _splits(), device="cpu", progress=False, model_fn=factory)


@pytest.mark.parametrize("method", ["DA", "WT", "IR"])
def test_a_one_logit_model_wrapped_in_two_logits_trains_and_reloads(method, tmp_path):
    def factory(config):
        wrapped = TwoLogits(OneLogit())
        wrapped.input_shape = (1, 12, 12)
        return wrapped

    run = train_runs([_config(method)], [0], _splits(), device="cpu", run_dir=tmp_path, progress=False,
                     model_fn=factory)[0]
    again = train_runs([_config(method)], [0], _splits(), device="cpu", run_dir=tmp_path, progress=False,
                       model_fn=factory, finished_only=True)[0]
    x = _splits().val.x[:, None]
    assert torch.equal(run.model(x), again.model(x))


def test_weights_of_the_bare_model_load_into_its_two_logits_wrapper(tmp_path, data):
    x, _ = data
    bare = OneLogit()
    with torch.no_grad():
        bare.head.bias.fill_(3.0)
    torch.save(bare.state_dict(), tmp_path / "w.pt")
    wrapped = TwoLogits(OneLogit())  # bias 0 until the file is loaded
    load_weights(wrapped, str(tmp_path / "w.pt"))
    assert torch.equal(wrapped(x)[:, 1] * 2, bare(x)[:, 0])
