"""benchmarks/audit_chunking.py compares like with like: its weight-tied contenders differ only in
how the audit chunks them, so their measures agree, and its JSON holds what docs/audit.md cites."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.audit_chunking import CONTENDERS, main  # noqa: E402


def test_divided_and_undivided_chunks_give_the_same_measures(tmp_path):
    out = tmp_path / "a.json"
    # 2 images of a 16-element group, chunks of 8: the divided audit runs chunks of 1 image, the undivided of 8
    assert main(["--n", "2", "--n-steps", "2", "--chunk-size", "8", "--threads", "1", "--out", str(out)]) == 0
    got = json.loads(out.read_text())
    assert set(got["rounds"][0]) == set(CONTENDERS)
    assert got["divided_vs_undivided_max_relative_difference"] < 1e-5
    assert got["settings"]["group_order"] == 16 and got["cpu"] and got["meta"]["command"]
    assert all(got["median"][c]["peak_bytes"] > 0 and got["median"][c]["seconds"] > 0 for c in CONTENDERS)
