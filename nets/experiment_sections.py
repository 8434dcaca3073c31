"""The sections of REPORT.md for the paper's experiments, one function each: Table 1, Figure 2
(t-SNE), Figures 1 and 3 (saliency), Figure 4 (drift), Figure 5 (spectral decay). Each takes the
results dicts keyed by experiment name and returns Markdown lines; :func:`nets.report.render_report`
puts them between the verdicts and the provenance. The sections of the experiments beyond the paper
are :mod:`nets.centered_report`, :mod:`nets.scale_report` and :mod:`nets.cnn_report`.
"""

from __future__ import annotations

import math
from typing import Mapping

import nets.evidence as ev
import nets.interval_tables as it
from nets.groups import group_label
from nets.markdown import figure_lines, markdown_table
from nets.nu_selection_notes import missed_target
from nets.results_io import PAPER_CITATION, paper_table1_for
from nets.verdicts import GROUP_NAMES, fmt, pm_text

__all__ = ["table1_section", "tsne_section", "saliency_section", "drift_section", "spectral_section"]


def _paper_cell(paper: Mapping, paper_std: Mapping, group: str, method: str, k: int) -> str:
    row = paper.get(group, {}).get(method)
    if row is None:
        return "n/a"
    return f"{row[k]:g} ± {paper_std[group][method][k]:g}"


def _selection_rows(g: str, reg: str, sel: Mapping) -> list[list[str]]:
    rows = []
    for nu, si, acc in zip(sel.get("grid", []), sel.get("si", []), sel.get("accuracy", [])):
        chosen = "**chosen**" if sel.get("chosen") is not None and math.isclose(nu, sel["chosen"]) else ""
        if si is None:  # the ascending search stopped before this nu
            rows.append([group_label(g), reg, f"{nu:g}", "not trained", "not trained",
                         "a smaller ν reached the target"])
            continue
        rows.append([group_label(g), reg, f"{nu:g}", fmt(si), fmt(None if acc is None else 100 * acc), chosen])
    return rows


def _missed_target_banner(label: str, sel: Mapping) -> str:
    """The report's highlighted line for a selection where :func:`missed_target` holds."""
    return (f"> **{label}: no ν reached SI ≥ {sel.get('target')} on validation**; "
            f"the largest-SI ν = {sel.get('chosen'):g} was used.\n")


