"""nets.class_accuracy: the orbit accuracy per class adds up to the audit's orbit accuracy, the
confusion matrix equals a count made by hand, and where a group maps one class onto another (a 6
turned into a 9) an invariant model is capped and the breakdown names the pair."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats
import torch
from torch import nn

from nets.auditing import audit
from nets.class_accuracy import (class_breakdown, class_breakdown_from_predictions, orbit_confusion,
                                 per_class_over_seeds)
from nets.groups import R4
from nets.metrics import orbit_terms
from nets.sample_bootstrap import mean_difference, paired_bootstrap, share_difference, share_mean
from nets.train import GroupPooled

BOOT = dict(n_resamples=200)


class PairOrShifted(nn.Module):
    """Logits (w.x, -w.x, 100 (mean(x) - 1)): classes 0 and 1 split by a random direction, class 2 by the mean."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.randn(64, dtype=torch.float64, generator=torch.Generator().manual_seed(0)))

    def forward(self, x):
        s = x.flatten(1) @ self.w
        return torch.stack([s, -s, 100 * (x.flatten(1).mean(1) - 1)], dim=1)


def linear(classes: int = 3, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, classes)).double().eval()


def test_the_confusion_matrix_is_a_count_of_orbit_predictions_by_true_class():
    rng = np.random.default_rng(0)
    pred, y = rng.integers(0, 4, size=(30, 5)), rng.integers(0, 3, size=30)
    brute = np.zeros((4, 4))
    for i in range(30):
        for g in range(5):
            brute[y[i], pred[i, g]] += 1
    got = orbit_confusion(pred, y, 4)
    np.testing.assert_allclose(got[:3], brute[:3] / brute[:3].sum(1, keepdims=True))
    assert np.isnan(got[3]).all()  # no sample of class 3: its row is undefined


def test_the_orbit_predictions_agree_with_the_orbit_correct_count():
    x, y = torch.randn(12, 1, 8, 8, dtype=torch.float64), torch.randint(0, 3, (12,))
    t = orbit_terms(linear(), x, y, R4, terms=("correct", "predictions"))
    assert t["predictions"].shape == (12, R4.order)
    assert torch.equal((t["predictions"] == y[:, None]).sum(1), t["correct"])


def test_per_class_accuracy_weighted_by_class_size_is_the_audits_orbit_accuracy():
    x, y = torch.randn(40, 1, 8, 8, dtype=torch.float64), torch.randint(0, 3, (40,))
    r = audit(linear(), x, y, "r4", n_steps=2, **BOOT)
    c = r.classes
    weighted = sum(n * e.value for n, e in zip(c.counts, c.accuracy)) / sum(c.counts)
    assert weighted == pytest.approx(r.measures["accuracy"].value, abs=1e-12)
    assert c.classes == sorted(set(y.tolist())) and sum(c.counts) == 40


def test_an_invariant_model_cannot_tell_a_class_from_its_turned_copy_and_the_breakdown_names_the_pair():
    # class 1 is class 0 turned by 180 degrees (a 6 and a 9); class 2 is unrelated
    torch.manual_seed(1)
    x0, x2 = torch.randn(20, 1, 8, 8, dtype=torch.float64), torch.randn(20, 1, 8, 8, dtype=torch.float64) + 2
    x = torch.cat([x0, torch.rot90(x0, 2, dims=(-2, -1)), x2])
    y = torch.tensor([0] * 20 + [1] * 20 + [2] * 20)
    b = class_breakdown(GroupPooled(PairOrShifted(), R4), x, y, "r4", **BOOT)  # WT: the logits averaged over G
    acc = dict(zip(b.classes, (e.value for e in b.accuracy)))
    # each 6 / 9 pair gets one answer: the 9s called 6 are exactly the 6s called right, and the reverse
    assert b.confusion[1, 0] == pytest.approx(acc[0]) and b.confusion[0, 1] == pytest.approx(acc[1])
    assert acc[0] + acc[1] == pytest.approx(1.0) and acc[2] == 1.0
    assert 0 < acc[0] < 1  # the random direction splits the pairs, so both classes are taken for each other
    assert b.taken_for(0) == (1, pytest.approx(acc[1])) and b.taken_for(1) == (0, pytest.approx(acc[0]))
    assert b.taken_for(2) is None


