"""Symbolic (sympy) checks of the steps in the proof of Proposition 3.1.

Notation of Section 3.3: a linear network ``h(x) = W x`` with ``W: (m, n)``, an input
``x: (n,)``, a representation ``G: (n, n)`` of a group element, ``eps = x - G x`` and
``Sigma = eps eps^T``. Every check here but one works with fully symbolic entries in small
dimensions (n = 2, 3), and reports as residual the number of entries that did not simplify to 0
(tolerance 0), so a PASS is an identity proved for all values of the symbols in that dimension,
not a numerical coincidence. The one in every dimension
(:func:`check_any_n_in_the_projector_algebra`) works in the algebra of the projector onto eps.
The last step of the proposition, ``sigma_max(W0 E) <= sigma_max(W0) ||E||_2`` (submultiplicativity
of the spectral norm), is a textbook inequality, used and not re-derived; the bound itself is
checked numerically (:mod:`theory.numeric`).

To keep the algebra rational (and fast), the one transcendental quantity
``exp(-t eps^T eps)`` is replaced by a symbol ``q`` once every derivative in ``t`` is taken;
what remains is a rational function identity that ``sympy.cancel`` decides exactly.
"""

from __future__ import annotations

from typing import Callable

import sympy as sp

from .checks import CheckResult, at_most

__all__ = [
    "symbolic_matrix",
    "logit_invariance_error",
    "rank_one_exp_closed_form",
    "check_gradient",
    "check_flow_solves_ode",
    "check_closed_form_solves_ode",
    "check_closed_form_matches_sympy_exp",
    "check_closed_form_spectrum",
    "check_limit_is_projector",
    "ALL_SYMBOLIC_CHECKS",
]


def symbolic_matrix(prefix: str, rows: int, cols: int, **assumptions: bool) -> sp.Matrix:
    """A ``(rows, cols)`` matrix of independent symbols ``prefix_i_j`` (real by default)."""
    assumptions.setdefault("real", True)
    return sp.Matrix(rows, cols, lambda i, j: sp.Symbol(f"{prefix}_{i}_{j}", **assumptions))


def _nonzero_entries(M: sp.Matrix) -> int:
    """Number of entries of ``M`` that are not identically 0.

    Each entry is a rational function; it is 0 iff the expanded numerator of its form over a
    common denominator is the zero polynomial (cheaper than a full ``cancel``).
    """
    return sum(1 for z in M if sp.expand(sp.fraction(sp.together(z))[0]) != 0)


def logit_invariance_error(W: sp.Matrix, x: sp.Matrix, G: sp.Matrix) -> sp.Expr:
    """Eq. (2) for one sample and one group element: ``1/2 ||W x - W G x||^2``.

    W: (m, n), x: (n, 1), G: (n, n); returns a scalar expression.
    """
    r = W * x - W * (G * x)
    return sp.Rational(1, 2) * (r.T * r)[0, 0]


def rank_one_exp_closed_form(eps: sp.Matrix, t: sp.Expr) -> sp.Matrix:
    """Closed form of ``exp(-Sigma t)`` for ``Sigma = eps eps^T`` (proof of Prop. 3.1):

    ``exp(-Sigma t) = I - (1 - exp(-t eps^T eps)) eps eps^T / (eps^T eps)``, shape (n, n).
    """
    s = (eps.T * eps)[0, 0]
    return sp.eye(eps.shape[0]) - (1 - sp.exp(-t * s)) * (eps * eps.T) / s


def check_gradient(n: int = 3, m: int = 2) -> CheckResult:
    """Gradient of Eq. (2) is the one in the proof of Prop. 3.1:

    ``d/dW 1/2 ||W x - W G x||^2 = W (x - G x)(x - G x)^T``, with W (m, n), x (n,) and
    G (n, n) all fully symbolic (so every permutation representation is a special case).
    """
    W = symbolic_matrix("w", m, n)
    x = symbolic_matrix("x", n, 1)
    G = symbolic_matrix("g", n, n)
    L = logit_invariance_error(W, x, G)
    grad = sp.Matrix(m, n, lambda i, j: sp.diff(L, W[i, j]))
    eps = x - G * x
    diff = (grad - W * eps * eps.T).applyfunc(sp.expand)
    bad = _nonzero_entries(diff)
    return at_most(f"symbolic_gradient_n{n}_m{m}", bad, 0,
                   f"dLI/dW - W eps eps^T has {bad} nonzero entries (W {m}x{n}, x, G {n}x{n} symbolic)")


