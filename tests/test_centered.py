"""The centered normalized-logit experiment (ours, beyond the paper; issue 17 part 2):
``python -m nets centered`` end to end at smoke size, its refusals, its report verdict.

The smoke run needs the folder's ``spectral.json`` (DA's and the paper forms' numbers are read
from it, never retrained): the shared fixture (tests/conftest.py, ``centered_smoke``) runs
``python -m nets spectral --profile smoke`` first, then ``centered``, into one temporary results
folder (about 45 s on 2 CPU cores).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from nets.__main__ import main
from nets.centered_report import GroupCheck, centered_checks, centered_section, centered_verdict
from nets.experiments.centered import CENTERED_FORM, CENTERED_NU_GRIDS
from nets.experiments.profiles import PROFILES
from nets.stats import paired_t


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out = capsys.readouterr()
    return rc, out.out, out.err


@pytest.fixture(scope="module")
def smoke(centered_smoke) -> tuple[Path, dict[str, int]]:
    """The shared smoke folder after spectral then centered (tests/conftest.py)."""
    return centered_smoke


def _read(folder: Path, name: str) -> dict:
    return json.loads((folder / f"{name}.json").read_text())


def test_smoke_run_writes_every_group_with_the_chosen_nus_figure5_numbers_per_seed(smoke):
    smoke = smoke[0]
    c = _read(smoke, "centered")
    assert list(c["groups"]) == ["r4", "t3"] and c["complete"] is True
    for entry in c["groups"].values():
        m = entry["model"]
        assert (m["method"], m["regularizer"]) == ("IR", CENTERED_FORM)
        assert m["nu"] == entry["nu_selection"]["chosen"]
        assert entry["nu_selection"]["grid"] == list(CENTERED_NU_GRIDS["smoke"])
        assert [r["seed"] for r in m["runs"]] == list(PROFILES["smoke"].seeds)
        for k in ("sigma_max", "sigma_max_centered", "common_logit_share", "accuracy"):
            assert m[k]["mean"] == pytest.approx(sum(r[k] for r in m["runs"]) / len(m["runs"]))
            assert all(r[k] >= 0 for r in m["runs"])


def test_da_and_the_paper_forms_are_copied_from_spectral_json_not_retrained(smoke, checkpoint_mtimes):
    smoke, before = smoke
    c, sp = _read(smoke, "centered"), _read(smoke, "spectral")
    assert c["spectral_source"]["started_at"] == sp["meta"]["started_at"]
    for g, entry in c["groups"].items():
        assert list(entry["comparison"]) == list(sp["groups"][g]["models"])
        for key, m in entry["comparison"].items():
            assert m["sigma_max"] == sp["groups"][g]["models"][key]["sigma_max"]
    after = checkpoint_mtimes(smoke)
    assert {n: after[n] for n in before} == before  # spectral's checkpoints untouched
    new = set(after) - set(before)
    assert new and all(f"-IR-{CENTERED_FORM}-" in n for n in new)  # only our form was trained


def test_results_record_the_profile_unchanged_so_the_folder_stays_one_sweep(smoke):
    smoke = smoke[0]
    c, sp = _read(smoke, "centered"), _read(smoke, "spectral")
    assert c["meta"]["profile"] == sp["meta"]["profile"]
    assert CENTERED_FORM not in c["meta"]["profile"]["regularizers"]
    assert CENTERED_FORM not in c["meta"]["profile"]["nu_grids"]
    assert c["nu_grid"] == list(CENTERED_NU_GRIDS["smoke"])


def test_the_figure_is_drawn_and_report_renders_the_subsection_under_figure5(smoke, capsys):
    smoke = smoke[0]
    assert (smoke / "figures" / "centered.png").stat().st_size > 0
    assert (smoke / "figures" / "centered.pdf").stat().st_size > 0
    rc, _, _ = _run(capsys, "report", "--profile", "smoke", "--results", str(smoke.parent))
    text = (smoke / "REPORT.md").read_text()
    assert rc == 0
    sub = text.index("### Beyond the paper: the centered normalized-logit form")
    assert text.index("## Figure 5") < sub < text.index("## Provenance")
    assert "Does closing the loophole restore claim 5 for the normalized family?" in text


def test_without_spectral_json_it_refuses_in_one_line_and_writes_nothing(tmp_path, capsys):
    rc, _, err = _run(capsys, "centered", "--profile", "smoke", "--results", str(tmp_path), "--no-progress")
    assert rc == 1
    assert len(err.strip().splitlines()) == 1 and "spectral.json is missing" in err
    assert not (tmp_path / "smoke" / "centered.json").exists()


def test_a_grid_from_the_command_line_is_searched_and_recorded(smoke, tmp_path, capsys):
    copy = tmp_path / "smoke"
    copy.mkdir()
    (copy / "spectral.json").write_bytes((smoke[0] / "spectral.json").read_bytes())
    rc, _, err = _run(capsys, "centered", "--profile", "smoke", "--groups", "r4", "--nu-grid", "30", "10", "--results",
                      str(tmp_path), "--no-progress", "--threads", "1")
    assert rc == 0, err
    ce = _read(copy, "centered")
    assert ce["nu_grid"] == [10.0, 30.0] and ce["groups"]["r4"]["nu_selection"]["grid"][0] == 10.0
    assert ce["groups"]["r4"]["model"]["nu"] in (10.0, 30.0)


def test_another_grid_than_the_folders_is_refused_before_training(smoke, capsys, checkpoint_mtimes):
    folder, _ = smoke
    before, text = checkpoint_mtimes(folder), (folder / "centered.json").read_text()
    rc, _, err = _run(capsys, "centered", "--profile", "smoke", "--nu-grid", "3", "--results", str(folder.parent),
                      "--no-progress")
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "used the nu grid" in err
    assert checkpoint_mtimes(folder) == before and (folder / "centered.json").read_text() == text


@pytest.mark.parametrize("grid", [["0"], ["-1", "10"], ["nan"]])
def test_a_grid_that_is_not_positive_and_finite_is_refused_in_one_line(grid, tmp_path, capsys):
    rc, _, err = _run(capsys, "centered", "--profile", "smoke", "--nu-grid", *grid, "--results", str(tmp_path))
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "--nu-grid needs positive finite values" in err


def test_grids_ascend_and_smaller_profiles_try_subsets_of_the_paper_grid():
    assert set(CENTERED_NU_GRIDS) == set(PROFILES)
    for grid in CENTERED_NU_GRIDS.values():
        assert list(grid) == sorted(grid) and all(v > 0 for v in grid)
        assert set(grid) <= set(CENTERED_NU_GRIDS["paper"])


def test_the_paper_profiles_regularizer_forms_are_still_the_papers_three():
    for p in PROFILES.values():
        assert p.regularizers == ("logit", "kl", "normalized_logit")


# ---- the verdict (pure) -------------------------------------------------------------
DA = [10.0, 10.4, 9.7, 10.1]


def _check(ratio: float, reached: bool = True, seeds: int = 4, group: str = "r4") -> GroupCheck:
    """A check whose form's sigma_max is ``ratio`` x DA's on every seed, up to a small spread."""
    ours = [ratio * d * (1 + 0.01 * k) for k, d in enumerate(DA[:seeds])]
    test = paired_t(ours, DA[:seeds], log=True) if seeds else None
    return GroupCheck(group, test, reached, 0.9)


def test_a_group_holds_only_with_si_at_target_and_the_whole_ratio_interval_at_most_0_9():
    assert _check(0.5).outcome == "holds"
    assert _check(2.0).outcome == "fails"
    assert _check(0.5, reached=False).outcome == "fails"  # never tuned to the claim's premise
    assert _check(0.5, seeds=1).outcome == "undecided"  # one seed: no interval


def test_the_verdict_combines_the_groups_like_every_claim():
    assert centered_verdict([_check(0.5), _check(0.4, group="t3")]) == "yes"
    assert centered_verdict([_check(0.5), _check(2.0, group="t3")]) == "partly"
    assert centered_verdict([_check(2.0), _check(0.5, reached=False, group="t3")]) == "no"
    assert centered_verdict([_check(0.5, seeds=1), _check(0.5, seeds=1, group="t3")]) == "undecided at n = 1 seed"


def test_a_group_the_form_has_not_run_on_is_named_and_never_turns_a_no_into_a_yes():
    missing = GroupCheck("t3", None, False, 0.9)
    assert missing.outcome == "not measured"
    assert centered_verdict([_check(0.5), missing]) == "yes on R4 (T3 not measured)"
    assert centered_verdict([_check(0.5, reached=False), missing]) == "no"
    assert centered_verdict([_check(0.5, seeds=1), missing]) == "undecided at n = 1 seed on R4 (T3 not measured)"


def test_no_centered_results_no_subsection():
    assert centered_section(None, ratio_max=0.9, fmt=str) == []


def _centered(ours: list[float], da: list[float]) -> dict:
    """A ``centered.json`` dict of one group, R4, with these sigma_max per seed."""
    runs = [[{"seed": s, "sigma_max": v} for s, v in enumerate(vals)] for vals in (ours, da)]
    return {"form": {"name": CENTERED_FORM}, "groups": {"r4": {
        "model": {"method": "IR", "regularizer": CENTERED_FORM, "nu": 150.0, "runs": runs[0]},
        "comparison": {"DA": {"method": "DA", "runs": runs[1]}},
        "nu_selection": {"target": 0.95, "reached_target": True, "grid": [150.0], "si": [0.96], "accuracy": [0.9],
                         "chosen": 150.0}}}}


def test_a_seed_with_a_sigma_max_of_0_is_left_out_of_the_ratio_and_named_not_the_whole_check():
    ours = [0.5 * d * (1 + 0.01 * k) for k, d in enumerate(DA)] + [0.0, 5.0]
    (check,) = centered_checks(_centered(ours, DA + [10.2, 10.3]), 0.9)
    assert check.test.n == 5 and dict(check.left_out) == {4: -math.inf} and check.outcome == "holds"
    text = "\n".join(centered_section(_centered(ours, DA + [10.2, 10.3]), ratio_max=0.9, fmt=lambda v: f"{v:.3g}"))
    assert "seed 4 left out, a σ_max <= 0 has no log-ratio" in text and "so **holds**" in text


def test_a_check_does_not_hold_on_its_other_seeds_when_das_sigma_max_is_0_on_one():
    ours = [0.5 * d * (1 + 0.01 * k) for k, d in enumerate(DA)] + [5.0]
    (check,) = centered_checks(_centered(ours, DA + [0.0]), 0.9)
    assert check.test.n == 4 and check.outcome == "undecided"
    text = "\n".join(centered_section(_centered(ours, DA + [0.0]), ratio_max=0.9, fmt=lambda v: f"{v:.3g}"))
    assert "has no log-ratio (where DA's is 0, on the failing side)" in text and "so **undecided**" in text


def test_a_check_with_every_seed_left_out_is_undecided_and_names_them_not_not_measured():
    (check,) = centered_checks(_centered([5.0, 4.0], [0.0, 0.0]), 0.9)
    assert check.test is None and check.outcome == "undecided"
    text = "\n".join(centered_section(_centered([5.0, 4.0], [0.0, 0.0]), ratio_max=0.9, fmt=lambda v: f"{v:.3g}"))
    assert "R4: σ_max / DA's = no seed has one vs 0.9 (undecided; seeds 0, 1 left out" in text
    missed = _centered([5.0, 4.0], [0.0, 0.0])
    missed["groups"]["r4"]["nu_selection"]["reached_target"] = False
    assert centered_checks(missed, 0.9)[0].outcome == "fails"  # the premise missed still decides it
