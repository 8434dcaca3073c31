"""nets.experiments.si_settings: Table 1's SI under other saliency maps. A weight-tied model has SI = 1
under every map (its maps are exactly equivariant for any invariant baseline); the paper setting is
Table 1's SI; each claim's SI check is decided on the interval over seeds; end to end on the smoke
profile, the paper setting reproduces table1.json's per-seed SI; `python -m nets si-settings` writes
the file and REPORT.md shows it, naming the checks whose outcome moves with the map."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from nets.experiments.si_settings import BLACK, SETTINGS, si_values, summarize
from nets.si_settings_report import moved_checks, si_settings_section, table_rows
from nets.groups import R4
from nets.models import MLP, InvariantMLP
from nets.saliency_measure import saliency_invariance


@pytest.fixture(scope="module")
def data():
    g = torch.Generator().manual_seed(0)
    return torch.rand(6, 8, 8, generator=g), torch.randint(0, 3, (6,), generator=g)


def test_a_weight_tied_model_has_si_one_under_every_map(data):
    torch.manual_seed(0)
    wt = InvariantMLP(R4, (8, 8), 3, 16, 2).eval()
    values = si_values({"WT": [wt]}, *data, R4, n_steps=4)
    assert set(values) == set(SETTINGS)
    for name, v in values.items():
        assert v["WT"][0] == pytest.approx(1.0, abs=1e-5), name


def test_the_paper_setting_is_table1s_si_and_the_others_differ(data):
    torch.manual_seed(0)
    mlp = MLP((8, 8), 3, 16, 2).eval()
    values = si_values({"DA": [mlp]}, *data, R4, n_steps=4)
    assert values["paper"]["DA"][0] == float(saliency_invariance(mlp, *data, R4, n_steps=4))
    assert values["no threshold"]["DA"][0] != values["paper"]["DA"][0]


def test_the_black_baseline_is_the_smallest_pixel_unless_given(data):
    x, y = data
    torch.manual_seed(0)
    mlp = MLP((8, 8), 3, 16, 2).eval()
    black = {"black baseline": {"baseline": BLACK}}
    got = si_values({"DA": [mlp]}, x, y, R4, black, n_steps=4)["black baseline"]["DA"][0]
    assert got == float(saliency_invariance(mlp, x, y, R4, n_steps=4, baseline=float(x.min())))
    assert got != float(saliency_invariance(mlp, x, y, R4, n_steps=4))  # the zero baseline's: another row


def test_each_claims_si_check_is_decided_on_the_interval_over_seeds():
    s = summarize({"WT": [1.0, 1.0, 1.0, 1.0], "DA": [0.30, 0.32, 0.31, 0.29], "IR": [0.90, 0.99, 0.93, 0.97]})
    outcomes = {m: e["check"]["outcome"] for m, e in s["methods"].items()}
    assert outcomes == {"WT": "holds", "DA": "holds", "IR": "undecided"}
    assert s["IR_minus_DA"]["low"] > 0 and s["IR_minus_DA"]["mean"] == pytest.approx(0.6425)


@pytest.fixture(scope="module")
def table1_smoke(tmp_path_factory):
    """A results root after ``table1 --profile smoke``; tests copy its ``smoke/`` before writing."""
    from nets.__main__ import main

    root = tmp_path_factory.mktemp("table1-smoke")
    assert main(["table1", "--profile", "smoke", "--results", str(root), "--no-progress"]) == 0
    return root


def test_end_to_end_the_paper_setting_reproduces_table1s_per_seed_si(tmp_path, table1_smoke):
    from nets.experiments.profiles import get_profile
    from nets.experiments.si_settings import run_si_settings

    shutil.copytree(table1_smoke / "smoke", tmp_path / "smoke")
    two = {k: SETTINGS[k] for k in ("paper", "no smoothing")}
    result = run_si_settings(get_profile("smoke"), tmp_path, device="cpu", settings=two, progress=False)
    for g, entry in result["groups"].items():
        assert entry["paper_check"]["max_abs_difference"] < 1e-6, g
        assert set(entry["settings"]) == set(two)
    on_disk = json.loads((tmp_path / "smoke" / "si_settings.json").read_text())
    assert on_disk["meta"]["experiment"] == "si_settings" and len(table_rows(on_disk)) == 2 * len(result["groups"])


def _setting(wt, da, ir):
    return summarize({"WT": wt, "DA": da, "IR": ir})


def test_the_report_names_the_checks_whose_outcome_moves_with_the_map():
    paper = _setting([1.0] * 4, [0.30, 0.32, 0.31, 0.29], [0.97, 0.98, 0.97, 0.99])
    other = _setting([1.0] * 4, [0.85, 0.86, 0.84, 0.87], [0.97, 0.98, 0.97, 0.99])
    entry = {"settings": {"paper": paper, "no smoothing": other}, "paper_check": {"max_abs_difference": 0.0}}
    assert moved_checks(entry) == {"WT": [], "DA": [("no smoothing", "fails")], "IR": []}
    text = "\n".join(si_settings_section({"groups": {"r4": entry}}))
    assert "claim 2: DA SI <= 0.8 holds under the paper's map; fails under no smoothing" in text
    assert "IR's SI is above DA's (paired interval above 0) under every map" in text
    assert text.count("| R4 |") == 2


def test_a_bar_in_a_settings_name_does_not_break_the_table():
    s = _setting([1.0] * 2, [0.3, 0.4], [0.9, 0.95])
    rows = table_rows({"groups": {"t3": {"settings": {"raw |IG|": s}}}})
    assert rows[0][1] == "raw \\|IG\\|"


def test_no_file_no_section():
    assert si_settings_section(None) == []


def test_the_cli_writes_si_settings_and_the_report_shows_it(tmp_path, table1_smoke, run_cli):
    shutil.copytree(table1_smoke / "smoke", tmp_path / "smoke")
    rc, out, err = run_cli("si-settings", "--profile", "smoke", "--results", str(tmp_path), "--no-progress")
    assert rc == 0, err
    assert "si_settings.json" in out
    result = json.loads((tmp_path / "smoke" / "si_settings.json").read_text())
    assert set(next(iter(result["groups"].values()))["settings"]) == set(SETTINGS)
    rc, _, err = run_cli("report", "--profile", "smoke", "--results", str(tmp_path))
    assert rc == 0, err
    assert "Table 1's SI under other saliency maps" in (tmp_path / "smoke" / "REPORT.md").read_text()


def test_the_cli_refuses_to_train_a_missing_model(tmp_path, run_cli):
    rc, _, err = run_cli("si-settings", "--profile", "smoke", "--results", str(tmp_path), "--no-progress")
    assert rc != 0 and err.count("\n") <= 1


def test_the_cnn_models_are_measured_from_cnn_json_and_reported_in_its_section(tmp_path, cnn_smoke, run_cli):
    from nets.experiments.profiles import get_profile
    from nets.experiments.si_settings import run_si_settings

    shutil.copytree(cnn_smoke / "smoke", tmp_path / "smoke")
    two = {k: SETTINGS[k] for k in ("paper", "no threshold")}
    result = run_si_settings(get_profile("smoke"), tmp_path, device="cpu", settings=two, progress=False, model="cnn")
    cnn = json.loads((tmp_path / "smoke" / "cnn.json").read_text())
    on_disk = json.loads((tmp_path / "smoke" / "cnn_si_settings.json").read_text())
    assert on_disk["meta"]["experiment"] == "cnn_si_settings"
    assert on_disk["protocol"]["models"].startswith("the CNN's WT, DA and IR (logit form) of cnn.json's Table 1")
    assert on_disk["meta"]["profile"]["epochs"] == 1  # the CNN profile cnn.json records, not smoke's own
    for g, entry in result["groups"].items():
        assert entry["paper_check"]["max_abs_difference"] < 1e-6, g
        assert entry["nu_IR"] == cnn["table1"]["groups"][g]["methods"]["IR"]["nu"]
    assert not (tmp_path / "smoke" / "si_settings.json").exists()
    rc, _, err = run_cli("report", "--profile", "smoke", "--results", str(tmp_path))
    assert rc == 0, err
    assert "The CNN's Table 1 SI under other saliency maps" in (tmp_path / "smoke" / "REPORT.md").read_text()


def test_the_cnn_without_cnn_json_is_a_one_line_error(tmp_path, run_cli):
    rc, _, err = run_cli("si-settings", "--model", "cnn", "--profile", "smoke", "--results", str(tmp_path))
    assert rc == 1 and "cnn.json" in err and err.count("\n") == 1


def test_the_cli_knows_every_saliency_map_by_name(run_cli):
    rc, out, _ = run_cli("si-settings", "--help")
    assert rc == 0
    for name in SETTINGS:
        assert repr(name) in " ".join(out.split()), name


def test_settings_selects_the_maps_with_the_paper_first(tmp_path, table1_smoke, run_cli):
    shutil.copytree(table1_smoke / "smoke", tmp_path / "smoke")
    rc, _, err = run_cli("si-settings", "--profile", "smoke", "--results", str(tmp_path), "--no-progress",
                         "--settings", "no threshold")
    assert rc == 0, err
    result = json.loads((tmp_path / "smoke" / "si_settings.json").read_text())
    assert list(next(iter(result["groups"].values()))["settings"]) == ["paper", "no threshold"]


def test_methods_measures_only_those_models_and_the_report_says_na(tmp_path, table1_smoke, run_cli):
    shutil.copytree(table1_smoke / "smoke", tmp_path / "smoke")
    rc, _, err = run_cli("si-settings", "--profile", "smoke", "--results", str(tmp_path), "--no-progress",
                         "--settings", "no threshold", "--methods", "IR", "DA")
    assert rc == 0, err
    result = json.loads((tmp_path / "smoke" / "si_settings.json").read_text())
    assert result["protocol"]["methods"] == "DA and IR only"
    for entry in result["groups"].values():
        assert set(entry["settings"]["paper"]["methods"]) == {"DA", "IR"}
        assert set(moved_checks(entry)) == {"DA", "IR"}
    assert all(row[2] == "n/a" for row in table_rows(result))


def test_an_unknown_map_is_a_one_line_usage_error(run_cli):
    rc, _, err = run_cli("si-settings", "--settings", "threshold 0.7")
    assert rc == 2 and "threshold 0.7" in err and err.count("\n") == 1
