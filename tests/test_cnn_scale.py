"""The logit-scale split for the CNN (``python -m nets scale --model cnn``): Figure 5's sigma_max(J)
of the CNN's centered logits split into their scale and the sensitivity per unit of scale, for the
DA and IR models ``cnn.json`` chose, on the CNN profile it records.

The smoke run end to end: ``cnn --profile smoke --epochs 1`` (the recorded sizes differ from the
profile's own, so the scale step must read them back), then ``scale --model cnn``, which must
train nothing; bad input (no cnn.json, a group it lacks, a missing checkpoint) is one line, exit 1.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from pathlib import Path

import pytest
import torch

from nets.__main__ import main
from nets.experiments.cnn import cnn_sizes, recorded_sizes
from nets.results_io import write_json


@pytest.fixture(scope="module")
def smoke(tmp_path_factory, cnn_smoke, checkpoint_mtimes) -> tuple[Path, dict[str, int]]:
    """A CNN smoke folder after ``cnn --epochs 1`` (a copy of the shared one) then ``scale --model
    cnn`` (one thread), and its checkpoints as the cnn run left them."""
    root = tmp_path_factory.mktemp("cnn-scale")
    shutil.copytree(cnn_smoke / "smoke", root / "smoke")
    threads = torch.get_num_threads()
    try:
        before = checkpoint_mtimes(root / "smoke")
        assert main(["scale", "--model", "cnn", "--profile", "smoke", "--results", str(root), "--no-progress",
                     "--threads", "1"]) == 0
    finally:
        torch.set_num_threads(threads)
    return root / "smoke", before


def _read(folder: Path, name: str) -> dict:
    return json.loads((folder / f"{name}.json").read_text())


def test_recorded_sizes_read_back_the_sizes_cnn_json_was_computed_with():
    sizes = cnn_sizes("paper", epochs=20, nu_grid=[100, 10])
    record = json.loads(json.dumps({"profile": "paper", **asdict(sizes)}))  # as cnn.json stores it
    assert recorded_sizes({"cnn_sizes": record}) == sizes


def test_a_cnn_json_without_sizes_is_refused_by_name():
    with pytest.raises(ValueError, match="cnn_sizes"):
        recorded_sizes({})


def test_every_model_of_cnn_json_is_measured_at_its_chosen_nu(smoke):
    folder, _ = smoke
    sc, cnn = _read(folder, "cnn_scale"), _read(folder, "cnn")
    assert set(sc["groups"]) == set(cnn["spectral"]["groups"]) == {"r4", "t3"}
    for g, entry in sc["groups"].items():
        assert {k: m["key"] for k, m in entry["models"].items()} == \
               {k: m["key"] for k, m in cnn["spectral"]["groups"][g]["models"].items()}
        assert all(m["key"].startswith("cnn-") for m in entry["models"].values())


def test_it_runs_on_the_cnn_profile_cnn_json_records(smoke):
    folder, _ = smoke
    assert _read(folder, "cnn_scale")["meta"]["profile"] == _read(folder, "cnn")["meta"]["profile"]
    assert _read(folder, "cnn_scale")["meta"]["profile"]["epochs"] == 1


def test_the_recomputed_sigma_equals_the_one_cnn_json_recorded(smoke):
    for entry in _read(smoke[0], "cnn_scale")["groups"].values():
        for m in entry["models"].values():
            for r in m["runs"]:
                assert r["sigma_max_centered"] == pytest.approx(r["sigma_max_centered_recorded"], rel=1e-5)
                assert r["sigma_max_centered"] == pytest.approx(r["logit_scale"] * r["relative_sensitivity"],
                                                                rel=1e-12)


def test_the_cnn_scale_step_trains_nothing(smoke, checkpoint_mtimes):
    folder, before = smoke
    assert checkpoint_mtimes(folder) == before


def test_the_cnn_report_section_shows_the_split_and_report_redraws_its_figure(smoke):
    folder, _ = smoke
    figure = folder / "figures" / "cnn_scale.png"
    assert figure.stat().st_size > 0
    figure.unlink()
    assert main(["report", "--profile", "smoke", "--results", str(folder.parent)]) == 0
    assert figure.stat().st_size > 0
    report = (folder / "REPORT.md").read_text()
    assert "The CNN's Figure 5 split into logit scale" in report and "figures/cnn_scale.png" in report
    assert "scale-free form" not in report  # the centered form's reading: the CNN has no centered form


def test_without_cnn_json_it_says_what_to_run_first(tmp_path, capsys):
    assert main(["scale", "--model", "cnn", "--profile", "smoke", "--results", str(tmp_path), "--no-progress"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "python -m nets cnn --profile smoke" in err


def _copy(folder: Path, tmp_path: Path, checkpoints: bool) -> Path:
    copy = tmp_path / "smoke"
    shutil.copytree(folder, copy, ignore=None if checkpoints else shutil.ignore_patterns("checkpoints"))
    (copy / "cnn_scale.json").unlink()
    return copy


def test_a_group_cnn_json_lacks_is_named_with_the_command_that_makes_it(smoke, tmp_path, capsys):
    copy = _copy(smoke[0], tmp_path, checkpoints=False)
    cnn = _read(copy, "cnn")
    del cnn["spectral"]["groups"]["t3"]
    write_json(copy / "cnn.json", cnn)  # as a run that computed R4 alone would have written it
    capsys.readouterr()
    assert main(["scale", "--model", "cnn", "--profile", "smoke", "--results", str(tmp_path), "--no-progress"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no results for t3" in err and "--groups t3" in err
    assert not (copy / "cnn_scale.json").exists()


def test_a_missing_checkpoint_is_one_line_exit_1_and_nothing_is_written(smoke, tmp_path, capsys):
    copy = _copy(smoke[0], tmp_path, checkpoints=False)
    capsys.readouterr()
    assert main(["scale", "--model", "cnn", "--profile", "smoke", "--results", str(tmp_path), "--no-progress"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no checkpoint" in err and "evaluates only" in err
    assert not (copy / "cnn_scale.json").exists()
