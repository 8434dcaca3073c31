"""The trainer on a researcher's own model: every input it cannot train on is refused in one line,
naming the run, before any run trains; and what it trains leaves alone what it should (the
caller's RNG, frozen parameters). Synthetic 12 x 12 images, 1 epoch: no data to fetch."""

from __future__ import annotations

import contextlib
import inspect
import math
import warnings

import pytest
import torch
from torch import nn

from nets.data import Split, Splits
from nets.train import TrainConfig, UnplannedTraining, can_stack, init_model, train_runs, trained_before
from nets.train import ChannelsLast

BASE = dict(model="net", epochs=1, batch_size=16, n_classes=4)


def splits(n: int = 32, size: int = 12, channels: tuple[int, ...] = (), seed: int = 0) -> Splits:
    g = torch.Generator().manual_seed(seed)
    part = lambda k: Split(torch.randn(k, *channels, size, size, generator=g),  # noqa: E731
                           torch.randint(0, 4, (k,), generator=g))
    return Splits("synthetic", part(n), part(n // 2), part(4), 0.0, 1.0, seed)


class Net(nn.Module):
    """A small CNN on ``(M, 1, H, W)``; ``classes`` logits."""

    def __init__(self, classes: int = 4, dropout: float = 0.0) -> None:
        super().__init__()
        self.input_shape = (1, 12, 12)
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(4, classes))

    def forward(self, x):
        return self.head(torch.relu(self.conv(x)).mean((-2, -1)))


class SplitWrong(Net):
    """Claims first-layer pooling, but ``after_first_layer`` skips the non-linearity's output."""

    def first_layer(self, x):
        return torch.relu(self.conv(x))

    def after_first_layer(self, h):
        return self.head(h.mean((-2, -1)) * 2.0)


class ReadsItem(Net):
    """Reads a value from its input: runs alone, not under ``vmap`` with a batched input."""

    def forward(self, x):
        return super().forward(x / float(x.abs().max().item()))


class Asserts(Net):
    def forward(self, x):
        assert x.shape[1] == 3, f"expected 3 channels, got {x.shape[1]}"
        return super().forward(x)


def refused(match: str, configs, data=None, **kw) -> str:
    with pytest.raises(ValueError, match=match) as e:
        train_runs(configs, [0], data or splits(), **{"device": "cpu", "progress": False, **kw})
    assert "\n" not in str(e.value)
    return str(e.value)


def test_a_model_fn_mapping_without_the_configs_model_names_what_it_has():
    refused(r"net-r4-DA-e1-bs16-c4: model_fn has no factory for model 'net' \(it has 'cnn'\); add 'net': f",
            [TrainConfig(method="DA", **BASE)], model_fn={"cnn": lambda c: Net()})


@pytest.mark.parametrize("method", ["DA", "WT", "IR"])
def test_logits_with_another_number_of_classes_than_the_config_are_refused(method):
    refused(r"net-r4-.*logits \(M, n_classes\) = \(2, 4\); got \(2, 10\): the run has 4 classes \(TrainConfig "
            r"n_classes\); return 4 logits, or set n_classes=10 where the data has 10 classes$",
            [TrainConfig(method=method, **BASE)], model_fn=lambda c: Net(classes=10))


class ExtraAxis(Net):
    def forward(self, x):
        return super().forward(x).unsqueeze(1)


class Pair(Net):
    def forward(self, x):
        out = super().forward(x)
        return out, out


@pytest.mark.parametrize("net, got", [(ExtraAxis, r"\(2, 1, 4\)"),
                                      (Pair, r"tuple of \(2, 4\), \(2, 4\): give a module that returns the logits alone")])
def test_a_wt_run_names_the_models_own_output_not_what_the_pooling_made_of_it(net, got):
    refused(rf"net-r4-WT.*logits \(M, n_classes\) = \(2, 4\); got {got}$", [TrainConfig(method="WT", **BASE)],
            model_fn=lambda c: net())


@pytest.mark.parametrize("declared", ["abc", (0, 12, 12), 7])
def test_an_input_shape_that_is_not_a_tuple_of_sizes_is_refused_in_one_line(declared):
    class Declares(Net):
        def __init__(self):
            super().__init__()
            self.input_shape = declared
    refused(r"model.input_shape must be a tuple of positive sizes such as \(1, 36, 36\), got ",
            [TrainConfig(method="DA", **BASE)], model_fn=lambda c: Declares())


def test_a_model_that_raises_on_the_training_inputs_is_named_with_the_layout_and_what_it_raised():
    message = refused(r"net-r4-DA.*refused training inputs \(M, 1, 12, 12\) \(AssertionError: expected 3 channels",
                      [TrainConfig(method="DA", **BASE)], model_fn=lambda c: Asserts())
    assert "input_shape" in message


def test_a_wt_run_whose_model_refuses_the_layout_blames_the_layout_not_the_pooling():
    message = refused(r"net-r4-WT.*refused training inputs \(M, 1, 12, 12\) \(AssertionError: expected 3 channels",
                      [TrainConfig(method="WT", **BASE)], model_fn=lambda c: Asserts())
    assert "pooling" not in message


class Detached(Net):
    def forward(self, x):
        return super().forward(x).detach()


@pytest.mark.parametrize("method", ["DA", "WT", "IR"])
def test_a_model_whose_logits_carry_no_gradient_is_refused(method):
    refused(r"net-r4-.*the model's logits carry no gradient to its parameters",
            [TrainConfig(method=method, nu=1.0 if method == "IR" else 0.0, **BASE)], model_fn=lambda c: Detached())


def test_a_model_without_trainable_parameters_is_refused():
    refused(r"net-r4-DA.*the model has no trainable parameters",
            [TrainConfig(method="DA", **BASE)], model_fn=lambda c: Net().requires_grad_(False))


def test_wt_first_layer_methods_that_do_not_compose_to_the_forward_are_refused():
    refused(r"net-r4-WT-e1-bs16-c4: WT pools at the first layer, but .*after_first_layer\(first_layer\(x\)\) is not",
            [TrainConfig(method="WT", **BASE)], model_fn=lambda c: SplitWrong())


@pytest.mark.parametrize("where, label, match", [("train", -1, "train labels must be class indices >= 0, got -1"),
                                                 ("val", -3, "val labels must be class indices >= 0, got -3")])
def test_negative_labels_are_refused(where, label, match):
    data = splits()
    getattr(data, where).y[0] = label
    refused(match, [TrainConfig(method="DA", **BASE)], data, model_fn=lambda c: Net())


def test_float_labels_are_refused_not_cast():
    data = splits()
    data = Splits(data.name, Split(data.train.x, data.train.y.float() + 0.5), data.val, data.test, 0.0, 1.0, 0)
    refused("train labels must be integer class indices, got dtype torch.float32", [TrainConfig(method="DA", **BASE)],
            data, model_fn=lambda c: Net())


def test_a_factory_for_configs_that_all_train_the_paper_mlp_is_refused():
    refused("model_fn is given but every config trains the paper MLP", [TrainConfig(method="DA", epochs=1)],
            model_fn=lambda c: Net())


def test_a_group_that_does_not_fit_a_later_config_is_refused_before_the_first_config_trains():
    trained = []
    refused("net-t5-DA-e1-bs16-c4: .*divisible",
            [TrainConfig(method="DA", **BASE), TrainConfig(method="DA", **{**BASE, "group": "t5"})],
            model_fn=lambda c: Net(), on_epoch_end=trained.append)
    assert trained == []


def test_a_model_whose_forward_reads_a_value_of_its_input_cannot_stack_and_trains_one_at_a_time():
    x = torch.randn(2, 1, 12, 12)
    assert can_stack(Net(), x) and not can_stack(ReadsItem(), x)
    (run,) = train_runs([TrainConfig(method="DA", **BASE)], [0], splits(), device="cpu", progress=False,
                        model_fn=lambda c: ReadsItem())
    assert run.engine == "one_at_a_time"


def test_the_stacking_probe_leaves_the_callers_rng_as_it_was_for_a_model_with_dropout():
    torch.manual_seed(123)
    train_runs([TrainConfig(method="DA", **BASE)], [0], splits(), device="cpu", progress=False,
               model_fn=lambda c: Net(dropout=0.5))
    after = torch.rand(3)
    torch.manual_seed(123)
    assert torch.equal(after, torch.rand(3))


@pytest.mark.parametrize("stack", [True, False])
def test_frozen_parameters_stay_as_the_factory_made_them_and_the_rest_trains(stack):
    def frozen_conv(c):
        net = Net()
        net.conv.requires_grad_(False)
        return net

    (run,) = train_runs([TrainConfig(method="DA", **BASE)], [0], splits(), device="cpu", progress=False,
                        stack=stack, model_fn=frozen_conv)
    start = init_model(TrainConfig(method="DA", **BASE), 0, frozen_conv)
    assert torch.equal(run.model.conv.weight, start.conv.weight) and torch.equal(run.model.conv.bias, start.conv.bias)
    assert not torch.equal(run.model.head[1].weight, start.head[1].weight)


def test_reloading_a_finished_run_with_a_factory_that_builds_another_model_names_the_checkpoint(tmp_path):
    cfg = TrainConfig(method="DA", **BASE)
    train_runs([cfg], [0], splits(), device="cpu", progress=False, run_dir=tmp_path, model_fn=lambda c: Net())

    class Wider(Net):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 8, 3, padding=1)
            self.head = nn.Sequential(nn.Dropout(0.0), nn.Linear(8, 4))

    message = refused("the finished run's weights do not fit the model its factory builds now", [cfg],
                      run_dir=tmp_path, model_fn=lambda c: Wider())
    assert "net-r4-DA-e1-bs16-c4-seed0.pt" in message and "size mismatch for conv.weight" in message