def table1_section(results: Mapping[str, Mapping], *, title: str, fig_dir: str, available_figures: set[str] | None) -> list[str]:
    """Table 1 beside the paper's (when it has one for this dataset), its intervals, the paired
    comparisons and the choice of nu."""
    lines: list[str] = []
    t1 = results.get("table1")
    lines.append("## Table 1: accuracy and invariance\n")
    if t1:
        proto = t1.get("protocol", {})
        paper, paper_std = paper_table1_for(t1.get("meta", {}))
        lines.append(
            f"Ours (mean ± std over seeds {t1['meta'].get('seeds')}) "
            + (f"beside the paper's ({PAPER_CITATION}). " if paper else f"(the paper has no Table 1 on {title}). ")
            + " ".join(v for v in proto.values() if isinstance(v, str)) + "\n")
        header = ["group", "model"] + [c for m in ("Acc %", "LI", "DI", "SI")
                                       for c in ((f"{m} (ours)", f"{m} (paper)") if paper else (m,))]
        rows = []
        for g, entry in t1["groups"].items():
            for m, e in entry["methods"].items():
                nu = f" (ν = {e['nu']:g})" if e.get("nu") is not None else ""
                ours = [pm_text(e.get("accuracy"), 100.0), pm_text(e.get("LI")), pm_text(e.get("DI")),
                        pm_text(e.get("SI"))]
                rows.append([GROUP_NAMES.get(g, g), m + nu] + [c for k, o in enumerate(ours)
                             for c in ((o, _paper_cell(paper, paper_std, g, m, k)) if paper else (o,))])
        lines.append(markdown_table(header, rows) + "\n")
        lines += figure_lines(fig_dir, "table1", "Table 1 as bars" + ("; diamonds: the paper's values." if paper
                                                                       else "."), available_figures)
        lines.append("### Table 1 with 95% intervals" + (" beside the paper's spread" if paper else "") + "\n")
        boot = results.get("intervals")
        lines.append("Ours: mean [Student's t 95% interval over seeds]"
                     + ("" if boot is None else "; beside it, the 95% bootstrap interval over test samples with the "
                        "trained models held fixed (`intervals.json`: " + boot.get("protocol", {}).get("interval", "").rstrip(".")
                        + ")") + "." + ((" " + it.WITHIN_RULE + " The \"within\" column uses the interval over seeds, "
                     "the spread the paper reports.") if paper else "") + "\n")
        interval_rows = it.table1_interval_rows(t1, paper, paper_std, GROUP_NAMES, fmt, boot)
        if not paper:  # its last three columns, the paper's number, range and "within", would be n/a
            interval_rows = [r[:-3] for r in interval_rows]
        lines.append(markdown_table(["group", "model", "measure", "ours (t over seeds)"]
                            + ([] if boot is None else ["ours (bootstrap over test samples)"])
                            + (["paper", "paper's range", "within"] if paper else []),
                            interval_rows)
                     + "\n")
        lines.append("### Paired comparisons of the Table 1 models\n")
        lines.append("Over the common seeds (same initial weights and batches per seed): accuracy (points) and SI as "
                     "the mean per-seed difference, LI and DI as the geometric-mean ratio (paired t-test on the "
                     "per-seed log-ratios); [95% interval]; two-sided p-value of the paired t-test "
                     "(`scipy.stats.ttest_rel`).\n")
        lines.append(markdown_table(["group", "measure", "comparison", "estimate [95% interval]", "test"],
                            it.table1_paired_rows(t1, fmt)) + "\n")
        lines.append("### Choice of ν for IR (logit regularizer)\n")
        rows = []
        for g, entry in t1["groups"].items():
            sel = entry.get("nu_selection")
            if sel:
                rows += _selection_rows(g, sel.get("regularizer", "logit"), sel)
                if missed_target(sel):
                    lines.append(_missed_target_banner(group_label(g), sel))
        lines.append(markdown_table(["group", "regularizer", "ν", "SI (validation)", "Acc % (validation)", ""], rows)
                     + "\n")
        lines += figure_lines(fig_dir, "nu_selection_table1", "SI and validation accuracy against ν.",
                              available_figures)
    else:
        lines.append("*(table1 not run)*\n")
    return lines


def tsne_section(results: Mapping[str, Mapping], *, fig_dir: str, available_figures: set[str] | None) -> list[str]:
    """Figure 2: the orbit / class distance ratio per model and the t-SNE figure."""
    lines: list[str] = []
    ts = results.get("tsne")
    lines.append("## Figure 2: penultimate features (t-SNE)\n")
    if ts:
        proto = ts.get("protocol", {})
        lines.append(" ".join(str(v) for v in proto.values() if isinstance(v, str)) + "\n")
        seeds = ts.get("meta", {}).get("seeds")
        rows = [[group_label(g), m, pm_text(e.get("ratio")), it.seed_cell(ev.tsne_runs(e, seeds), "ratio", fmt)]
                for g, entry in ts["groups"].items() for m, e in entry["methods"].items()]
        lines.append(markdown_table(["group", "model", "orbit / class distance (features), mean ± std",
                             "mean [95% t interval over seeds]"], rows) + "\n")
        lines += figure_lines(fig_dir, "tsne", "t-SNE of penultimate features; lines join one orbit.",
                              available_figures)
    else:
        lines.append("*(tsne not run)*\n")
    return lines


def saliency_section(results: Mapping[str, Mapping], *, fig_dir: str, available_figures: set[str] | None) -> list[str]:
    """Figures 1 and 3: the saliency figures, one per group."""
    lines: list[str] = []
    sa = results.get("saliency")
    lines.append("## Figures 1 and 3: saliency maps realigned to a common orientation\n")
    if sa:
        lines.append(" ".join(str(v) for v in sa.get("protocol", {}).values() if isinstance(v, str)) + "\n")
        for g in sa["groups"]:
            lines += figure_lines(fig_dir, f"saliency_{g}", f"{group_label(g)}: g⁻¹ m(g x) for DA, IR and WT.",
                                  available_figures)
    else:
        lines.append("*(saliency not run)*\n")
    return lines


