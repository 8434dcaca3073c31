"""What the documentation names exists: every file of ours it cites (``nets/metrics.py``,
``scripts/gpu_check.sh``) and every test it gives as the evidence for a behaviour
(``tests/test_groups.py::test_as_group_accepts_a_group_or_its_name``). A module split or a renamed
test must take its doc references along."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

from test_docstring_references import resolves  # one resolver for docstrings and docs

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", ROOT / "benchmarks" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FILE = re.compile(r"\b((?:nets|theory|benchmarks|tests|verify|scripts|notebooks)/[A-Za-z0-9_/]+\.(?:py|sh))\b")
TEST = re.compile(r"\b((?:tests|verify)/test_[A-Za-z0-9_]+\.py)::([A-Za-z0-9_]+)")


def _texts() -> dict[str, str]:
    return {p.relative_to(ROOT).as_posix(): p.read_text() for p in DOCS if p.exists()}


def _functions(path: Path) -> set[str]:
    return {n.name for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.FunctionDef)}


def test_every_file_the_docs_cite_exists():
    missing = sorted({(doc, f) for doc, text in _texts().items() for f in FILE.findall(text)
                      if not (ROOT / f).exists()})
    assert missing == []


def test_every_test_the_docs_give_as_evidence_exists():
    missing = sorted({(doc, f"{f}::{name}") for doc, text in _texts().items() for f, name in TEST.findall(text)
                      if not (ROOT / f).exists() or name not in _functions(ROOT / f)})
    assert missing == []


def test_the_checks_see_the_references_they_guard():
    texts = "\n".join(_texts().values())
    assert len(FILE.findall(texts)) > 20 and len(TEST.findall(texts)) > 5


DOTTED = re.compile(r"\bnets(?:\.[A-Za-z_][A-Za-z0-9_]*)+")


def _dotted_names() -> set[tuple[str, str]]:
    """``nets.X.Y`` names in the docs' code spans, with the doc naming each."""
    return {(doc, name) for doc, text in _texts().items() for span in re.findall(r"`([^`]+)`", text)
            for name in DOTTED.findall(span)}


def test_every_dotted_name_the_docs_give_exists():
    assert len(_dotted_names()) > 30
    assert sorted((doc, name) for doc, name in _dotted_names() if not resolves(name)) == []


def test_a_dotted_name_one_level_down_works_after_a_bare_import_nets():
    # `nets.class_accuracy.class_breakdown`, `nets.train.train_runs`: the package imports its submodules on use
    code = ("import nets; nets.class_accuracy.class_breakdown; nets.train.train_runs; nets.image_file.load_split_file;"
            " print(hasattr(nets, 'no_such_module'), 'train' in dir(nets), '__main__' in dir(nets))")
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert (run.returncode, run.stdout.strip()) == (0, "False True False"), run.stderr
