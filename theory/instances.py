"""The random instances of the Proposition 3.1 report (``python -m theory.spectral_flow``): its
:class:`Config`, the float64 instances every check shares (:class:`Instances`, drawn by
:func:`make_instances` from one seed, each named instance from its own generator) and the time
grids of the flow checks.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np

from . import linear_flow as lf

__all__ = ["Config", "Instances", "make_instances", "rank_one_times", "data_times"]


@dataclass
class Config:
    """Everything the report depends on; the defaults are what ``main`` runs.

    Times are in units of ``1 / lambda_max(Sigma)`` of the instance (``t_max``), step sizes in
    units of ``1 / lambda_max`` (``alpha_*``).
    """

    seed: int = 0
    n: int = 6                      # input dimension of the random instances
    m: int = 4                      # outputs of h(x) = W x
    n_samples: int = 4              # samples in the dataset instance, extension (a)
    n_times: int = 41               # linear time grid on [0, t_max / lambda_max] ...
    t_max: float = 8.0              # ... extended geometrically to 50 / lambda_min+
    gd_steps: int = 60
    alpha_below: tuple[float, ...] = (1.0, 1.9, 2.0)   # alpha * lambda_max <= 2: bound holds
    alpha_above: float = 3.0                           # > 2: counterexample
    task_target_scale: float = 100.0                   # ||y|| in extension (d)
    task_nu: float = 1.0
    limit_decay: float = 40.0       # T = limit_decay / lambda_min+ for the limit checks
    image_size: int = 6
    image_groups: tuple[str, ...] = ("r4", "t3")
    image_samples: int = 3
    image_outputs: int = 10
    tolerance_scale: float = 1.0    # multiplies every tolerance (0 demands exact equality)


def _rng(seed: int, name: str) -> np.random.Generator:
    """Generator for one named instance: independent of the order instances are drawn in."""
    return np.random.default_rng([int(seed), zlib.crc32(name.encode())])


def _random_cycle(rng: np.random.Generator, n: int) -> np.ndarray:
    """A random n-cycle: the cyclic group it generates has order n and fixes only constants."""
    order = rng.permutation(n)
    perm = np.empty(n, dtype=np.int64)
    perm[order] = np.roll(order, -1)
    return perm


def _time_grid(t_lin: float, t_far: float, n_lin: int) -> np.ndarray:
    """Linear grid on [0, t_lin], then 10 geometric points up to t_far (if larger)."""
    ts = np.linspace(0.0, t_lin, n_lin)
    if t_far > t_lin:
        ts = np.concatenate([ts, np.geomspace(t_lin, t_far, 11)[1:]])
    return ts


@dataclass
class Instances:
    """The random instances shared by the checks (all float64).

    Rank one (the proposition): ``x: (n,)``, ``G: (n, n)`` a cyclic permutation, ``eps = x - G x``.
    Dataset (extension (a)): ``X: (N, n)``, ``Gs: (n, n, n)`` the whole cyclic group,
    ``eps_data: (N*n, n)``, ``Sigma_data: (n, n)``. ``W0: (m, n)``; ``y: (m,)`` target for (d).
    """

    W0: np.ndarray
    x: np.ndarray
    G: np.ndarray
    eps: np.ndarray
    X: np.ndarray
    Gs: np.ndarray
    eps_data: np.ndarray
    Sigma_data: np.ndarray
    y: np.ndarray
    images: dict[str, np.ndarray] = field(default_factory=dict)
    W0_images: np.ndarray | None = None


def make_instances(cfg: Config) -> Instances:
    """Draw every instance from ``cfg.seed`` (see :class:`Instances`)."""
    n, m = cfg.n, cfg.m
    r = _rng(cfg.seed, "weights")
    W0 = r.standard_normal((m, n)) / np.sqrt(n)
    r = _rng(cfg.seed, "rank_one")
    Gs_one = lf.cyclic_group_matrices(_random_cycle(r, n))
    x = r.standard_normal(n)
    G = Gs_one[1]
    r = _rng(cfg.seed, "dataset")
    Gs = lf.cyclic_group_matrices(_random_cycle(r, n))
    X = r.standard_normal((cfg.n_samples, n))
    eps_data = lf.invariance_residuals(X, Gs)
    r = _rng(cfg.seed, "task")
    y = r.standard_normal(m)
    y *= cfg.task_target_scale / np.linalg.norm(y)
    r = _rng(cfg.seed, "images")
    S = cfg.image_size
    images = {g: r.standard_normal((cfg.image_samples, S, S)) for g in cfg.image_groups}
    W0_images = r.standard_normal((cfg.image_outputs, S * S)) / S
    return Instances(W0=W0, x=x, G=G, eps=x - G @ x, X=X, Gs=Gs, eps_data=eps_data,
                     Sigma_data=lf.invariance_covariance(eps_data), y=y, images=images,
                     W0_images=W0_images)


def rank_one_times(cfg: Config, eps: np.ndarray) -> np.ndarray:
    """The times of the rank-one checks: in units of ``1 / ||eps||^2`` up to ``t_max``, then far out
    (unit times where ``eps = 0``, an x that g fixes: then W(t) = W0 at every t)."""
    s = float(eps @ eps) or 1.0
    return _time_grid(cfg.t_max / s, 50.0 / s, cfg.n_times)


def data_times(cfg: Config, eps: np.ndarray) -> np.ndarray:
    """The times of the dataset checks: up to ``t_max / lambda_max``, then out to ``50 / lambda_min+``."""
    Sigma = lf.invariance_covariance(eps)
    _, r = lf.span_projector(eps)
    lam = np.linalg.eigvalsh(Sigma)[::-1]
    return _time_grid(cfg.t_max / lam[0], 50.0 / lam[r - 1], cfg.n_times)
