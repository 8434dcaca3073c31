"""``python -m nets cnn --model PKG.MODULE:FACTORY``: the paper's claims 1-5 checked on a model of
your own, trained and measured exactly as the SmallCNN is, end to end on the smoke profile (real
data, 2 epochs); its results folder, its refusals, and the evaluation-only commands on it."""

from __future__ import annotations

import json
import sys
from dataclasses import replace

import pytest
import torch

from nets.__main__ import main
from nets.experiments.cnn import cnn_model
from nets.experiments.profiles import Profile, get_profile
from nets.image_layout import ImageLayout, SplitImageLayout, image_layout
from nets.model_spec import spec_model_name
from nets.report import write_report
from nets.results_io import write_json
from nets.train import FirstLayerPooling

MODELS = '''
import torch
from torch import nn


class Tiny(nn.Module):
    """A convolution on (M, 1, 36, 36), declared by input_shape, and a linear head."""

    def __init__(self, classes=9):
        super().__init__()
        self.input_shape = (1, 36, 36)
        self.conv = nn.Conv2d(1, 4, 5, stride=3)
        self.head = nn.Linear(4, classes)

    def forward(self, x):
        return self.head(torch.relu(self.conv(x)).mean((-2, -1)))


class Split(Tiny):
    """Tiny split at its first layer: WT pools that layer, as the paper's."""

    def first_layer(self, x):
        return torch.relu(self.conv(x))

    def after_first_layer(self, h):
        return self.head(h.mean((-2, -1)))


def tiny():
    return Tiny()


def split():
    return Split()


def ten_classes():
    return Tiny(classes=10)


def in_float64():
    return Tiny().double()


def cropped():
    model = Tiny()
    model.input_shape = (1, 30, 30)  # fewer values than the experiment's 36 x 36 images
    return model


BUILT = []


def counted():
    BUILT.append(1)
    return Tiny()
'''

SPEC = "own_models_for_cnn:split"


@pytest.fixture(scope="module")
def own_module(tmp_path_factory):
    d = tmp_path_factory.mktemp("usermods")
    (d / "own_models_for_cnn.py").write_text(MODELS)
    sys.path.insert(0, str(d))
    sys.modules.pop("own_models_for_cnn", None)
    yield d
    sys.path.remove(str(d))
    sys.modules.pop("own_models_for_cnn", None)


def run_cnn_cli(root, spec: str, *extra: str) -> int:
    threads = torch.get_num_threads()
    try:
        return main(["cnn", "--profile", "smoke", "--model", spec, "--results", str(root), "--no-progress",
                     "--threads", "1", *extra])
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def own(own_module, tmp_path_factory):
    """The results folder of one ``cnn --model own_models_for_cnn:split`` smoke run, and its cnn.json."""
    root = tmp_path_factory.mktemp("own-cnn")
    assert run_cnn_cli(root, SPEC) == 0
    return root / "smoke", json.loads((root / "smoke" / "cnn.json").read_text())


# ---- the layout wrapper, without training ------------------------------------------------------


def test_a_model_without_input_shape_is_given_the_images_as_they_are():
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(36 * 36, 9))
    assert image_layout(model) is model


def test_the_wrapped_model_gives_the_same_logits_for_stored_and_declared_layouts(own_module):
    import own_models_for_cnn

    wrapped = image_layout(own_models_for_cnn.tiny())
    x = torch.randn(3, 36, 36)
    assert type(wrapped) is ImageLayout
    assert torch.equal(wrapped(x), wrapped(x.unsqueeze(1))) and torch.equal(wrapped(x), wrapped.inner(x.unsqueeze(1)))


def test_a_model_split_at_its_first_layer_stays_split_so_wt_pools_that_layer(own_module):
    import own_models_for_cnn

    wrapped = image_layout(own_models_for_cnn.split())
    x = torch.randn(3, 36, 36)
    assert type(wrapped) is SplitImageLayout and isinstance(wrapped, FirstLayerPooling)
    assert torch.equal(wrapped.after_first_layer(wrapped.first_layer(x)), wrapped(x))


def test_a_profile_without_a_model_records_none_so_earlier_results_compare_equal():
    assert "model" not in Profile().to_dict()
    assert Profile(model=SPEC).to_dict()["model"] == SPEC


def test_the_run_key_prefix_keeps_the_whole_spec():
    assert spec_model_name("pkg.models:make_cnn") == "pkg.models.make_cnn"


