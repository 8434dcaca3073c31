"""One numbering of the paper's equations everywhere: DI is Eq. 1, LI is Eq. 2 (paper, Section 3.2)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# a name of LI (or DI) followed, within one clause, by the other one's equation number
WRONG = [
    re.compile(r"\b(LI|LI_f|logit invariance)\b[^;.]{0,80}?\(?Eq\. ?1\b(?!\s*-)"),
    re.compile(r"\b(DI|DI_f|distribution invariance|predictive-distribution invariance)\b[^;.]{0,80}?\(?Eq\. ?2\b"),
]


def _tracked_text_files() -> list[Path]:
    out = subprocess.run(["git", "ls-files", "*.py", "*.md"], cwd=ROOT, capture_output=True, text=True)
    return [ROOT / p for p in out.stdout.split()] if out.returncode == 0 else list(ROOT.rglob("*.py"))


def test_the_wrong_numbering_is_detected():
    old = "$LI_f$, the logit invariance error (Eq. 1, lower is more invariant); $DI_f$, the " \
          "predictive-distribution invariance error (Eq. 2, KL)"
    assert all(p.search(old) for p in WRONG)


def test_li_is_eq2_and_di_is_eq1_in_every_file():
    bad = []
    for path in _tracked_text_files():
        if path.resolve() == Path(__file__).resolve():  # its own example of the wrong numbering
            continue
        text = re.sub(r"\n\s*#\s*", " ", path.read_text(errors="replace"))  # join comment lines
        bad += [f"{path.relative_to(ROOT)}: {m.group(0)!r}" for p in WRONG for m in p.finditer(text)]
    assert not bad, bad