def drift_section(results: Mapping[str, Mapping], *, fig_dir: str, available_figures: set[str] | None) -> list[str]:
    """Figure 4: DI and the accuracy ratio at three drift degrees, and the figure."""
    lines: list[str] = []
    dr = results.get("drift")
    lines.append("## Figure 4: invariance and accuracy under distribution drift\n")
    if dr:
        lines.append(" ".join(str(v) for v in dr.get("protocol", {}).values() if isinstance(v, str)) + "\n")
        betas = dr["betas"]
        show = sorted({0, len(betas) // 2, len(betas) - 1})
        header = ["group", "model"] + [f"DI β={betas[i]:g}" for i in show] + \
                 [f"Acc ratio β={betas[i]:g}" for i in show if i > 0]
        rows = []
        for g, methods in dr["groups"].items():
            for m, e in methods.items():
                rows.append([group_label(g), m] + [it.run_list_cell(e.get("runs"), "DI", i, fmt) for i in show] +
                            [it.run_list_cell(e.get("runs"), "accuracy_ratio", i, fmt) for i in show if i > 0])
        lines.append("Mean [Student's t 95% interval over seeds]; the paper gives Figure 4 as a plot, without "
                     "numbers to set beside these.\n")
        lines.append(markdown_table(header, rows) + "\n")
        lines += figure_lines(fig_dir, "drift", "DI (top) and accuracy ratio (bottom) against the drift degree β.",
                              available_figures)
    else:
        lines.append("*(drift not run)*\n")
    return lines


def spectral_section(results: Mapping[str, Mapping], *, fig_dir: str, available_figures: set[str] | None) -> list[str]:
    """Figure 5: sigma_max(J) per model with its paired ratio to DA, the bootstrap intervals when
    present, and the choice of nu per regularizer form."""
    lines: list[str] = []
    sp = results.get("spectral")
    lines.append("## Figure 5: invariance-induced spectral decay\n")
    if sp:
        lines.append(" ".join(str(v) for v in sp.get("protocol", {}).values() if isinstance(v, str)) + "\n")
        rows = []
        sel_rows = []
        for g, entry in sp["groups"].items():
            for key, m in entry["models"].items():
                runs = m.get("runs")
                da_runs = entry["models"].get("DA", {}).get("runs")
                rows.append([group_label(g), key, "—" if m.get("nu") is None else f"{m['nu']:g}",
                             it.seed_cell(runs, "sigma_max", fmt), it.seed_cell(runs, "sigma_max_centered", fmt),
                             "—" if key == "DA" else it.paired_ratio_cell(runs, da_runs, "sigma_max", fmt),
                             it.seed_cell(runs, "common_logit_share", fmt),
                             it.seed_cell(runs, "accuracy", fmt, 100.0)])
            for reg, sel in (entry.get("nu_selections") or {}).items():
                sel_rows += _selection_rows(g, reg, sel)
                if missed_target(sel):
                    lines.append(_missed_target_banner(f"{group_label(g)} IR-{reg}", sel))
        lines.append("Mean [Student's t 95% interval over seeds]; IR / DA: the geometric-mean ratio of σ_max(J) "
                     "over common seeds, its 95% interval and the paired t-test on the log-ratios. The paper gives "
                     "Figure 5 as a plot, without numbers to set beside these.\n")
        lines.append(markdown_table(["group", "model", "ν", "σ_max(J)", "σ_max(J), centered logits", "σ_max(J): IR / DA",
                             "class-common share of the logits", "Acc % (test orbit)"], rows) + "\n")
        boot = results.get("intervals")
        if boot:
            lines.append("The same numbers with the 95% bootstrap interval over test samples, trained models held "
                         "fixed (`intervals.json`; " + boot.get("protocol", {}).get("ratio", "").rstrip(".") + "):\n")
            lines.append(markdown_table(["group", "model", "σ_max(J)", "σ_max(J), centered logits",
                                 "mean σ_max: IR / DA", "class-common share"],
                                it.spectral_bootstrap_rows(boot, fmt)) + "\n")
        lines += figure_lines(fig_dir, "spectral", "σ_max of the input Jacobian (top) and accuracy (bottom).",
                              available_figures)
        if sel_rows:  # none for DA alone (``spectral --regularizers`` with no form)
            lines.append("### Choice of ν per regularizer form\n")
            lines.append(markdown_table(["group", "regularizer", "ν", "SI (validation)", "Acc % (validation)", ""],
                                        sel_rows)
                         + "\n")
            lines += figure_lines(fig_dir, "nu_selection_spectral", "SI and validation accuracy against ν per form.",
                                  available_figures)
    else:
        lines.append("*(spectral not run)*\n")
    return lines
