"""REPORT.md of ``python -m nets own-data`` (:mod:`nets.experiments.own_data`) from its
``own_data.json``: the verdicts, Table 1 with each model's logit scale, IR's nu search, Figure 5, the
orbit accuracy per class, the warnings the run gave, and every check.

The verdicts use the paper profile's absolute thresholds, and two of them (DA's LI >= 1, IR's LI <=
0.1) depend on how large a model's logits are; the report sets each group's LI beside DA's logit
scale and gives IR's LI as a multiple of DA's, which the scale does not move (docs/own_data.md).
Files written before a field existed (``logit_scale``, ``n_labels``, ``warnings``) render without it.
"""

from __future__ import annotations


from nets.chance import untrained_groups, untrained_warning
from nets.class_accuracy import per_class_rows
from nets.groups import group_label
from nets.markdown import markdown_table
from nets.stats import t_half_width_factor
from nets.train.config import TrainConfig
from nets.verdicts import pm_text, verdicts

__all__ = ["NOT_RUN", "own_data_report"]

#: Claims this experiment does not evaluate, and why.
NOT_RUN = {"4": "needs a second dataset to drift towards", "Fig. 2": "t-SNE is not run"}


def _classes_text(src: dict) -> str:
    """``"10 classes"``, or where the model gives more logits than the labels name, both counts."""
    n_labels, width = src.get("n_labels", src["n_classes"]), src["n_classes"]
    return f"{width} classes" if n_labels == width else f"{n_labels} classes, the model's {width} logits"


def _scale_text(entry: dict) -> str | None:
    """For one group of ``table1``: DA's logit scale and IR's LI as a multiple of DA's (means over
    seeds), a sentence; ``None`` for a file without logit scales."""
    methods = entry["methods"]
    if any("logit_scale" not in e for e in methods.values()):
        return None
    da, ir = methods["DA"], methods["IR"]
    ratio = (f"IR's LI is {ir['LI']['mean'] / da['LI']['mean']:.3g}x DA's" if da["LI"]["mean"] > 0
             else "DA's LI is 0, so IR's is not set against it")
    return (f"logit scale (the norm of the centred logits, mean over the σ images): DA "
            f"{da['logit_scale']['mean']:.3g}, IR {ir['logit_scale']['mean']:.3g}, WT "
            f"{methods['WT']['logit_scale']['mean']:.3g}; {ratio}")


def _settings_text(st: dict, n_test: int) -> str:
    d = TrainConfig()  # own-data's defaults are the trainer's (the paper's)
    batch = st.get("batch_size", d.batch_size)
    lr = st.get("lr", d.lr)
    training = "" if (batch, lr) == (d.batch_size, d.lr) else f" (batch {batch}, Adam lr {lr:g})"
    return (f"Seeds {list(st['seeds'])}, {st['epochs']} epoch{'s' if st['epochs'] != 1 else ''} each{training}; IR's nu searched smallest first over "
            f"{[float(nu) for nu in st['nu_grid']]} for validation SI >= {st['si_target']}; SI on "
            f"{min(st['n_si_samples'], n_test)} images ({st['ig_steps']} integrated-gradients steps), sigma_max "
            f"on {min(st['n_sigma_samples'], n_test)}")


