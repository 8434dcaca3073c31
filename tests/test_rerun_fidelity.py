"""``benchmarks/rerun_fidelity.py``: Table 1 of a rerun of one protocol against the first run."""

from __future__ import annotations

import copy
import json

import pytest

from benchmarks.rerun_fidelity import compare, main
from nets.experiments.profiles import get_profile


def _entry(values: dict[str, list[float]], nu: float | None = None) -> dict:
    runs = [{"seed": s, **{m: v[s] for m, v in values.items()}} for s in range(len(next(iter(values.values()))))]
    summary = {m: {"mean": sum(v) / len(v), "std": (sum((x - sum(v) / len(v)) ** 2 for x in v) / len(v)) ** 0.5}
               for m, v in values.items()}
    return {"nu": nu, "runs": runs, **summary}


def _table1(shift: float = 0.0, ir_nu: float = 100.0, grid=(1.0, 100.0)) -> dict:
    base = {"accuracy": [0.80, 0.82, 0.81, 0.83], "LI": [20.0, 25.0, 30.0, 22.0], "DI": [0.1, 0.2, 0.15, 0.12],
            "SI": [0.40, 0.42, 0.45, 0.41]}
    moved = {m: [x + shift for x in v] for m, v in base.items()}
    profile = get_profile("paper").with_dataset("fmnist").with_nu_grid("logit", grid).to_dict()
    return {"meta": {"profile": profile, "git_commit": "x", "cpu": {"model": "test"}},
            "groups": {"t3": {"methods": {"WT": _entry(base), "DA": _entry(moved), "IR": _entry(base, ir_nu)},
                              "nu_selection": {"grid": list(grid), "si": [0.7, 0.9][:len(grid)],
                                               "accuracy": [0.85, 0.78][:len(grid)]}}}}


def test_a_run_against_itself_moves_nothing():
    out = compare(_table1(), _table1())
    assert out["rows"] and all(r["b_minus_a"] == 0 and r["z"] == 0 for r in out["rows"])


def test_a_shift_common_to_every_seed_is_measured_with_its_interval():
    out = compare(_table1(), _table1(shift=0.01))
    da = [r for r in out["rows"] if r["method"] == "DA"]
    wt = [r for r in out["rows"] if r["method"] == "WT"]
    assert all(r["b_minus_a"] == pytest.approx(0.01) and r["low"] == pytest.approx(r["high"]) for r in da)
    assert all(r["b_minus_a"] == 0 for r in wt)


def test_ir_at_another_nu_is_not_compared():
    out = compare(_table1(ir_nu=100.0), _table1(ir_nu=300.0, grid=(100.0, 300.0)))
    assert {r["method"] for r in out["rows"]} == {"WT", "DA"}


def test_the_nu_search_is_compared_at_the_nus_both_tried():
    out = compare(_table1(grid=(1.0, 100.0)), _table1(ir_nu=100.0, grid=(100.0, 300.0)))
    assert [r["nu"] for r in out["nu_search"]] == [100.0]
    assert out["nu_search"][0]["val_si"] == [0.9, 0.7]


def test_runs_of_another_protocol_are_refused():
    other = _table1()
    other["meta"]["profile"]["epochs"] = 25
    with pytest.raises(ValueError, match="differ in epochs"):
        compare(_table1(), other)


def test_the_cli_writes_the_comparison_and_refuses_other_protocols_in_one_line(tmp_path, capsys):
    a, b, out = tmp_path / "a.json", tmp_path / "b.json", tmp_path / "out.json"
    a.write_text(json.dumps(_table1()))
    b.write_text(json.dumps(_table1(shift=0.01)))
    assert main(["--a", str(a), "--b", str(b), "--out", str(out)]) == 0
    assert json.loads(out.read_text())["provenance"]["a"]["git_commit"] == "x"
    other = copy.deepcopy(_table1())
    other["meta"]["profile"]["seeds"] = [0]
    b.write_text(json.dumps(other))
    assert main(["--a", str(a), "--b", str(b)]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
