"""REPORT.md: our numbers beside the paper's, and the verdict per claim (:mod:`nets.verdicts`).

:func:`render_report` is pure (results dicts in, Markdown out); :func:`write_report` reads the
JSON files of one results folder (:func:`nets.results_io.load_results`) and writes ``REPORT.md``
next to them, with the sections of the experiments beyond the paper: the centered and detached
forms' (:mod:`nets.centered_report`), the logit scale's (:mod:`nets.scale_report`), the saliency maps'
(:mod:`nets.si_settings_report`), the orbit accuracy per class (:mod:`nets.per_class_report`) and the CNN's
(:mod:`nets.cnn_report`), each only when its JSON exists.
The notes above the verdicts (an incomplete sweep, another nu grid or training length than the
profile's) are :mod:`nets.report_notes`'.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Mapping, Sequence

from nets.centered_report import WORDING, centered_section
from nets.chance import untrained_groups, untrained_warning
from nets.data.splits import N_CLASSES
from nets.experiment_sections import drift_section, saliency_section, spectral_section, table1_section, tsne_section
from nets.cnn_report import cnn_section
from nets.markdown import markdown_table
from nets.results_io import (  # the paper's numbers are re-exported here
    DATASET_TITLES,
    PAPER_CITATION,
    PAPER_DATASET,
    PAPER_TABLE1,
    PAPER_TABLE1_STD,
    READ_ERRORS,
    load_results,
    mixed_settings,
    recorded_dataset,
    reading,
    result_groups,
    result_sittings,
    write_text,
)
from nets.results_io.seal import SEAL_FIELD
from nets.scale_report import scale_section
from nets.between_report import between_section
from nets.train_size_report import train_size_section
from nets.per_class_report import per_class_section
from nets.report_notes import completeness, epochs_note, grid_notes  # re-exported
from nets.si_settings_report import si_settings_section
from nets.verdicts import Thresholds, fmt, verdicts

__all__ = [
    "PAPER_TABLE1",
    "PAPER_TABLE1_STD",
    "PAPER_CITATION",
    "completeness",
    "render_report",
    "write_report",
    "load_results",
]


# ---- rendering ------------------------------------------------------------------
def render_report(results: Mapping[str, Mapping], *, thresholds: Thresholds = Thresholds(),
                  fig_dir: str = "figures", available_figures: set[str] | None = None,
                  command: str | None = None, total_wall_time_s: float | None = None,
                  kept_groups: Mapping[str, Sequence[str]] | None = None) -> str:
    """The Markdown of REPORT.md from results dicts keyed by experiment name. ``kept_groups``
    (``reproduce.json``'s): the groups of each experiment the sweep's last sitting kept from earlier
    ones, whose time ``total_wall_time_s`` does not count."""
    lines: list[str] = []
    first = next((r for r in results.values() if r and "meta" in r), {})  # the file whose profile is shown
    any_meta = first.get("meta", {})
    prof = any_meta.get("profile", {})
    dataset = recorded_dataset(any_meta)
    title = DATASET_TITLES.get(dataset, dataset)
    lines.append(f"# Reproduction report: profile `{prof.get('name', '?')}`"
                 + ("" if dataset == PAPER_DATASET else f", {title}") + "\n")
    lines.append(
        "Checks the experimental claims of Section 4 of the paper (Moskalev et al., 2023, "
        f"\"On genuine invariance learning without weight-tying\") on {title}. "
        "Every verdict below is computed by `nets/verdicts.py` from the measured numbers with the thresholds "
        "listed; nothing is tuned toward the paper's values.\n")
    first_name, mixed = mixed_settings(results)
    if mixed:
        lines.append(f"> **Results of other settings in one folder**: {'; '.join(mixed)}, against {first_name}.json's. "
                     "Each section shows its own file's numbers, not one sweep's (the profile fields below are "
                     f"{first_name}.json's): run the experiments again with one setting (`--overwrite`, or into a new "
                     "`--results`).\n")
    if dataset != PAPER_DATASET:
        lines.append(
            f"> **Beyond the paper**: the paper builds {title} (Section 4.1) but reports Table 1 and Figures 1-3 "
            "and 5 on Transforming-MNIST only, and uses this dataset only as Figure 4's drift target; here every "
            "experiment runs on it with the paper's protocol otherwise unchanged (Figure 4 drifts from it towards "
            "the other dataset). There are no paper numbers to set beside these; the verdicts use the same "
            "thresholds.\n")
    if prof.get("name") != "paper":
        lines.append(
            f"> **Not the paper's protocol**: profile `{prof.get('name')}` uses {len(prof.get('seeds', []))} seed(s) "
            f"and {prof.get('epochs')} epochs (paper: 4 seeds, 300 epochs), and fewer samples for some measures "
            "(see Provenance). Its verdicts describe these runs, not the paper's.\n")
    t1 = results.get("table1")
    if t1:
        low = untrained_groups(t1.get("groups", {}), N_CLASSES)
        if low:
            lines.append(untrained_warning(low, N_CLASSES, f"Train longer: profile `{prof.get('name')}` trains "
                                           f"{prof.get('epochs')} epochs (`--profile quick` or `paper`, or "
                                           f"`--epochs`)."))
    lines += [f"> **Another ν grid**: {note}\n" for note in grid_notes(prof)]
    length = epochs_note(prof)
    if length:
        lines.append(f"> **Another training length**: {length}\n")
    partial = completeness(results)
    if partial:
        lines.append("> **Partial results**: " + "; ".join(partial) + ". Verdicts use only what ran; a claim "
                     "whose experiments did not run is *not evaluated*. Running the same command again resumes "
                     "from the checkpoints.\n")
    run = [
        ("profile", f"`{prof.get('name', '?')}`"),
        ("seeds", ", ".join(str(s) for s in prof.get("seeds", []))),
        ("epochs", str(prof.get("epochs", "?"))),
        ("train / val / test", f"{prof.get('n_train')} / {prof.get('n_val')} / {prof.get('n_test')}"),
        ("device", f"{any_meta.get('device', '?')} (torch threads: "
                   f"{any_meta.get('versions', {}).get('torch_threads', '?')})"),
        ("versions", ", ".join(f"{k} {v}" for k, v in any_meta.get("versions", {}).items()
                               if k in ("python", "torch", "numpy", "scikit-learn", "matplotlib"))),
        ("git commit", f"`{any_meta.get('git_commit')}`"
                       + (" (nets/ had uncommitted changes)" if any_meta.get("git_dirty") else "")),
    ]
    if command:
        run.append(("command", f"`{command}`"))
    kept = {name: list(groups) for name, groups in (kept_groups or {}).items() if groups}
    if total_wall_time_s is not None and kept:  # a resumed sweep: its last sitting's time only
        held = "; ".join(f"{name} ({', '.join(groups)})" for name, groups in kept.items())
        run.append(("wall time of the sweep's last sitting",
                    f"{total_wall_time_s / 60:.1f} min ({total_wall_time_s:.0f} s), not counting what it kept "
                    f"from earlier sittings: {held} (their times are in the provenance table); runs already in "
                    "the checkpoints are loaded, not retrained"))
    elif total_wall_time_s is not None:
        run.append(("wall time of the sweep",
                    f"{total_wall_time_s / 60:.1f} min ({total_wall_time_s:.0f} s); runs already in the "
                    "checkpoints are loaded, not retrained"))
    lines.append(markdown_table(["", ""], run) + "\n")

    # verdicts
    lines.append("## Verdicts\n")
    vs = verdicts(results, thresholds)
    rows = []
    for x in vs:
        evidence = "<br>".join(c.detail for c in x.checks) or "—"
        if x.notes:
            evidence += "<br>" + "<br>".join(f"**note:** {n}" for n in x.notes)
        rows.append([x.claim, x.statement, f"**{x.status}**", evidence])
    header = ["claim", "statement", "verdict", "evidence: mean [95% interval] over seeds"]
    lines.append(markdown_table(header, rows) + "\n")
    lines.append(
        "How the verdicts are decided (details in `docs/statistics.md`): a single model's number is given with "
        "Student's t 95% interval on its mean over the seeds (n - 1 degrees of freedom: with 4 seeds the interval "
        "is mean ± 3.18 s / 2); a claim comparing two models is a paired t-test over their common seeds (the same "
        "seed draws both models' initial weights and their batches from the same random stream), on per-seed differences for accuracy and "
        "on per-seed log-ratios for DI growth and sigma_max (shown as geometric-mean ratios). A check *holds* when "
        "the whole interval lies on the threshold's side, *fails* when the whole interval lies on the other side, "
        "and is *undecided* when the interval straddles the threshold (or there is one seed, hence no interval). "
        "A claim: **holds** (every check holds), **partly holds** (some hold, some fail), **not supported** (checks "
        "fail, none holds), **undecided at n = k seeds** (none fails, some undecided), **holds where measured** (every "
        "measured check holds, some could not be measured). Each check errs with probability at most 2.5% on its "
        "side; a claim of many checks is not corrected for their number, so a lone failing check near its bound is "
        "weaker evidence than its interval alone suggests. An undecided check says how "
        "many seeds would decide it and towards which outcome: the n at which the test on the estimate's side of "
        "the threshold has 80% power, were the true mean and spread the measured ones (a planning figure: with 4 "
        "seeds the spread itself is uncertain). p-values are two-sided. "
        "Where `intervals.json` is present (`python -m nets intervals`), Table 1's and Figure 5's numbers also get "
        "a bootstrap interval over test samples (trained models fixed); verdicts use the interval over seeds.\n")
    lines.append("Thresholds (in `nets.verdicts.Thresholds`; accuracy in %, DI in nats):\n")
    lines.append(markdown_table(["claim", "quantity", "threshold"], thresholds.describe()) + "\n")

    kw = dict(fig_dir=fig_dir, available_figures=available_figures)
    lines += table1_section(results, title=title, **kw)
    lines += tsne_section(results, **kw)
    lines += saliency_section(results, **kw)
    lines += drift_section(results, **kw)
    lines += spectral_section(results, **kw)

    spectral = results.get("spectral") or {}
    for words in WORDING.values():  # ours: only with centered.json / detached.json
        form = results.get(words.stem)
        # the groups its verdict covers: Figure 5's, and those still pending (named "not measured")
        groups = [*spectral.get("groups", {}), *spectral.get("pending_groups", []),
                  *(form or {}).get("pending_groups", [])]
        lines += centered_section(form, ratio_max=thresholds.spectral_ratio_max, fmt=fmt,
                                  fig_dir=fig_dir, available_figures=available_figures,
                                  groups=list(dict.fromkeys(groups)))
    lines += scale_section(results.get("scale"), fmt=fmt, fig_dir=fig_dir,  # ours: only with scale.json
                           available_figures=available_figures)
    lines += si_settings_section(results.get("si_settings"))  # ours: only with si_settings.json
    lines += per_class_section(results.get("per_class"))  # ours: only with per_class.json
    lines += between_section(results.get("between"), fig_dir=fig_dir,  # ours: only with between.json
                             available_figures=available_figures)
    lines += train_size_section(results.get("train_size"), fig_dir=fig_dir,  # ours: only with train_size.json
                                available_figures=available_figures)

    # provenance
    lines.append("## Provenance\n")
    rows = []
    for name, r in results.items():
        if not r or "meta" not in r:
            continue
        m = r["meta"]
        sittings = result_sittings(r)
        if len(sittings) <= 1:
            rows.append([name, f"`{m.get('command')}`", f"{m.get('wall_time_s', 0):.0f}", m.get("device", "?"),
                         m.get("started_at", "?")])
            continue
        for groups, p in sittings:  # computed in several sittings (`--groups`): one row each
            rows.append([f"{name} ({', '.join(groups)})", f"`{p.get('command')}`",
                         f"{p.get('wall_time_s') or 0:.0f}", p.get("device", "?"), p.get("started_at", "?")])
    lines.append(markdown_table(["experiment", "command", "wall time (s)", "device", "started"], rows) + "\n")
    unsealed = [f"{name}.json" for name, r in results.items() if r and isinstance(r.get("meta"), dict)
                and SEAL_FIELD not in r["meta"]]
    if unsealed:
        lines.append(f"Not sealed: {', '.join(unsealed)} (written before results files carried the SHA-256 of their "
                     f"content, or with it removed), so an edit to them after their run would go unnoticed; "
                     f"`python -m nets.results_io.add_seals FILE...` seals them as they are.\n")
    if prof:  # a file finished by a `--groups` run (a resumed sweep) records the groups that run ran, not all it holds
        held = result_groups(first)
        shown = {**prof, "groups": held} if set(held) - set(prof.get("groups") or ()) else prof
        lines.append("Profile fields:\n")
        lines.append(markdown_table(["field", "value"], [[k, f"`{json.dumps(v)}`"] for k, v in shown.items()]) + "\n")
    return "\n".join(lines)


# ---- the file -----------------------------------------------------------------------
def _unreadable_file(results_dir: Path, results: Mapping[str, Mapping], **kw) -> str:
    """The results file that, rendered alone, raises one of :data:`READ_ERRORS`, when rendering them
    all did; when none fails alone (a section that reads two files, ``detached`` with ``spectral``),
    the folder's files, unnamed."""
    for name in results:
        try:
            render_report({name: results[name]}, **kw)
        except READ_ERRORS:
            return str(results_dir / f"{name}.json")
    return f"a results file in {results_dir}/"


def write_report(results_dir: str | os.PathLike, *, command: str | None = None,
                 total_wall_time_s: float | None = None, thresholds: Thresholds = Thresholds()) -> Path:
    """Write ``<results_dir>/REPORT.md`` (atomically) from the JSON files there (a folder holding
    only ``cnn.json`` gets the CNN's section alone).

    ``command`` and ``total_wall_time_s`` default to those of ``reproduce.json``
    (the last ``reproduce`` sweep), when present."""
    results_dir = Path(results_dir)
    results = load_results(results_dir)
    sweep = results_dir / "reproduce.json"  # written by `reproduce`: the sweep's command and wall time
    kept = None
    if sweep.exists():
        with reading(sweep):
            record = load_results(results_dir, ("reproduce",))["reproduce"]
            meta = record["meta"]  # none: named in one line
            command = command if command is not None else meta.get("command")
            if total_wall_time_s is None and meta.get("wall_time_s") is not None:
                total_wall_time_s = float(meta["wall_time_s"])
                kept = record.get("kept_groups")
    fig_dir = results_dir / "figures"
    available = {p.name for p in fig_dir.glob("*.png")} if fig_dir.exists() else set()
    with reading(f"{results_dir / 'cnn.json'} (or a cnn_scale.json / cnn_si_settings.json beside it)",
                 "the report's CNN section"):
        cnn = cnn_section(results_dir, results)  # "Claims 1-5 on a CNN", only when cnn.json exists
    if results:
        kw = dict(thresholds=thresholds, fig_dir="figures", available_figures=available)
        with reading(lambda: _unreadable_file(results_dir, results, **kw)):  # named only when one fails
            text = render_report(results, command=command, total_wall_time_s=total_wall_time_s, kept_groups=kept,
                                 **kw)
        text = text + ("\n" + cnn if cnn else "")
    else:  # a folder of CNN results only (`python -m nets cnn --results DIR`)
        text = f"# The paper's claims on a CNN: {results_dir.name} profile, `{results_dir.parent}`\n\n" + cnn
    path = results_dir / "REPORT.md"
    return write_text(path, text)