class BatchNormNet(Net):
    """Net with BatchNorm1d before the head: in training mode it refuses a batch of one sample."""

    def __init__(self) -> None:
        super().__init__()
        self.norm = nn.BatchNorm1d(4)

    def forward(self, x):
        return self.head(self.norm(torch.relu(self.conv(x)).mean((-2, -1))))


class BatchNormAfterPooling(BatchNormNet):
    """BatchNormNet that WT pools at its first layer: BatchNorm then sees one row per sample."""

    def first_layer(self, x):
        return torch.relu(self.conv(x))

    def after_first_layer(self, h):
        return self.head(self.norm(h.mean((-2, -1))))


@pytest.mark.parametrize("method, factory", [("DA", BatchNormNet), ("WT", BatchNormAfterPooling)])
def test_a_last_batch_of_one_sample_that_the_model_refuses_is_named_before_anything_trains(method, factory):
    trained = []
    message = refused(r"net-r4-.*the last batch of each epoch holds 1 sample alone \(n_train 33 = 2 x batch_size 16 \+ 1\)",
                      [TrainConfig(method=method, **BASE)], splits(n=33), model_fn=lambda c: factory(),
                      on_epoch_end=trained.append)
    assert "Expected more than 1 value per channel" in message and trained == []


@pytest.mark.parametrize("method", ["IR", "WT"])
def test_a_last_sample_fed_with_its_orbit_lets_a_batch_norm_model_train(method):
    """IR, and WT pooling the logits, feed the model the last sample's |G| orbit members together."""
    (run,) = train_runs([TrainConfig(method=method, nu=1.0 if method == "IR" else 0.0, **BASE)], [0], splits(n=33),
                        device="cpu", progress=False, model_fn=lambda c: BatchNormNet())
    assert len(run.history["loss"]) == 1 and math.isfinite(run.history["loss"][0])


