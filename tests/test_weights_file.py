"""``nets.weights_file.checkpoint_model``: a WT run's checkpoint is measured as the pooled model it trained, not
as the bare model its weights fit (which is not invariant at all)."""

import json

import pytest
import torch
from torch import nn

from nets.weights_file import checkpoint_model
from nets.groups import get_group
from nets.image_layout import image_layout
from nets.model_spec import ModelSpecError
from nets.models import MLP, InvariantMLP
from nets.train import GroupPooled

R4 = get_group("r4")


class LayoutCNN(nn.Module):
    """Declares ``input_shape``, so a ``cnn --model`` run wraps it (weights under ``model.inner.``)."""

    def __init__(self):
        super().__init__()
        self.input_shape = (1, 12, 12)
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.head = nn.Linear(4 * 12 * 12, 9)

    def forward(self, x):
        return self.head(torch.relu(self.conv(x)).flatten(1))


def _save(path, state, **config):
    torch.save({"config": {"model": "mlp", "group": "r4", "pool": "max", **config}, "best_state": state}, path)
    return str(path)


def test_the_papers_wt_checkpoint_is_measured_as_its_invariant_mlp(tmp_path):
    torch.manual_seed(0)
    trained = MLP()
    path = _save(tmp_path / "r4-WT-seed0.pt", trained.state_dict(), method="WT")
    model = checkpoint_model(MLP(), path)
    oracle = InvariantMLP(R4)
    oracle.load_state_dict(trained.state_dict())
    x = torch.randn(5, 36, 36)
    assert isinstance(model, GroupPooled) and model.pooling == "first_layer-max"
    torch.testing.assert_close(model(x), oracle(x), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(model(R4.act(x, 1)), model(x), rtol=0, atol=1e-6)  # invariant


def test_a_factory_models_wt_checkpoint_gets_its_recorded_pooling_and_layout(tmp_path):
    torch.manual_seed(0)
    trained = GroupPooled(image_layout(LayoutCNN()), R4)
    torch.save({"config": {"model": "mine", "method": "WT", "group": "r4", "pool": "max"},
                "best_state": trained.state_dict(), "wt_pooling": trained.pooling}, tmp_path / "wt.pt")
    model = checkpoint_model(LayoutCNN(), str(tmp_path / "wt.pt"))
    x = torch.randn(3, 1, 12, 12)
    assert isinstance(model, GroupPooled) and model.pooling == "logits-mean"
    torch.testing.assert_close(model(x), trained(x), rtol=0, atol=0)


def test_a_da_checkpoint_is_loaded_as_it_is(tmp_path):
    trained = MLP()
    model = MLP()
    assert checkpoint_model(model, _save(tmp_path / "da.pt", trained.state_dict(), method="DA")) is model
    x = torch.randn(2, 36, 36)
    torch.testing.assert_close(model(x), trained(x), rtol=0, atol=0)


def test_a_model_that_is_already_pooled_is_not_pooled_twice(tmp_path):
    model = InvariantMLP(R4)
    assert checkpoint_model(model, _save(tmp_path / "wt.pt", MLP().state_dict(), method="WT")) is model


def test_a_model_that_cannot_pool_as_recorded_is_one_line(tmp_path):
    state = {f"model.{k}": v for k, v in LayoutCNN().state_dict().items()}
    torch.save({"config": {"model": "mine", "method": "WT", "group": "r4", "pool": "max"},
                "best_state": state, "wt_pooling": "first_layer-max"}, tmp_path / "wt.pt")
    with pytest.raises(ModelSpecError, match=r"trained with first_layer-max pooling, but the model would be pooled "
                                             r"as logits-mean") as e:
        checkpoint_model(LayoutCNN(), str(tmp_path / "wt.pt"))
    assert "\n" not in str(e.value)


def test_a_checkpoint_over_an_unknown_group_is_one_line(tmp_path):
    path = _save(tmp_path / "wt.pt", MLP().state_dict(), method="WT", group="nosuchgroup")
    with pytest.raises(ModelSpecError, match="WT run's checkpoint over a group not known here"):
        checkpoint_model(MLP(), path)


def test_audit_of_a_trained_wt_checkpoint_measures_it_invariant(table1_smoke, tmp_path, run_cli):
    ckpt = next((table1_smoke / "smoke" / "checkpoints").glob("r4-WT*seed0.pt"))
    code, out, err = run_cli("audit", "--model", "nets.models:MLP", "--weights", str(ckpt), "--group", "r4",
                             "--channels", "0", "--n", "40", "--si-samples", "4", "--sigma-samples", "4",
                             "--n-resamples", "100", "--threads", "1", "--out", str(tmp_path / "a"))
    assert code == 0, err
    assert "a WT run's checkpoint, measured pooled over r4 (first_layer-max)" in out
    audit = json.loads((tmp_path / "a" / "audit.json").read_text())
    assert audit["settings"]["source"]["wt_pooling"] == {"group": "r4", "pooling": "first_layer-max"}
    assert audit["measures"]["LI"]["value"] < 1e-9


def test_audit_without_weights_says_the_weights_are_the_factorys(tmp_path, run_cli):
    code, out, err = run_cli("audit", "--model", "nets.models:MLP", "--group", "r4", "--channels", "0", "--n", "8",
                             "--si-samples", "2", "--sigma-samples", "2", "--n-resamples", "100", "--threads", "1",
                             "--out", str(tmp_path / "a"))
    assert code == 0, err
    assert "--model has no weights file: the factory's own weights" in out


def _small_cnn(input_shape=None):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(2 * 4 * 4, 3))
    if input_shape is not None:
        model.input_shape = input_shape
    return model


