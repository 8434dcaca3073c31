"""The pairwise formulas of nets.pairwise (the one home of Eq. 1, Eq. 2 and Section 4.4's
normalized form, used by the trainer's regularizer and by nets.metrics), each against an oracle."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from nets.pairwise import (
    NORMALIZED_LOGIT_EPS,
    centered_normalized_logit_distance,
    half_squared_logit_distance,
    kl_from_log_probs,
    normalized_logit_distance,
)


def _logits():
    gen = torch.Generator().manual_seed(0)
    return torch.randn(7, 5, generator=gen, dtype=torch.float64) * 3, torch.randn(
        4, 7, 5, generator=gen, dtype=torch.float64) * 3


def test_half_squared_logit_distance_is_half_the_squared_euclidean_distance():
    ref, other = _logits()
    oracle = 0.5 * torch.stack([torch.cdist(ref.unsqueeze(1), o.unsqueeze(1)).squeeze(-1).squeeze(-1) ** 2
                                for o in other])
    torch.testing.assert_close(half_squared_logit_distance(ref, other), oracle, rtol=1e-12, atol=1e-12)


def test_kl_from_log_probs_matches_torch_kl_div():
    ref, other = _logits()
    lp, lq = F.log_softmax(ref, -1), F.log_softmax(other, -1)
    oracle = F.kl_div(lq, lp.expand_as(lq), log_target=True, reduction="none").sum(-1)  # KL(p || q)
    torch.testing.assert_close(kl_from_log_probs(lp, lq), oracle, rtol=1e-12, atol=1e-12)


def test_normalized_logit_distance_divides_by_the_reference_norm_plus_eps():
    ref, other = _logits()
    out = normalized_logit_distance(ref, other)
    for h in range(other.shape[0]):
        for i in range(ref.shape[0]):
            want = float(((other[h, i] - ref[i]) ** 2).sum() / ((ref[i] ** 2).sum() + NORMALIZED_LOGIT_EPS))
            assert abs(float(out[h, i]) - want) <= 1e-12 * max(1.0, want)


def test_centered_normalized_logit_distance_is_the_normalized_form_of_mean_centered_logits():
    """Oracle: explicit loops, centering each logit vector by its mean over the classes."""
    ref, other = _logits()
    out = centered_normalized_logit_distance(ref, other)
    assert out.shape == (other.shape[0], ref.shape[0])
    for h in range(other.shape[0]):
        for i in range(ref.shape[0]):
            r = ref[i] - ref[i].mean()
            o = other[h, i] - other[h, i].mean()
            want = float(((o - r) ** 2).sum() / ((r ** 2).sum() + NORMALIZED_LOGIT_EPS))
            assert abs(float(out[h, i]) - want) <= 1e-12 * max(1.0, want)


def test_a_class_common_shift_leaves_the_centered_form_unchanged_and_lowers_the_paper_normalized_form():
    ref, other = _logits()
    shift = 1e3
    torch.testing.assert_close(centered_normalized_logit_distance(ref + shift, other + shift),
                               centered_normalized_logit_distance(ref, other), rtol=1e-9, atol=1e-12)
    assert bool((normalized_logit_distance(ref + shift, other + shift)
                 < 1e-3 * normalized_logit_distance(ref, other)).all())


def test_the_trainer_regularizer_accepts_the_centered_form_by_name():
    from nets.train import TrainConfig, invariance_regularizer

    ref, other = _logits()
    orbit = torch.cat([ref.unsqueeze(0), other], 0)  # (|G| = 5, B, C)
    got = invariance_regularizer(orbit, "centered_normalized_logit")
    torch.testing.assert_close(got, centered_normalized_logit_distance(ref, other).mean(), rtol=1e-12, atol=0)
    cfg = TrainConfig(method="IR", group="r4", regularizer="centered_normalized_logit", nu=10)
    assert cfg.key() == "r4-IR-centered_normalized_logit-nu10"


def test_the_detached_form_has_the_normalized_forms_value():
    from nets.train import invariance_regularizer

    ref, other = _logits()
    orbit = torch.cat([ref.unsqueeze(0), other], 0)
    assert torch.equal(normalized_logit_distance(ref, other, detach_denominator=True),
                       normalized_logit_distance(ref, other))
    assert torch.equal(invariance_regularizer(orbit, "detached_normalized_logit"),
                       invariance_regularizer(orbit, "normalized_logit"))


def test_the_detached_forms_gradient_is_the_logit_forms_times_two_over_the_reference_norm():
    """Oracle: d/dv of ||v - w||^2 / sg(||v||^2 + eps) is 2 (v - w) / (||v||^2 + eps), i.e. the
    gradient of Eq. 2's 1/2 ||v - w||^2 scaled per sample; for w the same with the sign flipped."""
    ref, other = _logits()
    got = torch.autograd.grad(normalized_logit_distance(ref.requires_grad_(), other.requires_grad_(),
                                                        detach_denominator=True).sum(), (ref, other))
    half = torch.autograd.grad(half_squared_logit_distance(ref, other).sum(), (ref, other))
    scale = 2 / (ref.detach().pow(2).sum(-1, keepdim=True) + NORMALIZED_LOGIT_EPS)
    torch.testing.assert_close(got[0], half[0] * scale, rtol=1e-12, atol=0)
    torch.testing.assert_close(got[1], half[1] * scale, rtol=1e-12, atol=0)


