"""nets.results_io.slim: dropping table1.json's per-epoch histories keeps every other number, so
REPORT.md renders the same; the record names the full file by SHA-256 and git blob (the committed
12-seed file's blob is in this clone's history); other files and a second slimming are refused."""

from __future__ import annotations

import copy
import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from nets.report import render_report
from nets.results_io import load_results
from nets.results_io.seal import SEAL_FIELD
from nets.results_io.slim import drop_histories, git_blob_id, main

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def smoke_table1(tmp_path_factory) -> Path:
    from nets.__main__ import main as nets_main

    root = tmp_path_factory.mktemp("slim")
    assert nets_main(["table1", "--profile", "smoke", "--results", str(root), "--no-progress", "--threads", "1"]) == 0
    return root / "smoke"


def test_dropping_histories_keeps_every_other_number_and_the_report(tmp_path, smoke_table1):
    shutil.copytree(smoke_table1, tmp_path / "smoke", ignore=shutil.ignore_patterns("checkpoints"))
    path = tmp_path / "smoke" / "table1.json"
    full = json.loads(path.read_text())
    before = render_report(load_results(tmp_path / "smoke"))
    raw = path.read_bytes()
    assert main([str(path)]) == 0
    slim = json.loads(path.read_text())
    record = slim.pop("histories_dropped")
    expected = copy.deepcopy(full)
    del slim["meta"][SEAL_FIELD], expected["meta"][SEAL_FIELD]  # slimming re-seals the file
    for entry in expected["groups"].values():
        for method in entry["methods"].values():
            for run in method["runs"]:
                run["history"] = None
    assert slim == expected
    assert record["runs"] == sum(len(m["runs"]) for e in full["groups"].values() for m in e["methods"].values())
    assert record["full_sha256"] == hashlib.sha256(raw).hexdigest() and record["full_size"] == len(raw)
    assert render_report(load_results(tmp_path / "smoke")) == before


def test_the_blob_id_is_gits(tmp_path):
    f = tmp_path / "x.json"
    f.write_bytes(b'{"a": 1}\n')
    out = subprocess.run(["git", "hash-object", str(f)], check=True, capture_output=True, text=True).stdout.strip()
    assert git_blob_id(f.read_bytes()) == out


def test_other_files_and_a_second_slimming_are_refused_in_one_line(tmp_path, smoke_table1, capsys):
    other = tmp_path / "drift.json"
    other.write_text(json.dumps({"meta": {"experiment": "drift"}}))
    assert main([str(other)]) == 2
    assert "only table1.json's histories are dropped" in capsys.readouterr().err
    with pytest.raises(ValueError, match="already dropped"):
        drop_histories({"meta": {"experiment": "table1"}, "histories_dropped": {}}, b"")
    (tmp_path / "list.json").write_text("[]")
    assert main([str(tmp_path / "list.json")]) == 2
    assert "it holds a JSON list, not an experiment results file" in capsys.readouterr().err


def test_the_committed_slimmed_files_full_version_is_in_this_clones_history():
    for path in sorted((REPO / "results").rglob("table1.json")):
        record = json.loads(path.read_text()).get("histories_dropped")
        if record is None:
            continue
        full = subprocess.run(["git", "-C", str(REPO), "cat-file", "-p", record["full_git_blob"]], check=True,
                              capture_output=True).stdout
        assert hashlib.sha256(full).hexdigest() == record["full_sha256"], path
