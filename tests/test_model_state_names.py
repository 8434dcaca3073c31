"""A model whose state dict names its tensors otherwise than the trainer does: tied parameters
(``h2.weight = h.weight``, stored once by ``torch.func.stack_module_state``) and non-persistent
buffers (stacked, but not in ``model.state_dict()``). Its runs train, load again from their
checkpoints, and audit (``nets.model_spec.as_state_dict``); until 2026-12-07 such a run trained to
the end and then could never be loaded (a raw ``load_state_dict`` error, then "the factory changed")."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nets.data import Split, Splits
from nets.model_spec import ModelSpecError, as_state_dict
from nets.train import TrainConfig, train_runs
from nets.weights_file import checkpoint_model


class Base(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3, padding=1)
        self.head = nn.Linear(6, 4)

    def features(self, x):
        return torch.relu(self.conv(x)).mean((-2, -1))

    def forward(self, x):
        return self.head(self.features(x))


class Tied(Base):
    """A second head sharing the first's weight matrix."""

    def __init__(self) -> None:
        super().__init__()
        self.head2 = nn.Linear(6, 4)
        self.head2.weight = self.head.weight

    def forward(self, x):
        f = self.features(x)
        return self.head(f) + self.head2(f)


class NonPersistent(Base):
    """A buffer kept out of the state dict (as timm's Swin keeps its relative position index)."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("scale", torch.full((3, 1, 1), 2.0), persistent=False)

    def forward(self, x):
        return super().forward(x * self.scale)


class Counting(Base):
    """A non-persistent buffer its forward updates in training: the trained value differs from a new model's."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("seen", torch.zeros(()), persistent=False)

    def forward(self, x):
        if self.training:
            self.seen += x.shape[0]
        return super().forward(x)


class Lazy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.LazyConv2d(6, 3, padding=1)
        self.head = nn.Linear(6, 4)

    def forward(self, x):
        return self.head(torch.relu(self.conv(x)).mean((-2, -1)))


def rgb_splits(n: int = 32) -> Splits:
    g = torch.Generator().manual_seed(0)
    part = lambda k: Split(torch.randn(k, 3, 12, 12, generator=g), torch.arange(k) % 4)  # noqa: E731
    return Splits("synthetic", part(n), part(n // 2), part(4), 0.0, 1.0, 0)


def train(factory, method: str, run_dir):
    config = TrainConfig(method=method, model="own", group="r4", n_classes=4, epochs=2, batch_size=16)
    (run,) = train_runs([config], [0], rgb_splits(), device="cpu", progress=False, model_fn=lambda c: factory(),
                        run_dir=run_dir)
    return run


@pytest.mark.parametrize("method", ["DA", "WT"])
@pytest.mark.parametrize("factory", [Tied, NonPersistent], ids=["tied", "non-persistent"])
def test_a_finished_run_loads_again_from_its_checkpoint_with_the_same_logits(tmp_path, factory, method):
    trained = train(factory, method, tmp_path)
    loaded = train(factory, method, tmp_path)  # finished: loaded, not trained
    x = rgb_splits().val.x
    with torch.no_grad():
        assert torch.equal(trained.model(x), loaded.model(x))
    assert loaded.history == trained.history


def test_tied_parameters_stay_tied_in_the_loaded_model(tmp_path):
    model = train(Tied, "DA", tmp_path).model
    assert model.head2.weight is model.head.weight


def test_a_tied_models_checkpoint_audits_with_its_factory(tmp_path):
    run = train(Tied, "DA", tmp_path)
    (ckpt,) = tmp_path.glob("*.pt")
    model = checkpoint_model(Tied(), str(ckpt))
    x = rgb_splits().val.x
    with torch.no_grad():
        assert torch.equal(model(x), run.model(x))


def test_a_non_persistent_buffer_comes_back_as_trained_not_as_a_new_model_has_it(tmp_path):
    run = train(Counting, "DA", tmp_path)
    (ckpt,) = tmp_path.glob("*.pt")
    trained = torch.load(ckpt, weights_only=True)["best_state"]["seen"]
    assert trained > 0
    assert train(Counting, "DA", tmp_path).model.seen == trained == run.model.seen
    assert checkpoint_model(Counting(), str(ckpt)).seen == trained


def test_a_state_dict_saved_by_the_model_comes_back_unchanged():
    for model in (Tied(), NonPersistent(), Base()):
        state = model.state_dict()
        assert as_state_dict(model, state).keys() == state.keys()


def test_a_checkpoint_of_another_model_is_still_refused(tmp_path):
    train(Tied, "DA", tmp_path)
    (ckpt,) = tmp_path.glob("*.pt")
    with pytest.raises(ModelSpecError, match="does not match the model"):
        checkpoint_model(NonPersistent(), str(ckpt))


def test_a_lazy_module_not_yet_shaped_is_refused_in_one_line_naming_the_fix(tmp_path):
    with pytest.raises(ValueError, match=r"^own-r4-DA-.*: the model's 'conv.weight' is a lazy module's, not shaped "
                                         r"yet .*one forward on a dummy batch") as e:
        train(Lazy, "DA", tmp_path)
    assert "\n" not in str(e.value)
