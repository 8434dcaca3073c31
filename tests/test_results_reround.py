"""``python -m nets.results_io.reround``: saliency maps, images and t-SNE coordinates written with the
decimals they were rounded to, not float32's 17 digits, with no float32 value changed."""

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from nets.results_io import reround as reround_results
from nets.results_io import rounded, write_json

ROOT = Path(__file__).resolve().parents[1]


def _old_saliency(tmp_path: Path) -> Path:
    """A saliency.json as written before ``rounded``: float32 arrays rounded in float32."""
    rng = np.random.default_rng(0)
    maps = np.round(rng.random((2, 3, 4, 4)).astype(np.float32), 3)
    images = np.round(rng.normal(size=(3, 4, 4)).astype(np.float32), 2)
    similarity = rng.random((2, 3)).astype(np.float32)  # not rounded: keeps its digits
    return write_json(tmp_path / "saliency.json", {
        "meta": {"experiment": "saliency"},
        "groups": {"r4": {"images": images, "labels": [0, 1, 2],
                          "methods": {"DA": {"maps": maps, "similarity": similarity, "nu": None}}}}})


def test_rounded_gives_the_decimals_not_float32_digits():
    x = np.float32([0.12345, -0.5, 19.4139995])
    assert json.dumps(rounded(x, 3).tolist()) == "[0.123, -0.5, 19.414]"
    assert json.dumps(np.round(x, 3).tolist()) != "[0.123, -0.5, 19.414]"  # what float32 rounding writes


def test_old_files_get_their_decimals_and_keep_every_float32_value(tmp_path):
    path = _old_saliency(tmp_path)
    before, text_before = json.loads(path.read_text()), path.read_text()
    assert reround_results.main([str(path)]) == 0
    after = json.loads(path.read_text())
    assert len(path.read_text()) < len(text_before)
    for key in ("maps", "similarity"):
        old = np.asarray(before["groups"]["r4"]["methods"]["DA"][key], dtype=np.float32)
        new = np.asarray(after["groups"]["r4"]["methods"]["DA"][key], dtype=np.float32)
        assert np.array_equal(old, new)
    maps = np.asarray(after["groups"]["r4"]["methods"]["DA"]["maps"])
    assert np.array_equal(maps, np.round(maps, 3))
    assert np.array_equal(np.asarray(after["groups"]["r4"]["images"]), np.round(after["groups"]["r4"]["images"], 2))
    assert after["groups"]["r4"]["methods"]["DA"]["similarity"] == before["groups"]["r4"]["methods"]["DA"]["similarity"]


def test_a_second_run_changes_nothing(tmp_path, capsys):
    path = _old_saliency(tmp_path)
    reround_results.main([str(path)])
    text = path.read_text()
    assert reround_results.main([str(path), "--check"]) == 0
    assert path.read_text() == text and "already rounded" in capsys.readouterr().out


def test_check_reports_a_file_to_change_and_writes_nothing(tmp_path):
    path = _old_saliency(tmp_path)
    text = path.read_text()
    assert reround_results.main([str(path), "--check"]) == 1
    assert path.read_text() == text


def test_a_value_that_is_not_a_rounded_float32_is_refused_and_the_file_kept(tmp_path, capsys):
    path = _old_saliency(tmp_path)
    data = json.loads(path.read_text())
    data["groups"]["r4"]["methods"]["DA"]["maps"][0][0][0][0] = 0.1234567  # float64 digits, not a rounded float32
    write_json(path, data)  # as a run that wrote such a value would
    text = path.read_text()
    assert reround_results.main([str(path)]) == 2
    assert "groups.r4.methods.DA.maps: a value is neither a float32" in capsys.readouterr().err
    assert path.read_text() == text


def test_a_float32_value_that_rounding_would_change_is_refused_and_the_file_kept(tmp_path, capsys):
    """A float32 image value with more than the 2 decimals it is rounded to: rewriting it would change a
    committed number, and the new seal would hide the change, so the file is refused as it is."""
    path = _old_saliency(tmp_path)
    data = json.loads(path.read_text())
    data["groups"]["r4"]["images"][0][0][0] = float(np.float32(0.123456))
    write_json(path, data)
    text = path.read_text()
    assert reround_results.main([str(path)]) == 2
    assert "groups.r4.images: rounding to 2 decimals changes a float32 value" in capsys.readouterr().err
    assert path.read_text() == text


def test_a_json_list_is_a_one_line_error(tmp_path, capsys):
    (tmp_path / "list.json").write_text("[]")
    assert reround_results.main([str(tmp_path / "list.json")]) == 2
    assert "it holds a JSON list, not an experiment results file" in capsys.readouterr().err


def test_a_missing_file_is_a_one_line_error(tmp_path, capsys):
    assert reround_results.main([str(tmp_path / "nope.json")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {tmp_path / 'nope.json'}:") and err.count("\n") == 1


def test_the_committed_saliency_and_tsne_files_are_rounded():
    files = subprocess.run(["git", "ls-files", "*saliency.json", "*tsne.json"], cwd=ROOT, capture_output=True,
                           text=True, check=True).stdout.split()
    if not files:
        pytest.skip("not a git checkout with results")
    assert reround_results.main(["--check", *(str(ROOT / f) for f in files)]) == 0
