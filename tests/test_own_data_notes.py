"""What ``python -m nets own-data`` says beside its verdicts: each run's logit scale, which two of the
paper's thresholds depend on (IR's LI is then read against DA's), and the trainer's warnings once
each, in the results, the report and on stderr, the same on a rerun that trains nothing."""

from __future__ import annotations

import copy
import json
import textwrap
import warnings
from pathlib import Path

import pytest
import torch

from nets import own_data_cli
from nets.own_data_report import own_data_report
from nets.sensitivity import centered_logit_norm
from split_data import brightness_splits

MODELS = textwrap.dedent('''
    import torch
    from torch import nn

    def small(classes=3):
        return nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 144, classes))

    def wide():
        return small(5)

    def seeded():
        torch.manual_seed(0)
        return small()

    def flat_rgb():
        return nn.Sequential(nn.Flatten(), nn.Linear(12 * 12 * 3, 3))
''')


@pytest.fixture
def data(tmp_path, user_models):
    user_models("user_models_for_own_data_notes", MODELS)
    torch.save(brightness_splits(), tmp_path / "mine.pt")
    return tmp_path / "mine.pt"


def run(data, out, factory, *seeds):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rc = own_data_cli.main(["--model", f"user_models_for_own_data_notes:{factory}", "--data", str(data),
                                "--out", str(out), "--groups", "f2", "--epochs", "2", "--seeds", *seeds,
                                "--nu-grid", "10", "--si-samples", "4", "--sigma-samples", "8", "--threads", "1",
                                "--no-progress"])
    assert rc == 0
    return json.loads((out / "own_data.json").read_text()), (out / "REPORT.md").read_text(), \
        [str(w.message) for w in caught]