def test_a_class_never_misclassified_says_so_with_clopper_pearsons_exact_bound_not_the_point():
    """The bootstrap of all-equal shares gave [1, 1], as if no sample of the class could ever be wrong."""
    pred, y = np.array([[0, 0], [0, 0], [1, 0]]), np.array([0, 0, 1])
    b = class_breakdown_from_predictions(pred, y, "f2", **BOOT)
    exact = stats.binomtest(2, 2).proportion_ci(0.95, method="exact")
    assert b.taken_for(0) is None and (b.accuracy[0].low, b.accuracy[0].high) == pytest.approx((exact.low, 1.0))
    assert "| 0 | 2 | 1 | [0.1581, 1] | never wrong |" in b.to_markdown()
    assert b.taken_for(1) == (0, 0.5)


@pytest.mark.parametrize("n, right", [(5, True), (40, True), (121, True), (30, False)])
def test_an_accuracy_of_every_sample_right_or_every_one_wrong_gets_clopper_pearsons_bound(n, right):
    exact = stats.binomtest(n if right else 0, n).proportion_ci(0.95, method="exact")
    e = share_mean(np.full(n, 1.0 if right else 0.0), **BOOT)
    assert (e.value, e.low, e.high) == pytest.approx((1.0 if right else 0.0, exact.low, exact.high), rel=1e-9)


@pytest.mark.parametrize("n", [2, 24, 121])
def test_two_accuracies_equal_on_every_sample_are_bounded_by_clopper_pearsons_bound_on_disagreeing(n):
    shares = np.random.default_rng(n).integers(0, 5, n) / 4  # shares of an orbit of 4
    edge = stats.binomtest(0, n).proportion_ci(0.95, method="exact").high
    e = share_difference(shares, shares.copy(), **BOOT)
    assert (e.value, e.low, e.high) == pytest.approx((0.0, -edge, edge), rel=1e-9)


def test_two_accuracies_that_differ_somewhere_keep_the_paired_bootstrap():
    a = np.ones(30)
    b = a.copy()
    b[3] = 0.5
    assert share_difference(a, b, **BOOT) == paired_bootstrap((a, b), mean_difference, **BOOT)


def test_the_audits_accuracy_of_a_model_never_wrong_is_not_an_interval_of_no_width():
    x = torch.randn(30, 1, 8, 8, dtype=torch.float64)
    r = audit(GroupPooled(PairOrShifted(), R4), x + 2, torch.full((30,), 2), "r4", n_steps=2, **BOOT)
    assert r.measures["accuracy"].value == 1.0 and r.measures["accuracy"].low == pytest.approx(0.025 ** (1 / 30))


def test_small_classes_are_named_below_the_table_as_their_bootstrap_covers_less():
    # classes 0 and 3 have a bootstrap interval; class 2, all right, the exact bound, which covers 95%
    pred = np.array([[0, 1], [0, 0], [0, 1]] + [[1, 1]] * 25 + [[2, 2]] * 4 + [[3, 0]] * 4 + [[3, 3]])
    y = np.array([0] * 3 + [1] * 25 + [2] * 4 + [3] * 5)
    text = class_breakdown_from_predictions(pred, y, "f2", **BOOT).to_markdown()
    assert text.rstrip().endswith("Fewer than 20 samples in classes 0, 3: a bootstrap interval there covers far less "
                                  "than 95%.")
    assert "Fewer than" not in class_breakdown_from_predictions(pred[3:28], y[3:28], "f2", **BOOT).to_markdown()


def test_the_breakdown_is_json_ready_with_a_single_sample_class_undefined():
    b = class_breakdown_from_predictions(np.array([[0, 1], [0, 0], [2, 2]]), np.array([0, 0, 2]), "f2", **BOOT)
    d = json.loads(json.dumps(b.to_dict(), allow_nan=False))
    assert d["classes"][1] == {"class": 2, "n": 1, "accuracy": {"value": 1.0, "low": None, "high": None},
                               "taken_for": None}
    assert d["confusion"][1] == [None, None, None]  # class 1: no sample