def check_flow_solves_ode(n: int = 2, m: int = 2) -> CheckResult:
    """Eq. (6) solves Eq. (5): ``W(t) = W(0) exp(-Sigma t)`` gives ``dW/dt = -W Sigma``, ``W(0) = W_0``.

    Sigma is a general diagonalizable matrix ``V diag(lambda) V^{-1}`` with V and lambda
    fully symbolic (every symmetric Sigma, rank one or not, is of this form), so
    ``exp(-Sigma t) = V diag(exp(-lambda t)) V^{-1}``. W_0: (m, n) symbolic.
    """
    t = sp.Symbol("t", real=True)
    lam = sp.symbols(f"lambda_0:{n}", real=True)
    q = sp.symbols(f"q_0:{n}", positive=True)  # q_i stands for exp(-lambda_i t)
    V = symbolic_matrix("v", n, n)
    Vinv = V.inv()
    W0 = symbolic_matrix("w", m, n)
    Sigma = V * sp.diag(*lam) * Vinv
    E = V * sp.diag(*[sp.exp(-l * t) for l in lam]) * Vinv
    W = W0 * E
    ode = (W.diff(t) + W * Sigma).xreplace({sp.exp(-l * t): qi for l, qi in zip(lam, q)})
    init = W.subs(t, 0) - W0
    bad = _nonzero_entries(ode) + _nonzero_entries(init)
    return at_most(f"symbolic_flow_solves_ode_n{n}", bad, 0,
                   f"dW/dt + W Sigma and W(0) - W0: {bad} nonzero entries "
                   f"(Sigma = V diag(lambda) V^-1 symbolic {n}x{n}, W0 {m}x{n})")


def check_closed_form_solves_ode(n: int = 3, m: int = 2) -> CheckResult:
    """The rank-one closed form E(t) satisfies ``dE/dt = -Sigma E`` and ``E(0) = I``, and
    ``W(t) = W_0 E(t)`` satisfies Eq. (5), ``dW/dt = -W Sigma``.

    By uniqueness of solutions of linear ODEs the first two identities prove
    ``E(t) = exp(-Sigma t)`` for ``Sigma = eps eps^T``, with eps (n,) fully symbolic and
    nonzero; the third is Eq. (6) solving Eq. (5) for a symbolic W_0 (m, n).
    """
    t = sp.Symbol("t", real=True)
    q = sp.Symbol("q", positive=True)
    eps = symbolic_matrix("e", n, 1)
    W0 = symbolic_matrix("w", m, n)
    s = (eps.T * eps)[0, 0]
    Sigma = eps * eps.T
    E = rank_one_exp_closed_form(eps, t)
    W = W0 * E
    to_q = {sp.exp(-t * s): q}
    ode_E = (E.diff(t) + Sigma * E).xreplace(to_q)
    ode_W = (W.diff(t) + W * Sigma).xreplace(to_q)
    init = E.subs(t, 0) - sp.eye(n)
    leftover_t = sum(1 for z in list(ode_E) + list(ode_W) if z.has(t))
    bad = _nonzero_entries(ode_E) + _nonzero_entries(ode_W) + _nonzero_entries(init) + leftover_t
    return at_most(f"symbolic_closed_form_solves_ode_n{n}", bad, 0,
                   f"dE/dt + Sigma E, E(0) - I, d(W0 E)/dt + W0 E Sigma: {bad} nonzero entries "
                   f"(eps, W0 {m}x{n} symbolic)")


