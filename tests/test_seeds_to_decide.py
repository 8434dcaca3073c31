"""nets.stats.seeds_to_decide: the seeds a new experiment needs to decide an undecided check with
80% power, against published power tables and a simulation of the decision rule itself."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from nets.stats import MAX_PLANNED_SEEDS, Interval, bootstrap_interval, decide, paired_t, seeds_to_decide, t_interval


def _interval(mean: float, sd: float, n: int) -> Interval:
    """The 95% t interval that n seeds with this sample mean and standard deviation give."""
    h = stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n)
    return Interval(mean, mean - h, mean + h, n, "t")


@pytest.mark.parametrize("d, n", [(0.2, 199), (0.5, 34), (0.8, 15), (1.0, 10)])
def test_it_matches_the_one_sample_t_test_power_tables(d, n):
    # Cohen's d against the bound, alpha = 0.05 two-sided, power 0.8: the n of G*Power's and
    # statsmodels' TTestPower.solve_power for the one-sample t-test
    assert seeds_to_decide(_interval(d, 1.0, 4), ">=", 0.0) == n


def test_it_depends_on_the_distance_in_standard_deviations_only():
    a = seeds_to_decide(_interval(0.952, 0.008, 4), ">=", 0.945)
    b = seeds_to_decide(_interval(7.0, 8.0, 4), ">=", 0.0)  # the same d = 7/8 elsewhere
    assert a == b


def test_the_sample_size_it_was_measured_on_does_not_matter():
    assert seeds_to_decide(_interval(0.5, 1.0, 3), ">=", 0.0) == seeds_to_decide(_interval(0.5, 1.0, 12), ">=", 0.0)


def test_it_plans_towards_either_side_of_the_bound_alike():
    above = seeds_to_decide(_interval(1.3, 1.0, 4), "<=", 1.0)  # towards "fails"
    below = seeds_to_decide(_interval(0.7, 1.0, 4), "<=", 1.0)  # towards "holds"
    assert above == below == seeds_to_decide(_interval(1.3, 1.0, 4), ">=", 1.0)


def test_more_distance_never_needs_more_seeds():
    ns = [seeds_to_decide(_interval(d, 1.0, 4), ">=", 0.0) for d in np.linspace(0.1, 3.0, 30)]
    assert all(a >= b for a, b in zip(ns, ns[1:]))
    assert ns[-1] >= 2


def _holds(x: np.ndarray, bound: float) -> np.ndarray:
    """Vectorized decide(t_interval(row), ">=", bound) == "holds" over the rows of x."""
    k = x.shape[1]
    return x.mean(1) - stats.t.ppf(0.975, k - 1) * x.std(1, ddof=1) / math.sqrt(k) >= bound


def test_the_vectorized_rule_is_decide_on_t_interval():
    x = np.random.default_rng(1).normal(0.952, 0.0082, size=(300, 9))
    assert _holds(x, 0.945).tolist() == [decide(t_interval(row), ">=", 0.945) == "holds" for row in x]


def test_at_the_planned_n_the_decision_rule_decides_with_the_planned_power():
    # simulate the experiment it plans: n seeds from a normal with the measured mean and spread
    # (T3 IR SI of the paper profile), each decided by the 95% t interval as every verdict is
    mean, sd, bound = 0.952, 0.0082, 0.945
    n = seeds_to_decide(_interval(mean, sd, 4), ">=", bound)
    rng = np.random.default_rng(0)
    assert _holds(rng.normal(mean, sd, size=(20000, n)), bound).mean() >= 0.79
    assert _holds(rng.normal(mean, sd, size=(20000, n - 1)), bound).mean() < 0.8


def test_a_paired_test_plans_on_the_differences():
    a, b = [0.31, 0.35, 0.30, 0.36], [0.30, 0.31, 0.31, 0.32]
    iv = paired_t(a, b).interval
    d = np.subtract(a, b)
    assert seeds_to_decide(iv, ">=", 0.0) == seeds_to_decide(t_interval(d), ">=", 0.0)


@pytest.mark.parametrize("iv", [
    None,
    Interval(0.5, math.nan, math.nan, 1, "t"),  # one seed: no spread to plan with
    Interval(0.5, 0.5, 0.5, 4, "t"),  # no spread
    Interval(0.0, -1.0, 1.0, 4, "t"),  # the estimate on the bound
    bootstrap_interval([0.1, 0.4, -0.2, 0.3, 0.5, -0.1]),  # not a t interval: no spread to read back
])
def test_nothing_to_plan_is_none(iv):
    assert seeds_to_decide(iv, ">=", 0.0) is None


def test_beyond_the_search_it_says_more():
    assert seeds_to_decide(_interval(1e-3, 1.0, 4), ">=", 0.0) == MAX_PLANNED_SEEDS + 1
    assert seeds_to_decide(_interval(1e-3, 1.0, 4), ">=", 0.0, max_n=50) == 51


@pytest.mark.parametrize("kw, match", [({"op": "<"}, "op"), ({"power": 1.0}, "power"), ({"power": 0.0}, "power")])
def test_bad_arguments_are_one_line_errors(kw, match):
    args = {"op": ">=", **kw}
    op = args.pop("op")
    with pytest.raises(ValueError, match=match):
        seeds_to_decide(_interval(0.5, 1.0, 4), op, 0.0, **args)
