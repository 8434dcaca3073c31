"""``python -m nets table1 --epochs N`` (and every command that trains or reads the paper's MLP):
every model trained for N epochs instead of the profile's, to see whether a verdict moves with
training length (docs/detached.md trains T3 longer); the length is recorded and a folder keeps one.

One smoke run, R4 only, one seed, 1 epoch instead of the smoke profile's 2, shared by the tests.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from nets.__main__ import main
from nets.experiments.profiles import get_profile
from nets.report import epochs_note, grid_notes, write_report


@pytest.fixture(scope="module")
def short(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("epochs")
    assert main(["table1", "--profile", "smoke", "--groups", "r4", "--epochs", "1", "--results", str(root),
                 "--no-progress", "--threads", "1"]) == 0
    return root / "smoke"


def test_every_model_trains_the_given_number_of_epochs_and_the_profile_records_it(short):
    assert json.loads((short / "table1.json").read_text())["meta"]["profile"]["epochs"] == 1
    files = sorted((short / "checkpoints").glob("*.pt"))
    assert files and get_profile("smoke").epochs == 2
    for f in files:
        ckpt = torch.load(f, weights_only=True)
        assert ckpt["config"]["epochs"] == 1 and ckpt["epoch"] == 1 and ckpt["finished"], f.name


def test_the_profiles_length_on_that_folder_is_refused_before_training(short, run_cli, tree_digest):
    before = tree_digest(short)
    rc, _, err = run_cli("table1", "--profile", "smoke", "--groups", "r4", "--results", str(short.parent),
                         "--no-progress")
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "(epochs 1 there, 2 here)" in err
    assert "give the folder's length again (--epochs 1)" in err
    assert tree_digest(short) == before


def test_a_later_experiment_given_the_same_length_loads_that_folders_models(short, run_cli, checkpoint_mtimes):
    before = checkpoint_mtimes(short)
    rc, _, err = run_cli("drift", "--profile", "smoke", "--groups", "r4", "--epochs", "1", "--results",
                         str(short.parent), "--no-progress", "--threads", "1")
    assert rc == 0, err
    assert json.loads((short / "drift.json").read_text())["meta"]["profile"]["epochs"] == 1
    assert checkpoint_mtimes(short) == before


def test_the_report_says_the_models_trained_another_length(short):
    text = write_report(short).read_text()
    assert "> **Another training length**: the MLPs trained 1 epoch (`--epochs`), not the `smoke` profile's 2." in text


def test_the_profiles_own_length_has_no_note_and_a_grid_note_then_claims_no_more():
    assert epochs_note(get_profile("paper").to_dict()) is None
    longer = get_profile("paper").with_epochs(600).with_nu_grid("logit", [5.0]).to_dict()
    assert epochs_note(longer) == "the MLPs trained 600 epochs (`--epochs`), not the `paper` profile's 300."
    assert grid_notes(longer) == ["IR's logit form searched ν over 5 (`--nu-grid`), not the `paper` profile's "
                                  "1, 3, 10, 30, 100."]


@pytest.mark.parametrize("value", ["0", "-1", "2.5"])
def test_a_length_that_is_not_a_positive_integer_is_refused_in_one_line(value, run_cli, tmp_path):
    rc, _, err = run_cli("table1", "--profile", "smoke", "--epochs", value, "--results", str(tmp_path))
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "--epochs" in err
    assert not any(tmp_path.iterdir())


def test_with_epochs_refuses_what_is_not_a_positive_integer():
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="epochs must be an integer >= 1"):
            get_profile("paper").with_epochs(bad)
