"""No benchmark or script replaces a committed result unless told to: their default output is
under the git-ignored ``build/``, and a file of ``benchmarks/results/`` or ``results/`` is written
only when ``--out`` names it (bench.py's rule, followed by every script with an output)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted([*ROOT.glob("benchmarks/*.py"), *ROOT.glob("scripts/*.py")])
#: A path built under a results folder: ``ROOT / "results" / ...`` or ``... / "benchmarks" / "results" / ...``.
RESULTS_PATH = re.compile(r'"results"\s*/')
#: An output: the --out option, or a name for the file written (out, OUT, out_path, ...).
OUTPUT = re.compile(r'"--out"|\b(?:out|OUT)\w*\s*=')


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_no_default_output_lies_under_a_results_folder(path):
    bad = [f"{path.name}:{i}: {line.strip()}" for i, line in enumerate(path.read_text().splitlines(), 1)
           if RESULTS_PATH.search(line) and OUTPUT.search(line)]
    assert not bad, bad


def test_the_default_output_folder_is_git_ignored():
    for folder in ("build/bench/x.json", "build/audit/x.json"):
        rc = subprocess.run(["git", "check-ignore", "-q", folder], cwd=ROOT).returncode
        if rc == 128:
            pytest.skip("not a git checkout")
        assert rc == 0, folder
