"""``python -m nets per-class``: Table 1's models measured per class from their checkpoints. On the
smoke profile each seed's per-class accuracies weigh back to table1.json's accuracy, REPORT.md gains
the section, a folder without table1.json or its models is refused in one line, and nothing trains."""

from __future__ import annotations

import json
import shutil

from pathlib import Path

import pytest

from nets.per_class_report import per_class_section

ROOT = Path(__file__).resolve().parents[1]


def test_per_class_weighs_back_to_table1s_accuracy_per_seed_and_the_report_shows_it(tmp_path, table1_smoke, run_cli,
                                                                                     checkpoint_mtimes):
    shutil.copytree(table1_smoke / "smoke", tmp_path / "smoke")
    before = checkpoint_mtimes(tmp_path / "smoke")
    assert before  # the models are there
    rc, out, err = run_cli("per-class", "--profile", "smoke", "--results", str(tmp_path), "--no-progress")
    assert rc == 0, err
    result = json.loads((tmp_path / "smoke" / "per_class.json").read_text())
    assert result["meta"]["experiment"] == "per_class"
    assert result["class_names"] is None  # MNIST's classes are their digits
    for g, entry in result["groups"].items():
        check = entry["check"]
        assert set(entry["methods"]) == {"WT", "DA", "IR"}
        for m, values in check["accuracy_from_classes"].items():
            assert values == pytest.approx(check["accuracy_table1_json"][m], abs=1e-9), (g, m)
    assert checkpoint_mtimes(tmp_path / "smoke") == before  # loaded, not trained
    rc, _, err = run_cli("report", "--profile", "smoke", "--results", str(tmp_path))
    assert rc == 0, err
    assert "### Beyond the paper: Table 1's accuracy over the orbit per class" in \
        (tmp_path / "smoke" / "REPORT.md").read_text()


def test_a_folder_without_table1_is_refused_in_one_line(tmp_path, run_cli):
    rc, _, err = run_cli("per-class", "--profile", "smoke", "--results", str(tmp_path), "--no-progress")
    assert rc != 0 and err.count("\n") <= 1 and "per-class measures Table 1's models" in err
    assert not (tmp_path / "smoke" / "per_class.json").exists()


def test_a_missing_model_is_refused_not_trained(tmp_path, table1_smoke, run_cli):
    shutil.copytree(table1_smoke / "smoke", tmp_path / "smoke")
    victim = sorted((tmp_path / "smoke" / "checkpoints").glob("*-DA-*.pt"))[0]
    victim.unlink()
    rc, _, err = run_cli("per-class", "--profile", "smoke", "--results", str(tmp_path), "--no-progress")
    assert rc != 0 and err.count("\n") <= 1 and "no checkpoint" in err
    assert not victim.exists() and not (tmp_path / "smoke" / "per_class.json").exists()


def test_no_file_no_section():
    assert per_class_section(None) == []


def test_fashion_mnist_classes_are_named_even_in_a_file_from_before_the_names_were_recorded():
    results = json.loads((ROOT / "results" / "fmnist-wide-nu" / "paper" / "per_class.json").read_text())
    assert "class_names" not in results  # written before; its recorded dataset names the classes
    text = "\n".join(per_class_section(results))
    assert "| 6 Shirt | 5547 |" in text and "| 0 T-shirt/top |" in text
