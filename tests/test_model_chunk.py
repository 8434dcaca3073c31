"""A model that runs several inputs per input (a weight-tied GroupPooled model runs the whole orbit)
declares ``batch_expansion``, and every measure divides its chunks by it: a pass then holds about as
many images as for a plain model, and the numbers are the same up to round-off."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nets import integrated_gradients, jacobian_spectral_norm, layer_invariance_profile, logit_invariance
from nets.groups import get_group
from nets.measure_inputs import model_chunk
from nets.train import GroupPooled

GROUP = get_group("t4xy")  # 16 elements on 8 x 8 images


class Spy(nn.Module):
    """A small CNN that records the largest batch it was given."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.Tanh(), nn.Flatten(), nn.Linear(3 * 64, 4))
        self.largest = 0

    def forward(self, x):
        self.largest = max(self.largest, x.shape[0])
        return self.net(x)


def pooled() -> GroupPooled:
    return GroupPooled(Spy(), GROUP).eval()


def images(n: int = 10) -> torch.Tensor:
    return torch.randn(n, 1, 8, 8, generator=torch.Generator().manual_seed(1))


def test_a_group_pooled_model_declares_its_orbit_as_its_batch_expansion():
    assert pooled().batch_expansion == GROUP.order == 16
    assert model_chunk(pooled(), 64) == 4 and model_chunk(pooled(), 8) == 1 and model_chunk(Spy(), 64) == 64


def test_integrated_gradients_on_a_pooled_model_passes_the_chunk_divided_by_the_orbit():
    model, x, steps = pooled(), images(), 5
    attr = integrated_gradients(model, x, 0, n_steps=steps, chunk_size=32)
    assert model.model.largest == (32 // 16) * steps * 16  # 2 samples x 5 steps, each run over 16 elements
    one_by_one = torch.cat([integrated_gradients(model, x[i : i + 1], 0, n_steps=steps, chunk_size=1)
                            for i in range(len(x))])
    torch.testing.assert_close(attr, one_by_one)


@pytest.mark.parametrize("measure", ["LI", "sigma_max", "layer profile"])
def test_the_other_measures_divide_their_chunks_too(measure):
    model, x = pooled(), images()
    if measure == "LI":
        logit_invariance(model, x, GROUP, chunk_size=32)
        assert model.model.largest == 2 * 16 * 16  # 2 samples, their orbit, each run over the orbit
    elif measure == "sigma_max":
        jacobian_spectral_norm(model, x, chunk_size=32)
        assert model.model.largest <= 2 * 16
    else:
        with pytest.warns(UserWarning, match=r"left out \(no entry in the result\) model \(its output's first axis"):
            layer_invariance_profile(model, x, GROUP, chunk_size=32)  # the wrapped model runs on the orbit
        assert model.model.largest == 2 * 16 * 16


@pytest.mark.parametrize("bad", [0, -2, 1.5, True, "4"])
def test_a_batch_expansion_that_is_not_a_positive_int_is_refused(bad):
    model = Spy()
    model.batch_expansion = bad
    with pytest.raises(ValueError, match="batch_expansion must be a positive int"):
        model_chunk(model, 64)


def test_the_centered_and_two_logit_wrappers_keep_the_expansion_of_the_model_they_wrap():
    from nets.models import CenteredLogits, TwoLogits

    assert CenteredLogits(pooled()).batch_expansion == 16 and CenteredLogits(Spy()).batch_expansion == 1
    assert TwoLogits(pooled()).batch_expansion == 16
    model = CenteredLogits(pooled())
    jacobian_spectral_norm(model, images(), chunk_size=32)  # audit's sigma_max of the centered logits
    assert model.model.model.largest <= 2 * 16


def test_a_model_with_hidden_activations_and_an_expansion_has_the_plain_models_layer_profile():
    from nets.models import MLP

    class Declares(MLP):
        batch_expansion = 4  # says it runs 4 inputs per input: only the chunking may change

    torch.manual_seed(0)
    plain = MLP((8, 8), 4, 16, 2).eval()
    declares = Declares((8, 8), 4, 16, 2).eval()
    declares.load_state_dict(plain.state_dict())
    x = torch.randn(10, 8, 8, generator=torch.Generator().manual_seed(2))
    expected = layer_invariance_profile(plain, x, "r4", chunk_size=1000)
    for chunk in (4, 7, 1000):  # chunks of 1, 1 and 250 samples: each sample counted once
        torch.testing.assert_close(layer_invariance_profile(declares, x, "r4", chunk_size=chunk), expected)


def test_the_interrupted_message_counts_checkpoints_in_subfolders_too(tmp_path):
    from nets.results_io import saved_checkpoints_text

    assert "no training run had saved a checkpoint yet" in saved_checkpoints_text(tmp_path / "none")
    (tmp_path / "train_size" / "n100").mkdir(parents=True)
    for i in range(4):
        (tmp_path / "train_size" / "n100" / f"r{i}.pt").write_bytes(b"x")
    assert saved_checkpoints_text(tmp_path).startswith("4 checkpoint files in")
