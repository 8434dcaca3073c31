"""Every cross-reference in a docstring of ours (``:mod:`nets.metrics```, ``:func:`nets.fetch_step.fetch```)
names something that exists: a module, or an attribute reached from one. A module split or a rename
must take its references along (``nets.train.generic`` once outlived the module)."""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
REF = re.compile(r":(?:mod|func|class|data|meth|attr|exc):`~?((?:nets|theory|benchmarks)\.[A-Za-z0-9_.]+)`")
SOURCES = [*sorted(ROOT.glob("nets/**/*.py")), *sorted(ROOT.glob("theory/*.py")), *sorted(ROOT.glob("benchmarks/*.py"))]


def resolves(ref: str) -> bool:
    """``ref`` is a module, or attributes reached from the longest importable module prefix."""
    parts = ref.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for name in parts[i:]:
            if not hasattr(obj, name):
                return False
            obj = getattr(obj, name)
        return True
    return False


def test_every_docstring_reference_resolves():
    refs = {(p.relative_to(ROOT).as_posix(), r) for p in SOURCES for r in REF.findall(p.read_text())}
    assert len(refs) > 100  # the pattern sees the references it guards
    assert sorted((path, r) for path, r in refs if not resolves(r)) == []


def test_a_reference_to_something_missing_does_not_resolve():
    assert resolves("nets.metrics.logit_invariance") and resolves("nets.train.stacks.GenericStack")
    assert not resolves("nets.train.generic") and not resolves("nets.metrics.no_such_measure")
