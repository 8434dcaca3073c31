"""``--groups d4``: the paper's protocol on a group it did not use (the 4 rotations and their
4 reflections), through the same experiments, results files and report as R4 and T3."""

from __future__ import annotations

import json

import pytest

from nets.experiments.profiles import BEYOND_PAPER_GROUPS, get_profile
from nets.groups import available_groups


def test_beyond_paper_groups_are_named_groups_of_the_library():
    assert set(BEYOND_PAPER_GROUPS) <= set(available_groups())
    assert not set(BEYOND_PAPER_GROUPS) & set(get_profile("paper").groups)


def test_a_beyond_paper_group_comes_after_the_profiles_own_and_changes_nothing_else():
    paper = get_profile("paper")
    p = paper.with_groups(["D4", "t3"])
    assert p.groups == ("t3", "d4")
    assert p.to_dict() == {**paper.to_dict(), "groups": ["t3", "d4"]}
    assert paper.with_groups(["d4"]).groups == ("d4",)


def test_an_unknown_group_is_refused_naming_both_lists():
    with pytest.raises(ValueError) as e:
        get_profile("smoke").with_groups(["r4", "d8"])
    assert "['r4', 't3'] (the paper's)" in str(e.value) and "['d4'] (beyond the paper)" in str(e.value)
    assert "d8" in str(e.value)


@pytest.fixture(scope="module")
def d4_folder(tmp_path_factory):
    """The smoke profile's Table 1 on R4, then on D4 in the same folder, and its report."""
    from nets.__main__ import main

    root = tmp_path_factory.mktemp("d4")
    for group in ("r4", "d4"):
        assert main(["table1", "--profile", "smoke", "--groups", group, "--results", str(root),
                     "--threads", "1", "--no-progress"]) == 0
    assert main(["report", "--profile", "smoke", "--results", str(root)]) == 0
    return root / "smoke"


def test_weight_tying_is_exactly_invariant_under_d4(d4_folder):
    wt = json.loads((d4_folder / "table1.json").read_text())["groups"]["d4"]["methods"]["WT"]
    assert wt["config"]["group"] == "d4"
    for run in wt["runs"]:
        assert run["LI"] < 1e-10 and run["DI"] < 1e-10 and run["SI"] == pytest.approx(1.0)


def test_augmentation_alone_is_not_invariant_under_d4(d4_folder):
    da = json.loads((d4_folder / "table1.json").read_text())["groups"]["d4"]["methods"]["DA"]
    assert all(run["LI"] > 1e-6 and run["SI"] < 0.99 for run in da["runs"])


def test_a_d4_run_keeps_the_folders_r4_results_and_lists_t3_as_pending(d4_folder):
    t1 = json.loads((d4_folder / "table1.json").read_text())
    assert list(t1["groups"]) == ["r4", "d4"]
    assert t1["pending_groups"] == ["t3"] and t1["complete"] is False
    assert set(t1["group_provenance"]) == {"r4", "d4"}
    assert "--groups d4" in t1["group_provenance"]["d4"]["command"]


def test_the_report_names_d4_and_checks_the_claims_on_it(d4_folder):
    text = (d4_folder / "REPORT.md").read_text()
    assert "| D²₄ (4 rotations, 4 reflections) | WT |" in text
    assert "D4 WT LI = " in text and "R4 WT LI = " in text
    assert "(T3 pending)" in text
