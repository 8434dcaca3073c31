"""The result of one named check of Proposition 3.1, and how a check decides.

Every check in :mod:`theory.symbolic`, :mod:`theory.numeric` and :mod:`theory.images`
returns a :class:`CheckResult`. Three kinds of decision exist:

* ``"residual"``: ``value`` is an error (max abs or relative), passed iff ``value <= tolerance``;
* ``"bound"``: ``value`` is a measured excess of an inequality, e.g.
  ``max_t sigma_max(W(t)) - sigma_max(W(0))``; it may be negative; passed iff ``value <= tolerance``;
* ``"counterexample"``: ``value`` is a measured growth that should exist, passed iff
  ``value > tolerance`` (the tolerance is the margin the growth must clear).

A NaN value fails every kind, because every comparison with NaN is false.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

import numpy as np

Kind = Literal["residual", "bound", "counterexample"]

#: Unit roundoff of float64, the only dtype the theory checks use.
EPS64: float = float(np.finfo(np.float64).eps)

__all__ = ["CheckResult", "Kind", "EPS64", "EXPM_ROUNDING_CONSTANT", "MAX_RATE_TIME", "MAX_ODE_RATE_TIME",
           "expm_rounding", "ode_allowance",
           "finite_difference_tolerance", "at_most", "exceeds"]


#: The constant of :func:`expm_rounding`'s bound. ``n u (1 + lambda t)`` is the scale of expm's
#: error (exp's condition number for a symmetric matrix is ``lambda t``); the Pade evaluation (matrix
#: polynomials of degree up to 13 and one linear solve) adds rounding of its own, so the constant is
#: not 1: scipy 1.17.1's expm on an AMD EPYC (Zen 5) was 21 u off the rank-one closed form at
#: ``n = 2``, ``lambda t = 4`` (Hypothesis found it, 2.1 times ``n u (1 + lambda t)``), and up to 4.6
#: times it over 20,000 random rank-one cases there. 16 leaves room above that, and a wrong formula is
#: off by O(1), not by 1e-13. Every check that goes through expm takes it (the bound checks of
#: theory.numeric and theory.tightness too: they allow 16 times more rounding, still about 1e-13).
EXPM_ROUNDING_CONSTANT = 16


def expm_rounding(n: int, rate_time: float) -> float:
    """The rounding the checks allow in ``expm(-Sigma t)`` of an ``n x n`` Sigma, relative to the
    scale of what it multiplies: ``c n u (1 + lambda t)``, ``rate_time = lambda t`` (the largest
    eigenvalue of Sigma times the longest time), u the float64 unit roundoff, ``c`` =
    :data:`EXPM_ROUNDING_CONSTANT`."""
    return EXPM_ROUNDING_CONSTANT * n * EPS64 * (1 + rate_time)


#: The longest horizon ``lambda_max t_max`` the expm-based checks measure over. Their allowances grow with it
#: (:func:`expm_rounding`), and a grid out to ``50 / lambda_min+`` makes it 50 times Sigma's condition
#: number: left unchecked they grew until a flow raising sigma_max 1.5x passed (condition 3e12). At this cap
#: they allow about ``1e-4`` relative for n = 36, far below an O(1) discrepancy; a check past it is a FAIL
#: naming the horizon (:func:`theory.numeric.refuse_long_horizon`). verify/ draws conditions up to 1e8.
MAX_RATE_TIME = 5e9
#: The same for the checks against ``solve_ivp``, whose explicit integrator takes steps of about
#: ``1 / lambda_max`` (a horizon of 5e5 took 5 s; 1e6 allows ``ode_allowance`` 1e-5).
MAX_ODE_RATE_TIME = 1e6


def ode_allowance(rtol: float, rate_time: float) -> float:
    """What the checks against ``solve_ivp`` (DOP853 at ``rtol``) allow for its global error over a horizon
    of ``rate_time = lambda_max t_max``: ``10 rtol (1 + lambda_max t_max)``. Its error control is local
    (per step, relative to the solution); on ``dW/dt = -W Sigma`` the per-step errors add up over the
    horizon in units of the fastest decay, so the global error grows with ``lambda_max t_max`` (1.25e-9
    at ``lambda t`` = 2e3 on a seed where expm's was 1e-13; a fixed ``1e3 rtol`` failed such seeds). A
    heuristic allowance, not a derived bound: a wrong flow is off by O(1)."""
    return 10 * rtol * (1 + rate_time)


def finite_difference_tolerance(loss_scale: float, h: float, grad_scale: float) -> float:
    """What a central-difference gradient of a quadratic loss may be off by, relative to the gradient's
    largest entry ``grad_scale``: cancellation only (no truncation error), ``100 u loss_scale / (h
    grad_scale)``, ``loss_scale`` the largest ``|loss|`` the differences evaluated. Scale-free: W and the
    data scaled by ``c`` scale the loss, h and the gradient so that it does not change."""
    return 100 * EPS64 * loss_scale / (h * max(grad_scale, 1e-300))


@dataclass(frozen=True)
class CheckResult:
    """Outcome of one named check.

    name: stable identifier (used as the JSON key and in the printed report).
    passed: the decision, already taken by the check.
    value: the measured residual, bound excess or growth (float64).
    tolerance: the threshold ``value`` was compared with.
    kind: how ``value`` and ``tolerance`` are compared (see the module docstring).
    detail: one human-readable line (what was measured, on what instance).
    """

    name: str
    passed: bool
    value: float
    tolerance: float
    kind: Kind
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict; non-finite floats become strings (``"nan"``, ``"inf"``)."""
        out = asdict(self)
        for key in ("value", "tolerance"):
            v = out[key]
            out[key] = v if math.isfinite(v) else str(v)
        out["passed"] = bool(out["passed"])
        return out

    def decide(self, tolerance: float) -> "CheckResult":
        """The same measurement decided again against another tolerance (same kind)."""
        tolerance = float(tolerance)
        passed = self.value > tolerance if self.kind == "counterexample" else self.value <= tolerance
        return replace(self, passed=bool(passed), tolerance=tolerance)

    def line(self) -> str:
        """One report line: ``PASS name  value <= tol  (detail)``."""
        op = ">" if self.kind == "counterexample" else "<="
        status = "PASS" if self.passed else "FAIL"
        return (f"{status}  {self.name:<44s} {self.kind:<14s} {self.value: .3e} {op} "
                f"{self.tolerance:.3e}  {self.detail}")


def at_most(name: str, value: float, tolerance: float, detail: str = "",
            kind: Literal["residual", "bound"] = "residual") -> CheckResult:
    """A residual or bound check: passed iff ``value <= tolerance`` (NaN fails)."""
    value, tolerance = float(value), float(tolerance)
    return CheckResult(name, bool(value <= tolerance), value, tolerance, kind, detail)


def exceeds(name: str, value: float, threshold: float, detail: str = "") -> CheckResult:
    """A counterexample check: passed iff ``value > threshold`` (NaN fails)."""
    value, threshold = float(value), float(threshold)
    return CheckResult(name, bool(value > threshold), value, threshold, "counterexample", detail)