def check_closed_form_matches_sympy_exp() -> CheckResult:
    """Independent oracle in n = 2: the closed form equals sympy's own ``(-Sigma t).exp()``."""
    t = sp.Symbol("t", real=True)
    eps = symbolic_matrix("e", 2, 1)
    Sigma = eps * eps.T
    diff = ((-Sigma * t).exp() - rank_one_exp_closed_form(eps, t)).applyfunc(sp.simplify)
    bad = sum(1 for z in diff if z != 0)
    return at_most("symbolic_closed_form_matches_sympy_exp_n2", bad, 0,
                   f"sympy exp(-Sigma t) - closed form: {bad} nonzero entries (eps symbolic, n=2)")


def check_closed_form_spectrum(n: int = 3) -> CheckResult:
    """Spectrum step of the proof: ``exp(-Sigma t)`` has eigenvalues 1 (n-1 times) and
    ``q = exp(-t eps^T eps)``, is symmetric, and ``0 < q <= 1`` for ``t >= 0``; hence its
    spectral norm (the largest |eigenvalue| of a symmetric matrix) is exactly 1.

    Checked as ``det(lambda I - E) = (lambda - 1)^(n-1) (lambda - q)`` with eps (n,) symbolic. For n = 1
    the norm is q < 1, so n >= 2 (``ValueError`` otherwise).
    """
    if n < 2:
        raise ValueError(f"the spectrum step needs n >= 2 (for n = 1, ||exp(-Sigma t)||_2 = q < 1), got n = {n}")
    lam = sp.Symbol("lambda")
    q = sp.Symbol("q", positive=True)
    eps = symbolic_matrix("e", n, 1)
    s = (eps.T * eps)[0, 0]
    tau = sp.Symbol("t", real=True)
    E = rank_one_exp_closed_form(eps, tau).xreplace({sp.exp(-tau * s): q})  # the closed form the ODE check solves
    bad = sum(1 for z in E if z.has(tau))  # every t went into q
    charpoly = (lam * sp.eye(n) - E).det(method="berkowitz")
    bad += int(sp.cancel(sp.together(charpoly - (lam - 1) ** (n - 1) * (lam - q))) != 0)
    bad += _nonzero_entries(E - E.T)
    # q = exp(-u) with u = t * eps^T eps, t >= 0: q > 0, and q <= 1 iff -u <= 0. sympy decides both
    # signs from the real entries of eps (s is their sum of squares), not from an assumption on s.
    t = sp.Symbol("t", nonnegative=True)
    u = t * s
    bad += int(sp.exp(-u).is_positive is not True) + int((-u).is_nonpositive is not True)
    return at_most(f"symbolic_closed_form_spectrum_n{n}", bad, 0,
                   f"charpoly == (l-1)^{n - 1}(l-q), E symmetric, 0<q<=1 for t>=0 "
                   f"=> ||exp(-Sigma t)||_2 = 1: {bad} failures")


def check_limit_is_projector(n: int = 3) -> CheckResult:
    """``lim_{t->oo} exp(-Sigma t) = I - eps eps^T / (eps^T eps)``, an orthogonal projector
    (symmetric, idempotent, trace n-1) that annihilates eps. eps (n,) symbolic, nonzero.

    The limit is taken with ``eps^T eps`` replaced in the exponent by a positive symbol
    sigma (it is positive for every nonzero real eps), since sympy cannot infer the sign of
    a sum of squares of unconstrained reals. Every entry of E(t) is affine in
    ``exp(-t sigma)``, so the entrywise limit is the entrywise substitution of
    ``lim exp(-t sigma)``, which sympy computes once.
    """
    t = sp.Symbol("t", positive=True)
    sigma = sp.Symbol("sigma", positive=True)
    eps = symbolic_matrix("e", n, 1)
    s = (eps.T * eps)[0, 0]
    S = eps * eps.T
    E = sp.eye(n) - (1 - sp.exp(-t * sigma)) * S / s
    decay = sp.exp(-t * sigma)
    limit = E.xreplace({decay: sp.limit(decay, t, sp.oo)})
    bad = sum(1 for z in limit if z.has(t))
    P = sp.eye(n) - S / s
    bad += _nonzero_entries(limit - P)
    bad += _nonzero_entries(P * P - P) + _nonzero_entries(P - P.T) + _nonzero_entries(P * eps)
    bad += int(sp.cancel(P.trace() - (n - 1)) != 0)
    return at_most(f"symbolic_limit_is_projector_n{n}", bad, 0,
                   f"lim E(t) == I - eps eps^T/eps^T eps, idempotent, symmetric, P eps = 0, "
                   f"trace n-1: {bad} failures (n={n})")


