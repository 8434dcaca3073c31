"""The CNN's results (``cnn.json``, :mod:`nets.experiments.cnn`) as the REPORT.md section
"Claims 1-5 on a CNN", the CNN's verdicts beside the MLP's (its figures: :mod:`nets.plots_cnn`).

The verdicts are :func:`nets.verdicts.verdicts` with the report's thresholds, applied to the CNN's
Table 1, drift and spectral results exactly as to the MLP's; nothing here decides a claim on its own.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

from nets.chance import untrained_groups, untrained_warning
from nets.data.splits import N_CLASSES
from nets.groups import group_label
from nets.markdown import markdown_table
from nets.results_io import load_results, result_sittings
from nets.scale_report import scale_section
from nets.si_settings_report import si_settings_section
from nets.verdicts import fmt, pm_text, verdicts

__all__ = ["cnn_verdicts", "cnn_section"]

def cnn_verdicts(cnn: Mapping) -> list:
    """:func:`nets.verdicts.verdicts` of the CNN's results (claims 1-5; Figure 2 is not run)."""
    return [v for v in verdicts({k: cnn[k] for k in ("table1", "drift", "spectral")}) if v.claim != "Fig. 2"]


def _commands(cnn: Mapping) -> str:
    """The command(s) that computed ``cnn`` with their wall times: one, or one per sitting of a
    ``--groups`` run."""
    sittings = result_sittings(cnn)
    if len(sittings) <= 1:
        meta = cnn.get("meta", {})
        return f"Command: `{meta.get('command')}` ({meta.get('wall_time_s') or 0:.0f} s)."
    return "Commands: " + "; ".join(f"`{p.get('command')}` ({', '.join(group_label(g) for g in groups)}, "
                                    f"{p.get('wall_time_s') or 0:.0f} s)" for groups, p in sittings) + "."