def test_a_wt_models_state_dict_saved_from_python_is_refused_naming_both_ways(tmp_path):
    pooled = GroupPooled(_small_cnn(), get_group("r4"), "mean")
    torch.save(pooled.state_dict(), tmp_path / "wt.pt")
    with pytest.raises(ModelSpecError, match=r"its names are the model's behind 'model.'.*nets.checkpoint_model\(model, "
                                             r"FILE\).*run.model.model.state_dict\(\) \(not invariant by itself\)"):
        checkpoint_model(_small_cnn(), str(tmp_path / "wt.pt"))


def test_a_shape_mismatch_under_the_models_own_names_is_named_without_the_wrappers_hint(tmp_path):
    state = _small_cnn().state_dict()
    state["2.weight"] = torch.zeros(3, 5)
    torch.save(state, tmp_path / "other.pt")
    with pytest.raises(ModelSpecError, match=r"'2.weight' is \(3, 5\) in the file but \(3, 32\) in the model$"):
        checkpoint_model(_small_cnn(), str(tmp_path / "other.pt"))


def test_the_state_dict_of_an_image_layout_model_loads_into_the_bare_model(tmp_path):
    laid = image_layout(_small_cnn((1, 6, 6)))
    with torch.no_grad():
        laid.inner[2].bias.fill_(5.0)
    torch.save(laid.state_dict(), tmp_path / "laid.pt")
    assert all(k.startswith("inner.") for k in laid.state_dict())
    model = checkpoint_model(_small_cnn(), str(tmp_path / "laid.pt"))
    assert torch.equal(model[2].bias, torch.full((3,), 5.0))


@pytest.mark.parametrize("method", ["DA", "WT"])
def test_the_model_comes_back_in_eval_mode_ready_to_measure(tmp_path, method):
    trained = GroupPooled(image_layout(LayoutCNN()), R4) if method == "WT" else image_layout(LayoutCNN())
    torch.save({"config": {"model": "mine", "method": method, "group": "r4", "pool": "max"},
                "best_state": trained.state_dict(), **({"wt_pooling": "logits-mean"} if method == "WT" else {})},
               tmp_path / "w.pt")
    model = checkpoint_model(LayoutCNN().train(), str(tmp_path / "w.pt"))
    assert not any(m.training for m in model.modules())


def test_group_pooled_takes_a_group_name_and_refuses_an_unknown_one_at_construction():
    assert GroupPooled(LayoutCNN(), "r4").group == R4
    with pytest.raises(ValueError, match="r5"):
        GroupPooled(LayoutCNN(), "r5")


@pytest.mark.parametrize("saved_compiled", [True, False], ids=["compiled-into-plain", "plain-into-compiled"])
def test_weights_of_a_compiled_model_load_into_the_plain_one_and_back(tmp_path, saved_compiled):
    """torch.compile(model) names its weights _orig_mod.*; a WT run's checkpoint of a compiled factory too."""
    source, target = _small_cnn(), _small_cnn()
    with torch.no_grad():
        source[2].bias.fill_(5.0)
    saved = torch.compile(source) if saved_compiled else source
    torch.save(saved.state_dict(), tmp_path / "w.pt")
    model = checkpoint_model(target if saved_compiled else torch.compile(target), str(tmp_path / "w.pt"))
    assert torch.equal(target[2].bias, torch.full((3,), 5.0)) and model.training is False


def test_a_wt_checkpoint_of_a_compiled_factory_loads_into_the_plain_model_pooled(tmp_path):
    pooled = GroupPooled(torch.compile(_small_cnn()), get_group("r4"), "mean")
    with torch.no_grad():
        pooled.model._orig_mod[2].bias.fill_(5.0)
    torch.save({"config": {"model": "cnn", "method": "WT", "group": "r4", "pool": "mean"},
                "best_state": pooled.state_dict(), "wt_pooling": pooled.pooling}, tmp_path / "wt.pt")
    model = checkpoint_model(_small_cnn(), str(tmp_path / "wt.pt"))
    assert isinstance(model, GroupPooled) and torch.equal(model.model[2].bias, torch.full((3,), 5.0))


def test_a_data_parallel_models_weights_load_into_a_compiled_model(tmp_path):
    """The prefixes are taken off as if neither were compiled, then _orig_mod. put in."""
    source = _small_cnn()
    with torch.no_grad():
        source[2].bias.fill_(5.0)
    torch.save({f"module.{k}": v for k, v in source.state_dict().items()}, tmp_path / "dp.pt")
    target = _small_cnn()
    checkpoint_model(torch.compile(target), str(tmp_path / "dp.pt"))
    assert torch.equal(target[2].bias, torch.full((3,), 5.0))
