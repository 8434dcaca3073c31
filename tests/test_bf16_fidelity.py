"""``benchmarks/bf16_fidelity.py``: a Table 1 number "moved" exactly when it differs from the
float32 one by more than k times its seed spread (oracle: the committed quick and paper files)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from benchmarks.bf16_fidelity import compare, spread

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def files():
    load = lambda p: json.loads((ROOT / "results" / p / "table1.json").read_text())  # noqa: E731
    return load("quick"), load("paper")


def test_identical_tables_move_nothing(files):
    quick, paper = files
    out = compare(quick, copy.deepcopy(quick), paper)
    assert out["moved"] == [] and out["n_numbers"] == 24 and out["groups_pending"] == []


@pytest.mark.parametrize("factor,moved", [(1.9, False), (2.1, True)])
def test_a_number_moves_beyond_k_spreads_only(files, factor, moved):
    quick, paper = files
    bf16 = copy.deepcopy(quick)
    s = spread("accuracy", 0.0, paper["groups"]["r4"]["methods"]["DA"]["accuracy"])
    bf16["groups"]["r4"]["methods"]["DA"]["accuracy"]["mean"] += factor * s
    assert compare(quick, bf16, paper, k=2.0)["moved"] == (["r4 DA accuracy"] if moved else [])


def test_li_spread_is_the_paper_coefficient_of_variation_times_the_quick_value(files):
    _, paper = files
    ref = paper["groups"]["r4"]["methods"]["DA"]["LI"]
    assert spread("LI", 5.0, ref) == pytest.approx(ref["std"] / ref["mean"] * 5.0)


def test_a_group_the_bf16_run_has_not_reached_is_pending_not_compared(files):
    quick, paper = files
    bf16 = copy.deepcopy(quick)
    del bf16["groups"]["t3"]
    out = compare(quick, bf16, paper)
    assert out["groups_pending"] == ["t3"] and out["n_numbers"] == 12