def _untrained_text(results: dict) -> list[str]:
    """The warning of :mod:`nets.chance` for the groups where no model learned beyond chance, with the
    training split's size, the batch and the steps per epoch; nothing otherwise."""
    src = results["source"]
    n_labels = src.get("n_labels", src["n_classes"])
    low = untrained_groups(results["table1"]["groups"], n_labels)
    if not low:
        return []
    st, n_train = src["settings"], src["sizes"]["n_train"]
    batch = st.get("batch_size", TrainConfig().batch_size)
    steps = -(-n_train // batch)
    return [untrained_warning(low, n_labels, f"Train longer (--epochs, {st['epochs']} now) or take more steps an "
                              f"epoch (--batch-size: {n_train} training images in batches of {batch} are {steps} "
                              f"step{'s' if steps != 1 else ''} an epoch).")]


def _few_seeds_text(n: int) -> list[str]:
    """For 2 or 3 seeds, a paragraph on how wide their t intervals are; nothing otherwise."""
    if n not in (2, 3):
        return []
    return [f"With {n} seeds an interval is the mean ± {t_half_width_factor(n):.3g} standard deviations over the "
            f"seeds ({n - 1} degree{'s' if n > 2 else ''} of freedom): wide enough to reach past what a measure can be "
            "(accuracy differences beyond 100 points, SI beyond 1, LI below 0), so few checks can be decided; "
            "4 or more seeds give intervals that can.\n"]


def _commands_text(results: dict) -> str:
    """``Command: `...` (N s)``, or, for a file whose groups were made by several commands (a run on
    fewer ``--groups`` keeps the others), each command with the groups it made."""
    made = results.get("group_provenance") or {}
    sittings: dict[tuple, list[str]] = {}
    for g, p in made.items():
        sittings.setdefault((p.get("command"), p.get("started_at"), p.get("wall_time_s")), []).append(g)
    if len(sittings) <= 1:
        return f"Command: `{results['meta'].get('command')}` ({results['meta'].get('wall_time_s') or 0:.0f} s)"
    return "Commands: " + "; ".join(f"`{cmd}` ({', '.join(group_label(g) for g in gs)}; {wall or 0:.0f} s)"
                                    for (cmd, _, wall), gs in sittings.items())


def own_data_report(results: dict) -> str:
    """REPORT.md of an ``own_data.json``: the verdicts, Table 1 and Figure 5 per group, every check."""
    ours = [v for v in verdicts({k: results[k] for k in ("table1", "spectral")}) if v.claim not in NOT_RUN]
    src, model = results["source"], results["model"]
    lines = ["# The paper's claims on your model and your data\n",
             f"Model `{src['model']}` ({model.get('class')}, {model.get('parameters'):,} parameters), data "
             f"`{src['data']}` (SHA-256 {src['data_sha256'][:16]}..., images {tuple(src['image_shape'])}, "
             f"{_classes_text(src)}; train / val / test {src['sizes']['n_train']} / {src['sizes']['n_val']} / "
             f"{src['sizes']['n_test']}). {_settings_text(src['settings'], src['sizes']['n_test'])}. "
             f"{_commands_text(results)}.\n",
             f"WT pools over the orbit as `nets.train` chose for the model: "
             f"{', '.join(sorted({e['methods']['WT'].get('wt_pooling') or '?' for e in results['table1']['groups'].values()}))} "
             "(`first_layer-*`: its first layer, as the paper's WT; `logits-mean`: the whole model's logits).\n",
             "Each check is decided on a 95% interval over seeds (`nets.verdicts`, the paper profile's thresholds); "
             "not run here: " + "; ".join(f"{c if c.startswith('Fig') else 'claim ' + c} ({why})"
                                          for c, why in NOT_RUN.items()) + ".\n",
             *_few_seeds_text(len(src["settings"]["seeds"])),
             *_untrained_text(results),
             *(f"> **Warning**: {w}\n" for w in results.get("warnings", [])),
             markdown_table(["claim", "statement", "verdict"], [[v.claim, v.statement, f"**{v.status}**"]
                                                                 for v in ours]) + "\n"]
    scaled = all("logit_scale" in e for entry in results["table1"]["groups"].values()
                 for e in entry["methods"].values())
    rows = []
    for g, entry in results["table1"]["groups"].items():
        for m, e in entry["methods"].items():
            rows.append([group_label(g), m, "" if e.get("nu") is None else f"{e['nu']:g}", pm_text(e["accuracy"], 100.0),
                         *(pm_text(e[q]) for q in ("LI", "DI", "SI", *(("logit_scale",) if scaled else ())))])
    lines += ["Table 1 (mean ± std over seeds):\n",
              markdown_table(["group", "method", "nu", "Acc. (%)", "LI", "DI", "SI",
                              *(["logit scale"] if scaled else [])], rows) + "\n"]
    notes = [f"{group_label(g)}: {t}" for g, entry in results["table1"]["groups"].items()
             for t in [_scale_text(entry)] if t]
    if notes:
        lines += ["LI grows with the square of the logits' size, and claims 2 and 3 check it against absolute "
                  "thresholds set for the paper's MLP; read it beside the logit scale, and IR's against DA's "
                  "(docs/own_data.md): " + "; ".join(notes) + ".\n"]
    rows = [[group_label(g), f"{nu:g}", "not trained" if si is None else f"{si:.4f}",
             "" if acc is None else f"{100 * acc:.1f}", "**chosen**" if nu == sel["chosen"] else ""]
            for g, entry in results["table1"]["groups"].items()
            for sel in [entry["nu_selection"]] for nu, si, acc in zip(sel["grid"], sel["si"], sel["accuracy"])]
    lines += [f"IR's nu search (validation SI, mean over seeds; target {src['settings']['si_target']}):\n",
              markdown_table(["group", "nu", "validation SI", "validation Acc. (%)", ""], rows) + "\n"]
    rows = [[group_label(g), key, pm_text(e["sigma_max"]), pm_text(e["accuracy"], 100.0)]
            for g, entry in results["spectral"]["groups"].items() for key, e in entry["models"].items()]
    lines += ["Figure 5, sigma_max of the input Jacobian (mean ± std over seeds):\n",
              markdown_table(["group", "model", "sigma_max", "Acc. (%)"], rows) + "\n"]
    for g, entry in results.get("per_class", {}).get("groups", {}).items():  # absent from runs before it existed
        header, rows, note = per_class_rows(entry, class_names=src.get("class_names"))
        lines += [f"Accuracy over the orbit per class, {group_label(g)} (mean over seeds; a class the group maps "
                  "onto another, a 6 turned into a 9, caps an invariant model there; `nets.class_accuracy`):\n",
                  markdown_table(header, rows) + "\n", *([note + "\n"] if note else [])]
    lines += ["Checks:\n"]
    for v in ours:
        lines += [f"- claim {v.claim}: {c.detail}" for c in v.checks]
        lines += [f"- claim {v.claim}, note: {n}" for n in v.notes]
    return "\n".join(lines) + "\n"
