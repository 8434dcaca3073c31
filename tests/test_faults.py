"""Faults met by a real run (issue 16.5), end to end through ``python -m nets`` on the smoke profile
(R4 only, seconds): Ctrl-C and SIGKILL mid-run, a damaged checkpoint, a damaged results JSON.
Each must give one clear line, lose nothing, and end, after a rerun, with the numbers of an
uninterrupted run."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nets.results_io import read_json, without_sitting

ROOT = Path(__file__).resolve().parents[1]
ARGS = ["table1", "--profile", "smoke", "--groups", "r4", "--no-progress", "--threads", "1"]


def _cmd(results: Path) -> list[str]:
    return [sys.executable, "-m", "nets", *ARGS, "--results", str(results)]


def _run(results: Path) -> subprocess.CompletedProcess:
    return subprocess.run(_cmd(results), cwd=ROOT, capture_output=True, text=True, timeout=600)


def _numbers(results: Path) -> dict:
    """table1.json without what legitimately differs between sittings (provenance, wall times)."""
    return without_sitting(read_json(results / "smoke" / "table1.json"))


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """An uninterrupted run."""
    results = tmp_path_factory.mktemp("reference")
    out = _run(results)
    assert out.returncode == 0, out.stderr
    return results


def _copy(reference: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "results"
    shutil.copytree(reference, dst)
    return dst


def _default_sigint() -> None:
    """In the child, before Python starts: Ctrl-C's default disposition. A shell starts a background
    job (``bash scripts/test.sh &``) with SIGINT ignored, its children inherit that, and Python then
    installs no KeyboardInterrupt handler, so the run would not see the test's Ctrl-C at all."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _interrupt_after_first_checkpoint(results: Path, sig: int) -> subprocess.CompletedProcess:
    proc = subprocess.Popen(_cmd(results), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_default_sigint)
    ckpts = results / "smoke" / "checkpoints"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None and not any(ckpts.glob("*.pt")):
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before its first checkpoint was seen"
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=300)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_ctrl_c_says_what_was_saved_exits_130_and_the_rerun_gives_the_same_numbers(reference, tmp_path):
    results = tmp_path / "results"
    out = _interrupt_after_first_checkpoint(results, signal.SIGINT)
    assert out.returncode == 130, out.stderr
    assert "Traceback" not in out.stderr and "KeyboardInterrupt" not in out.stderr
    lines = [ln for ln in out.stderr.splitlines() if ln.startswith("interrupted:")]
    assert len(lines) == 1 and "checkpoints" in lines[0] and "run the same command again" in lines[0]
    again = _run(results)
    assert again.returncode == 0, again.stderr
    assert _numbers(results) == _numbers(reference)


def test_sigterm_stops_a_run_as_ctrl_c_does_leaving_no_temporary_file(reference, tmp_path):
    """kill, timeout or a batch scheduler's end of a job: the interrupted-run line, exit 130, and the
    atomic writers' temporary files removed as they unwind."""
    results = tmp_path / "results"
    out = _interrupt_after_first_checkpoint(results, signal.SIGTERM)
    assert out.returncode == 130 and "Traceback" not in out.stderr, out.stderr
    assert [ln for ln in out.stderr.splitlines() if ln.startswith("interrupted:")]
    assert not [p for p in results.rglob("*") if p.name.endswith(".tmp")]
    again = _run(results)
    assert again.returncode == 0, again.stderr
    assert _numbers(results) == _numbers(reference)


def test_sigkill_mid_run_resumes_from_the_last_checkpoint_with_equal_numbers(reference, tmp_path):
    results = tmp_path / "results"
    out = _interrupt_after_first_checkpoint(results, signal.SIGKILL)
    assert out.returncode == -signal.SIGKILL
    kept = {p.name for p in (results / "smoke" / "checkpoints").glob("*.pt")}
    assert kept  # what was checkpointed before the kill is still there
    again = _run(results)
    assert again.returncode == 0, again.stderr
    assert _numbers(results) == _numbers(reference)


@pytest.mark.parametrize("damage", ["empty", "truncated", "garbage"])
def test_a_damaged_checkpoint_is_named_moved_aside_and_retrained(reference, tmp_path, damage):
    results = _copy(reference, tmp_path)
    ckpt = results / "smoke" / "checkpoints" / "r4-DA-e2-seed0.pt"
    data = ckpt.read_bytes()
    ckpt.write_bytes({"empty": b"", "truncated": data[: len(data) // 3], "garbage": os.urandom(4096)}[damage])
    out = _run(results)
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr
    said = [ln for ln in out.stderr.splitlines() if str(ckpt) in ln]
    assert len(said) == 1 and "from scratch" in said[0]
    assert (ckpt.parent / (ckpt.name + ".corrupt")).exists()  # kept for inspection
    assert ckpt.exists()  # retrained
    assert _numbers(results) == _numbers(reference)


def test_a_damaged_results_json_is_named_moved_aside_and_recomputed(reference, tmp_path):
    results = _copy(reference, tmp_path)
    path = results / "smoke" / "table1.json"
    path.write_text(path.read_text()[:200])  # truncated
    out = _run(results)
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr
    said = [ln for ln in out.stderr.splitlines() if str(path) in ln]
    assert len(said) == 1 and "moved it to table1.json.corrupt" in said[0]
    assert (path.parent / "table1.json.corrupt").exists()
    assert _numbers(results) == _numbers(reference)


def test_a_run_stopped_between_its_results_file_and_its_figures_has_them_drawn_by_the_rerun(tmp_path, monkeypatch,
                                                                                             main_one_thread):
    """The results file is written, then its figures: a stop in between left them missing (or an earlier
    sitting's, stale) for good, since the rerun keeps a complete file as it is and REPORT.md linked them."""
    from nets.__main__ import main
    from nets.results_io import drawing_marker

    def stop(*a, **k):
        raise KeyboardInterrupt  # Ctrl-C as the figures are drawn

    monkeypatch.setattr("nets.figures.figures_for", stop)
    assert main([*ARGS, "--results", str(tmp_path)]) == 130
    monkeypatch.undo()
    folder = tmp_path / "smoke"
    assert (folder / "table1.json").exists() and not (folder / "figures" / "table1.png").exists()
    assert drawing_marker(folder / "figures", "table1").exists()
    main_one_thread("reproduce", "--profile", "smoke", "--groups", "r4", "--results", str(tmp_path))
    assert (folder / "figures" / "table1.png").exists() and (folder / "figures" / "table1.pdf").exists()
    assert not drawing_marker(folder / "figures", "table1").exists()
    assert "not drawn" not in (folder / "REPORT.md").read_text()
