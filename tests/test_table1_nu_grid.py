"""``python -m nets table1 --nu-grid NU ...``: IR's (logit form) nu search over a grid given on the
command line instead of the profile's (docs/fmnist.md uses it to try nu beyond the paper's grid),
and the later experiments on that folder given the same grid.

One smoke run, R4 only, one seed (about 10 s on 2 CPU cores), shared by the tests of this module.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nets.__main__ import main
from nets.experiments.profiles import PAPER_NU_GRIDS, get_profile
from nets.report import grid_notes, write_report


@pytest.fixture(scope="module")
def wide(tmp_path_factory) -> Path:
    """A smoke table1 folder whose logit grid is ``--nu-grid 300 100`` (given unsorted)."""
    root = tmp_path_factory.mktemp("nu_grid")
    assert main(["table1", "--profile", "smoke", "--groups", "r4", "--nu-grid", "300", "100", "--results", str(root),
                 "--no-progress", "--threads", "1"]) == 0
    return root / "smoke"


def _table1(folder: Path) -> dict:
    return json.loads((folder / "table1.json").read_text())


def test_the_search_tries_the_given_grid_smallest_first_and_records_it(wide):
    t = _table1(wide)
    selection = t["groups"]["r4"]["nu_selection"]
    assert selection["grid"] == [100.0, 300.0] and selection["search"] == "ascending"
    assert selection["chosen"] in (100.0, 300.0)
    assert t["meta"]["profile"]["nu_grids"]["logit"] == [100.0, 300.0]


def test_only_the_logit_forms_grid_changes(wide):
    grids = _table1(wide)["meta"]["profile"]["nu_grids"]
    smoke = dict(get_profile("smoke").nu_grids)
    assert {k: tuple(v) for k, v in grids.items() if k != "logit"} == {k: v for k, v in smoke.items() if k != "logit"}


def test_the_command_line_is_recorded_for_rerunning(wide):
    assert "--nu-grid 300 100" in _table1(wide)["meta"]["command"]


def test_the_profiles_grid_on_that_folder_is_refused_before_training(wide, run_cli, tree_digest):
    before = tree_digest(wide)
    rc, _, err = run_cli("table1", "--profile", "smoke", "--groups", "r4", "--results", str(wide.parent), "--no-progress")
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "nu_grids" in err and "--results" in err
    assert "give the folder's grid again (--nu-grid 100 300)" in err  # sorted, as the folder holds it
    assert tree_digest(wide) == before


@pytest.mark.parametrize("grid", [["0"], ["-3"], ["inf", "10"]])
def test_a_grid_that_is_not_positive_and_finite_is_refused_in_one_line(grid, run_cli, tmp_path):
    rc, _, err = run_cli("table1", "--profile", "smoke", "--nu-grid", *grid, "--results", str(tmp_path))
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "--nu-grid needs positive finite values" in err
    assert not any(tmp_path.iterdir())


def test_with_nu_grid_replaces_one_form_sorted_and_refuses_an_unknown_form():
    paper = get_profile("paper")
    wider = paper.with_nu_grid("logit", [1000, 100, 300, 100])
    assert wider.nu_grid("logit") == (100.0, 300.0, 1000.0)
    assert wider.nu_grid("kl") == dict(PAPER_NU_GRIDS)["kl"] and paper.nu_grid("logit") == dict(PAPER_NU_GRIDS)["logit"]
    with pytest.raises(ValueError, match="no nu grid for regularizer 'entropy'"):
        paper.with_nu_grid("entropy", [1.0])


def test_the_report_says_which_grid_was_searched_instead_of_the_profiles(wide):
    text = write_report(wide).read_text()
    assert "> **Another ν grid**: IR's logit form searched ν over 100, 300 (`--nu-grid`), not the `smoke` profile's 1, 100" in text


def test_a_report_of_the_profiles_own_grid_has_no_such_note():
    assert grid_notes(get_profile("paper").to_dict()) == []
    assert grid_notes(get_profile("quick").with_nu_grid("kl", [5.0]).to_dict()) == [
        "IR's kl form searched ν over 5 (`--nu-grid`), not the `quick` profile's 30, 300, 1000; every other setting "
        "is the profile's."]


def test_a_later_experiment_given_the_same_grid_runs_on_that_folders_models(wide, run_cli, checkpoint_mtimes):
    before = checkpoint_mtimes(wide)
    rc, _, err = run_cli("drift", "--profile", "smoke", "--groups", "r4", "--nu-grid", "100", "300", "--results",
                         str(wide.parent), "--no-progress", "--threads", "1")
    assert rc == 0, err
    drift = json.loads((wide / "drift.json").read_text())
    assert drift["meta"]["profile"]["nu_grids"]["logit"] == [100.0, 300.0]
    assert checkpoint_mtimes(wide) == before  # Table 1's models are loaded, none retrained