def check_any_n_in_the_projector_algebra() -> CheckResult:
    """The closed form and the norm step in every dimension n. With ``P = eps eps^T / eps^T eps``
    (symmetric, and ``P^2 = P`` by associativity: ``eps (eps^T eps) eps^T / (eps^T eps)^2``) and
    ``s = eps^T eps``, ``Sigma = s P``; every matrix here is a polynomial in P, so the algebra is
    commutative and reduced modulo ``P^2 - P``. Checked, for symbolic ``s > 0`` and ``t``:

    * ``E(t) = I - (1 - exp(-s t)) P`` solves ``E' = -Sigma E``, ``E(0) = I`` (so it is ``exp(-Sigma t)``);
    * ``E^2 = I - (1 - q^2) P`` with ``q = exp(-s t)``, and ``0 < q <= 1``.

    What follows is argued, not checked: P is symmetric by its form (the commutative symbol cannot say
    so), so ``E^T E = E^2`` and ``||E u||^2 = ||u||^2 - (1 - q^2) ||P u||^2 <= ||u||^2``, with equality for
    ``u`` orthogonal to eps, which exists for n >= 2: ``||exp(-Sigma t)||_2 = 1``, whatever n.
    """
    p = sp.Symbol("P")
    t = sp.Symbol("t", nonnegative=True)
    s = sp.Symbol("s", positive=True)
    q = sp.exp(-s * t)

    def reduced(expr: sp.Expr) -> sp.Expr:  # modulo P^2 = P
        return sp.expand(sp.rem(sp.expand(expr), p ** 2 - p, p))

    E = 1 - (1 - q) * p
    bad = int(reduced(sp.diff(E, t) + s * p * E) != 0)
    bad += int(E.subs(t, 0) != 1)
    bad += int(reduced(E * E - (1 - (1 - q ** 2) * p)) != 0)
    bad += int(q.is_positive is not True) + int((-s * t).is_nonpositive is not True)  # 0 < q <= 1
    return at_most("symbolic_any_n_projector_algebra", bad, 0,
                   f"in the algebra of P (P^2 = P): I - (1 - q) P solves E' = -sPE, E(0) = I, and "
                   f"E^T E = I - (1 - q^2) P with 0 < q <= 1, so ||E||_2 = 1 for every n >= 2: {bad} failures")


#: The symbolic part of the report, in report order: name -> zero-argument check.
#: Each name equals the ``name`` of the result its check returns.
ALL_SYMBOLIC_CHECKS: dict[str, Callable[[], CheckResult]] = {
    "symbolic_gradient_n2_m2": lambda: check_gradient(2, 2),
    "symbolic_gradient_n3_m2": lambda: check_gradient(3, 2),
    "symbolic_flow_solves_ode_n2": lambda: check_flow_solves_ode(2, 2),
    "symbolic_closed_form_solves_ode_n2": lambda: check_closed_form_solves_ode(2),
    "symbolic_closed_form_solves_ode_n3": lambda: check_closed_form_solves_ode(3),
    "symbolic_closed_form_matches_sympy_exp_n2": check_closed_form_matches_sympy_exp,
    "symbolic_closed_form_spectrum_n2": lambda: check_closed_form_spectrum(2),
    "symbolic_closed_form_spectrum_n3": lambda: check_closed_form_spectrum(3),
    "symbolic_limit_is_projector_n2": lambda: check_limit_is_projector(2),
    "symbolic_limit_is_projector_n3": lambda: check_limit_is_projector(3),
    "symbolic_any_n_projector_algebra": check_any_n_in_the_projector_algebra,
}