def test_each_runs_logit_scale_is_the_centred_logits_norm_on_the_sigma_images(tmp_path, data):
    record, _, _ = run(data, tmp_path / "out", "small", "0", "1")
    x = torch.load(data, weights_only=True)["x_test"][:8]
    da = record["table1"]["groups"]["f2"]["methods"]["DA"]
    for r in da["runs"]:
        ckpt = torch.load(tmp_path / "out" / "checkpoints" /
                          f"user_models_for_own_data_notes.small-f2-DA-e2-c3-seed{r['seed']}.pt", weights_only=True)
        model = torch.nn.Sequential(torch.nn.Conv2d(1, 3, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(),
                                    torch.nn.Linear(3 * 144, 3))
        model.load_state_dict(ckpt["best_state"])
        with torch.no_grad():
            assert r["logit_scale"] == pytest.approx(float(centered_logit_norm(model.eval()(x)).mean()), rel=1e-6)
    assert da["logit_scale"]["mean"] == pytest.approx(sum(r["logit_scale"] for r in da["runs"]) / 2)


def test_the_report_sets_irs_li_against_das_beside_the_logit_scales(tmp_path, data):
    record, report, _ = run(data, tmp_path / "out", "small", "0", "1")
    methods = record["table1"]["groups"]["f2"]["methods"]
    ratio = methods["IR"]["LI"]["mean"] / methods["DA"]["LI"]["mean"]
    assert "| group | method | nu | Acc. (%) | LI | DI | SI | logit scale |" in report
    assert f"DA {methods['DA']['logit_scale']['mean']:.3g}, IR " in report
    assert f"IR's LI is {ratio:.3g}x DA's" in report


def test_logits_that_no_label_names_are_said_once_in_the_header_the_results_and_stderr(tmp_path, data):
    record, report, said = run(data, tmp_path / "out", "wide", "0", "1")
    assert record["source"]["n_classes"] == 5 and record["source"]["n_labels"] == 3
    assert "images (1, 12, 12), 3 classes, the model's 5 logits;" in report
    (text,) = [w for w in said if "never a target" in w]  # once, not once per training call
    assert text.startswith("the train and val labels name 3 classes (0 to 2) but --model user_models_for_own_data_notes:wide "
                           "gives 5 logits: 2 are never a target")
    assert record["warnings"] == [text] and f"> **Warning**: {text}" in report


def test_a_factory_that_seeds_itself_is_said_once_and_again_when_a_seed_is_added(tmp_path, data):
    record, report, said = run(data, tmp_path / "out", "seeded", "0", "1")
    (text,) = [w for w in said if "same initial weights" in w]
    assert record["warnings"] == [text] and f"> **Warning**: {text}" in report
    again, _, said = run(data, tmp_path / "out", "seeded", "0", "1", "2")  # seeds 0 and 1 load, 2 trains
    assert again["warnings"] == [text] and [w for w in said if "same initial weights" in w] == [text]


def test_a_model_with_its_own_start_per_seed_and_logits_for_every_label_has_no_warning(tmp_path, data):
    record, report, said = run(data, tmp_path / "out", "small", "0", "1")
    assert record["warnings"] == [] and "**Warning**" not in report
    assert not [w for w in said if "initial weights" in w or "never a target" in w]


def test_the_command_line_prints_each_warning_in_one_line_without_source_text(tmp_path, data, capsys):
    from nets.__main__ import main

    assert main(["own-data", "--model", "user_models_for_own_data_notes:wide", "--data", str(data), "--out",
                 str(tmp_path / "out"), "--groups", "f2", "--epochs", "1", "--seeds", "0", "--nu-grid", "10",
                 "--si-samples", "4", "--sigma-samples", "4", "--threads", "1", "--no-progress"]) == 0
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert err == ["python -m nets own-data: warning: the train and val labels name 3 classes (0 to 2) but --model "
                   "user_models_for_own_data_notes:wide gives 5 logits: 2 are never a target, yet LI, DI and "
                   "sigma_max sum over all 5 (a model of 3 logits measures the classes alone)"]


COMMITTED = json.loads((Path(__file__).resolve().parents[1] / "results" / "own-data-mnist10" / "own_data.json").read_text())


def _at_accuracy(record: dict, acc: float) -> dict:
    record = copy.deepcopy(record)
    for entry in record["table1"]["groups"].values():
        for m in entry["methods"].values():
            m["accuracy"]["mean"] = acc
    return record


def test_models_that_learned_get_no_untrained_warning():
    assert "no model learned beyond chance" not in own_data_report(COMMITTED)


def test_models_near_chance_are_said_to_be_untrained_with_the_steps_an_epoch():
    n_train, batch = COMMITTED["source"]["sizes"]["n_train"], COMMITTED["source"]["settings"].get("batch_size", 512)
    report = own_data_report(_at_accuracy(COMMITTED, 0.12))  # 10 classes: chance 10%
    assert ("no model learned beyond chance in R4 (best mean orbit accuracy 12.0%; chance 10.0% with 10 classes)"
            in report)
    assert f"{n_train} training images in batches of {batch} are {-(-n_train // batch)} steps an epoch" in report


def test_a_null_mean_accuracy_is_no_model_that_learned_whatever_its_place_among_the_methods():
    record = _at_accuracy(COMMITTED, 0.12)
    (entry,) = record["table1"]["groups"].values()
    first, *rest = entry["methods"].values()
    for missing in (None, float("nan")):  # a results file writes NaN as null; a dict built in Python holds NaN
        first["accuracy"]["mean"] = missing
        assert "(best mean orbit accuracy 12.0%; chance 10.0%" in own_data_report(record)
    for m in rest:
        m["accuracy"]["mean"] = None
    assert "(no finite mean orbit accuracy; chance 10.0%" in own_data_report(record)


@pytest.mark.parametrize("classes,untrained,trained", [(10, 0.19, 0.191), (2, 0.55, 0.551)])
def test_a_tenth_of_the_way_from_chance_to_all_right_is_still_untrained_and_above_it_is_not(classes, untrained,
                                                                                               trained):
    record = copy.deepcopy(COMMITTED)
    record["source"]["n_labels"] = classes
    assert "no model learned beyond chance" in own_data_report(_at_accuracy(record, untrained))
    assert "no model learned beyond chance" not in own_data_report(_at_accuracy(record, trained))


def test_channels_last_images_that_nothing_refuses_are_warned_of_in_the_results_and_the_report(tmp_path, data):
    torch.save(brightness_splits(shape=(12, 12, 3)), tmp_path / "rgb.pt")
    record, report, caught = run(tmp_path / "rgb.pt", tmp_path / "out", "flat_rgb", "0", "1")
    said = "the --data images (96, 12, 12, 3) look channels-last, (N, H, W, C): the group acts on their last two axes"
    assert [w for w in record["warnings"] if w.startswith(said)] and said in report
    assert sum(said in w for w in caught) == 1  # once, in own-data's words; the trainer's own is not repeated
