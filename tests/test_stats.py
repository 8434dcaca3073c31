"""nets.stats: each interval, test and decision against a scipy / numpy oracle or by definition."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from nets.stats import (Interval, bootstrap_interval, claim_status, decide, overlaps, paired_t, t_half_width_factor,
                        t_interval)

X = [0.9473, 0.9431, 0.9462, 0.9458]
Y = [0.8243, 0.8512, 0.8601, 0.8470]


def test_t_interval_is_mean_plus_minus_the_t_quantile_times_the_standard_error():
    x = np.asarray(X)
    half = stats.t.ppf(0.975, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size)
    iv = t_interval(X)
    assert iv.estimate == pytest.approx(x.mean())
    assert (iv.low, iv.high) == pytest.approx((x.mean() - half, x.mean() + half))
    assert iv.n == 4


def test_t_interval_matches_scipy_t_interval_at_another_level():
    x = np.asarray(Y)
    assert (t_interval(Y, 0.9).low, t_interval(Y, 0.9).high) == pytest.approx(
        stats.t.interval(0.9, 3, loc=x.mean(), scale=stats.sem(x)))


def test_t_interval_of_one_value_is_undefined():
    iv = t_interval([0.5])
    assert iv.estimate == 0.5 and not iv.defined


def test_t_interval_without_spread_is_the_value_itself():
    iv = t_interval([1.0, 1.0, 1.0, 1.0])
    assert (iv.low, iv.estimate, iv.high) == (1.0, 1.0, 1.0)


def test_seeds_a_billionth_apart_have_a_spread_and_an_interval_of_their_own():
    """Only rounding (1e-12 of the values) counts as no spread: seeds 1e-9 apart are a real, if small,
    spread, whose t interval matches scipy's and whose paired test has a p."""
    x = [1.0, 1.0 + 1e-9, 1.0 - 1e-9, 1.0 + 2e-9]
    iv = t_interval(x)
    ref = stats.t.interval(0.95, len(x) - 1, loc=np.mean(x), scale=stats.sem(x))
    assert iv.low < iv.high and (iv.low, iv.high) == pytest.approx(ref, rel=1e-15)
    test = paired_t(x, [1.0] * 4)
    expected = stats.ttest_1samp(np.array(x) - 1.0, 0).pvalue
    assert not math.isnan(test.p_value) and test.p_value == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("value", [0.1, 0.3, 0.7, 2.675])
def test_seeds_that_agree_exactly_decide_as_that_value_whatever_their_mean_rounds_to(value):
    # the mean of three 0.7s is 0.6999999999999998, with a spread of 1e-17: it read "undecided" against 0.7,
    # "about 14 seeds would decide it"; the paired test already took such a spread as none
    iv = t_interval([value] * 3)
    assert (iv.estimate, iv.low, iv.high) == (value, value, value)
    assert decide(iv, ">=", value) == "holds" and decide(iv, "<=", value) == "holds"


def test_a_t_interval_of_values_whose_sum_overflows_keeps_a_finite_mean():
    assert t_interval([1e308, 1.5e308]).estimate == pytest.approx(1.25e308)


@pytest.mark.parametrize("bad, message", [([], "no values"), ([1.0, float("nan")], r"non-finite value in \[1.0, nan\]"),
                                          ([float("inf"), 1.0], r"non-finite value in \[inf, 1.0\]")])
def test_t_interval_rejects_empty_or_non_finite_input(bad, message):
    with pytest.raises(ValueError, match=message):
        t_interval(bad)


def test_paired_t_matches_ttest_rel_and_its_interval():
    res = stats.ttest_rel(X, Y)
    ci = res.confidence_interval(0.95)
    test = paired_t(X, Y)
    assert test.p_value == pytest.approx(res.pvalue)
    assert (test.interval.low, test.interval.high) == pytest.approx((ci.low, ci.high))
    assert test.interval.estimate == pytest.approx(np.mean(np.subtract(X, Y)))


