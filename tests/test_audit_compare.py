"""nets.audit_compare: two models on the same images, B against A per measure with a paired bootstrap
interval over the samples and a direction. Oracles: a model against itself (no effect, a degenerate
interval), a model against its own logits scaled by a constant (exact ratios), each model's own numbers
against nets.auditing.audit, and a weight-tied model against an unconstrained one (the paper's claim)."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch
from scipy import stats
from torch import nn

from nets.audit_compare import EFFECTS, MIN_DIRECTION_SAMPLES, compare, compare_samples, direction
from nets.auditing import MEASURES, Estimate, audit, sample_measures
from nets.compare_effect import Disagreement, Effect
from nets.groups import R4
from nets.models import MLP, InvariantMLP
from nets.sample_bootstrap import paired_bootstrap, ratio_of_means, share_difference, share_mean

SIZES = dict(n_steps=4, n_resamples=300)


@pytest.fixture(scope="module")
def data():
    g = torch.Generator().manual_seed(0)
    return torch.rand(24, 8, 8, generator=g), torch.randint(0, 3, (24,), generator=g)


def mlp(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return MLP((8, 8), 3, 16, 2).eval()


class Scaled(nn.Module):
    """The logits of ``h`` times ``c``."""

    def __init__(self, h: nn.Module, c: float):
        super().__init__()
        self.h, self.c = h, c

    def forward(self, x):
        return self.c * self.h(x)


class Constant(nn.Module):
    """The same logits for every input: LI = DI = 0 exactly."""

    def forward(self, x):
        return torch.tensor([1.0, 0.0, -1.0]).expand(x.shape[0], 3) + 0 * x.flatten(1)[:, :1]


def test_every_measure_is_compared_as_a_difference_or_a_ratio(data):
    c = compare(mlp(0), mlp(1), *data, R4, **SIZES)
    assert list(c.effects) == list(MEASURES) and set(EFFECTS) == set(MEASURES)
    assert {e.kind for k, e in c.effects.items() if k in ("accuracy", "SI")} == {"difference"}


@pytest.mark.parametrize("names, says", [(("mine", "mine"), "names must tell A from B, got 'mine' for both"),
                                         (("A",), "names must be two non-empty strings"),
                                         (("A", ""), "names must be two non-empty strings")])
def test_names_that_do_not_tell_a_from_b_are_refused_before_measuring(data, names, says):
    """Equal names once stored B's values over A's: every effect read "B = A"."""
    with pytest.raises(ValueError, match=says):
        compare(mlp(0), mlp(1), *data, R4, names=names, **SIZES)


def test_a_model_against_itself_has_exactly_no_effect_and_reads_b_equals_a(data):
    c = compare(mlp(), mlp(), *data, R4, **SIZES)
    for k, e in c.effects.items():
        if k == "accuracy":
            continue  # equal accuracies on every sample: the next test
        none = 0.0 if e.kind == "difference" else 1.0
        assert (e.effect.value, e.effect.low, e.effect.high) == (none, none, none)
        assert e.direction == "B = A"


def test_accuracies_equal_on_every_sample_get_the_exact_bound_of_that_agreement_not_b_equals_a(data):
    """Two models right on the same images agree by chance; the bootstrap read [0, 0] and "B = A"."""
    c = compare(mlp(), mlp(), *data, R4, **SIZES)
    edge = 1 - 0.025 ** (1 / 24)  # Clopper-Pearson's upper bound on disagreeing, none seen in 24
    e = c.effects["accuracy"]
    assert (e.effect.value, e.effect.low, e.effect.high) == pytest.approx((0.0, -edge, edge), rel=1e-12)
    assert e.direction == "undecided"


def test_scaled_logits_give_the_exact_ratios(data):
    c = compare(mlp(), Scaled(mlp(), 3.0), *data, R4, **SIZES)
    ratio = {k: c.effects[k].effect.value for k in ("LI", "sigma_max", "logit_scale", "sigma_per_scale")}
    assert ratio == pytest.approx({"LI": 9.0, "sigma_max": 3.0, "logit_scale": 3.0, "sigma_per_scale": 1.0},
                                  rel=1e-5)
    assert c.effects["accuracy"].effect.value == 0
    assert c.effects["SI"].effect.value == pytest.approx(0.0, abs=1e-6)  # maps scale, their directions do not
    assert c.effects["logit_scale"].direction == "B > A"


def test_each_models_own_numbers_are_the_audits(data):
    a, b = mlp(0), mlp(1)
    c = compare(a, b, *data, R4, **SIZES)
    for model, side in ((a, "a"), (b, "b")):
        r = audit(model, *data, R4, **SIZES)
        for k in MEASURES:
            assert getattr(c.effects[k], side) == r.measures[k], k


def test_weight_tying_is_more_invariant_than_an_unconstrained_model(data):
    torch.manual_seed(0)
    c = compare(mlp(), InvariantMLP(R4, (8, 8), 3, 16, 2).eval(), *data, R4, **SIZES)
    assert c.effects["LI"].direction == "B < A" and c.effects["LI"].effect.high < 1e-9
    assert c.effects["SI"].direction == "B > A"


def test_every_effect_is_b_against_a_of_the_two_models_own_estimates(data):
    """B - A for a difference, B / A for a ratio (sigma_per_scale's ratio of ratios too), overall and per
    class: no effect may set A against B. Two different models, so no effect is 0 or 1 by symmetry."""
    c = compare(mlp(0), mlp(1), *data, R4, **SIZES)
    for k, e in c.effects.items():
        expected = e.b.value - e.a.value if e.kind == "difference" else e.b.value / e.a.value
        assert e.effect.value == pytest.approx(expected, rel=1e-12, abs=1e-15), k
    assert c.effects["sigma_per_scale"].effect.value != pytest.approx(1.0, abs=1e-3)
    assert any(e.effect.value != 0 for _, e in c.classes.values())
    for n, e in c.classes.values():
        assert e.effect.value == pytest.approx(e.b.value - e.a.value, rel=1e-12, abs=1e-15)


@pytest.mark.filterwarnings("ignore::nets.model_checks.ZeroInputGradient")  # a constant model
def test_a_ratio_against_an_exactly_invariant_model_is_undefined(data):
    c = compare(Constant(), mlp(), *data, R4, **SIZES)
    assert c.effects["LI"].a.value == 0 and c.effects["LI"].direction == "undefined"


def test_the_direction_reads_where_the_interval_lies():
    assert direction("ratio", Estimate(0.5, 0.4, 0.6)) == "B < A"
    assert direction("ratio", Estimate(1.2, 0.9, 1.5)) == "undecided"
    assert direction("ratio", Estimate(1.0, 1.0, 1.0)) == "B = A"
    assert direction("ratio", Estimate(1.0, 1.0, 1.0 + 1e-12)) == "undecided"  # not every resample agreed
    assert direction("difference", Estimate(0.2, 0.1, 0.3)) == "B > A"
    assert direction("difference", Estimate(math.nan, math.nan, math.nan)) == "undefined"


def test_an_interval_with_an_infinite_end_still_reads_the_side_it_lies_on():
    """A ratio whose A is 0 in some resamples: [3.33, inf] excludes 1."""
    assert direction("ratio", Estimate(5.0, 3.33, math.inf)) == "B > A"
    assert direction("ratio", Estimate(math.inf, 3.33, math.inf)) == "undefined"


@pytest.mark.filterwarnings("error")
def test_a_ratio_undefined_in_some_resamples_has_no_interval_and_no_scipy_warning():
    """Most samples 0 for both models: a resample of only those is 0 / 0, so the ratio's interval is
    undefined (scipy's warning about it, which speaks of BCa, is not passed on)."""
    rng = np.random.default_rng(0)
    a, b = np.r_[np.zeros(27), rng.uniform(1, 2, 3)], np.r_[np.zeros(27), rng.uniform(1, 2, 3)]
    effect = paired_bootstrap((b, a), ratio_of_means, n_resamples=200)
    assert math.isfinite(effect.value) and math.isnan(effect.low) and math.isnan(effect.high)
    assert direction("ratio", effect, n=30) == "undefined"


def test_too_few_samples_give_an_interval_but_no_direction():
    """At 2 samples the percentile interval is their range: a direction for models that do not differ."""
    assert direction("difference", Estimate(0.25, 0.1, 0.4), n=MIN_DIRECTION_SAMPLES - 1) == "too few samples"
    assert direction("difference", Estimate(0.25, 0.1, 0.4), n=MIN_DIRECTION_SAMPLES) == "B > A"
    assert direction("difference", Estimate(0.0, 0.0, 0.0), n=2) == "B = A"  # every sample agrees: exact


def test_a_small_class_of_a_comparison_has_no_direction(data):
    x, y = data  # 24 samples over 3 classes: each class below MIN_DIRECTION_SAMPLES
    c = compare(mlp(0), Scaled(mlp(0), -1.0), x, y, R4, **SIZES)
    assert all(n < MIN_DIRECTION_SAMPLES and e.direction == "too few samples" for n, e in c.classes.values())
    assert c.effects["accuracy"].direction != "too few samples"  # all 24 samples
    record = c.to_dict()
    assert record["effects"]["accuracy"]["n"] == 24 and record["effects"]["SI"]["n"] == c.effects["SI"].n


def test_a_model_right_on_every_sample_has_clopper_pearsons_bound_overall_and_per_class(data):
    """Both read [1, 1] (the bootstrap of all-equal shares) until share_mean."""
    x, _ = data
    c = compare(Constant(), mlp(0), x, torch.zeros(24, dtype=torch.long), R4, **SIZES)  # Constant says class 0
    exact = 0.025 ** (1 / 24)
    assert (c.effects["accuracy"].a.value, c.effects["accuracy"].a.low) == (1.0, pytest.approx(exact))
    assert c.classes[0][0] == 24 and c.classes[0][1].a.low == pytest.approx(exact)


@pytest.mark.filterwarnings("ignore::nets.model_checks.ZeroInputGradient")  # constant models
def test_two_different_models_right_on_every_sample_of_a_class_are_not_read_as_equal():
    """Both always say class 0: equal on the 30 images of that class, by chance, not B = A."""
    x = torch.rand(30, 8, 8, generator=torch.Generator().manual_seed(1))
    c = compare(Constant(), Scaled(Constant(), 2.0), x, torch.zeros(30, dtype=torch.long), R4, **SIZES)
    n, e = c.classes[0]
    assert n == 30 and e.effect.low == pytest.approx(-(1 - 0.025 ** (1 / 30))) and e.direction == "undecided"


def test_values_of_different_samples_are_refused(data):
    x, y = data
    a = sample_measures(mlp(), x, y, R4, n_steps=2)
    b = sample_measures(mlp(), x[:10], y[:10], R4, n_steps=2)
    with pytest.raises(ValueError, match="accuracy has 24 samples for A but 10 for B"):
        compare_samples(a, b, R4)


def test_a_refused_input_names_the_model(data):
    x, y = data
    with pytest.raises(ValueError, match="^model B: "):
        compare(mlp(), nn.Linear(64, 3), x, y, R4, **SIZES)


@pytest.mark.filterwarnings("ignore::nets.model_checks.ZeroInputGradient")  # a constant model
def test_the_record_is_json_ready_and_the_table_has_a_row_per_measure(data):
    import json

    c = compare(Constant(), mlp(), *data, R4, names=("const", "mlp"), **SIZES)
    record = json.loads(json.dumps(c.to_dict(), allow_nan=False))
    assert record["a"] == "const" and record["effects"]["LI"]["effect"]["value"] is None
    table = c.to_markdown()
    assert all(f"| {k} |" in table for k in MEASURES) and "B = mlp against A = const" in table


def test_the_paired_interval_is_narrower_than_the_two_models_intervals_suggest(data):
    """Both models see the same samples: the per-sample spread common to both cancels in the paired
    interval of the difference, so it is narrower than the spread of either model's own mean."""
    x, y = data
    c = compare(mlp(), Scaled(mlp(), 1.01), x, y, R4, **SIZES)
    e = c.effects["sigma_max"]
    assert np.log(e.effect.high / e.effect.low) < np.log(e.a.high / e.a.low) / 10


def test_two_models_compare_without_labels_on_every_label_free_measure(data):
    x = data[0]
    a, b = (sample_measures(mlp(seed), x, None, "r4", n_steps=2) for seed in (0, 1))
    comp = compare_samples(a, b, "r4", n_resamples=100)
    assert list(comp.effects) == [k for k in MEASURES if k != "accuracy"]
    assert comp.classes == {} and comp.settings["labels"] is False
    assert "Unlabelled images" in comp.to_markdown()


def test_one_model_with_labels_and_one_without_are_not_compared(data):
    x, y = data
    a, b = sample_measures(mlp(0), x, y, "r4", n_steps=2), sample_measures(mlp(1), x, None, "r4", n_steps=2)
    with pytest.raises(ValueError, match="accuracy was measured for A only"):
        compare_samples(a, b, "r4", n_resamples=100)


def test_class_names_without_labels_are_refused_before_the_work(data):
    with pytest.raises(ValueError, match="needs labels y"):
        compare(mlp(0), mlp(1), data[0], None, "r4", class_names=["a", "b", "c"], n_steps=2)


def test_values_without_a_label_free_measure_are_refused_naming_it(data):
    a = sample_measures(mlp(0), data[0], None, "r4", n_steps=2)
    b = {k: v for k, v in a.items() if k != "sigma_max_centered"}
    with pytest.raises(ValueError, match="sigma_max_centered is missing from B's values"):
        compare_samples(a, b, "r4", n_resamples=100)


def test_the_number_of_logits_of_each_model_is_recorded(data):
    c = compare(mlp(0), mlp(1), *data, R4, **SIZES)
    assert c.n_logits == (3, 3) and c.to_dict()["n_logits"] == {"a": 3, "b": 3}
    assert c.width_note is None and "**Note**" not in c.to_markdown()


def test_models_of_different_widths_are_compared_with_a_note_and_a_warning(data):
    torch.manual_seed(0)
    wider = MLP((8, 8), 4, 16, 2).eval()  # 4 logits, one that no label names
    with pytest.warns(UserWarning, match="A gives 3 logits and B 4: LI, DI, sigma_max and logit_scale sum over"):
        c = compare(mlp(0), wider, *data, R4, **SIZES)
    assert c.n_logits == (3, 4) and f"**Note**: {c.width_note}." in c.to_markdown()


def test_values_measured_under_another_group_are_refused_naming_it(data):
    x, y = data
    a, b = (sample_measures(mlp(), x[:10], y[:10], g, n_steps=2) for g in (R4, "f2"))
    with pytest.raises(ValueError, match=r"^B's values were measured under group 'f2', not 'r4' \(4 elements\)"):
        compare_samples(a, b, R4)


def test_values_measured_on_other_images_of_the_same_count_are_refused(data):
    x, _ = data
    a, b = (sample_measures(mlp(), images, None, R4, n_steps=2) for images in (x[:10], x[10:20]))
    with pytest.raises(ValueError, match=r"^A and B were measured on different images \(their SHA-256 differ\)"):
        compare_samples(a, b, R4)


def test_models_of_two_dtypes_measured_on_one_set_of_images_are_compared(data):
    x, y = data
    a = sample_measures(mlp(), x[:10], y[:10], R4, n_steps=2)
    b = sample_measures(mlp().double(), x[:10].double(), y[:10], R4, n_steps=2)  # its own cast of the images
    assert compare_samples(a, b, R4).n_samples == 10


@pytest.mark.parametrize("other, says", [(dict(n_steps=3), "different n_steps (4 and 3: SI's integrated"),
                                         (dict(include_identity=True), "different include_identity (False and True")])
def test_values_measured_with_other_settings_are_refused_naming_the_setting(data, other, says):
    """The same model with the identity in the averages read LI "B < A", a ratio of 0.750 exactly."""
    x, y = data
    a = sample_measures(mlp(), x, y, R4, n_steps=4)
    b = sample_measures(mlp(), x, y, R4, **{"n_steps": 4, **other})
    with pytest.raises(ValueError, match=re.escape(says)):
        compare_samples(a, b, R4)


def test_two_models_of_different_dtypes_each_get_the_images_in_their_own(data):
    """A float64 model against its float32 original: no one x served both, and compare refused."""
    x, y = data
    c = compare(mlp(), mlp().double(), x, y, R4, **SIZES)
    assert c.effects["LI"].effect.value == pytest.approx(1.0, rel=1e-4)
    assert c.effects["sigma_max"].effect.value == pytest.approx(1.0, rel=1e-4)


def test_one_sample_has_too_few_samples_not_an_undefined_effect():
    """No interval at all on one sample: it read "undefined", which the docs keep for an A of exactly 0."""
    assert direction("difference", Estimate(0.25, math.nan, math.nan), n=1) == "too few samples"
    assert direction("ratio", Estimate(math.inf, math.nan, math.nan), n=1) == "undefined"  # over an A of 0


def test_images_past_a_float16_models_range_are_refused_naming_that_model_not_as_non_finite(data):
    """The cast made them infinite, and the refusal read 'x contains NaN or inf values' of finite images."""
    x, y = data
    with pytest.raises(ValueError, match=r"^x does not fit model B's float16: its values reach 1e\+05"):
        compare(mlp(), mlp().half(), x * 1e5, y, R4, **SIZES)


def test_images_that_are_not_a_tensor_get_the_measures_one_line_for_models_of_different_dtypes(data):
    x, y = data
    with pytest.raises(ValueError, match="x must be a torch.Tensor"):
        compare(mlp(), mlp().double(), x.numpy(), y, R4, **SIZES)


def test_the_record_names_the_exact_bound_beside_the_bootstrap():
    assert "share_difference" in compare_samples(*(sample_measures(mlp(), torch.rand(4, 8, 8), torch.zeros(4).long(),
                                                                   R4, n_steps=2),) * 2, R4,
                                                 n_resamples=100).settings["interval"]


def test_the_disagreements_are_counted_with_the_exact_sign_test_over_them():
    a, b = np.zeros(100), np.zeros(100)
    b[:7], a[7:9], a[9], b[9] = 1.0, 1.0, 0.25, 0.75  # B ahead on 8 samples (one of them by a share), A on 2
    d = Disagreement.of(a, b)
    assert (d.samples, d.b_ahead, d.a_ahead) == (10, 8, 2)
    assert d.sign_test_p == pytest.approx(stats.binomtest(8, 10, 0.5).pvalue, rel=1e-12)
    assert d.sign_test_p == pytest.approx(2 * (1 + 10 + 45) / 2 ** 10, rel=1e-12)  # by hand
    assert Disagreement.of(a, a).to_dict() == {"samples": 0, "b_ahead": 0, "a_ahead": 0, "sign_test_p": 1.0}


def test_a_direction_read_from_four_disagreements_all_one_way_is_flagged():
    """The case docs/audit.md names: 4 of 100 samples right for B only. The bootstrap reads B > A; the
    exact sign test over those 4 gives p = 0.125, and the comparison says so."""
    a, b = np.zeros(100), np.zeros(100)
    b[:4] = 1.0
    effect = Effect("accuracy", "difference", share_mean(a), share_mean(b), share_difference(a, b), n=100)
    text = Disagreement.of(a, b).text(effect, 0.95)
    assert effect.direction == "B > A"
    assert "B and A differ on 4 of 100 samples (B ahead on 4, A on 0); exact sign test over them p = 0.125." in text
    assert "rests on too few disagreements for that test at 95%" in text
    b[:10] = 1.0  # 10 all for B: p = 0.002, no caution
    wide = Effect("accuracy", "difference", share_mean(a), share_mean(b), share_difference(a, b), n=100)
    assert "with care" not in Disagreement.of(a, b).text(wide, 0.95)


def test_a_comparison_records_and_shows_its_disagreements(data):
    x, y = data
    c = compare(mlp(0), mlp(1), x, y, R4, **SIZES)
    a, b = (sample_measures(m, x, y, R4, n_steps=4)["accuracy"] for m in (mlp(0), mlp(1)))
    assert c.disagreement == Disagreement.of(a, b) and c.disagreement.samples == int((a != b).sum())
    assert c.to_dict()["accuracy_disagreement"]["b_ahead"] == int((b > a).sum())
    assert f"B and A differ on {c.disagreement.samples} of 24 samples" in c.to_markdown()
    unlabelled = compare(mlp(0), mlp(1), x, None, R4, **SIZES)
    assert unlabelled.disagreement is None and "accuracy_disagreement" not in unlabelled.to_dict()