# ---- end to end ------------------------------------------------------------------------------------


def test_the_results_record_your_model_and_its_checkpoints_are_its_own(own):
    folder, cnn = own
    assert cnn["model"]["factory"] == SPEC and cnn["model"]["class"] == "own_models_for_cnn.Split"
    assert cnn["model"]["parameters"] == 4 * 25 + 4 + 4 * 9 + 9
    assert cnn["meta"]["profile"]["model"] == SPEC
    recorded = cnn["table1"]["groups"]["r4"]["methods"]["DA"]["config"]
    assert recorded["model"] == spec_model_name(SPEC) and "hidden" not in recorded and "n_hidden_layers" not in recorded
    names = {p.name for p in (folder / "checkpoints").glob("*.pt")}
    assert names and all(n.startswith(spec_model_name(SPEC) + "-") for n in names)


def test_wt_of_your_model_pools_its_first_layer_and_is_exactly_invariant(own):
    _, cnn = own
    assert cnn["model"]["wt_pooling"] == ["first_layer-max"]
    for g, entry in cnn["table1"]["groups"].items():
        wt = entry["methods"]["WT"]
        assert wt["LI"]["mean"] < 1e-10 and wt["DI"]["mean"] < 1e-10 and wt["SI"]["mean"] == pytest.approx(1.0), g


def test_the_report_says_whose_claims_it_checked(own):
    folder, _ = own
    text = write_report(folder).read_text()
    assert "## Claims 1-5 on your model" in text and f"`{SPEC}`" in text


def test_scale_and_si_settings_measure_your_model_from_its_checkpoints(own, tmp_path, checkpoint_mtimes):
    import shutil

    folder = tmp_path / "smoke"
    shutil.copytree(own[0], folder)
    before = checkpoint_mtimes(folder)
    for command in ("scale", "si-settings"):
        assert main([command, "--model", "cnn", "--profile", "smoke", "--results", str(tmp_path), "--no-progress"]) == 0
    assert (folder / "cnn_scale.json").exists() and (folder / "cnn_si_settings.json").exists()
    assert checkpoint_mtimes(folder) == before  # measured, never trained


def test_another_model_into_the_same_folder_is_refused_and_changes_nothing(own, tmp_path, run_cli, tree_digest):
    import shutil

    shutil.copytree(own[0], tmp_path / "smoke")
    before = tree_digest(tmp_path)
    rc, _, err = run_cli("cnn", "--profile", "smoke", "--model", "own_models_for_cnn:tiny", "--results", str(tmp_path),
                         "--no-progress")
    assert rc == 2 and '"own_models_for_cnn:split" there, "own_models_for_cnn:tiny" here' in err
    assert tree_digest(tmp_path) == before


def test_a_model_with_the_wrong_number_of_logits_is_one_line_before_anything_is_loaded(own_module, tmp_path, run_cli,
                                                                                      no_data):
    """cnn has no option for other classes: the fix is 9 logits, or own-data for data of your own."""
    rc, _, err = run_cli("cnn", "--profile", "smoke", "--model", "own_models_for_cnn:ten_classes", "--results",
                         str(tmp_path), "--no-progress")
    assert rc == 2 and len(err.strip().splitlines()) == 1
    assert ("--model own_models_for_cnn:ten_classes returns 10 logits, but the experiment's data has 9 classes "
            "(Transforming-MNIST's digits 0-8): return 9 logits; for data of your own, python -m nets own-data") in err
    assert "set n_classes" not in err and not (tmp_path / "smoke").exists()


def test_describing_and_checking_your_model_builds_it_once(own_module):
    import own_models_for_cnn

    own_models_for_cnn.BUILT.clear()
    own = cnn_model(replace(get_profile("smoke"), model="own_models_for_cnn:counted"), check_logits=True)
    assert len(own_models_for_cnn.BUILT) == 1 and own.record["class"] == "own_models_for_cnn.Tiny"


@pytest.mark.parametrize("spec, message", [("no_such_module_for_cnn:f", "cannot import module 'no_such_module_for_cnn'"),
                                           ("own_models_for_cnn", "--model must be PKG.MODULE:FACTORY")])
def test_a_bad_spec_is_refused_before_anything_is_loaded(own_module, tmp_path, run_cli, no_data, spec, message):
    rc, _, err = run_cli("cnn", "--profile", "smoke", "--model", spec, "--results", str(tmp_path))
    assert rc == 2 and message in err and not (tmp_path / "smoke").exists()