def test_paired_t_is_the_one_sample_t_test_of_the_differences():
    d = np.subtract(X, Y)
    assert paired_t(X, Y).p_value == pytest.approx(stats.ttest_1samp(d, 0.0).pvalue)
    iv = t_interval(d)
    assert (paired_t(X, Y).interval.low, paired_t(X, Y).interval.high) == pytest.approx((iv.low, iv.high))


def test_paired_t_on_log_ratios_tests_the_logarithms():
    a, b = [4.9, 5.2, 4.7, 4.8], [10.2, 9.6, 11.0, 9.9]
    res = stats.ttest_rel(np.log(a), np.log(b))
    test = paired_t(a, b, log=True)
    assert test.log and test.p_value == pytest.approx(res.pvalue)
    assert math.exp(test.interval.estimate) == pytest.approx(stats.gmean(np.divide(a, b)))


def test_paired_t_without_spread_in_the_differences_has_an_exact_interval_and_no_p_value():
    test = paired_t([2.0, 3.0, 4.0], [1.0, 2.0, 3.0])
    assert (test.interval.low, test.interval.high) == (1.0, 1.0) and math.isnan(test.p_value)


def test_paired_t_rejects_unequal_lengths_and_non_positive_log_values():
    with pytest.raises(ValueError, match="equal lengths"):
        paired_t([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="positive"):
        paired_t([1.0, 0.0], [1.0, 1.0], log=True)


def test_an_exact_sign_flip_test_over_four_pairs_cannot_reach_five_percent():
    # why the reports use the t-test: the smallest two-sided p over 4 pairs is 2 / 2**4
    d = np.array([0.1, 0.2, 0.3, 0.4])
    res = stats.permutation_test((d,), np.mean, permutation_type="samples", n_resamples=np.inf)
    assert res.pvalue == pytest.approx(0.125)


def test_bootstrap_interval_matches_scipy_bootstrap_with_the_same_seed():
    x = np.random.default_rng(1).normal(size=200)
    iv = bootstrap_interval(x, n_resamples=999, seed=3, method="percentile")
    ref = stats.bootstrap((x,), np.mean, n_resamples=999, method="percentile",
                          rng=np.random.default_rng(3), vectorized=False).confidence_interval
    assert (iv.low, iv.high) == pytest.approx((ref.low, ref.high))
    assert iv.low < x.mean() < iv.high


def test_bootstrap_interval_is_reproducible():
    x = np.random.default_rng(2).random(100)
    assert bootstrap_interval(x, n_resamples=499) == bootstrap_interval(x, n_resamples=499)


def _iv(low, high):
    return Interval((low + high) / 2, low, high, 4, "t")


@pytest.mark.parametrize("iv, op, bound, outcome", [
    (_iv(0.95, 0.97), ">=", 0.945, "holds"),
    (_iv(0.94, 0.96), ">=", 0.945, "undecided"),
    (_iv(0.90, 0.94), ">=", 0.945, "fails"),
    (_iv(0.40, 0.60), "<=", 0.9, "holds"),
    (_iv(0.45, 1.76), "<=", 0.9, "undecided"),
    (Interval(0.8, 0.5, 1.1, 4, "t"), "<=", 0.9, "undecided"),  # the estimate meets the bound, the interval not
    (Interval(0.96, 0.93, 0.97, 4, "t"), ">=", 0.945, "undecided"),
    (_iv(4.8, 11.7), "<=", 0.9, "fails"),
])
def test_decide_holds_fails_or_is_undecided_by_where_the_interval_lies(iv, op, bound, outcome):
    assert decide(iv, op, bound) == outcome


def test_decide_without_an_interval_or_a_bound():
    assert decide(Interval(1.0, math.nan, math.nan, 1, "t"), "<=", 2.0) == "undecided"
    assert decide(None, "<=", 2.0) == "not measured"
    assert decide(_iv(0, 1), "<=", None) == "not measured"
    with pytest.raises(ValueError, match="op"):
        decide(_iv(0, 1), "<", 1.0)


@pytest.mark.parametrize("outcomes, status", [
    (["holds", "holds"], "holds"),
    (["holds", "fails"], "partly holds"),
    (["holds", "fails", "undecided"], "partly holds"),
    (["fails", "fails"], "not supported"),
    (["fails", "undecided"], "not supported"),
    (["holds", "undecided"], "undecided at n = 4 seeds"),
    (["holds", "not measured"], "holds where measured (1 of 2 checks not measured)"),
    (["not measured"], "not evaluated"),
    ([], "not evaluated"),
])
def test_claim_status_combines_the_outcomes(outcomes, status):
    assert claim_status(outcomes, 4) == status


def test_overlaps_is_interval_intersection():
    assert overlaps(_iv(82.0, 87.1), 87.05, 88.75)
    assert not overlaps(_iv(91.8, 92.7), 92.95, 93.25)
    assert overlaps(Interval(1.0, math.nan, math.nan, 1, "t"), 0.0, 2.0) is None


@pytest.mark.parametrize("low, high, op, bound, outcome", [
    (0.5, 0.9, "<=", 0.9, "holds"),  # the closed interval touches the bound from its side
    (0.9, 1.0, "<=", 0.9, "undecided"),  # from the other side
    (0.945, 0.96, ">=", 0.945, "holds"),
    (0.90, 0.945, ">=", 0.945, "undecided"),
    (0.0, 0.0, ">=", 0.0, "holds"),  # no spread, exactly on the bound (WT's LI of 0, a tie)
    (0.0, 0.0, "<=", 0.0, "holds"),
])
def test_an_interval_that_touches_its_bound_is_decided_by_the_closed_rule(low, high, op, bound, outcome):
    assert decide(Interval((low + high) / 2, low, high, 4, "t"), op, bound) == outcome


@pytest.mark.parametrize("n", [2, 3, 4, 12])
def test_the_half_width_factor_is_the_t_intervals_half_width_over_the_standard_deviation(n):
    values = np.arange(n, dtype=float) ** 1.5
    iv = t_interval(values)
    assert math.isclose((iv.high - iv.low) / 2 / values.std(ddof=1), t_half_width_factor(n), rel_tol=1e-12)
    with pytest.raises(ValueError, match="at least 2 values"):
        t_half_width_factor(1)


def test_a_constant_lead_of_a_few_test_images_has_no_spread_despite_rounding():
    """100 * (k + 2) / M - 100 * k / M carries rounding of the accuracies' size (1e-14), which a tolerance
    scaled to the differences (1e-3) read as a spread: a "p = 1.5e-34" interval held where the seeds agree."""
    da = np.array([192759, 189554, 187667, 184046])  # orbit predictions right of 200,000; WT 3 more on each seed
    t = paired_t(100 * (da + 3) / 200_000, 100 * da / 200_000)
    assert t.interval.low == t.interval.high == pytest.approx(1.5e-3) and math.isnan(t.p_value)


def test_values_too_small_to_square_get_the_interval_of_their_rescaled_values():
    x = np.array([1.0, 2.0, 3.0])
    iv, oracle = t_interval(x * 1e-170), t_interval(x)
    assert (iv.low, iv.high) == pytest.approx((oracle.low * 1e-170, oracle.high * 1e-170), rel=1e-12)


@pytest.mark.parametrize("scale", [1e-170, 1e155])
def test_a_paired_t_on_extreme_magnitudes_matches_scipy_on_the_rescaled_values(scale):
    a, b = np.array([3.0, 5.0, 4.0, 7.0]), np.array([1.0, 1.0, 2.0, 2.0])
    t, oracle = paired_t(a * scale, b * scale), stats.ttest_rel(a, b)
    ci = oracle.confidence_interval(0.95)
    assert (t.interval.low, t.interval.high) == pytest.approx((ci.low * scale, ci.high * scale), rel=1e-12)
    assert t.p_value == pytest.approx(oracle.pvalue, rel=1e-12)

