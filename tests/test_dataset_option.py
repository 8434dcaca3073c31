"""``--dataset fmnist``: the paper's protocol on Transforming-FMNIST, the paper's second dataset.

What it must do: train and measure on FMNIST (not MNIST), keep its results and checkpoints apart
from the paper's, drift the other way (FMNIST -> MNIST), and write a report that sets no paper
numbers beside numbers the paper never published."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from nets.commands import default_results_root
from nets.data import drift_split, drift_target, load_splits
from nets.experiments.profiles import PAPER_DATASET, get_profile
from nets.experiments.table1 import profile_splits
from nets.report import render_report
from nets.results_io import RESULTS_ROOT, checkpoint_dir, paper_table1_for, read_json

ROOT = Path(__file__).resolve().parents[1]


# ---- the profile and where its files go ----------------------------------------------
def test_with_dataset_accepts_the_aliases_and_keeps_every_other_field():
    paper = get_profile("paper")
    fm = paper.with_dataset("Fashion-MNIST")
    assert fm.dataset == "fmnist"
    assert {k: v for k, v in fm.to_dict().items() if k != "dataset"} == \
           {k: v for k, v in paper.to_dict().items() if k != "dataset"}
    assert paper.dataset == PAPER_DATASET == "mnist"


def test_with_dataset_refuses_an_unknown_name_in_one_line():
    with pytest.raises(ValueError, match="unknown dataset 'cifar10'; known: mnist, fmnist"):
        get_profile("smoke").with_dataset("cifar10")


def test_the_paper_datasets_checkpoints_stay_where_they_were_and_fmnists_go_apart(tmp_path):
    smoke = get_profile("smoke")
    assert checkpoint_dir(smoke, tmp_path) == tmp_path / "smoke" / "checkpoints"
    assert checkpoint_dir("smoke", tmp_path) == tmp_path / "smoke" / "checkpoints"
    assert checkpoint_dir(smoke.with_dataset("fmnist"), tmp_path) == tmp_path / "smoke" / "checkpoints" / "fmnist"


def test_default_results_roots_keep_each_dataset_and_precision_apart():
    assert default_results_root() == RESULTS_ROOT
    assert default_results_root(precision="bf16") == RESULTS_ROOT / "bf16"
    assert default_results_root("fmnist") == RESULTS_ROOT / "fmnist"
    assert default_results_root("fmnist", "bf16") == RESULTS_ROOT / "fmnist" / "bf16"


def test_an_fmnist_profile_trains_on_fmnist_images():
    smoke = get_profile("smoke")
    fm = profile_splits(smoke.with_dataset("fmnist"))
    full = load_splits("fmnist", smoke.split_seed)
    assert torch.equal(fm.train.x, full.train.x[:smoke.n_train])
    assert torch.equal(fm.test.y, full.test.y[:smoke.n_test])
    assert not torch.equal(fm.train.x, profile_splits(smoke).train.x)


# ---- drift the other way ---------------------------------------------------------------
def test_fmnist_drift_at_beta_0_is_the_fmnist_test_split_exactly():
    d0 = drift_split(0.0, source="fmnist")
    test = load_splits("fmnist").test
    assert torch.equal(d0.x, test.x) and torch.equal(d0.y, test.y)


def test_fmnist_drift_at_beta_1_is_mnist_under_fmnists_normalization_with_fmnist_labels():
    d1 = drift_split(1.0, source="fmnist")
    m, f = load_splits("mnist"), load_splits("fmnist")
    pixels = m.test.x * m.std + m.mean  # MNIST's raw [0, 1] pixels, renormalized with FMNIST's statistics
    assert torch.allclose(d1.x, (pixels - f.mean) / f.std, atol=1e-5)
    assert torch.equal(d1.y, f.test.y)
    assert not torch.allclose(d1.x, m.test.x, atol=1e-3)


def test_a_drift_moves_towards_the_other_dataset():
    assert drift_target("mnist") == "fmnist" and drift_target("Fashion-MNIST") == "mnist"


def test_the_paper_drift_is_unchanged_by_default():
    assert torch.equal(drift_split(0.3).x, drift_split(0.3, source="mnist").x)


# ---- end to end: the CLI ---------------------------------------------------------------
@pytest.fixture(scope="module")
def fmnist_smoke(tmp_path_factory) -> Path:
    """``<tmp>/smoke/`` after ``table1`` then ``drift`` on FMNIST at smoke size (one thread)."""
    from nets.__main__ import main

    root = tmp_path_factory.mktemp("fm")
    threads = torch.get_num_threads()
    argv = ["--profile", "smoke", "--dataset", "fmnist", "--results", str(root), "--no-progress", "--threads", "1"]
    try:
        assert main(["table1", *argv]) == 0
        assert main(["drift", *argv]) == 0
    finally:
        torch.set_num_threads(threads)
    return root / "smoke"


def test_the_results_record_the_dataset_and_the_checkpoints_sit_in_its_folder(fmnist_smoke):
    t1 = read_json(fmnist_smoke / "table1.json")
    assert t1["meta"]["profile"]["dataset"] == "fmnist"
    assert "--dataset fmnist" in t1["meta"]["command"]
    assert sorted(p.name for p in (fmnist_smoke / "checkpoints").iterdir()) == ["fmnist"]
    assert len(list((fmnist_smoke / "checkpoints" / "fmnist").glob("*.pt"))) >= 4


def test_the_drift_goes_from_fmnist_to_mnist(fmnist_smoke):
    dr = read_json(fmnist_smoke / "drift.json")
    assert dr["datasets"] == ["fmnist", "mnist"]
    assert dr["protocol"]["data"].startswith("D(beta) = (1 - beta) FMNIST + beta MNIST")


def test_an_fmnist_run_into_a_folder_of_mnist_results_is_refused_naming_the_dataset(fmnist_smoke, run_cli,
                                                                                   tree_digest):
    before = tree_digest(fmnist_smoke)
    rc, _, err = run_cli("table1", "--profile", "smoke", "--results", str(fmnist_smoke.parent), "--no-progress")
    assert rc == 2
    assert "dataset \"fmnist\" there, \"mnist\" here" in err and len(err.strip().splitlines()) == 1
    assert tree_digest(fmnist_smoke) == before


def test_the_report_says_which_dataset_and_sets_no_paper_numbers_beside_it(fmnist_smoke):
    results = {name: read_json(fmnist_smoke / f"{name}.json") for name in ("table1", "drift")}
    text = render_report(results)
    assert text.splitlines()[0] == "# Reproduction report: profile `smoke`, Transforming-FMNIST"
    assert "on Transforming-FMNIST." in text and "**Beyond the paper**" in text
    table1 = text[text.index("## Table 1"):text.index("## Figure 2")]
    assert "(paper)" not in table1 and "paper's range" not in table1 and "94.6" not in table1
    assert "| group | model | Acc % | LI | DI | SI |" in table1


def test_paper_numbers_are_only_for_the_paper_dataset():
    assert paper_table1_for({"profile": {"dataset": "mnist"}})[0]["r4"]["WT"][0] == 94.6
    assert paper_table1_for({})[0]  # a file older than the field is the paper's dataset
    assert paper_table1_for({"profile": {"dataset": "fmnist"}}) == ({}, {})


def test_the_fmnist_table1_figure_has_no_paper_legend_entry(fmnist_smoke):
    from nets.plots import plot_table1

    labels = lambda fig: [t.get_text() for leg in fig.legends for t in leg.get_texts()]  # noqa: E731
    assert "paper (Table 1)" not in labels(plot_table1(read_json(fmnist_smoke / "table1.json")))
    assert "paper (Table 1)" in labels(plot_table1(json.loads((ROOT / "results" / "quick" / "table1.json").read_text())))


def test_the_mnist_report_keeps_the_paper_columns():
    results = {"table1": json.loads((ROOT / "results" / "quick" / "table1.json").read_text())}
    text = render_report(results)
    assert "| group | model | Acc % (ours) | Acc % (paper) |" in text
