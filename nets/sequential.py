"""Optional stopping: what adding seeds until a check is decided costs, and the checks so decided
held to a stricter interval.

Seeds were added to a check only while it was undecided: 4, then 12 (``results/paper-s12``,
``results/fmnist-s12``), then 36 (``results/paper-s36``); beyond the paper, claim 5's check for the
detached and centered normalized forms went from 4 to 10 and 21 seeds (``results/detached-seeds``,
``results/centered-seeds``), and at 600 epochs from 4 to 10 to 20 (``results/detached-e600-s20``).
Each look was a fixed-n 95% t interval
(:func:`nets.stats.decide`). A check whose true value lies on its bound is decided wrongly with
probability 2.5% at one look, but the chance accumulates over looks (:func:`stopping_error`, by
simulation). The checks decided after seeds were added are held again to the Bonferroni level of
the plan's three looks (:data:`PLAN_LOOKS`; :func:`adjusted_check`, the two-sided interval at
confidence ``1 - (1 - c) / 3``): the plan was open-ended, and one check took all three. This does
not bring the whole procedure back to 2.5%, since the first look spent the full 2.5%: its rate,
95% at the first look and the adjusted level after it, is simulated too (``procedure_error``),
beside a split that would (the adjusted level at every look, the first included). The rate is the
plan's, whatever look a check stopped at: a check decided at 12 seeds ran under a rule that would have
gone on to 36 had it not been decided.
``python -m nets.sequential`` writes all of it, for the checks the committed runs decided after
seeds were added, to ``results/sequential.json`` (docs/statistics.md#optional-stopping).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from scipy import stats

from nets.evidence import later_accuracy_ratio, measure, per_seed, seeds_text, unread
from nets.cli_types import positive_int
from nets.results_io import ResultsWriteError, check_file, read_json, run_provenance, write_json
from nets.stats import CONFIDENCE, decide, t_interval, tied_counts
from nets.verdicts import Thresholds

__all__ = ["stopping_error", "adjusted_check", "Found", "DECIDED_AFTER_MORE_SEEDS", "PLAN_LOOKS", "main"]

#: The looks the plan took at most (4, 12 and 36 seeds): every check decided after seeds were added is
#: held to their Bonferroni level, whichever look decided it.
PLAN_LOOKS = (4, 12, 36)


def stopping_error(looks: Sequence[int], *, confidence: float | Sequence[float] = CONFIDENCE,
                   n_sims: int = 200_000, seed: int = 0) -> list[float]:
    """P(a check of ``mean >= bound`` is decided "holds" although its true mean lies on the bound),
    after each look, when the seeds grow through ``looks`` (nested: the first ``n`` of the next) and
    the check stops once decided, each look a two-sided ``confidence`` t interval (one confidence,
    or one per look); normal seeds. By symmetry the same for a wrong "fails", and for ``<=``.
    ``(len(looks),)`` cumulative probabilities, the first ``(1 - confidence) / 2`` up to simulation
    error (about 3e-4 here)."""
    looks = [int(n) for n in looks]
    if not looks or looks != sorted(set(looks)) or looks[0] < 2:
        raise ValueError(f"looks must be increasing seed counts >= 2, got {looks}")
    levels = [float(confidence)] * len(looks) if np.ndim(confidence) == 0 else [float(c) for c in confidence]
    if len(levels) != len(looks) or not all(0 < c < 1 for c in levels):
        raise ValueError(f"confidence must be one level in (0, 1) or one per look ({len(looks)}), got {confidence}")
    x = np.random.default_rng(seed).standard_normal((n_sims, looks[-1]))
    decided, wrong, out = np.zeros(n_sims, bool), np.zeros(n_sims, bool), []
    for n, level in zip(looks, levels):
        m, s = x[:, :n].mean(1), x[:, :n].std(1, ddof=1)
        half = stats.t.ppf(0.5 + level / 2, n - 1) * s / math.sqrt(n)
        holds, fails = (m - half >= 0) & ~decided, (m + half < 0) & ~decided
        wrong |= holds
        decided |= holds | fails
        out.append(float(wrong.mean()))
    return out


@dataclass(frozen=True)
class Found:
    """A re-checked check's per-seed values, as REPORT.md reads them: ``magnitude``, for differences, the
    largest value differenced (whose rounding they carry, :func:`~nets.stats.t_interval`); ``counts``,
    differences of accuracies, where seeds that agree exactly may do so by chance
    (:func:`~nets.stats.tied_counts`)."""

    values: list[float]
    magnitude: float | None = None
    counts: bool = False


def adjusted_check(values: Sequence[float], op: str, bound: float, looks: int,
                   confidence: float = CONFIDENCE, *, magnitude: float | None = None, counts: bool = False) -> dict:
    """The check ``mean(values) <op> bound`` at the stated ``confidence`` and Bonferroni-adjusted
    over ``looks``: ``{n, estimate, interval, outcome, one_sided_p, adjusted_confidence,
    adjusted_interval, adjusted_outcome}``; ``one_sided_p`` tests the bound (not 0) on the side the
    check was decided at ``confidence``: the claim's direction, the other where it fails (NaN without
    spread; the claim's direction when undecided). ``magnitude`` and ``counts`` as :class:`Found` has
    them, so that the re-check applies REPORT.md's rules (:func:`nets.claim_checks.check`): values of
    accuracies with no spread over two or more seeds are undecided at both levels, as there."""
    x = np.asarray(values, dtype=float)
    iv, adjusted = (t_interval(x, c, magnitude=magnitude) for c in (confidence, 1 - (1 - confidence) / looks))
    spread = iv.defined and iv.low < iv.high  # t_interval's rule: no spread up to rounding is none
    tied = counts and tied_counts(iv)
    outcome = "undecided" if tied else decide(iv, op, bound)
    above = (op == ">=") != (outcome == "fails")
    p = float(stats.ttest_1samp(x, bound, alternative="greater" if above else "less").pvalue) if spread \
        else math.nan
    return {"n": int(x.size), "estimate": iv.estimate, "interval": [iv.low, iv.high], "outcome": outcome,
            "one_sided_p": p, "adjusted_confidence": 1 - (1 - confidence) / looks,
            "adjusted_interval": [adjusted.low, adjusted.high],
            "adjusted_outcome": "undecided" if tied else decide(adjusted, op, bound)}


def _every_seed(runs: Sequence, value: Callable, what: str) -> list[dict[int, float]]:
    """:func:`~nets.evidence.per_seed` of each list of ``runs``; a ``ValueError`` naming the seeds of them
    all that one leaves out (:func:`~nets.evidence.unread`): REPORT.md leaves such a check undecided, so a
    re-check on the other seeds would decide what the report does not."""
    gone = unread(runs, value)
    if gone:
        raise ValueError(f"{seeds_text(gone)} {'have' if len(gone) > 1 else 'has'} no finite {what} (missing, NaN or "
                         "infinite), which leaves the check undecided in REPORT.md")
    return [per_seed(r, value) for r in runs]


def _differences(a: dict[int, float], b: dict[int, float]) -> Found:
    """Per seed ``a - b`` of accuracies (REPORT.md's ``counts``), over the seeds both hold."""
    common = sorted(set(a) & set(b))
    return Found([a[s] - b[s] for s in common], max((max(abs(a[s]), abs(b[s])) for s in common), default=None),
                 counts=True)


def _difference(path: str, group: str, a: str, b: str, key: str, scale: float) -> Callable[[Path], Found]:
    def values(root: Path) -> Found:
        methods = read_json(root / path)["groups"][group]["methods"]
        return _differences(*_every_seed([methods[m]["runs"] for m in (a, b)], measure(key, scale), key))
    return values


def _single(path: str, group: str, method: str, key: str) -> Callable[[Path], Found]:
    def values(root: Path) -> Found:
        runs = read_json(root / path)["groups"][group]["methods"][method]["runs"]
        return Found(list(_every_seed([runs], measure(key), key)[0].values()))
    return values


def _drift_difference(path: str, group: str) -> Callable[[Path], Found]:
    def values(root: Path) -> Found:  # claim 4's per-seed WT - DA
        drift = read_json(root / path)
        later = later_accuracy_ratio(drift["betas"])
        return _differences(*_every_seed([drift["groups"][group][m]["runs"] for m in ("WT", "DA")], later,
                                         "mean Acc ratio"))
    return values


def _log_sigma_ratio(path: str, group: str) -> Callable[[Path], Found]:
    def values(root: Path) -> Found:  # claim 5's per-seed log(sigma_form / sigma_DA) for a form of ours
        entry = read_json(root / path)["groups"][group]
        form, da = _every_seed([entry["model"]["runs"], entry["comparison"]["DA"]["runs"]], measure("sigma_max"),
                               "sigma_max")
        common = sorted(set(form) & set(da))
        bad = [s for s in common if form[s] <= 0 or da[s] <= 0]
        if bad:
            raise ValueError(f"{seeds_text(bad)} {'have' if len(bad) > 1 else 'has'} a sigma_max <= 0, which has "
                             "no log-ratio")
        return Found([math.log(form[s] / da[s]) for s in common])
    return values


#: The checks the committed runs decided only after seeds were added: (claim, what, op, bound,
#: the looks it took (its seed counts), values from the results root).
DECIDED_AFTER_MORE_SEEDS: list[tuple[str, str, str, float, tuple[int, ...], Callable[[Path], Found]]] = [
    ("1b", "R4 WT - DA accuracy (points), 12 seeds", ">=", 0.0, (4, 12),
     _difference("paper-s12/paper/table1.json", "r4", "WT", "DA", "accuracy", 100.0)),
    ("3", "T3 IR SI, 12 seeds", ">=", 0.945, (4, 12), _single("paper-s12/paper/table1.json", "t3", "IR", "SI")),
    ("4", "T3 WT - DA mean Acc ratio over beta > 0, 12 seeds", ">=", 0.0, (4, 12),
     _drift_difference("paper-s12/paper/drift.json", "t3")),
    ("1b", "T3 WT - DA accuracy (points), 36 seeds", ">=", 0.0, (4, 12, 36),
     _difference("paper-s36/paper/table1.json", "t3", "WT", "DA", "accuracy", 100.0)),
    ("4", "FMNIST R4 WT - DA mean Acc ratio over beta > 0, 12 seeds", ">=", 0.0, (4, 12),
     _drift_difference("fmnist-s12/paper/drift.json", "r4")),
    ("5", "R4 detached normalized form: log(sigma_max / DA's), 10 seeds", "<=",
     math.log(Thresholds().spectral_ratio_max), (4, 10), _log_sigma_ratio("detached-seeds/paper/detached.json", "r4")),
    ("5", "R4 centered normalized form: log(sigma_max / DA's), 21 seeds", "<=",
     math.log(Thresholds().spectral_ratio_max), (4, 21), _log_sigma_ratio("centered-seeds/paper/centered.json", "r4")),
    ("5", "R4 detached normalized form, 600 epochs: log(sigma_max / DA's), 20 seeds", "<=",
     math.log(Thresholds().spectral_ratio_max), (4, 10, 20),
     _log_sigma_ratio("detached-e600-s20/paper/detached.json", "r4")),
]


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m nets.sequential", description=__doc__.split("\n\n")[0])
    ap.add_argument("--results", type=Path, default=Path("results"), help="the results root (default: results)")
    ap.add_argument("--out", type=Path, default=Path("results/sequential.json"))
    ap.add_argument("--sims", type=positive_int, default=200_000, help="simulated checks per stopping rule")
    args = ap.parse_args(argv)
    try:
        check_file(args.out)
    except ResultsWriteError as e:
        ap.error(str(e))
    started = time.time()
    rules = {"4, 12": [4, 12], "4, 12, 36": [4, 12, 36]}
    n_looks = len(PLAN_LOOKS)
    adjusted = 1 - (1 - CONFIDENCE) / n_looks
    procedures = {f"95% at 4, then {adjusted:.2%} at 12 and 36 (the re-checked conclusions' rule)":
                  [CONFIDENCE] + [adjusted] * (n_looks - 1),
                  f"{adjusted:.2%} at every look (a Bonferroni split)": [adjusted] * n_looks}
    record: dict[str, object] = {
        "stopping_error": {k: dict(zip(map(str, v), stopping_error(v, n_sims=args.sims))) for k, v in rules.items()},
        "procedure_error": {name: dict(zip(map(str, PLAN_LOOKS), stopping_error(PLAN_LOOKS, confidence=levels,
                                                                                   n_sims=args.sims)))
                            for name, levels in procedures.items()},
        "plan_looks": list(PLAN_LOOKS), "checks": [], "meta": run_provenance(device="cpu", started=started),
    }
    for claim, what, op, bound, looks, values in DECIDED_AFTER_MORE_SEEDS:
        try:
            found = values(args.results)
        except (OSError, KeyError, ValueError) as e:
            print(f"error: {what}: cannot read its values under {args.results} ({type(e).__name__}: {e}); "
                  "--results names the results root that holds the committed runs (paper-s12/, detached-seeds/, ...)",
                  file=sys.stderr)
            return 1
        row = {"claim": claim, "what": what, "op": op, "bound": bound, "looks": list(looks),
               **adjusted_check(found.values, op, bound, len(PLAN_LOOKS), magnitude=found.magnitude,
                                counts=found.counts)}
        record["checks"].append(row)
        lo, hi = row["adjusted_interval"]
        print(f"claim {claim}: {what} {row['estimate']:.4g}, {row['outcome']}; one-sided p vs {bound:g} "
              f"{row['one_sided_p']:.2g}; at {row['adjusted_confidence']:.4f} [{lo:.4g}, {hi:.4g}] "
              f"{row['adjusted_outcome']} (looks at {', '.join(map(str, looks))} seeds)")
    for name, v in (*((f"95% at each of {k}", v) for k, v in record["stopping_error"].items()),
                    *record["procedure_error"].items()):
        print(f"{name}: P(wrongly holds) after each look " + ", ".join(f"{p:.4f}" for p in v.values()))
    write_json(args.out, record)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
