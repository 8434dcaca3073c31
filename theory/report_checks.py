"""Which checks the Proposition 3.1 report runs (:mod:`theory.spectral_flow`), by name and in report
order: the symbolic ones, Proposition 3.1 itself, and extensions (a)-(j), each bound to the seeded
instances of :mod:`theory.instances`. The report runs them, prints and writes them."""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from . import kl_flow as kl
from . import linear_flow as lf
from . import numeric as nm
from . import symbolic as sy
from . import task_flow as tl
from . import tightness as tg
from . import two_layer as tw
from .checks import CheckResult
from .instances import Config, Instances, data_times, make_instances, rank_one_times

__all__ = ["Check", "default_checks", "select_checks"]

Check = Callable[[], CheckResult]


def _image_checks(cfg: Config, inst: Instances) -> dict[str, Check]:
    """Extension (e) checks for every group in ``cfg.image_groups``, by name.

    ``nets.groups`` (and so torch) is imported only when one of them runs.
    """

    def group_of(gname: str):  # noqa: ANN202 - nets.groups.Group, imported lazily
        from nets.groups import get_group

        return get_group(gname)

    def eps_of(gname: str) -> np.ndarray:
        from .images import image_residuals

        return image_residuals(group_of(gname), inst.images[gname])

    def data_of(gname: str) -> tuple[np.ndarray, np.ndarray]:
        from .images import representation_matrices

        imgs = inst.images[gname]
        return imgs.reshape(len(imgs), -1), representation_matrices(group_of(gname), *imgs.shape[1:])

    def orbit_check(gname: str, name: str) -> CheckResult:
        from .images import check_representation_matches_orbit

        return check_representation_matches_orbit(group_of(gname), inst.images[gname], name=name)

    W0 = inst.W0_images
    checks: dict[str, Check] = {}
    for g in cfg.image_groups:
        pre = f"image_{g}"
        checks.update({
            f"{pre}_representation_matches_orbit":
                lambda g=g, pre=pre: orbit_check(g, f"{pre}_representation_matches_orbit"),
            f"{pre}_flow_expm_vs_ode": lambda g=g, pre=pre: nm.check_flow_expm_vs_ode(
                W0, lf.invariance_covariance(eps_of(g)), data_times(cfg, eps_of(g)),
                name=f"{pre}_flow_expm_vs_ode"),
            f"{pre}_sigma_max_bound": lambda g=g, pre=pre: nm.check_sigma_max_bound(
                W0, lf.invariance_covariance(eps_of(g)), data_times(cfg, eps_of(g)),
                name=f"{pre}_sigma_max_bound"),
            f"{pre}_all_singular_values_nonincreasing":
                lambda g=g, pre=pre: nm.check_singular_values_nonincreasing(
                    W0, lf.invariance_covariance(eps_of(g)), data_times(cfg, eps_of(g)),
                    name=f"{pre}_all_singular_values_nonincreasing"),
            f"{pre}_limit_is_projection": lambda g=g, pre=pre: nm.check_limit_is_projection(
                W0, eps_of(g), cfg.limit_decay, name=f"{pre}_limit_is_projection"),
            f"{pre}_limit_is_invariant": lambda g=g, pre=pre: nm.check_limit_is_invariant(
                W0, *data_of(g), name=f"{pre}_limit_is_invariant"),
        })
    return checks