def test_a_class_common_shift_lowers_the_paper_form_by_its_gradient_but_not_the_detached_form():
    """The loophole of docs/findings.md is in the gradient: a shift ``s`` common to f(x) and f(hx)
    has d/ds < 0 for the paper's normalized form (at s = 100, where every logit of f(x) + s is
    positive, so growing s grows ||f(x) + s||) and 0 (up to round-off) once the denominator is detached."""
    ref, other = _logits()
    grads = []
    for detach in (False, True):
        s = torch.tensor(100.0, dtype=torch.float64, requires_grad=True)
        grads += torch.autograd.grad(normalized_logit_distance(ref + s, other + s, detach_denominator=detach).sum(), s)
    assert float(grads[0]) < 0 and abs(float(grads[1])) <= 1e-12 * abs(float(grads[0]))  # 0 up to round-off


def test_the_paper_forms_checkpoint_keys_are_unchanged_by_the_new_form():
    from nets.train import TrainConfig

    keys = [TrainConfig(method="IR", group="t3", regularizer=r, nu=100).key()
            for r in ("logit", "kl", "normalized_logit")]
    assert keys == ["t3-IR-logit-nu100", "t3-IR-kl-nu100", "t3-IR-normalized_logit-nu100"]
    assert TrainConfig(method="DA", group="r4").key() == "r4-DA"


def test_metrics_li_and_di_per_sample_are_bitwise_the_formulas_they_had_before_sharing_them():
    """nets.metrics now calls these functions; its LI / DI per sample equal, bit for bit, the
    expressions it computed inline before (on a seeded model's orbit logits)."""
    from nets import metrics
    from nets.groups import R4
    from nets.models import MLP

    torch.manual_seed(0)
    model = MLP(in_shape=(12, 12), hidden=16, n_hidden_layers=2).eval()
    x = torch.randn(20, 12, 12)
    with torch.no_grad():
        logits = model(R4.orbit(x).reshape(-1, 12, 12)).view(4, 20, -1)
    li_before = (0.5 * (logits[[1, 2, 3]] - logits[0]).pow(2).sum(-1)).mean(0)
    logp = F.log_softmax(logits.double(), dim=-1)
    di_before = (logp[0].exp() * (logp[0] - logp[[1, 2, 3]])).sum(-1).clamp_min(0).mean(0).float()
    assert torch.equal(metrics.logit_invariance(model, x, R4, reduction="none"), li_before)
    assert torch.equal(metrics.distribution_invariance(model, x, R4, reduction="none"), di_before)


def test_the_kl_regularizer_is_kl_of_the_reference_against_each_other_member():
    from nets.train.losses import invariance_regularizer

    logits = torch.randn(4, 6, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 2
    lp = F.log_softmax(logits, -1)  # (|G|, B, C); member 0 is x itself, the others g x
    oracle = F.kl_div(lp[1:], lp[:1].expand_as(lp[1:]), log_target=True, reduction="none").sum(-1).mean()
    torch.testing.assert_close(invariance_regularizer(logits, "kl"), oracle, rtol=1e-12, atol=1e-12)
