"""The experiment subcommands of ``python -m nets``, as data: :data:`SUBCOMMANDS`, name -> :class:`Subcommand`.

Each entry gives the subcommand's one-line summary (for ``python -m nets --help``), what it writes
and where (for its own ``--help``) and an example command line; :data:`EXAMPLE` is the command the
help shows first. Nothing here parses: the parser built from this table, with each subcommand's
options, is :func:`nets.commands.build_parser`, which re-exports these names (the subcommands that
modules add, :data:`nets.commands.EXTENSIONS`, are not in this table). Adding an experiment
subcommand is one entry here.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["EXAMPLE", "Subcommand", "SUBCOMMANDS"]

EXAMPLE = "python -m nets reproduce --profile quick --results results/local"


@dataclass(frozen=True)
class Subcommand:
    name: str
    summary: str  # one line, for `python -m nets --help`
    writes: str  # what it writes and where, for its own --help
    example: str


_OUT = "<results>/<profile>/"  # --results (default results/) and --profile (default quick)
_EXPERIMENT_FIGURES = {
    "table1": ("Table 1: accuracy, LI, DI, SI of WT / DA / IR on R4 and T3", "table1.json",
               "figures/table1 and figures/nu_selection_table1"),
    "drift": ("Figure 4: invariance under a drifting transformation (reuses table1's models)", "drift.json",
              "figures/drift"),
    "spectral": ("Figure 5: sigma_max of the input-output Jacobian, three regularizer forms", "spectral.json",
                 "figures/spectral and figures/nu_selection_spectral"),
    "centered": ("Figure 5 for our centered normalized-logit form (beyond the paper; needs spectral.json)",
                 "centered.json", "figures/centered"),
    "detached": ("Figure 5 for the normalized-logit form with its denominator detached (ours, beyond the paper; "
                 "needs spectral.json)", "detached.json", "figures/detached"),
    "tsne": ("Figure 2: t-SNE of the orbits' penultimate features", "tsne.json", "figures/tsne"),
    "saliency": ("Figures 1 and 3: saliency maps under the group", "saliency.json", "figures/saliency_*"),
    "cnn": ("Table 1, Figures 4 and 5 for a small CNN, or your own model with --model (claims 1-5 beyond the MLP; "
            "not part of reproduce)",
            "cnn.json", "figures/cnn_*"),
}
SUBCOMMANDS: dict[str, Subcommand] = {
    **{name: Subcommand(name, summary, f"{_OUT}{js} and {_OUT}{figs}.png/.pdf; trains (or loads) the models "
                        f"into {_OUT}checkpoints/", f"python -m nets {name} --profile smoke")
       for name, (summary, js, figs) in _EXPERIMENT_FIGURES.items()},
    "reproduce": Subcommand("reproduce", "every experiment above, then REPORT.md (resumes an interrupted sweep)",
                            f"every experiment's JSON and figures, {_OUT}reproduce.json and {_OUT}REPORT.md; "
                            f"checkpoints in {_OUT}checkpoints/", EXAMPLE),
    "intervals": Subcommand("intervals", "bootstrap intervals over test samples from the checkpoints (trains nothing)",
                            f"{_OUT}intervals.json (REPORT.md shows them beside the intervals over seeds); reads "
                            f"the models from {_OUT}checkpoints/ and refuses to train a missing one",
                            "python -m nets intervals --profile paper"),
    "scale": Subcommand("scale", "Figure 5's sigma_max split into logit scale and sigma per unit of scale (beyond "
                        "the paper; from the checkpoints, trains nothing)",
                        f"{_OUT}scale.json and {_OUT}figures/scale.png/.pdf; reads spectral.json (and centered.json "
                        f"when present) for the chosen nu, the models from {_OUT}checkpoints/, and refuses to train "
                        "a missing one (--model cnn: the CNN's, from cnn.json, into cnn_scale.json)",
                        "python -m nets scale --profile paper"),
    "si-settings": Subcommand("si-settings", "Table 1's SI under other saliency maps (beyond the paper; from the "
                              "checkpoints, trains nothing)",
                              f"{_OUT}si_settings.json (REPORT.md gains its section); reads table1.json and Table 1's "
                              f"models from {_OUT}checkpoints/, and refuses to train a missing one (--model cnn: "
                              "the CNN's, from cnn.json, into cnn_si_settings.json)",
                              "python -m nets si-settings --profile paper"),
    "per-class": Subcommand("per-class", "Table 1's accuracy over the orbit per class (beyond the paper; from the "
                            "checkpoints, trains nothing)",
                            f"{_OUT}per_class.json (REPORT.md gains its section); reads table1.json and Table 1's "
                            f"models from {_OUT}checkpoints/, and refuses to train a missing one",
                            "python -m nets per-class --profile paper"),
    "between": Subcommand("between", "Table 1's models between the group's elements: rotations by any angle, shifts "
                          "by any pixel (beyond the paper; from the checkpoints, trains nothing)",
                          f"{_OUT}between.json and {_OUT}figures/between.png/.pdf (REPORT.md gains its section); "
                          f"reads table1.json and Table 1's models from {_OUT}checkpoints/, and refuses to train a "
                          "missing one", "python -m nets between --profile paper"),
    "train-size": Subcommand("train-size", "Table 1 on smaller training sets, at the paper's number of Adam steps "
                             "(beyond the paper; IR at Table 1's nu)",
                             f"{_OUT}train_size.json and {_OUT}figures/train_size.png/.pdf (REPORT.md gains its "
                             f"section); reads table1.json, trains into {_OUT}checkpoints/train_size/",
                             "python -m nets train-size --profile paper"),
    "report": Subcommand("report", "redraw the figures and rewrite REPORT.md from the JSON files (trains nothing)",
                         f"{_OUT}figures/*.png/.pdf and {_OUT}REPORT.md (never a number of the JSON files)",
                         "python -m nets report --profile paper"),
}