def default_checks(cfg: Config, inst: Instances | None = None) -> dict[str, Check]:
    """Every check of the report, in report order: name -> zero-argument callable.

    Each name equals the ``name`` of the :class:`CheckResult` its callable returns.
    """
    inst = inst or make_instances(cfg)
    W0, eps, S_data = inst.W0, inst.eps, inst.Sigma_data
    Sigma = np.outer(eps, eps)
    ts1 = rank_one_times(cfg, eps)
    tsd = data_times(cfg, inst.eps_data)
    checks: dict[str, Check] = dict(sy.ALL_SYMBOLIC_CHECKS)
    checks.update({
        # Proposition 3.1 itself: one sample, one group element, rank-one Sigma.
        "gradient_vs_finite_differences": lambda: nm.check_gradient_finite_differences(
            W0, inst.x[None], inst.G[None], name="gradient_vs_finite_differences"),
        "closed_form_vs_expm": lambda: nm.check_closed_form_vs_expm(eps, ts1),
        "rank_one_exp_spectral_norm_is_one": lambda: nm.check_exp_spectral_norm_is_one(eps, ts1),
        "ode_vs_closed_form": lambda: nm.check_ode_vs_closed_form(W0, eps, ts1[: cfg.n_times]),
        "sigma_max_bound": lambda: nm.check_sigma_max_bound(W0, Sigma, ts1, name="sigma_max_bound"),
        "limit_is_projection": lambda: nm.check_limit_is_projection(
            W0, eps[None], cfg.limit_decay, name="limit_is_projection"),
        # (a) dataset and orbit.
        "dataset_gradient_vs_finite_differences": lambda: nm.check_gradient_finite_differences(
            W0, inst.X, inst.Gs, name="dataset_gradient_vs_finite_differences"),
        "dataset_sigma_is_orbit_sum": lambda: nm.check_orbit_covariance(inst.X, inst.Gs),
        "dataset_flow_expm_vs_ode": lambda: nm.check_flow_expm_vs_ode(W0, S_data, tsd),
        "dataset_sigma_max_bound": lambda: nm.check_sigma_max_bound(
            W0, S_data, tsd, name="dataset_sigma_max_bound"),
        "dataset_all_singular_values_nonincreasing":
            lambda: nm.check_singular_values_nonincreasing(W0, S_data, tsd),
        # (b) the limit.
        "dataset_limit_is_projection": lambda: nm.check_limit_is_projection(
            W0, inst.eps_data, cfg.limit_decay, name="dataset_limit_is_projection"),
        "dataset_limit_is_invariant": lambda: nm.check_limit_is_invariant(
            W0, inst.X, inst.Gs, name="dataset_limit_is_invariant"),
    })
    # (c) discrete gradient descent.
    for a in cfg.alpha_below:
        name = f"gd_below_step_bound_alpha{a:g}"
        checks[name] = lambda a=a, name=name: nm.check_gd_below_step_bound(
            W0, S_data, a, cfg.gd_steps, name=name)
    name = f"gd_above_step_bound_alpha{cfg.alpha_above:g}_counterexample"
    checks[name] = lambda name=name: nm.check_gd_above_step_bound_grows(
        S_data, cfg.m, cfg.alpha_above, name=name)
    # (d) a task loss.
    task = (W0, inst.x, inst.G, inst.y, cfg.task_nu)
    checks.update({
        "task_loss_flow_is_gradient_flow": lambda: tl.check_task_flow_is_gradient_flow(*task),
        "task_loss_flow_vs_exact": lambda: tl.check_task_flow_vs_exact(*task),
        "task_loss_counterexample": lambda: tl.check_task_loss_can_grow_sigma_max(*task),
    })
    # (e) R4 and T3 on images.
    checks.update(_image_checks(cfg, inst))
    # (f) how much decay: none at all for some W0, and a floor.
    checks.update({
        "sigma_max_can_stay_equal": lambda: tg.check_sigma_max_can_stay(W0, eps, ts1),
        "decay_floor": lambda: tg.check_decay_floor(W0, eps, name="decay_floor"),
        "dataset_decay_floor": lambda: tg.check_decay_floor(W0, inst.eps_data, name="dataset_decay_floor"),
    })
    # (g) Adam, the paper's optimizer, is not covered: a counterexample.
    checks["adam_can_grow_sigma_max"] = _adam_check
    # (h) SGD with momentum, at a step where gradient descent keeps the bound.
    checks["momentum_can_grow_sigma_max"] = lambda: _momentum_growth(S_data, cfg.m)
    checks["momentum_unsafe_steps"] = _momentum_steps
    # (i) two linear layers, h(x) = W2 W1 x: the flow of the invariance error alone can raise sigma_max.
    checks.update({
        "two_layer_flow_is_gradient_flow": tw.check_two_layer_flow_is_gradient_flow,
        "two_layer_flow_vs_limit": tw.check_two_layer_flow_vs_limit,
        "two_layer_can_grow_sigma_max": tw.check_two_layer_can_grow_sigma_max,
    })
    # (j) the KL invariance error (Eq. 1, the trainer's kl form) in place of Eq. (2): its flow can raise sigma_max.
    checks.update({
        "kl_gradient_vs_finite_differences": kl.check_kl_gradient_vs_finite_differences,
        "kl_flow_vs_gap_flow": kl.check_kl_flow_vs_gap_flow,
        "kl_can_grow_sigma_max": kl.check_kl_can_grow_sigma_max,
        "centered_can_grow_sigma_max": kl.check_centered_can_grow_sigma_max,
    })
    return checks


def _adam_check() -> CheckResult:
    """Extension (g)'s check; :mod:`theory.adam` (and so torch) is imported only when it runs."""
    from .adam import check_adam_can_grow_sigma_max

    return check_adam_can_grow_sigma_max()


def _momentum_growth(Sigma: np.ndarray, m: int) -> CheckResult:
    """Extension (h)'s counterexample; :mod:`theory.momentum` (and so torch) is imported only when it runs."""
    from .momentum import check_momentum_can_grow_sigma_max

    return check_momentum_can_grow_sigma_max(Sigma, m)


def _momentum_steps() -> CheckResult:
    """Extension (h)'s scan of the steps momentum breaks the bound at (imported as :func:`_momentum_growth`)."""
    from .momentum import check_momentum_unsafe_steps

    return check_momentum_unsafe_steps()


def select_checks(checks: dict[str, Check], only: Sequence[str] | None) -> dict[str, Check]:
    """The checks whose name contains one of the substrings in ``only`` (all if None/empty).

    Raises ValueError if a substring selects nothing (a typo should not pass silently).
    """
    if not only:
        return dict(checks)
    for pat in only:
        if not any(pat in name for name in checks):
            raise ValueError(f"--only {pat!r} matches no check; names: {', '.join(checks)}")
    return {k: v for k, v in checks.items() if any(p in k for p in only)}
