"""The paper's experiments (Section 4) as thin layers over the library.

One function per experiment, ``run_<name>(profile, results_root, *, device,
progress, command)``, each writing ``<results_root>/<profile>/<name>.json`` and
its figures; ``run_reproduce`` runs them all and writes ``REPORT.md``. The CLI
is ``python -m nets EXPERIMENT --profile P``.
"""

from nets.experiments.common import EXPERIMENTS, RESULTS_ROOT, out_dir, read_json, result_path, write_json
from nets.experiments.profiles import METHOD_FIELDS, PROFILES, SIZE_FIELDS, Profile, get_profile

__all__ = [
    "EXPERIMENTS",
    "RESULTS_ROOT",
    "METHOD_FIELDS",
    "PROFILES",
    "SIZE_FIELDS",
    "Profile",
    "get_profile",
    "out_dir",
    "read_json",
    "result_path",
    "write_json",
    "runner",
]


def runner(name: str):
    """The ``run_<name>`` function of one experiment (or ``reproduce``)."""
    from nets.experiments.reproduce import experiment_runners, run_reproduce

    if name == "reproduce":
        return run_reproduce
    if name == "intervals":
        from nets.experiments.intervals import run_intervals

        return run_intervals
    if name == "per-class":
        from nets.experiments.per_class import run_per_class

        return run_per_class
    if name == "between":
        from nets.experiments.between import run_between

        return run_between
    if name == "train-size":
        from nets.experiments.train_size import run_train_size

        return run_train_size
    if name == "si-settings":
        from nets.experiments.si_settings import run_si_settings

        return run_si_settings
    runners = experiment_runners()
    if name not in runners:
        raise ValueError(f"unknown experiment {name!r}; known: {', '.join(runners)}, reproduce")
    return runners[name]
