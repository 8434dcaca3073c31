"""No benchmark or script replaces a committed result unless told to: their default output is
under the git-ignored ``build/``, and a file of ``benchmarks/results/`` or ``results/`` is written
only when ``--out`` names it (bench.py's rule, followed by every script with an output)."""

from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted([*ROOT.glob("benchmarks/*.py"), *ROOT.glob("scripts/*.py")])
#: A path into a results folder: ``ROOT / "results" / ...`` or a string such as ``"benchmarks/results/x.json"``.
RESULTS_PATH = re.compile(r'"results"\s*/|results/')
#: A name that holds the output path (out, OUT, out_path, OUTPUT, ...).
OUTPUT_NAME = re.compile(r"^(?:out|OUT)")


def default_outputs(source: str) -> list[tuple[int, str]]:
    """Every expression a script may write its results to by default: the ``default=`` of an
    ``add_argument("--out", ...)`` call, and the value assigned to a name starting with
    ``out``/``OUT``; as ``(line, source text)``, whatever lines they span."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "add_argument" and node.args \
                and isinstance(node.args[0], ast.Constant) and node.args[0].value == "--out":
            found += [(kw.value.lineno, ast.get_source_segment(source, kw.value)) for kw in node.keywords
                      if kw.arg == "default"]
        elif isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and OUTPUT_NAME.match(t.id) for t in targets):
                found.append((node.value.lineno, ast.get_source_segment(source, node.value)))
    return found


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_no_default_output_lies_under_a_results_folder(path):
    bad = [f"{path.name}:{line}: {text}" for line, text in default_outputs(path.read_text())
           if RESULTS_PATH.search(text or "")]
    assert not bad, bad


def test_the_check_sees_a_default_spread_over_lines_and_a_plain_string():
    source = ('ap.add_argument("--out", type=Path,\n'
              '                default=ROOT / "benchmarks" / "results" / "x.json")\n'
              'OUT_FILE = "results/paper/y.json"\n'
              'out = args.out or ROOT / "build" / "bench" / "z.json"\n')
    hits = [text for _, text in default_outputs(source) if RESULTS_PATH.search(text)]
    assert sorted(hits) == ['"results/paper/y.json"', 'ROOT / "benchmarks" / "results" / "x.json"']


def test_the_default_output_folder_is_git_ignored():
    for folder in ("build/bench/x.json", "build/audit/x.json"):
        rc = subprocess.run(["git", "check-ignore", "-q", folder], cwd=ROOT).returncode
        if rc == 128:
            pytest.skip("not a git checkout")
        assert rc == 0, folder