def test_the_audit_json_holds_the_breakdown():
    x, y = torch.randn(10, 1, 8, 8, dtype=torch.float64), torch.randint(0, 3, (10,))
    d = audit(linear(classes=7), x, y, "r4", n_steps=2, **BOOT).to_dict()
    # the matrix spans the model's 7 logits, as class_breakdown's, not just the classes seen
    assert d["classes"]["group"] == "r4" and len(d["classes"]["confusion"]) == 7 == d["settings"]["n_classes"]


@pytest.mark.parametrize("pred, y, match", [
    (np.zeros((3,), dtype=int), np.zeros(3, dtype=int), r"must be \(N, \|G\|\)"),
    (np.zeros((3, 2), dtype=int), np.zeros(4, dtype=int), r"must be \(N, \|G\|\)"),
    (np.zeros((3, 2)), np.zeros(3, dtype=int), "must be integer classes"),
    (-np.ones((3, 2), dtype=int), np.zeros(3, dtype=int), "classes >= 0"),
])
def test_bad_predictions_are_one_line_errors(pred, y, match):
    with pytest.raises(ValueError, match=match):
        class_breakdown_from_predictions(pred, y, "r4", **BOOT)


def test_a_breakdown_without_labels_is_one_line_before_the_orbit_is_measured():
    def untouchable(x):
        raise AssertionError("the model was run")

    with pytest.raises(ValueError, match=r"class_breakdown needs labels y of shape \(N,\): its table is per true"):
        class_breakdown(untouchable, torch.rand(4, 8, 8), None, R4)


def test_per_class_over_seeds_without_labels_is_one_line_before_any_model_runs():
    def untouchable(x):
        raise AssertionError("the model was run")

    with pytest.raises(ValueError, match=r"per_class_over_seeds needs labels y of shape \(N,\)"):
        per_class_over_seeds({"WT": [untouchable]}, torch.rand(4, 8, 8), None, R4)


def test_a_class_beyond_the_matrix_is_refused():
    with pytest.raises(ValueError, match="classes reach 3, but n_classes is 3"):
        orbit_confusion(np.array([[3, 0]]), np.array([0]), 3)


def test_an_unknown_orbit_term_is_refused_naming_the_known_ones():
    with pytest.raises(ValueError, match="known: correct, LI, DI, predictions"):
        orbit_terms(linear(), torch.randn(2, 1, 8, 8, dtype=torch.float64), torch.zeros(2, dtype=torch.long), R4,
                    terms=("argmax",))


def test_a_model_compared_with_itself_has_no_effect_in_any_class_within_the_bound_of_agreeing():
    from nets.audit_compare import compare

    x, y = torch.randn(30, 1, 8, 8, dtype=torch.float64), torch.randint(0, 3, (30,))
    c = compare(linear(), linear(), x, y, "r4", n_steps=2, **BOOT)
    assert sorted(c.classes) == sorted(set(y.tolist()))
    for n, e in c.classes.values():
        edge = 1 - 0.025 ** (1 / n)
        assert (e.effect.value, e.effect.low, e.effect.high) == pytest.approx((0.0, -edge, edge), rel=1e-12)
        assert e.direction == "too few samples"  # every class under 20 samples


def test_the_per_class_effect_is_the_difference_of_the_two_breakdowns():
    from nets.audit_compare import compare

    x, y = torch.randn(30, 1, 8, 8, dtype=torch.float64), torch.randint(0, 3, (30,))
    a, b = linear(seed=1), linear(seed=2)
    c = compare(a, b, x, y, "r4", n_steps=2, **BOOT)
    ba, bb = (class_breakdown(m, x, y, "r4", **BOOT) for m in (a, b))
    for j, cls in enumerate(ba.classes):
        n, e = c.classes[cls]
        assert n == ba.counts[j]
        assert e.effect.value == pytest.approx(bb.accuracy[j].value - ba.accuracy[j].value, abs=1e-12)
    assert "| class | samples | A [95%] | B [95%] | B - A [95%] | direction |" in c.to_markdown()
    assert set(json.loads(json.dumps(c.to_dict()))["classes"]) == {str(k) for k in c.classes}


