"""The Proposition 3.1 report, ``python -m theory.spectral_flow``: exit status, JSON, figure.

The full CLI runs once per module (a subprocess, as a user would run it); the failure paths
run either in-process through ``main(checks=...)`` or as a short subprocess restricted with
``--only``.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from theory import spectral_flow as sf
from theory.checks import CheckResult, at_most, exceeds

ROOT = Path(__file__).resolve().parents[1]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def run_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "theory.spectral_flow", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def full_run(tmp_path_factory: pytest.TempPathFactory
             ) -> tuple[subprocess.CompletedProcess[str], Path, Path]:
    out = tmp_path_factory.mktemp("spectral_flow")
    json_path, png_path = out / "report.json", out / "flow.png"
    proc = run_cli("--seed", "0", "--json", str(json_path), "--plot", str(png_path))
    return proc, json_path, png_path


# ---------------------------------------------------------------------------------------
# The full run
# ---------------------------------------------------------------------------------------
def test_cli_exits_zero_when_every_check_passes(full_run) -> None:
    proc, _, _ = full_run
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def test_cli_json_lists_every_named_check_as_passed(full_run) -> None:
    _, json_path, _ = full_run
    doc = json.loads(json_path.read_text())
    names = [c["name"] for c in doc["checks"]]
    assert names == list(sf.default_checks(sf.Config(seed=0)))
    assert [c["name"] for c in doc["checks"] if not c["passed"]] == []
    assert doc["passed"] is True and doc["n_failed"] == 0 and doc["n_checks"] == len(names)


def test_every_tolerance_of_the_report_is_far_below_a_real_discrepancy(full_run) -> None:
    """The report's residual and bound tolerances are rounding and integrator allowances, at most
    1e-6 on the default instances: a careless edit that loosens one by orders of magnitude (the
    expm constant times 1e12, a bound tolerance times 1e6) fails here, not silently."""
    _, json_path, _ = full_run
    loose = {c["name"]: c["tolerance"] for c in json.loads(json_path.read_text())["checks"]
             if c["kind"] != "counterexample" and not c["tolerance"] <= 1e-6}
    assert loose == {}


def test_cli_json_records_versions_seed_and_config(full_run) -> None:
    _, json_path, _ = full_run
    doc = json.loads(json_path.read_text())
    assert {"python", "numpy", "scipy", "sympy"} <= set(doc["versions"])
    assert doc["seed"] == 0 and doc["config"]["seed"] == 0
    assert doc["config"]["image_groups"] == ["r4", "t3"]


def test_cli_json_checks_carry_value_tolerance_and_kind(full_run) -> None:
    _, json_path, _ = full_run
    for c in json.loads(json_path.read_text())["checks"]:
        assert c["kind"] in ("residual", "bound", "counterexample")
        assert isinstance(c["value"], float) and isinstance(c["tolerance"], float), c


def test_cli_prints_a_pass_line_for_every_check(full_run) -> None:
    proc, json_path, _ = full_run
    lines = proc.stdout.splitlines()
    for name in (c["name"] for c in json.loads(json_path.read_text())["checks"]):
        assert any(line.startswith("PASS") and f" {name} " in line for line in lines), name


def test_cli_writes_png_figure(full_run) -> None:
    _, _, png_path = full_run
    assert png_path.read_bytes()[:8] == PNG_MAGIC


def test_cli_leaves_no_temporary_files(full_run) -> None:
    _, json_path, png_path = full_run
    assert sorted(p.name for p in json_path.parent.iterdir()) == sorted([json_path.name, png_path.name])


# ---------------------------------------------------------------------------------------
# Failure paths
# ---------------------------------------------------------------------------------------
def _ok() -> CheckResult:
    return at_most("ok", 0.0, 1.0)


def _bad() -> CheckResult:
    return at_most("bad", 2.0, 1.0)


def _raises() -> CheckResult:
    raise RuntimeError("boom")


def test_failing_check_makes_main_return_nonzero(tmp_path: Path) -> None:
    assert sf.main(["--json", str(tmp_path / "r.json")], checks={"ok": _ok, "bad": _bad}) == 1


def test_failing_check_is_recorded_as_failed_in_json(tmp_path: Path) -> None:
    sf.main(["--json", str(tmp_path / "r.json")], checks={"ok": _ok, "bad": _bad})
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["passed"] is False and doc["n_failed"] == 1
    assert [c["name"] for c in doc["checks"] if not c["passed"]] == ["bad"]


def test_passing_checks_make_main_return_zero() -> None:
    assert sf.main([], checks={"ok": _ok}) == 0


def test_crashing_check_is_reported_as_a_failure_not_a_crash(capsys: pytest.CaptureFixture[str]) -> None:
    assert sf.main([], checks={"ok": _ok, "crash": _raises}) == 1
    assert "FAIL  crash" in capsys.readouterr().out


def test_cli_process_exits_nonzero_when_tolerances_are_zeroed() -> None:
    """A real failure through the CLI: with every tolerance scaled to 0, a floating-point
    residual (expm versus the closed form, about 1e-15) no longer passes."""
    proc = run_cli("--only", "closed_form_vs_expm", "--tolerance-scale", "0")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "FAIL  closed_form_vs_expm" in proc.stdout


def test_cli_rejects_an_only_pattern_that_selects_nothing() -> None:
    proc = run_cli("--only", "no_such_check")
    assert proc.returncode == 2 and "matches no check" in proc.stderr


# ---------------------------------------------------------------------------------------
# Pieces of the report
# ---------------------------------------------------------------------------------------
def test_same_seed_draws_identical_instances() -> None:
    a, b = sf.make_instances(sf.Config(seed=7)), sf.make_instances(sf.Config(seed=7))
    for field in ("W0", "x", "G", "X", "Gs", "y", "W0_images"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    np.testing.assert_array_equal(a.images["r4"], b.images["r4"])


def test_different_seeds_draw_different_instances() -> None:
    a, b = sf.make_instances(sf.Config(seed=0)), sf.make_instances(sf.Config(seed=1))
    assert not np.array_equal(a.W0, b.W0) and not np.array_equal(a.X, b.X)


def test_same_seed_gives_identical_check_results() -> None:
    cfg = sf.Config(seed=3)
    runs = [sf.run_checks(sf.select_checks(sf.default_checks(cfg), ["dataset_", "gd_", "task_"]))[0]
            for _ in range(2)]
    assert [r.to_dict() for r in runs[0]] == [r.to_dict() for r in runs[1]]


def test_every_check_name_matches_its_result_name() -> None:
    """The dict keys (used by ``--only``) are the names the results report (numeric part)."""
    checks = sf.select_checks(sf.default_checks(sf.Config()), ["dataset_", "gd_", "image_t3",
                                                              "closed_form_vs", "task_"])
    results, _ = sf.run_checks(checks)
    assert [r.name for r in results] == list(checks)


def test_plot_writes_pdf_when_suffix_is_pdf(tmp_path: Path) -> None:
    cfg = sf.Config()
    sf.plot_flow(cfg, sf.make_instances(cfg), tmp_path / "flow.pdf")
    assert (tmp_path / "flow.pdf").read_bytes()[:5] == b"%PDF-"


def test_json_write_replaces_existing_file_without_leftovers(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_text("old")
    sf.write_json_atomic({"a": 1}, path)
    assert json.loads(path.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_nan_value_fails_every_kind_of_check() -> None:
    nan = float("nan")
    assert not at_most("r", nan, 1.0).passed
    assert not at_most("b", nan, 1.0, kind="bound").passed
    assert not exceeds("c", nan, 0.0).passed


def test_counterexample_passes_only_strictly_above_its_threshold() -> None:
    assert exceeds("c", 1.5, 1.0).passed and not exceeds("c", 1.0, 1.0).passed


def test_zero_tolerance_scale_fails_a_nonzero_residual_but_keeps_an_exact_one() -> None:
    results, _ = sf.run_checks({"exact": lambda: at_most("exact", 0.0, 1e-12),
                                "rounded": lambda: at_most("rounded", 1e-16, 1e-12)},
                               tolerance_scale=0.0)
    assert [r.passed for r in results] == [True, False]


# ---------------------------------------------------------------------------------------
# The committed report and the guard over it
# ---------------------------------------------------------------------------------------
COMMITTED = ROOT / "results" / "theory" / "spectral_flow.json"


def test_cli_json_records_the_command_commit_and_cpu(full_run) -> None:
    prov = json.loads(full_run[1].read_text())["provenance"]
    assert prov["command"].startswith("python -m theory.spectral_flow --seed 0 --json ")
    assert {"model", "flags", "logical_cpus"} <= set(prov["cpu"]) and "git_dirty" in prov


def test_committed_report_holds_every_current_check_each_passed_at_seed_0() -> None:
    doc = json.loads(COMMITTED.read_text())
    cfg = sf.Config()
    assert doc["seed"] == 0 and doc["passed"] and all(c["passed"] for c in doc["checks"])
    assert [c["name"] for c in doc["checks"]] == list(sf.default_checks(cfg, sf.make_instances(cfg)))


def test_committed_report_was_written_by_committed_code() -> None:
    prov = json.loads(COMMITTED.read_text())["provenance"]
    assert prov["git_dirty"] is False and len(prov["git_commit"]) == 40
    assert prov["command"] in (f"python -m theory.spectral_flow --seed 0 --json results/theory/spectral_flow.json{o}"
                               for o in ("", " --overwrite"))


def test_a_fresh_run_reproduces_the_committed_counterexamples(full_run) -> None:
    fresh = {c["name"]: c for c in json.loads(full_run[1].read_text())["checks"]}
    for c in json.loads(COMMITTED.read_text())["checks"]:
        assert fresh[c["name"]]["passed"] == c["passed"], c["name"]
        if c["kind"] == "counterexample":
            assert fresh[c["name"]]["value"] == pytest.approx(c["value"], rel=1e-4), c["name"]  # BLAS and CPU aside
    committed = {c["name"]: c for c in json.loads(COMMITTED.read_text())["checks"]}
    for name in ("momentum_unsafe_steps", "momentum_can_grow_sigma_max"):  # findings.md cites their details
        assert fresh[name]["detail"] == committed[name]["detail"]


def test_findings_cite_the_committed_momentum_numbers() -> None:
    checks = {c["name"]: c for c in json.loads(COMMITTED.read_text())["checks"]}
    lo, hi = map(float, re.search(r"\(\[([\d.]+), ([\d.]+)\]\)", checks["momentum_unsafe_steps"]["detail"]).groups())
    findings = (ROOT / "docs" / "findings.md").read_text()
    assert f"between {lo:.3f} and {hi:.3f}" in findings
    assert f"raises sigma_max by {round(100 * checks['momentum_can_grow_sigma_max']['value'])}%" in findings
    kl_grows = re.search(r"sigma_max\(C W\) ([\d.]+) -> ([\d.]+)", checks["kl_can_grow_sigma_max"]["detail"])
    centered = re.search(r"sigma_max\(W\) ([\d.]+) -> ([\d.]+)", checks["centered_can_grow_sigma_max"]["detail"])
    assert "raises sigma_max(C W) from {:.2f} to {:.2f}".format(*map(float, kl_grows.groups())) in findings
    assert "takes sigma_max(W) from {:.2f} to {:.2f}".format(*map(float, centered.groups())) in findings


def _commit(repo: Path, name: str, text: str) -> Path:
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(repo)]
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / name).write_text(text)
    subprocess.run([*git, "add", name], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "report"], check=True)
    return repo / name


def test_writing_over_a_committed_report_is_refused_and_leaves_it(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    path = _commit(tmp_path, "r.json", "committed\n")
    with pytest.raises(SystemExit) as exc:
        sf.main(["--json", str(path), "--only", "symbolic_gradient_n2_m2"])
    assert exc.value.code == 2 and path.read_text() == "committed\n"
    assert "the repository tracks this file" in capsys.readouterr().err


def test_overwrite_replaces_a_committed_report(tmp_path: Path) -> None:
    path = _commit(tmp_path, "r.json", "committed\n")
    assert sf.main(["--json", str(path), "--only", "symbolic_gradient_n2_m2", "--overwrite"]) == 0
    assert json.loads(path.read_text())["n_checks"] == 1
