"""``python -m nets cnn --profile smoke``: the claims-on-a-CNN experiment end to end on real data
(512 train / 256 validation images, 2 epochs), its results file, figures and REPORT.md section.

Skipped only when the data are not fetched and env CI is not set (as tests/test_data_real.py).
"""

from __future__ import annotations

import json
import os
from dataclasses import replace

import pytest
import torch

from nets.__main__ import main
from nets.cnn_report import cnn_section
from nets.plots_cnn import CNN_FIGURES
from nets.experiments.cnn import CNN_SIZES, cnn_profile
from nets.experiments.profiles import METHOD_FIELDS, PROFILES
from nets.fetch import ENV_FROM, FOLDERS, MANIFEST, cache_root
from nets.report import write_report


def _data_available() -> bool:
    root = cache_root()
    ci = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")
    return ci or bool(os.environ.get(ENV_FROM)) or all((root / FOLDERS[d] / s.filename).is_file()
                                                       for d in ("mnist", "fmnist") for s in MANIFEST[d])


needs_data = pytest.mark.skipif(not _data_available(), reason="MNIST / Fashion-MNIST not fetched; CI is not set")


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """The results folder of one ``python -m nets cnn --profile smoke`` run, and its cnn.json."""
    root = tmp_path_factory.mktemp("cnn-results")
    threads = torch.get_num_threads()
    try:
        assert main(["cnn", "--profile", "smoke", "--results", str(root), "--no-progress", "--threads", "1"]) == 0
    finally:
        torch.set_num_threads(threads)
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
