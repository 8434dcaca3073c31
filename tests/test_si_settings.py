"""nets.experiments.si_settings: Table 1's SI under other saliency maps. A weight-tied model has SI = 1
under every map (its maps are exactly equivariant for any invariant baseline); the paper setting is
Table 1's SI; each claim's SI check is decided on the interval over seeds; end to end on the smoke
profile, the paper setting reproduces table1.json's per-seed SI."""

from __future__ import annotations

import json

import pytest
import torch

from nets.experiments.si_settings import BLACK, SETTINGS, si_values, summarize, table_rows
from nets.groups import R4
from nets.models import MLP, InvariantMLP
from nets.saliency_measure import saliency_invariance


@pytest.fixture(scope="module")
def data():
    g = torch.Generator().manual_seed(0)
    return torch.rand(6, 8, 8, generator=g), torch.randint(0, 3, (6,), generator=g)


def test_a_weight_tied_model_has_si_one_under_every_map(data):
    torch.manual_seed(0)
    wt = InvariantMLP(R4, (8, 8), 3, 16, 2).eval()
    values = si_values({"WT": [wt]}, *data, R4, n_steps=4)
    assert set(values) == set(SETTINGS)
    for name, v in values.items():
        assert v["WT"][0] == pytest.approx(1.0, abs=1e-5), name


def test_the_paper_setting_is_table1s_si_and_the_others_differ(data):
    torch.manual_seed(0)
    mlp = MLP((8, 8), 3, 16, 2).eval()
    values = si_values({"DA": [mlp]}, *data, R4, n_steps=4)
    assert values["paper"]["DA"][0] == float(saliency_invariance(mlp, *data, R4, n_steps=4))
    assert values["no threshold"]["DA"][0] != values["paper"]["DA"][0]


def test_the_black_baseline_is_the_smallest_pixel_unless_given(data):
    x, y = data
    torch.manual_seed(0)
    mlp = MLP((8, 8), 3, 16, 2).eval()
    black = {"black baseline": {"baseline": BLACK}}
    got = si_values({"DA": [mlp]}, x, y, R4, black, n_steps=4)["black baseline"]["DA"][0]
    assert got == float(saliency_invariance(mlp, x, y, R4, n_steps=4, baseline=float(x.min())))


def test_each_claims_si_check_is_decided_on_the_interval_over_seeds():
    s = summarize({"WT": [1.0, 1.0, 1.0, 1.0], "DA": [0.30, 0.32, 0.31, 0.29], "IR": [0.90, 0.99, 0.93, 0.97]})
    outcomes = {m: e["check"]["outcome"] for m, e in s["methods"].items()}
    assert outcomes == {"WT": "holds", "DA": "holds", "IR": "undecided"}
    assert s["IR_minus_DA"]["low"] > 0 and s["IR_minus_DA"]["mean"] == pytest.approx(0.6425)


def test_end_to_end_the_paper_setting_reproduces_table1s_per_seed_si(tmp_path, run_cli):
    from nets.experiments.profiles import get_profile
    from nets.experiments.si_settings import run_si_settings

    rc, _, err = run_cli("table1", "--profile", "smoke", "--results", str(tmp_path), "--no-progress")
    assert rc == 0, err
    two = {k: SETTINGS[k] for k in ("paper", "no smoothing")}
    result = run_si_settings(get_profile("smoke"), tmp_path, device="cpu", settings=two, progress=False)
    for g, entry in result["groups"].items():
        assert entry["paper_check"]["max_abs_difference"] < 1e-6, g
        assert set(entry["settings"]) == set(two)
    on_disk = json.loads((tmp_path / "smoke" / "si_settings.json").read_text())
    assert on_disk["meta"]["experiment"] == "si_settings" and len(table_rows(on_disk)) == 2 * len(result["groups"])
