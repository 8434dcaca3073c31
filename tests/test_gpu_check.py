"""``scripts/gpu_check.sh``'s CPU path (``DEVICE=cpu PROFILE=smoke``), end to end.

The script is what a lent GPU machine runs once; its CPU path runs here so that the
script, the benchmark it calls and the extrapolation it writes cannot rot unnoticed.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import tarfile
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# The lent GPU machine has PyTorch, numpy, scipy, sympy, pytest, hypothesis, scikit-learn,
# matplotlib and tqdm, and nothing can be installed there: every optional extra of
# pyproject.toml that is not on that list is hidden from the script's CPU path
# (tests/bare_machine/sitecustomize.py), so that CI fails where the real run would.
NOT_ON_THE_GPU_MACHINE = ("captum", "torchvision", "ray", "jupytext", "nbclient", "nbconvert", "ipykernel",
                          "IPython", "jupyter_client", "jupyterlab")


@pytest.fixture(scope="module")
def check(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    out = tmp_path_factory.mktemp("gpu_check")
    env = {**os.environ, "DEVICE": "cpu", "PROFILE": "smoke", "OUT": str(out / "out"), "PACK": str(out / "pack"),
           "GIT_COMMIT": "0123abc", "RESULTS": str(out / "results"), "PYTHON": sys.executable, "BUDGET_S": "1200",
           "PYTHONPATH": str(ROOT / "tests" / "bare_machine"), "GI_HIDE_MODULES": ",".join(NOT_ON_THE_GPU_MACHINE)}
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "gpu_check.sh")], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=1500)
    return out / "out", proc


def test_the_cpu_path_finishes_and_every_stage_succeeds(check):
    out, proc = check
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    with open(out / "stages.tsv") as f:
        stages = {r["stage"]: r for r in csv.DictReader(f, delimiter="\t")}
    assert {"cuda_tests", "bench", "table1_r4"} <= set(stages)
    assert all(r["status"] == "ok" for r in stages.values()), stages
    assert all(float(r["seconds"]) > 0 for r in stages.values())


def test_the_cuda_tests_are_collected_and_skip_with_a_reason_without_cuda(check):
    out, _ = check
    suite = ET.parse(out / "cuda_tests.xml").getroot().find("testsuite")
    assert int(suite.get("tests")) > 0 and int(suite.get("skipped")) == int(suite.get("tests"))
    reasons = [s.get("message") for s in suite.iter("skipped")]
    assert all("no CUDA device" in r for r in reasons)


def test_the_benchmark_records_the_devices_matmul_rate_and_our_share(check):
    out, _ = check
    bench = json.loads((out / "cpu.json").read_text())
    assert bench["matmul"]["start"]["gflops_median"] > 0
    assert bench["training"]["DA"]["ours_1seed"]["pct_of_matmul"] > 0


def test_the_benchmark_says_it_finished_and_in_which_precision_it_timed(check):
    out, _ = check
    bench = json.loads((out / "cpu.json").read_text())
    assert bench["complete"] is True and bench["precision"] == "float32"
    assert bench["sections_done"][:3] == ["matmul", "training", "eval"]


def test_a_benchmark_stopped_mid_run_keeps_the_sections_it_finished(tmp_path, monkeypatch):
    """The stage limit of gpu_check.sh may stop bench.py: what it measured before stays on disk."""
    sys.path.insert(0, str(ROOT))
    from benchmarks import bench

    def stopped(*args, **kwargs):
        raise KeyboardInterrupt("the stage's time limit")

    monkeypatch.setattr(bench, "bench_eval", stopped)
    out = tmp_path / "cpu.json"
    with pytest.raises(KeyboardInterrupt):
        bench.main(["--quick", "--no-memory", "--n-train", "200", "--rounds", "1", "--threads", "1", "--out", str(out)])
    partial = json.loads(out.read_text())
    assert partial["complete"] is False and partial["sections_done"] == ["matmul", "training"]
    assert partial["training"]["DA"]["ours_1seed"]["samples_per_s"] > 0 and "eval" not in partial


def test_the_benchmark_records_the_cpus_model_and_flags(check):
    out, _ = check
    cpu = json.loads((out / "cpu.json").read_text())["environment"]["cpu"]
    assert cpu["model"] and isinstance(cpu["flags"], list) and cpu["logical_cpus"] >= 1


def test_the_benchmark_runs_without_captum_and_says_why_si_has_no_reference(check):
    out, _ = check
    si = json.loads((out / "cpu.json").read_text())["eval"]["SI"]
    assert si["ours"]["samples_per_s"] > 0
    assert si["reference"] is None and si["speedup"] is None
    assert "captum cannot be imported" in si["reference_skipped"]


def test_the_extrapolation_covers_the_whole_protocol_from_the_measured_stages(check):
    out, _ = check
    ex = json.loads((out / "protocol_extrapolation.json").read_text())
    table1 = next(s for s in ex["stages"] if s["stage"] == "table1_r4")
    assert table1["runs_trained"] > 0 and table1["train_s"] > 0
    # every stage ran on the CPU path, so nothing of the smoke protocol is left unmeasured
    assert ex["protocol"]["lower_bound"] is False
    assert ex["protocol"]["startup"]["basis"] == "measured once"
    assert ex["protocol"]["total_s"] == pytest.approx(ex["protocol"]["training"]["s"] + ex["protocol"]["evaluation"]["s"]
                                                      + ex["protocol"]["startup"]["s"], abs=0.2)
    assert (out / "results" / "smoke" / "table1.json").exists()


def test_the_environment_ties_the_run_to_code_cpu_and_settings(check):
    out, _ = check
    env = json.loads((out / "environment.json").read_text())
    assert env["profile"] == "smoke" and env["precision"] == "fp32" and env["budget_s"] == 1200
    assert env["git_commit"] and "flags" in env["cpu"] and "numpy" in env["versions"]


def test_pack_holds_everything_in_few_files_a_lent_machine_sends_back(check):
    """The lent machine sends back at most 8 files of its output folder, no more than 2 folders
    down: PACK holds OUT as one archive, and the four files the docs copy beside it."""
    out, _ = check
    pack = out.parent / "pack"
    files = sorted(p.name for p in pack.iterdir())
    assert files == sorted(["gpu_check.tar.gz", "stages.tsv", "environment.json", "cpu.json",
                            "protocol_extrapolation.json"])
    with tarfile.open(pack / "gpu_check.tar.gz") as tar:
        names = {n.removeprefix("./") for n in tar.getnames()}
    have = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert names >= have and "results/smoke/table1.json" in names and "table1_r4.log" in names
    assert (pack / "stages.tsv").read_bytes() == (out / "stages.tsv").read_bytes()


def test_the_environment_records_the_declared_commit_and_a_digest_of_the_code(check):
    out, _ = check
    env = json.loads((out / "environment.json").read_text())
    assert env["git_commit_declared"] == "0123abc" and len(env["nets_sha256"]) == 64


def test_without_git_the_records_say_no_commit_rather_than_changed_code(tmp_path):
    tree = tmp_path / "tree"
    shutil.copytree(ROOT / "nets", tree / "nets", ignore=shutil.ignore_patterns("__pycache__"))
    code = "from nets.results_io.provenance import code_version; print(code_version())"
    proc = subprocess.run([sys.executable, "-c", code], cwd=tree, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(tree), "GIT_CEILING_DIRECTORIES": str(tmp_path)})
    assert proc.stdout.strip() == "(None, None)", proc.stderr


def _refusal(tmp_path: Path, **settings: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DEVICE": "cpu", "PROFILE": "smoke", "OUT": str(tmp_path / "out"),
           "PYTHON": sys.executable, "TMPDIR": str(tmp_path), **settings}
    return subprocess.run(["bash", str(ROOT / "scripts" / "gpu_check.sh")], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("setting, says", [
    ("out_file", "is a file, not a folder"),
    ("results_used", "is not empty: an earlier run's checkpoints would be loaded"),
    ("python_without_torch", "cannot import torch"),
    ("missing_data_dir", "is not a folder"),
    ("pack_is_out", "PACK and OUT are one folder"),
])
def test_bad_settings_are_refused_in_one_line_before_anything_runs(tmp_path, setting, says):
    (tmp_path / "a_file").write_text("")
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "smoke").mkdir()
    settings = {"out_file": {"OUT": str(tmp_path / "a_file")},
                "results_used": {"RESULTS": str(tmp_path / "used")},
                "python_without_torch": {"PYTHON": "false"},
                "missing_data_dir": {"DATA_DIR": str(tmp_path / "nowhere")},
                "pack_is_out": {"PACK": str(tmp_path / "out")}}[setting]
    proc = _refusal(tmp_path, **settings)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("gpu_check: ") and says in proc.stderr
    assert not (tmp_path / "out" / "stages.tsv").exists()
    assert not list(tmp_path.glob("gpu_check_results.*"))  # no temporary RESULTS folder left behind


def test_a_budget_too_small_for_any_stage_skips_them_and_packs_what_it_has(tmp_path):
    """Every stage's limit is cut to the budget left less what the end keeps (FINAL_S, 30 s): with
    30 s in all, no stage starts; stages.tsv says so, and PACK has it after each stage, not only from
    the end (whose copies follow the archive, which cannot be written here: its name is a folder)."""
    (tmp_path / "pack" / "gpu_check.tar.gz").mkdir(parents=True)
    proc = _refusal(tmp_path, BUDGET_S="30", PACK=str(tmp_path / "pack"))
    assert proc.returncode == 3, proc.stderr  # no data: the data stage was skipped too
    with open(tmp_path / "pack" / "stages.tsv") as f:
        assert list(csv.DictReader(f, delimiter="\t")) == [{"stage": "data_fetch", "seconds": "0",
                                                            "status": "skipped_budget"}]
    assert (tmp_path / "pack" / "environment.json").exists()