def test_per_class_effects_of_samples_with_other_labels_are_refused():
    from nets.audit_compare import compare_samples
    from nets.auditing import sample_measures

    x, y = torch.randn(12, 1, 8, 8, dtype=torch.float64), torch.randint(0, 3, (12,))
    a = sample_measures(linear(), x, y, "r4", n_steps=2)
    b = sample_measures(linear(), x, (y + 1) % 3, "r4", n_steps=2)
    with pytest.raises(ValueError, match="A and B were measured on different labels"):
        compare_samples(a, b, "r4", **BOOT)


def test_a_thousand_classes_keep_every_class_in_json_but_not_the_matrix_and_the_table_shows_the_lowest():
    from nets.class_accuracy import MAX_ROWS

    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(1000), 2)
    pred = np.where(rng.random((2000, 4)) < np.linspace(0, 1, 2000)[:, None], y[:, None], (y[:, None] + 1) % 1000)
    b = class_breakdown_from_predictions(pred, y, "r4", **BOOT)
    d = b.to_dict()
    assert len(d["classes"]) == 1000 and d["confusion"] is None
    assert d["classes"][5]["taken_for"]["class"] == 6
    table = b.to_markdown()
    shown = [int(line.split("|")[1]) for line in table.splitlines()[2:] if line.startswith("| ")]
    worst = sorted(range(1000), key=lambda c: (b.accuracy[c].value, c))[:MAX_ROWS]
    assert shown == sorted(worst) and "The 20 of 1000 classes with the lowest orbit accuracy" in table


def test_a_comparison_over_many_classes_shows_those_that_differ_most():
    from nets.audit_compare import compare_samples

    rng = np.random.default_rng(1)
    y = np.repeat(np.arange(40), 5)

    def values(acc):
        base = {k: rng.random(200) + 0.1 for k in ("LI", "DI", "SI", "sigma_max", "logit_scale", "sigma_max_centered")}
        return {**base, "accuracy": acc, "labels": y}

    a = values(np.full(200, 0.5))
    b = values(np.where(y < 3, 0.0, 0.5) + np.where(y >= 37, 0.4, 0.0))  # classes 0-2 lose, 37-39 gain
    c = compare_samples(a, b, "r4", **BOOT)
    table = c.to_markdown().split("per class")[1]
    shown = [int(line.split("|")[1]) for line in table.splitlines() if line.startswith("| ") and "class" not in line]
    assert {0, 1, 2, 37, 38, 39} <= set(shown) and len(shown) == 20
    assert "The 20 of 40 classes with the largest |B - A|" in table


def test_class_names_label_the_classes_and_what_they_are_taken_for_in_every_table():
    from nets.audit_compare import compare_samples
    from nets.class_accuracy import class_label, per_class_over_seeds, per_class_rows
    from nets.auditing import sample_measures

    names = ("cat", "dog", "owl")
    assert class_label(1, names) == "1 dog" and class_label(1) == "1" and class_label(5, names) == "5"
    b = class_breakdown_from_predictions(np.array([[0, 1], [0, 0], [2, 2]]), np.array([0, 0, 2]), "f2",
                                         class_names=names, **BOOT)
    assert "| 0 cat | 2 | 0.75 |" in b.to_markdown() and "| 1 dog (0.25 of the orbit) |" in b.to_markdown()
    assert b.to_dict()["class_names"] == list(names)
    x, y = torch.randn(12, 1, 8, 8, dtype=torch.float64), torch.tensor([0, 1, 2] * 4)
    a, c = (sample_measures(linear(seed=s), x, y, "r4", n_steps=2) for s in (1, 2))
    table = compare_samples(a, c, "r4", class_names=names, **BOOT).to_markdown().split("per class")[1]
    assert [ln.split("|")[1].strip() for ln in table.splitlines()[4:]] == ["0 cat", "1 dog", "2 owl"]
    entry = per_class_over_seeds({"WT": [linear(seed=1)], "DA": [linear(seed=2)]}, x, y, "r4")
    _, rows, _ = per_class_rows(entry, class_names=names)
    assert [r[0] for r in rows] == ["0 cat", "1 dog", "2 owl"]
    assert all(r[-1] == "never wrong" or r[-1].split(" (")[0] in {f"{k} {n}" for k, n in enumerate(names)}
               for r in rows)