def test_a_da_checkpoint_of_your_model_audits_with_your_factory(own, tmp_path):
    from nets import audit_cli
    from nets.model_spec import WRAPPED

    folder, _ = own
    (ckpt,) = folder.glob("checkpoints/*-r4-DA-*seed0.pt")
    assert all(k.startswith(WRAPPED) for k in torch.load(ckpt, weights_only=True)["best_state"])
    assert audit_cli.main(["--model", SPEC, "--weights", str(ckpt), "--group", "r4", "--n", "8", "--n-steps", "2",
                           "--n-resamples", "100", "--out", str(tmp_path / "audit")]) == 0
    assert (tmp_path / "audit" / "audit.json").exists()


def test_a_float64_model_is_refused_before_anything_trains(own_module, tmp_path, run_cli):
    rc, _, err = run_cli("cnn", "--profile", "smoke", "--model", "own_models_for_cnn:in_float64", "--results",
                         str(tmp_path), "--no-progress")
    assert rc == 2 and "builds torch.float64 weights" in err and not (tmp_path / "smoke").exists()


def test_an_input_shape_that_does_not_fit_the_images_names_the_model_not_a_run(own_module, tmp_path, run_cli, no_data):
    rc, _, err = run_cli("cnn", "--profile", "smoke", "--model", "own_models_for_cnn:cropped", "--results",
                         str(tmp_path), "--no-progress")
    assert rc == 2 and len(err.strip().splitlines()) == 1 and not (tmp_path / "smoke").exists()
    assert "--model own_models_for_cnn:cropped: model.input_shape (1, 30, 30) does not fit data samples" in err
    assert "-WT-" not in err  # it named the first run it refused (a WT run) for a fault of the model


def test_scale_on_a_folder_whose_model_cannot_be_imported_says_to_make_it_importable(own, tmp_path, run_cli,
                                                                                     monkeypatch):
    import shutil

    shutil.copytree(own[0], tmp_path / "smoke")
    monkeypatch.setitem(sys.modules, "own_models_for_cnn", None)  # not importable now
    rc, _, err = run_cli("scale", "--model", "cnn", "--profile", "smoke", "--results", str(tmp_path), "--no-progress")
    assert rc == 2 and "make its module importable" in err and "run `python -m nets cnn" not in err


def test_scale_on_a_group_your_models_run_lacks_says_to_run_cnn_with_its_model(own, tmp_path, run_cli):
    import shutil

    shutil.copytree(own[0], tmp_path / "smoke")
    cnn = json.loads((tmp_path / "smoke" / "cnn.json").read_text())
    for section in ("table1", "drift", "spectral"):
        cnn[section]["groups"].pop("t3")
    write_json(tmp_path / "smoke" / "cnn.json", cnn)  # as a run that computed R4 alone would have written it
    rc, _, err = run_cli("scale", "--model", "cnn", "--profile", "smoke", "--results", str(tmp_path), "--no-progress")
    assert rc == 1 and f"run `python -m nets cnn --profile smoke --model {SPEC}` first" in err and "--groups t3" in err


def test_the_report_says_when_wt_averages_the_logits_and_is_not_the_papers_weight_tying(own):
    from nets.cnn_report import cnn_section

    folder, cnn = own
    cnn["model"]["wt_pooling"] = ["logits-mean"]
    (folder.parent / "logits").mkdir(exist_ok=True)
    write_json(folder.parent / "logits" / "cnn.json", cnn)  # as a run with that pooling would have written it
    text = cnn_section(folder.parent / "logits", {})
    assert "not the paper's first-layer weight tying" in text and "Same thresholds as above" not in text


def test_a_wt_checkpoint_given_to_audit_is_measured_pooled_as_it_was_trained(own, tmp_path, capsys):
    from nets import audit_cli

    (ckpt,) = own[0].glob("checkpoints/*-r4-WT-*seed0.pt")
    assert audit_cli.main(["--model", SPEC, "--weights", str(ckpt), "--group", "r4", "--n", "8",
                           "--out", str(tmp_path / "audit")]) == 0
    assert "a WT run's checkpoint, measured pooled over r4 (first_layer-max)" in capsys.readouterr().out
    record = json.loads((tmp_path / "audit" / "audit.json").read_text())
    assert record["measures"]["LI"]["value"] < 1e-9  # the bare model its weights fit is not invariant
