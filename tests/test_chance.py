"""Reports of models that learned nothing say so (nets.chance): the MLP's REPORT.md, the CNN's section and
your data's report share one rule, a group whose best mean orbit accuracy lies within a tenth of the way
from chance to 100%."""

from __future__ import annotations

import math

import pytest

from nets.chance import untrained_groups, untrained_warning
from nets.report import render_report
from test_report import fake_results


def _table1_at(acc: float) -> dict:
    r = fake_results()
    for entry in r["table1"]["groups"].values():
        for m in entry["methods"].values():
            m["accuracy"]["mean"] = acc
            for run in m["runs"]:
                run["accuracy"] = acc
    return r


@pytest.mark.parametrize("classes, untrained, trained", [(9, 0.2, 0.2001), (10, 0.19, 0.1901), (2, 0.55, 0.5501)])
def test_a_tenth_of_the_way_from_chance_to_all_right_is_untrained_and_beyond_it_is_not(classes, untrained, trained):
    group = lambda acc: {"r4": {"methods": {"WT": {"accuracy": {"mean": acc}}}}}  # noqa: E731
    assert untrained_groups(group(untrained), classes) == {"r4": untrained}
    assert untrained_groups(group(trained), classes) == {}


def test_the_best_finite_model_decides_and_none_finite_is_untrained():
    groups = {"r4": {"methods": {"WT": {"accuracy": {"mean": None}}, "DA": {"accuracy": {"mean": 0.9}}}},
              "t3": {"methods": {"WT": {"accuracy": {"mean": math.nan}}, "DA": {"accuracy": {"mean": None}}}}}
    low = untrained_groups(groups, 9)
    assert low == {"t3": -math.inf}
    assert "(no finite mean orbit accuracy; chance 11.1% with 9 classes)" in untrained_warning(low, 9, "Train.")
    assert untrained_warning({}, 9, "Train.") == ""


def test_one_model_beyond_chance_is_enough_and_an_untrained_group_keeps_its_best_models_accuracy():
    groups = {"r4": {"methods": {"WT": {"accuracy": {"mean": 0.9}}, "IR": {"accuracy": {"mean": 0.12}}}},
              "t3": {"methods": {"WT": {"accuracy": {"mean": 0.15}}, "DA": {"accuracy": {"mean": 0.12}},
                                 "IR": {"accuracy": {"mean": 0.13}}}}}
    assert untrained_groups(groups, 9) == {"t3": 0.15}


def test_the_mlp_report_warns_where_no_model_learned_and_not_otherwise():
    text = render_report(_table1_at(0.12))
    assert ("> **Warning**: no model learned beyond chance in R4, T3 (best mean orbit accuracy 12.0%; chance 11.1% "
            "with 9 classes)") in text and "Train longer: profile `smoke` trains 2 epochs" in text
    assert "no model learned beyond chance" not in render_report(fake_results())