def test_class_names_from_python_are_checked_before_the_work():
    from nets.audit_compare import compare

    x, y = torch.randn(6, 1, 8, 8, dtype=torch.float64), torch.tensor([0, 1, 2] * 2)
    for call in (lambda names: audit(linear(), x, y, "r4", n_steps=2, class_names=names, **BOOT),
                 lambda names: compare(linear(), linear(seed=1), x, y, "r4", n_steps=2, class_names=names, **BOOT)):
        with pytest.raises(ValueError, match="class names must be a list of strings in label order, got str"):
            call("cat")  # not one name per character
        with pytest.raises(ValueError, match="a label is class 2, but the class names name only 2 classes"):
            call(["cat", "dog"])


def test_the_per_class_table_leaves_out_a_null_accuracy_and_says_so_rather_than_stopping_the_report():
    # a null per-class accuracy raised TypeError in np.mean, so REPORT.md did not render
    from nets.class_accuracy import per_class_rows

    entry = {"classes": [0, 1], "counts": [10, 12],
             "methods": {"WT": {"accuracy": [[0.9, 0.8], [0.92, 0.81], [None, 0.79]], "taken_for": [None, None]},
                         "DA": {"accuracy": [[0.85, 0.8], [0.86, 0.8], [0.84, 0.78]]}}}
    _, rows, _ = per_class_rows(entry, methods=("WT", "DA"))
    by_class = {r[0]: r for r in rows}
    assert by_class["0"][4].endswith("(n = 2 of 3: not finite on the others)") and by_class["0"][2] == "nan"
    assert "not finite" not in by_class["1"][4]


def test_the_per_class_wt_minus_da_column_is_wt_minus_da_with_scipys_paired_interval():
    from nets.class_accuracy import per_class_rows

    wt, da = [0.95, 0.97, 0.96], [0.90, 0.91, 0.93]
    entry = {"classes": [0], "counts": [10], "methods": {"WT": {"accuracy": [[v] for v in wt], "taken_for": [None]},
                                                        "DA": {"accuracy": [[v] for v in da]}}}
    _, rows, _ = per_class_rows(entry, methods=("WT", "DA"))
    a, b = 100 * np.array(wt), 100 * np.array(da)
    ci = stats.ttest_rel(a, b).confidence_interval(0.95)
    assert rows[0][4] == f"{(a - b).mean():.3g} [{ci.low:.3g}, {ci.high:.3g}]" and ci.low > 0


@pytest.mark.parametrize("c", [0.25, 0.5, 0.75])
def test_one_share_on_every_sample_gets_the_exact_bound_of_that_agreement_not_an_interval_of_no_width(c):
    """A model right only on each image as given (1 of the 4 rotations): every share 0.25 read [0.25, 0.25]."""
    u = stats.binomtest(0, 30).proportion_ci(0.95, method="exact").high  # the chance of another share, bounded
    e = share_mean(np.full(30, c), **BOOT)
    assert (e.value, e.low, e.high) == pytest.approx((c, c - u * c, c + u * (1 - c)), rel=1e-9)


def test_a_small_class_at_one_share_is_not_named_as_a_bootstrap_interval():
    pred = np.array([[0, 1, 1, 1]] * 5 + [[1, 1, 1, 1]] * 25)  # class 0: right on the identity only, 5 samples
    b = class_breakdown_from_predictions(pred, np.array([0] * 5 + [1] * 25), "r4", **BOOT)
    assert b.accuracy[0].value == 0.25 and b.accuracy[0].low < 0.25 < b.accuracy[0].high
    assert "Fewer than" not in b.to_markdown()


def test_two_accuracies_apart_by_the_same_share_on_every_sample_get_the_exact_bound_not_one_point():
    """A right on each image as given (1/4), B on two rotations of each (2/4): the bootstrap read [0.25, 0.25]."""
    a, b = np.full(40, 0.25), np.full(40, 0.5)
    u = stats.binomtest(0, 40).proportion_ci(0.95, method="exact").high
    e = share_difference(a, b, **BOOT)
    assert (e.value, e.low, e.high) == pytest.approx((0.25, 0.25 - 1.25 * u, 0.25 + 0.75 * u), rel=1e-9)
    thirds = share_difference(np.full(30, 1 / 3), np.full(30, 2 / 3), **BOOT)  # 2/3 - 1/3 rounds apart from 1/3
    assert thirds.low < thirds.value < thirds.high and thirds.high - thirds.low > 0.1