def test_a_float64_model_trains_in_float64_close_to_the_same_run_in_float32():
    runs = {dtype: train_runs([TrainConfig(method="IR", nu=1.0, **BASE)], [0], splits(), device="cpu", progress=False,
                              model_fn=lambda c, d=dtype: Net().to(d))[0] for dtype in (torch.float32, torch.float64)}
    w32, w64 = runs[torch.float32].model.conv.weight, runs[torch.float64].model.conv.weight
    assert w64.dtype == torch.float64 and w32.dtype == torch.float32
    assert torch.allclose(w64.float(), w32, rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_weights_are_refused_naming_the_dtype_and_the_autocast_alternative(dtype):
    refused(rf"net-r4-DA.*trains float32 or float64 models, got {dtype} parameters.*precision='bf16'",
            [TrainConfig(method="DA", **BASE)], model_fn=lambda c: Net().to(dtype))


def test_a_model_on_the_meta_device_is_refused_not_blamed_on_the_layout():
    def factory(c):
        with torch.device("meta"):
            return Net()

    message = refused("net-r4-DA.*meta device", [TrainConfig(method="DA", **BASE)], model_fn=factory)
    assert "input_shape" not in message


def test_a_factory_that_returns_one_module_object_every_call_is_refused(tmp_path):
    shared = Net()
    message = refused("share parameters from one call to the next", [TrainConfig(method="DA", **BASE)],
                      run_dir=tmp_path / "runs", model_fn=lambda c: shared)
    assert "net-r4-DA" in message and not (tmp_path / "runs").exists()  # refused before any folder is made


class SharedBackbone(nn.Module):
    """A head of its own on ``backbone``, one module that every call shares (a pretrained part built once)."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.input_shape, self.backbone, self.head = (1, 12, 12), backbone, nn.Linear(4, 4)

    def forward(self, x):
        return self.head(torch.relu(self.backbone(x)).mean((-2, -1)))


def test_a_frozen_part_with_batchnorm_shared_between_calls_leaves_each_run_its_own_statistics():
    # a pretrained backbone built once, frozen, whose BatchNorm statistics still train: each run's model holds
    # its own, and the shared module keeps the ones it had
    backbone = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4)).requires_grad_(False)
    before = backbone[1].running_mean.clone()
    runs = train_runs([TrainConfig(method="DA", **BASE)], [0, 1], splits(), device="cpu", progress=False,
                      model_fn=lambda c: SharedBackbone(backbone))
    means = [r.model.backbone[1].running_mean for r in runs]
    assert not torch.equal(means[0], means[1]) and not torch.equal(means[0], before)
    assert torch.equal(backbone[1].running_mean, before)
    assert all(r.model.backbone is not backbone for r in runs)


def test_a_frozen_part_shared_between_calls_trains_and_stays_as_it_was():
    backbone = nn.Conv2d(1, 4, 3, padding=1).requires_grad_(False)
    before = backbone.weight.detach().clone()
    runs = train_runs([TrainConfig(method="DA", **BASE)], [0, 1], splits(), model_fn=lambda c: SharedBackbone(backbone),
                      device="cpu", progress=False)
    assert all(torch.equal(r.model.backbone.weight, before) for r in runs)
    assert not torch.equal(runs[0].model.head.weight, runs[1].model.head.weight)


def nan_net(c) -> Net:
    """A model whose logits are NaN from the start (a NaN bias)."""
    net = Net()
    with torch.no_grad():
        net.head[1].bias.fill_(float("nan"))
    return net


def test_logits_that_hold_nan_at_initialisation_are_refused_before_the_first_epoch():
    refused(r"the model's logits on training inputs \(M, 1, 12, 12\) hold NaN before any training: its initial "
            r"weights or its forward make them so$", [TrainConfig(method="DA", **BASE)], model_fn=nan_net)


def test_nan_logits_on_a_training_set_of_one_image_are_put_down_to_the_model_not_to_the_batch():
    data = splits()
    one = Splits(data.name, Split(data.train.x[:1], data.train.y[:1]), data.val, data.test, data.mean, data.std,
                 data.split_seed)
    message = refused(r"hold NaN before any training: its initial weights or its forward make them so$",
                      [TrainConfig(method="DA", **BASE)], one, model_fn=nan_net)
    assert "batch" not in message and "input_shape" not in message


class BatchStd(Net):
    """Standardizes its features over the batch: NaN for a batch of one sample."""

    def forward(self, x):
        h = torch.relu(self.conv(x)).mean((-2, -1))
        return self.head((h - h.mean(0)) / h.std(0))


@pytest.mark.filterwarnings("ignore:std\\(\\)")  # one sample: torch warns of no degrees of freedom, as it should
def test_nan_logits_on_a_last_batch_of_one_sample_name_the_batch_size():
    message = refused(r"hold NaN before any training; the last batch of each epoch holds 1 sample alone",
                      [TrainConfig(method="DA", **BASE)], splits(n=33), model_fn=lambda c: BatchStd())
    assert "initial weights" not in message


def test_a_masked_class_logit_of_minus_infinity_trains():
    class Masked(Net):
        def forward(self, x):  # class 3 never predicted
            return super().forward(x).masked_fill(torch.arange(4) == 3, float("-inf"))

    data = splits()
    three = [Split(p.x, p.y % 3) for p in (data.train, data.val, data.test)]  # no sample of class 3
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # class 3 has no sample: warned of, as it should be
        (run,) = train_runs([TrainConfig(method="DA", **BASE)], [0], Splits("s", *three, 0.0, 1.0, 0),
                            model_fn=lambda c: Masked(), device="cpu", progress=False)
    assert all(math.isfinite(v) for v in run.history["loss"])


def _seeded_net(c):
    torch.manual_seed(0)  # the factory seeds the RNG itself: every seed starts alike
    return Net()


def test_seeds_that_start_from_the_same_weights_are_warned_of():
    from nets.train import SameInitialWeights

    with pytest.warns(SameInitialWeights, match="seeds 0 and 1 build the same initial weights"):
        train_runs([TrainConfig(method="DA", **BASE)], [0, 1], splits(), device="cpu", progress=False,
                   model_fn=_seeded_net)


def test_a_seed_added_to_finished_ones_is_warned_of_too(tmp_path):
    """Seeds 0 and 1 load from their checkpoints and seed 2 alone trains: its start is theirs all the same."""
    from nets.train import SameInitialWeights, seeds_share_initial_weights

    kw = dict(device="cpu", progress=False, run_dir=tmp_path, model_fn=_seeded_net)
    with pytest.warns(SameInitialWeights):
        train_runs([TrainConfig(method="DA", **BASE)], [0, 1], splits(), **kw)
    with pytest.warns(SameInitialWeights, match="seeds 0 and 1 build the same initial weights"):
        train_runs([TrainConfig(method="DA", **BASE)], [0, 1, 2], splits(), **kw)
    assert seeds_share_initial_weights(TrainConfig(method="DA", **BASE), _seeded_net)
    assert not seeds_share_initial_weights(TrainConfig(method="DA", **BASE), lambda c: Net())


def test_one_seed_or_seeds_with_their_own_weights_are_not_warned_of(recwarn):
    from nets.train import SameInitialWeights

    train_runs([TrainConfig(method="DA", **BASE)], [0], splits(), device="cpu", progress=False, model_fn=_seeded_net)
    train_runs([TrainConfig(method="DA", **BASE)], [0, 1], splits(), device="cpu", progress=False,
               model_fn=lambda c: Net())
    assert not [w for w in recwarn if issubclass(w.category, SameInitialWeights)]


def test_a_refused_call_leaves_no_checkpoint_folder(tmp_path):
    refused(r"logits \(M, n_classes\)", [TrainConfig(method="DA", **BASE)], run_dir=tmp_path / "runs",
            model_fn=lambda c: Net(classes=10))
    assert not (tmp_path / "runs").exists()


def test_a_loaded_run_reports_the_wall_time_its_training_call_returned(tmp_path):
    kw = dict(device="cpu", progress=False, run_dir=tmp_path, model_fn=lambda c: Net())
    (trained,) = train_runs([TrainConfig(method="DA", **BASE)], [0], splits(), **kw)
    (loaded,) = train_runs([TrainConfig(method="DA", **BASE)], [0], splits(), **kw)
    assert loaded.wall_time_s == trained.wall_time_s


def test_tune_nu_measures_a_float64_model_on_float64_images():
    from nets.train import tune_nu

    _, by_nu = tune_nu(TrainConfig(method="IR", **BASE), [1.0], [0], splits(), device="cpu", progress=False,
                       model_fn=lambda c: Net().double(), n_si_samples=4, n_steps=2)
    assert by_nu[1.0][0].model.conv.weight.dtype == torch.float64


def test_a_three_channel_input_shape_on_one_channel_images_says_how_to_wrap_it():
    class ThreeChannels(Net):
        def __init__(self):
            super().__init__()
            self.input_shape = (3, 12, 12)

    refused(r"declare input_shape \(1, 12, 12\) and repeat the channel in its forward \(x.expand\(-1, 3, -1, -1\)\)",
            [TrainConfig(method="DA", **BASE)], model_fn=lambda c: ThreeChannels())


def test_labels_that_name_fewer_classes_than_n_classes_are_warned_of(recwarn):
    from nets.train import UnusedClasses

    nine = {**BASE, "n_classes": 9}  # the default: the paper's 9 digits, here on data of 4 classes
    with pytest.warns(UnusedClasses, match=r"classes 0\.\.3 only, but n_classes=9: 5 logit\(s\) are never a target "
                                           r"\(for data of 4 classes: TrainConfig\(n_classes=4\) and a model of 4 "
                                           r"logits\)"):
        train_runs([TrainConfig(method="DA", **nine)], [0], splits(), device="cpu", progress=False,
                   model_fn=lambda c: Net(classes=9))
    recwarn.clear()
    train_runs([TrainConfig(method="DA", **BASE)], [0], splits(), device="cpu", progress=False,
               model_fn=lambda c: Net())
    assert not [w for w in recwarn if issubclass(w.category, UnusedClasses)]


@pytest.mark.parametrize("where, bad", [("train", math.nan), ("val", math.inf)])
def test_images_with_nan_or_inf_are_refused_naming_the_split(where, bad):
    data = splits()
    getattr(data, where).x[3, 5, 5] = bad
    refused(f"{where} images hold NaN or inf values \\(1 of \\d+ images, the first at index 3\\)",
            [TrainConfig(method="DA", **BASE)], data, model_fn=lambda c: Net())


def test_integer_images_are_refused_not_trained_unnormalized():
    data = splits()
    data = Splits(data.name, Split((data.train.x.abs() * 50).to(torch.uint8), data.train.y), data.val, data.test,
                  0.0, 1.0, 0)
    refused(r"train images have dtype torch.uint8; train on floating-point images.*x.float\(\) / 255",
            [TrainConfig(method="DA", **BASE)], data, model_fn=lambda c: Net())


def test_a_finished_run_is_not_loaded_for_other_data_and_the_file_is_named(tmp_path):
    cfg = TrainConfig(method="DA", **BASE)
    kw = dict(device="cpu", progress=False, run_dir=tmp_path, model_fn=lambda c: Net())
    train_runs([cfg], [0], splits(seed=0), **kw)
    message = refused("this run was trained on other train / val data", [cfg], splits(seed=1), **kw)
    assert "net-r4-DA-e1-bs16-c4-seed0.pt" in message and "use another run_dir" in message
    (again,) = train_runs([cfg], [0], splits(seed=0), **kw)  # the same data loads it
    assert again.best_epoch == 0


EDITABLE_GROUP = """
from nets.groups import Group


class Flip(Group):
    name, order = "flip", 2

    def __init__(self):
        self.axis = -2  # upside down; the test sets -1 (left-right), as an edit of this line would

    def compose(self, a, b):
        return (a + b) % 2

    def inverse(self, a):
        return a

    def _act_reference(self, grid, g):
        return grid if g == 0 else grid.flip(self.axis)


G = Flip()
"""


def test_a_run_is_not_loaded_under_a_custom_group_whose_action_changed_since(tmp_path, user_models):
    from nets.groups import get_group

    user_models("editable_group_for_runs", EDITABLE_GROUP)
    cfg = TrainConfig(method="DA", group="editable_group_for_runs:G", **BASE)
    kw = dict(device="cpu", progress=False, run_dir=tmp_path, model_fn=lambda c: Net())
    train_runs([cfg], [0], splits(), **kw)
    get_group("editable_group_for_runs:G").axis = -1
    message = refused(r"this run was trained under another action of group 'editable_group_for_runs:G' \(group_sha256",
                      [cfg], **kw)
    assert "the group's code changed since" in message
    get_group("editable_group_for_runs:G").axis = -2
    (again,) = train_runs([cfg], [0], splits(), **kw)  # the action it trained under loads it
    assert again.best_epoch == 0


def test_the_same_data_stored_another_way_loads_the_run_a_unit_channel_axis_and_int32_labels(tmp_path):
    """The fingerprint is of the data as the model sees it: ``(N, 1, H, W)`` images and int32 labels
    are the ``(N, H, W)``, int64 data the run trained on; other values are not."""
    cfg = TrainConfig(method="DA", **BASE)
    kw = dict(device="cpu", progress=False, run_dir=tmp_path, model_fn=lambda c: Net())
    (first,) = train_runs([cfg], [0], splits(seed=0), **kw)
    data = splits(seed=0)
    other_form = lambda p: Split(p.x.unsqueeze(1), p.y.to(torch.int32))  # noqa: E731
    data = Splits(data.name, other_form(data.train), other_form(data.val), data.test, 0.0, 1.0, 0)
    (again,) = train_runs([cfg], [0], data, **kw)
    assert again.history == first.history and again.wall_time_s == first.wall_time_s  # loaded, not trained again
    data.train.x[0, 0, 0, 0] += 1.0
    refused("this run was trained on other train / val data", [cfg], data, **kw)


def test_a_run_that_recorded_the_data_as_stored_still_loads_on_that_data(tmp_path):
    """Checkpoints written before the fingerprint took the model's view recorded the data as given:
    (N, 1, H, W) images and int32 labels hashed so still load on those splits."""
    from nets.train.checkpoints import data_fingerprint

    cfg = TrainConfig(method="DA", **BASE)
    kw = dict(device="cpu", progress=False, run_dir=tmp_path, model_fn=lambda c: Net())
    data = splits(seed=0, channels=(1,))
    data = Splits(data.name, Split(data.train.x, data.train.y.to(torch.int32)), data.val, data.test, 0.0, 1.0, 0)
    (first,) = train_runs([cfg], [0], data, **kw)
    (path,) = tmp_path.glob("*.pt")
    ckpt = torch.load(path, weights_only=True)
    assert data_fingerprint(data, as_given=True) != data_fingerprint(data)
    ckpt["data_sha256"] = data_fingerprint(data, as_given=True)  # as the older code recorded it
    torch.save(ckpt, path)
    (again,) = train_runs([cfg], [0], data, **kw)
    assert again.history == first.history and again.wall_time_s == first.wall_time_s


def test_an_unfinished_run_does_not_resume_on_other_data(tmp_path):
    cfg = TrainConfig(method="DA", **{**BASE, "epochs": 2})
    kw = dict(device="cpu", progress=False, run_dir=tmp_path, model_fn=lambda c: Net(), checkpoint_every=1)

    def stop(epoch):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_runs([cfg], [0], splits(seed=0), on_epoch_end=stop, **kw)
    refused("this run was trained on other train / val data", [cfg], splits(seed=1), **kw)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_a_cuda_device_without_cuda_is_refused_in_one_line():
    refused("device cuda: CUDA is not available on this machine", [TrainConfig(method="DA", **BASE)],
            model_fn=lambda c: Net(), device="cuda")


def test_a_label_beyond_n_classes_names_the_split_that_holds_it():
    data = splits()
    data.val.y[2] = 7
    refused(r"^val labels go up to 7 but net-r4-DA-e1-bs16-c4 has n_classes=4", [TrainConfig(method="DA", **BASE)],
            data, model_fn=lambda c: Net())


def test_a_declared_input_shape_that_does_not_fit_the_data_names_the_run():
    class Wrong(Net):
        def __init__(self):
            super().__init__()
            self.input_shape = (1, 6, 24)

    refused(r"^net-r4-DA-e1-bs16-c4: model.input_shape \(1, 6, 24\) does not fit data samples of shape \(12, 12\)",
            [TrainConfig(method="DA", **BASE)], model_fn=lambda c: Wrong())


def test_a_channels_last_input_shape_is_told_the_channels_first_one_and_the_permuting_wrapper():
    class ChannelsLast(Net):
        def __init__(self):
            super().__init__()
            self.input_shape = (12, 12, 1)

    refused(r"model.input_shape \(12, 12, 1\) does not fit .*; \(12, 12, 1\) looks channels-last, \(H, W, C\): declare "
            r"input_shape \(1, 12, 12\) and take the images through a wrapper whose forward is "
            r"net\(x.permute\(0, 2, 3, 1\)\)$", [TrainConfig(method="DA", **BASE)], model_fn=lambda c: ChannelsLast())


def test_images_without_a_channel_axis_that_the_model_refuses_are_told_how_to_add_one():
    class NoShape(Net):
        def __init__(self):
            super().__init__()
            del self.input_shape  # so the (M, 12, 12) images reach the convolution as they are

    refused(r"refused training inputs \(M, 12, 12\) .*the images are \(N, 12, 12\), without a channel axis: "
            r"if the model takes \(N, C, H, W\), give it input_shape = \(1, 12, 12\), or store the images as \(N, 1, 12, 12\)",
            [TrainConfig(method="DA", **BASE)], model_fn=lambda c: NoShape())


def test_a_model_of_three_channels_on_images_of_one_is_told_to_repeat_the_channel_too():
    class RGB(Net):
        def __init__(self):
            super().__init__()
            del self.input_shape
            self.conv = nn.Conv2d(3, 4, 3, padding=1)

    message = refused(r"without a channel axis", [TrainConfig(method="DA", **BASE)], model_fn=lambda c: RGB())
    assert message.endswith("its first convolution takes 3 channels, so also repeat the one channel in its forward "
                            "(x.expand(-1, 3, -1, -1))")


def channels_last_splits() -> Splits:
    """RGB images stored (N, H, W, 3), as PIL and numpy keep them."""
    g = torch.Generator().manual_seed(0)
    part = lambda k: Split(torch.randn(k, 12, 12, 3, generator=g), torch.randint(0, 4, (k,), generator=g))  # noqa: E731
    return Splits("synthetic", part(32), part(16), part(4), 0.0, 1.0, 0)


class RGBNet(Net):
    def __init__(self):
        super().__init__()
        del self.input_shape
        self.conv = nn.Conv2d(3, 4, 3, padding=1)


@pytest.mark.parametrize("group", ["r4", "f2"])
def test_channels_last_training_images_are_told_to_permute_whether_the_group_or_the_model_refuses_them(group):
    # r4: not square (12 x 3); f2 fits any shape (a ChannelsLast warning first), and the model's convolution
    # refuses 12 channels
    with pytest.warns(ChannelsLast) if group == "f2" else contextlib.nullcontext():
        message = refused(r"the training images look channels-last, \(N, H, W, C\) = \(N, 12, 12, 3\): store them "
                          r"as x.permute\(0, 3, 1, 2\), \(N, C, H, W\)$", [TrainConfig(method="DA", group=group, **BASE)],
                          channels_last_splits(), model_fn=lambda c: RGBNet())
    assert "input_shape" not in message  # the advice that cannot work for channels-last images


def test_channels_last_training_images_that_nothing_refuses_get_a_warning():
    # a model that flattens its input trains on them, the mirror flipping the channel axis
    flat = lambda c: nn.Sequential(nn.Flatten(), nn.Linear(12 * 12 * 3, 4))  # noqa: E731
    with pytest.warns(ChannelsLast, match=r"the training images \(32, 12, 12, 3\) look channels-last, \(N, H, W, C\): "
                                          r"the group acts on their last two axes, width and channels here"):
        train_runs([TrainConfig(method="DA", group="f2", **BASE)], [0], channels_last_splits(), model_fn=flat,
                   device="cpu", progress=False, run_dir=None)


def test_images_with_the_channels_first_get_no_channels_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error", ChannelsLast)
        train_runs([TrainConfig(method="DA", group="f2", **BASE)], [0], splits(), model_fn=lambda c: Net(),
                   device="cpu", progress=False, run_dir=None)


def test_the_trainers_warnings_point_at_the_line_that_called_train_runs():
    """``warnings`` shows the file and line a warning is attributed to: the caller's, not the checks' module."""
    from nets.train import SameInitialWeights, UnusedClasses

    flat = lambda c: nn.Sequential(nn.Flatten(), nn.Linear(12 * 12 * 3, 4))  # noqa: E731
    kw = dict(device="cpu", progress=False)
    with pytest.warns(ChannelsLast) as channels:
        line = inspect.currentframe().f_lineno + 1
        train_runs([TrainConfig(method="DA", group="f2", **BASE)], [0], channels_last_splits(), model_fn=flat, **kw)
    with pytest.warns(SameInitialWeights) as same:
        train_runs([TrainConfig(method="DA", **BASE)], [0, 1], splits(), model_fn=_seeded_net, **kw)
    with pytest.warns(UnusedClasses) as unused:
        train_runs([TrainConfig(method="DA", **{**BASE, "n_classes": 9})], [0], splits(),
                   model_fn=lambda c: Net(classes=9), **kw)
    for record, category in [(channels, ChannelsLast), (same, SameInitialWeights), (unused, UnusedClasses)]:
        assert {w.filename for w in record if issubclass(w.category, category)} == {__file__}, category.__name__
    assert [w.lineno for w in channels if issubclass(w.category, ChannelsLast)] == [line]


def test_validation_images_of_another_layout_are_refused_before_anything_trains():
    # as many values per sample, so the trainer reshaped them to the training layout and picked each run's
    # best epoch on scrambled images, silently
    data = channels_last_splits()
    first = Splits("synthetic", Split(data.train.x.permute(0, 3, 1, 2).contiguous(), data.train.y), data.val,
                   data.test, 0.0, 1.0, 0)
    refused(r"^the val images are \(N, 12, 12, 3\), the train images \(N, 3, 12, 12\): give both splits one shape "
            r"per sample \(validation picks each run's best epoch\); the val images look channels-last, .*"
            r"store them as x.permute\(0, 3, 1, 2\), \(N, C, H, W\)$",
            [TrainConfig(method="DA", group="r4", **BASE)], first, model_fn=lambda c: RGBNet())


def test_validation_images_of_another_size_are_refused_before_anything_trains():
    big, small = splits(size=12, channels=(1,)), splits(size=10, channels=(1,))
    refused(r"^the val images are \(N, 1, 10, 10\), the train images \(N, 1, 12, 12\): give both splits one shape "
            r"per sample \(validation picks each run's best epoch\)$",
            [TrainConfig(method="DA", **BASE)], Splits("s", big.train, small.val, big.test, 0.0, 1.0, 0),
            model_fn=lambda c: Net())


def test_validation_images_without_the_training_images_axis_of_one_train_as_they_are():
    data = splits(channels=(1,))
    squeezed = Splits("s", data.train, Split(data.val.x[:, 0], data.val.y), data.test, 0.0, 1.0, 0)
    runs = [train_runs([TrainConfig(method="DA", **BASE)], [0], d, model_fn=lambda c: Net(), device="cpu",
                       progress=False)[0] for d in (data, squeezed)]
    assert runs[0].history == runs[1].history


def test_training_images_that_look_channels_last_get_the_hint_where_validation_images_do_not():
    data = channels_last_splits()
    val = Split(data.val.x.permute(0, 3, 1, 2).contiguous(), data.val.y)
    refused(r"the train images \(N, 12, 12, 3\): .*; the training images look channels-last",
            [TrainConfig(method="DA", group="r4", **BASE)], Splits("s", data.train, val, data.test, 0.0, 1.0, 0),
            model_fn=lambda c: RGBNet())


@pytest.mark.parametrize("empty", ["train", "val"])
def test_an_empty_split_is_named(empty):
    data = splits()
    parts = {"train": data.train, "val": data.val}
    parts[empty] = Split(parts[empty].x[:0], parts[empty].y[:0])
    refused(rf"non-empty train and val splits; {empty} has no samples$", [TrainConfig(method="DA", **BASE)],
            Splits("s", parts["train"], parts["val"], data.test, 0.0, 1.0, 0), model_fn=lambda c: Net())


def test_within_trained_before_a_run_to_train_is_named_and_a_finished_one_is_not(tmp_path):
    configs, data = [TrainConfig(method="DA", **BASE)], splits()
    with trained_before("on Ray"), pytest.warns(UnplannedTraining, match=r"^1 run\(s\) were not trained on Ray "
                                                 r"\(net-r4-DA-e1-bs16-c4 seed 0\): training them here instead"):
        train_runs(configs, [0], data, device="cpu", progress=False, run_dir=tmp_path, model_fn=lambda c: Net())
    with trained_before("on Ray"), warnings.catch_warnings():
        warnings.simplefilter("error", UnplannedTraining)  # finished: loaded, nothing to say
        train_runs(configs, [0], data, device="cpu", progress=False, run_dir=tmp_path, model_fn=lambda c: Net())


def test_a_model_without_a_convolution_refusing_images_without_a_channel_axis_gets_no_channel_hint():
    class Picky(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(144, 4)

        def forward(self, x):
            if x.shape[0] > 1:
                raise RuntimeError("this model was written for one image at a time")
            return self.lin(x.flatten(1))

    message = refused(r"the model refused training inputs \(M, 12, 12\) \(RuntimeError: this model was written for "
                      r"one image at a time\); give it a matching input_shape attribute or reshape the data$",
                      [TrainConfig(method="DA", **BASE)], model_fn=lambda c: Picky())
    assert "channel" not in message


class Softmaxed(Net):
    def forward(self, x):
        return super().forward(x).softmax(-1)


@pytest.mark.parametrize("method", ["DA", "WT", "IR"])
def test_a_model_that_returns_probabilities_is_refused_before_cross_entropy_takes_them_for_logits(method):
    refused(r"net-r4-.*the model returns probabilities \(each row >= 0 and summing to 1\).*drop its final softmax",
            [TrainConfig(method=method, nu=1.0 if method == "IR" else 0.0, **BASE)], model_fn=lambda c: Softmaxed())


class Cast(Net):
    def __init__(self, dtype: torch.dtype) -> None:
        super().__init__()
        self.dtype = dtype

    def forward(self, x):
        z = super().forward(x)
        return z > 0 if self.dtype == torch.bool else z.to(self.dtype)


@pytest.mark.parametrize("dtype", [torch.int64, torch.bool, torch.complex64])
@pytest.mark.parametrize("method", ["DA", "WT", "IR"])
def test_logits_that_are_not_real_floating_point_are_refused_naming_their_dtype(method, dtype):
    refused(rf"net-r4-.*: the model returned {str(dtype)[6:]} logits, where training needs real floating-point "
            r"logits: drop the cast, comparison or complex layer at the end of its forward$",
            [TrainConfig(method=method, nu=1.0 if method == "IR" else 0.0, **BASE)], model_fn=lambda c: Cast(dtype))


@pytest.mark.parametrize("method", ["DA", "WT"])
def test_a_factory_that_returns_data_parallel_is_refused_naming_the_bare_module(method):
    """WT too, where the trainer wraps the model in its group pooling."""
    refused(rf"net-r4-{method}-e1-bs16-c4: the factory returns a DataParallel; return the bare module "
            r"\(its \.module\)",
            [TrainConfig(method=method, **BASE)], model_fn=lambda c: nn.DataParallel(Net()))


@pytest.mark.parametrize("build", [torch.jit.script, lambda m: torch.jit.trace(m, torch.zeros(2, 1, 12, 12))],
                         ids=["script", "trace"])
@pytest.mark.filterwarnings("ignore:.*torch.jit.* is deprecated:DeprecationWarning")
def test_a_factory_that_returns_a_torchscript_module_is_refused_naming_the_module_before_it(build):
    """torch.func's functional_call refuses a TorchScript module only mid-training (31 lines)."""
    refused(r"net-r4-DA-e1-bs16-c4: the factory returns a TorchScript module; return the nn.Module before "
            r"torch\.jit\.script / trace",
            [TrainConfig(method="DA", **BASE)], model_fn=lambda c: build(Net()))


@pytest.mark.filterwarnings("ignore::UserWarning")  # torch.export's own
def test_a_factory_that_returns_a_torch_export_module_is_refused_before_anything_trains():
    """Its .module() refuses train() (NotImplementedError, 20 lines, after every check had passed)."""
    def exported(c):
        batch = torch.export.Dim("batch")
        return torch.export.export(Net(), (torch.zeros(2, 1, 12, 12),), dynamic_shapes={"x": {0: batch}}).module()

    refused(r"net-r4-DA-e1-bs16-c4: the factory returns a torch\.export program's module, which cannot switch to "
            r"training mode; return the nn\.Module before torch\.export", [TrainConfig(method="DA", **BASE)],
            model_fn=exported)
