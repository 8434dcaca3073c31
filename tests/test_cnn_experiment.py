"""``python -m nets cnn --profile smoke``: the claims-on-a-CNN experiment end to end on real data
(512 train / 256 validation images, 2 epochs), its results file, figures and REPORT.md section.

Skipped only when the data are not fetched and env CI is not set (as tests/test_data_real.py).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import replace

import pytest
import torch

from nets.__main__ import main
from nets.cnn_report import cnn_section
from nets.plots_cnn import CNN_FIGURES
from nets.experiments.cnn import CNN_SIZES, cnn_profile, cnn_sizes
from nets.experiments.profiles import METHOD_FIELDS, PROFILES
from nets.fetch_step import ENV_FROM, FOLDERS, MANIFEST, cache_root
from nets.chance import untrained_groups
from nets.report import write_report
from nets.results_io import without_sitting


def _data_available() -> bool:
    root = cache_root()
    ci = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")
    return ci or bool(os.environ.get(ENV_FROM)) or all((root / FOLDERS[d] / s.filename).is_file()
                                                       for d in ("mnist", "fmnist") for s in MANIFEST[d])


needs_data = pytest.mark.skipif(not _data_available(), reason="MNIST / Fashion-MNIST not fetched; CI is not set")


@pytest.fixture(scope="module")
def smoke(tmp_path_factory, main_one_thread):
    """The results folder of one ``python -m nets cnn --profile smoke`` run, and its cnn.json."""
    root = tmp_path_factory.mktemp("cnn-results")
    main_one_thread("cnn", "--profile", "smoke", "--results", str(root))
    return root / "smoke", json.loads((root / "smoke" / "cnn.json").read_text())


# ---- without training ------------------------------------------------------------------
def test_cnn_sizes_change_sizes_only_and_keep_the_profiles_method():
    for name, profile in PROFILES.items():
        cnn = cnn_profile(profile)
        assert cnn.epochs == CNN_SIZES[name].epochs and cnn.nu_grid("logit") == CNN_SIZES[name].nu_grid
        assert set(CNN_SIZES[name].nu_grid) <= set(PROFILES["paper"].nu_grid("logit"))
        assert cnn.regularizers == ("logit",)  # the paper's IR form only
        assert all(getattr(cnn, f) == getattr(profile, f) for f in METHOD_FIELDS if f != "regularizers")


def test_a_profile_without_cnn_sizes_is_refused():
    with pytest.raises(ValueError, match="no CNN sizes for profile 'mine'"):
        cnn_profile(replace(PROFILES["smoke"], name="mine"))


def test_epochs_and_nu_grid_can_be_set_for_one_run_and_say_so():
    s = cnn_sizes("paper", epochs=300, nu_grid=(100, 1, 3, 30, 10, 3))
    assert s.epochs == 300 and s.nu_grid == (1.0, 3.0, 10.0, 30.0, 100.0)  # sorted: the search is ascending
    assert s.n_si_samples == CNN_SIZES["paper"].n_si_samples  # the evaluation sizes stay
    assert "--epochs 300, --nu-grid 1 3 10 30 100" in s.why and "6 epochs" in s.why
    assert cnn_sizes("paper") is CNN_SIZES["paper"] and cnn_profile(PROFILES["paper"], s).epochs == 300


@pytest.mark.parametrize("kw, message", [({"epochs": 0}, "--epochs must be >= 1, got 0"),
                                         ({"nu_grid": (10.0, -1.0)}, "--nu-grid needs positive finite values, got -1"),
                                         ({"nu_grid": (float("nan"),)}, "got nan"),
                                         ({"nu_grid": ()}, "got none")])
def test_bad_epochs_or_nu_grid_are_refused(kw, message):
    with pytest.raises(ValueError, match=message):
        cnn_sizes("smoke", **kw)


def test_bad_epochs_on_the_command_line_is_a_usage_error(run_cli, tmp_path):
    rc, _, err = run_cli("cnn", "--profile", "smoke", "--epochs", "0", "--results", str(tmp_path))
    assert rc == 2 and "argument --epochs: must be at least 1, got 0" in err and len(err.strip().splitlines()) == 1
    assert not any(tmp_path.iterdir())


def test_report_section_is_empty_without_cnn_json(tmp_path):
    assert cnn_section(tmp_path) == ""


# ---- the smoke run ---------------------------------------------------------------------
@needs_data
def test_smoke_run_records_the_model_the_sizes_and_the_provenance(smoke):
    _, r = smoke
    assert r["model"]["parameters"] == 232_825 and r["model"]["wt_pooling"] == ["first_layer-max"]
    assert r["cnn_sizes"]["epochs"] == CNN_SIZES["smoke"].epochs
    meta = r["meta"]
    assert meta["experiment"] == "cnn" and meta["command"].startswith("python -m nets cnn --profile smoke")
    assert meta["profile"]["name"] == "smoke" and meta["epochs"] == CNN_SIZES["smoke"].epochs
    assert {"git_commit", "versions", "cpu", "started_at", "wall_time_s"} <= set(meta)


@needs_data
def test_smoke_run_measures_table1_drift_and_spectral_on_both_groups(smoke):
    _, r = smoke
    for g in ("r4", "t3"):
        methods = r["table1"]["groups"][g]["methods"]
        assert set(methods) == {"WT", "DA", "IR"}
        assert all(m["config"]["model"] == "cnn" and len(m["runs"]) == 1 for m in methods.values())
        assert methods["IR"]["nu"] in CNN_SIZES["smoke"].nu_grid
        assert len(r["drift"]["groups"][g]["DA"]["DI"]["mean"]) == len(r["drift"]["betas"]) == 11
        assert set(r["spectral"]["groups"][g]["models"]) == {"DA", "IR-logit"}


@needs_data
def test_smoke_cnn_weight_tied_is_exactly_invariant(smoke):
    _, r = smoke
    for g in ("r4", "t3"):
        wt = r["table1"]["groups"][g]["methods"]["WT"]
        assert wt["LI"]["mean"] == 0.0 and wt["DI"]["mean"] == 0.0  # max pooling: identical logits
        assert wt["SI"]["mean"] > 0.999
        assert max(r["drift"]["groups"][g]["WT"]["DI"]["mean"]) == 0.0


@needs_data
def test_smoke_run_writes_every_figure_and_the_report_section(smoke):
    folder, _ = smoke
    for stem in CNN_FIGURES:
        for ext in (".png", ".pdf"):
            assert (folder / "figures" / f"{stem}{ext}").stat().st_size > 1000, stem
    text = write_report(folder).read_text()
    assert "## Claims 1-5 on a CNN" in text
    for claim in ("1", "2", "3", "4", "5"):
        assert f"\n| {claim} |" in text
    # a smoke run's models may not have learned: the section says so exactly when nets.chance's rule says so
    low = untrained_groups(json.loads((folder / "cnn.json").read_text())["table1"]["groups"], 9)
    assert ("no model learned beyond chance" in text) == bool(low)


def test_a_folder_of_cnn_results_only_gets_a_report_of_the_cnn_alone(smoke, run_cli):
    folder, _ = smoke
    rc, _, err = run_cli("report", "--profile", "smoke", "--results", str(folder.parent))
    assert rc == 0, err
    text = (folder / "REPORT.md").read_text()
    assert text.startswith("# The paper's claims on a CNN") and "## Claims 1-5 on a CNN" in text
    assert "## Table 1" not in text and "| MLP |" not in text  # no empty MLP sections, no MLP column

@pytest.fixture(scope="module")
def by_group(tmp_path_factory):
    """cnn.json after ``--groups r4`` alone, then after ``--groups t3`` into the same folder."""
    root = tmp_path_factory.mktemp("cnn-by-group")
    threads = torch.get_num_threads()
    after = []
    try:
        for g in ("r4", "t3"):
            assert main(["cnn", "--profile", "smoke", "--groups", g, "--results", str(root), "--no-progress",
                         "--threads", "1"]) == 0
            after.append(json.loads((root / "smoke" / "cnn.json").read_text()))
    finally:
        torch.set_num_threads(threads)
    return root / "smoke", after


@needs_data
def test_a_groups_run_says_which_groups_are_pending(by_group):
    _, (first, _) = by_group
    assert first["pending_groups"] == ["t3"] and first["complete"] is False
    assert all(list(first[s]["groups"]) == ["r4"] for s in ("table1", "drift", "spectral"))


@needs_data
def test_groups_run_one_at_a_time_add_up_to_one_run_number_for_number(by_group, smoke):
    _, (_, both) = by_group
    _, whole = smoke
    assert both["complete"] is True and both["pending_groups"] == []
    for s in ("table1", "drift", "spectral"):
        assert list(both[s]["groups"]) == ["r4", "t3"]
        assert without_sitting(both[s]["groups"]) == without_sitting(whole[s]["groups"]), s
    commands = {g: p["command"] for g, p in both["group_provenance"].items()}
    assert "--groups r4" in commands["r4"] and "--groups t3" in commands["t3"]


@needs_data
def test_report_names_each_sitting_and_a_pending_group(by_group, tmp_path):
    folder, (first, _) = by_group
    text = cnn_section(folder)
    assert "Commands: `python -m nets cnn --profile smoke --groups r4" in text
    assert re.search(r"--groups t3 [^`]*` \(T3, \d+ s\)\.", text)
    (tmp_path / "cnn.json").write_text(json.dumps(first))
    assert "**Not yet run on T3**" in cnn_section(tmp_path, mlp_results={})


@needs_data
@pytest.mark.parametrize("flags, named", [(("--seeds", "7"), "seeds"), (("--epochs", "1"), "epochs")])
def test_a_cnn_run_with_other_settings_is_refused_and_changes_nothing(smoke, tmp_path, run_cli, tree_digest,
                                                                      flags, named):
    folder, _ = smoke
    shutil.copytree(folder, tmp_path / "smoke")
    before = tree_digest(tmp_path)
    rc, _, err = run_cli("cnn", "--profile", "smoke", *flags, "--results", str(tmp_path), "--no-progress")
    assert rc == 2 and "refusing to replace" in err and "cnn.json" in err and named in err
    assert tree_digest(tmp_path) == before


@needs_data
def test_epochs_and_nu_grid_from_the_command_line_are_trained_and_recorded(tmp_path, run_cli):
    threads = torch.get_num_threads()
    try:
        rc, _, err = run_cli("cnn", "--profile", "smoke", "--groups", "t3", "--epochs", "1", "--nu-grid", "3",
                             "--results", str(tmp_path), "--no-progress", "--threads", "1")
    finally:
        torch.set_num_threads(threads)
    assert rc == 0, err
    r = json.loads((tmp_path / "smoke" / "cnn.json").read_text())
    assert r["cnn_sizes"]["epochs"] == r["meta"]["epochs"] == 1 and r["cnn_sizes"]["nu_grid"] == [3.0]
    assert "--epochs 1, --nu-grid 3" in r["cnn_sizes"]["why"]
    assert r["table1"]["groups"]["t3"]["methods"]["IR"]["nu"] == 3.0
    names = sorted(p.name for p in (tmp_path / "smoke" / "checkpoints").glob("cnn-*.pt"))
    assert names and all("-e1-" in n for n in names)