def cnn_section(results_dir: str | os.PathLike, mlp_results: Mapping[str, Mapping] | None = None,
                fig_dir: str = "figures") -> str:
    """The Markdown section "Claims 1-5 on a CNN" for ``<results_dir>/REPORT.md``, or ``""`` when
    ``<results_dir>/cnn.json`` does not exist; with ``cnn_scale.json`` there, its logit-scale
    subsection (:func:`nets.scale_report.scale_section`), with ``cnn_si_settings.json`` its saliency-map
    subsection (:func:`nets.si_settings_report.si_settings_section`). ``mlp_results``: the MLP's results by experiment
    (default: read from ``results_dir``), for its verdicts beside the CNN's."""
    path = Path(results_dir) / "cnn.json"
    if not path.exists():
        return ""
    # with `python -m nets scale / si-settings --model cnn` run, their files too; a damaged one: one line naming it
    files = load_results(results_dir, ("cnn", "cnn_scale", "cnn_si_settings"))
    cnn = files["cnn"]
    mlp_results = mlp_results if mlp_results is not None else load_results(results_dir)
    mlp = {v.claim: v for v in verdicts(mlp_results)}
    ours = cnn_verdicts(cnn)
    sizes, model, meta = cnn.get("cnn_sizes", {}), cnn.get("model", {}), cnn.get("meta", {})
    if model.get("factory"):  # python -m nets cnn --model PKG.MODULE:FACTORY
        what = (f"your model (`{model['factory']}`, a `{model.get('class')}`; {model.get('parameters'):,} parameters "
                f"against the MLP's 233,225)")
        pooling = model.get("wt_pooling") or []
        wt = (f"WT pools over the orbit ({', '.join(pooling)})" if "logits-mean" not in pooling else
              f"WT averages the whole model's logits over the orbit ({', '.join(pooling)}; it has no first_layer / "
              f"after_first_layer): invariant by construction, not the paper's first-layer weight tying, so claim 1 "
              f"checks only that construction")
        title, name, whose = "## Claims 1-5 on your model\n", "Your model", "Your model's"
    else:
        what = (f"a small CNN (`{model.get('class')}`: 3x3 convolutions with {model.get('channels')} channels, "
                f"strides {model.get('strides')}, global average pooling, a linear head; "
                f"{model.get('parameters'):,} parameters against the MLP's 233,225)")
        wt = f"WT pools the first layer over the orbit ({', '.join(model.get('wt_pooling') or [])})"
        title, name, whose = "## Claims 1-5 on a CNN\n", "CNN", "The CNN's"
    thresholds = "Same thresholds as above" if mlp_results else "The thresholds are the MLP's (`nets.verdicts`)"
    lines = [title,
             f"The paper's claims checked on {what}, trained as the MLP is "
             f"(Adam 8e-4, batch 512, best validation orbit accuracy) for {sizes.get('epochs')} epochs "
             f"({sizes.get('why')}), seeds {meta.get('seeds')}. {wt}; IR is the logit form with nu tuned to validation "
             f"SI >= 0.95 over {sizes.get('nu_grid')}. {thresholds}; claim 5 has one IR form here "
             f"(logit). {_commands(cnn)}\n"]
    low = untrained_groups(cnn["table1"]["groups"], N_CLASSES)
    if low:
        lines.append(untrained_warning(low, N_CLASSES, f"Train longer (--epochs, {sizes.get('epochs')} now)."))
    if cnn.get("pending_groups"):
        lines.append(f"> **Not yet run on {', '.join(group_label(g) for g in cnn['pending_groups'])}**: the verdicts "
                     "below rest on the other groups only.\n")
    if mlp_results:
        rows = [[f"{v.claim}", v.statement, mlp[v.claim].status if v.claim in mlp else "not evaluated",
                 f"**{v.status}**"] for v in ours]
        lines.append(markdown_table(["claim", "statement", "MLP", name], rows) + "\n")
    else:  # a folder of CNN results only: the MLP's verdicts are in the paper profile's REPORT.md
        rows = [[f"{v.claim}", v.statement, f"**{v.status}**"] for v in ours]
        lines.append(markdown_table(["claim", "statement", name], rows) + "\n")
    rows = []
    for g, entry in cnn["table1"]["groups"].items():
        for m, e in entry["methods"].items():
            cells = [pm_text(e["accuracy"], 100.0), *(pm_text(e[k]) for k in ("LI", "DI", "SI"))]
            rows.append([group_label(g), m, "" if e.get("nu") is None else f"{e['nu']:g}", *cells])
    lines.append(f"{name} Table 1 (mean ± std over seeds):\n")
    lines.append(markdown_table(["group", "method", "nu", "Acc. (%)", "LI", "DI", "SI"], rows) + "\n")
    lines.append(f"{name} checks:\n")
    for v in ours:
        lines += [f"- claim {v.claim}: {c.detail}" for c in v.checks]
        lines += [f"- claim {v.claim}, note: {n}" for n in v.notes]
    lines.append("")
    for stem, caption in (("cnn_table1", f"{name} Table 1 (diamonds: the paper's MLP)"),
                          ("cnn_drift", f"{name} Figure 4: drift"), ("cnn_spectral", f"{name} Figure 5: DA vs IR"),
                          ("cnn_val_curves", f"{name} validation curves")):
        lines.append(f"![{caption}]({fig_dir}/{stem}.png)\n")
    if "cnn_scale" in files:
        available = {p.name for p in (Path(results_dir) / fig_dir).glob("*.png")}
        lines += scale_section(files["cnn_scale"], fmt=fmt, fig_dir=fig_dir, available_figures=available,
                               title=f"### {whose} Figure 5 split into logit scale and sensitivity per unit of "
                                     "scale (beyond the paper)", stem="cnn_scale")
    if "cnn_si_settings" in files:
        lines += si_settings_section(files["cnn_si_settings"],
                                     title=f"### {whose} Table 1 SI under other saliency maps (beyond the paper)")
    return "\n".join(lines)
