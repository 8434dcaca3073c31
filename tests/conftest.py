"""Fixtures shared by the CLI tests, and the smoke run that the centered and scale tests share."""

from __future__ import annotations

import hashlib
import shutil
import sys
from pathlib import Path

import pytest

from nets.__main__ import main
from nets.results_io import EXPERIMENTS


@pytest.fixture
def user_models(tmp_path, monkeypatch):
    """``user_models(name, source)``: a module ``name`` of model factories, written to a folder of its
    own outside the package and importable (as a user's ``--model PKG.MODULE:FACTORY`` would be);
    returns that folder."""
    def write(name: str, source: str) -> Path:
        d = tmp_path / "usermods"
        d.mkdir(exist_ok=True)
        (d / f"{name}.py").write_text(source)
        monkeypatch.syspath_prepend(str(d))
        sys.modules.pop(name, None)
        return d
    return write


@pytest.fixture
def quick_table1_drift(tmp_path) -> Path:
    """``<tmp>/quick/`` holding copies of the committed quick profile's ``table1.json`` and
    ``drift.json`` (sealed as committed), and nothing else."""
    out = tmp_path / "quick"
    out.mkdir()
    for name in ("table1.json", "drift.json"):
        shutil.copy(Path(__file__).resolve().parents[1] / "results" / "quick" / name, out / name)
    return out


@pytest.fixture
def no_data(monkeypatch):
    """Fail the test if any experiment starts loading data."""
    import nets.data

    def refuse(*a, **k):
        raise AssertionError("data was loaded")

    # import every experiment first: one imported while nets.data is patched would keep `refuse` for good
    mods = [__import__(f"nets.experiments.{name}", fromlist=["x"]) for name in EXPERIMENTS]
    monkeypatch.setattr(nets.data, "load_splits", refuse)
    for mod in mods:
        if hasattr(mod, "load_splits"):
            monkeypatch.setattr(mod, "load_splits", refuse)


@pytest.fixture
def run_cli(capsys):
    """``run_cli(*argv) -> (exit code, stdout, stderr)`` of ``python -m nets *argv``, in process
    (argparse's own exits, ``--help`` included, give their code)."""
    def run(*argv: str) -> tuple[int, str, str]:
        try:
            rc = main(list(argv))
        except SystemExit as e:
            rc = e.code
        out = capsys.readouterr()
        return rc, out.out, out.err
    return run


@pytest.fixture
def tree_digest():
    """``tree_digest(folder) -> {relative path: sha256}`` of every file under ``folder``: equal
    before and after a command means it changed, added and removed nothing there."""
    def digest(folder: Path) -> dict[str, str]:
        return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(Path(folder).rglob("*")) if p.is_file()}
    return digest


def _checkpoint_mtimes(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in (Path(folder) / "checkpoints").glob("*.pt")}


@pytest.fixture(scope="session")
def checkpoint_mtimes():
    """``checkpoint_mtimes(folder) -> {name: mtime_ns}`` of ``<folder>/checkpoints/*.pt``: equal
    before and after a command means it trained (and rewrote) nothing there."""
    return _checkpoint_mtimes


def _main_one_thread(*argv: str) -> None:
    """``python -m nets *argv --no-progress --threads 1`` in process, which must succeed; torch's thread
    count is restored afterwards (the command sets it for the process)."""
    import torch

    threads = torch.get_num_threads()
    try:
        assert main([*argv, "--no-progress", "--threads", "1"]) == 0
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def main_one_thread():
    """``main_one_thread(*argv)``: a command run in process on one thread, asserted to succeed, torch's
    thread count restored (for fixtures that build a results folder)."""
    return _main_one_thread


@pytest.fixture(scope="session")
def table1_smoke(tmp_path_factory) -> Path:
    """A results root after ``table1 --profile smoke`` (one thread): ``<root>/smoke/table1.json`` and
    Table 1's checkpoints; shared by the evaluation-only commands' tests (tests/test_per_class_experiment.py,
    tests/test_between.py), each of which copies ``<root>/smoke`` before writing into it."""
    root = tmp_path_factory.mktemp("table1-smoke")
    _main_one_thread("table1", "--profile", "smoke", "--results", str(root))
    return root


@pytest.fixture(scope="session")
def cnn_smoke(tmp_path_factory) -> Path:
    """A results root after ``cnn --profile smoke --epochs 1`` (one thread): ``<root>/smoke/cnn.json``
    and the CNN's checkpoints; shared by tests/test_cnn_scale.py and tests/test_si_settings.py, each of
    which copies ``<root>/smoke`` before writing into it."""
    root = tmp_path_factory.mktemp("cnn-smoke")
    _main_one_thread("cnn", "--profile", "smoke", "--epochs", "1", "--results", str(root))
    return root


@pytest.fixture(scope="session")
def centered_smoke(tmp_path_factory) -> tuple[Path, dict[str, int]]:
    """``<tmp>/smoke/`` after ``spectral`` then ``centered`` at smoke size (one thread), and the
    checkpoints (name -> mtime) that were there before ``centered`` ran; shared by
    tests/test_centered.py and tests/test_scale_experiment.py (which adds ``scale.json``)."""
    root = tmp_path_factory.mktemp("results")
    _main_one_thread("spectral", "--profile", "smoke", "--results", str(root))
    before = _checkpoint_mtimes(root / "smoke")
    _main_one_thread("centered", "--profile", "smoke", "--results", str(root))
    return root / "smoke", before


@pytest.fixture(scope="session")
def detached_smoke(tmp_path_factory, centered_smoke) -> Path:
    """``<tmp>/smoke/`` with the centered smoke folder's ``spectral.json`` (DA's and the paper forms'
    numbers) and then ``detached`` at smoke size (one thread): its own folder, so no centered.json."""
    root = tmp_path_factory.mktemp("detached")
    (root / "smoke").mkdir()
    (root / "smoke" / "spectral.json").write_bytes((centered_smoke[0] / "spectral.json").read_bytes())
    _main_one_thread("detached", "--profile", "smoke", "--results", str(root))
    return root / "smoke"
