"""What a sweep trains: every training stack an experiment needs, planned up front.

An experiment (``nets.experiments``) trains its models as it goes, through
``nets.train.train_runs`` / ``tune_nu``. :func:`plan` lists those same stacks before it runs, each
a :class:`TrainingJob` (a group x method x regularizer x nu with its seeds stacked; on a device
whose ``AUTO_NU_SEARCH`` is ``"full"``, a regularizer's whole nu grid; one run per job where
``AUTO_STACK`` is off), so that an executor (:func:`nets.distributed.train_jobs`, on Ray) can train
them first and the experiment then only loads and measures. :func:`table1_chosen_nu` reads the nu
Table 1 chose, which the experiments using Table 1's models train alone.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Mapping, Sequence

import torch

from nets.experiments.common import EXPERIMENTS
from nets.experiments.profiles import Profile
from nets.experiments.table1 import table1_configs
from nets.results_io import profile_differences, read_results, result_path
from nets.train import AUTO_NU_SEARCH, AUTO_STACK, TrainConfig, resolve_device

__all__ = ["TrainingJob", "plan", "table1_chosen_nu"]

#: Which runs each experiment trains: Table 1's models (WT, DA, IR-logit with its
#: nu search), or Figure 5's (DA, IR with each regularizer form's nu search).
_TABLE1_MODELS = ("table1", "drift", "tsne", "saliency")
#: The experiments that use Table 1's IR at the nu it chose (and train no nu search of their own).
_CHOSEN_NU_USERS = frozenset({"drift", "tsne", "saliency"})


@dataclass(frozen=True)
class TrainingJob:
    """One stack of training runs: every config in ``configs`` (they differ only in
    ``nu``) with every seed in ``seeds``, trained by one ``train_runs`` call."""

    configs: tuple[TrainConfig, ...]
    seeds: tuple[int, ...]

    @property
    def name(self) -> str:
        """``"r4-DA x seeds 0,1"``; a grid job lists its configs joined by ``+``."""
        return f"{'+'.join(c.key() for c in self.configs)} x seeds {','.join(map(str, self.seeds))}"

    @property
    def n_runs(self) -> int:
        return len(self.configs) * len(self.seeds)


def _grid_jobs(base: TrainConfig, grid: Sequence[float], seeds: tuple[int, ...], search: str) -> list[TrainingJob]:
    configs = [replace(base, nu=float(v)) for v in grid]
    if search == "full":  # tune_nu's "full" search trains the grid as one stack
        return [TrainingJob(tuple(configs), seeds)]
    return [TrainingJob((c,), seeds) for c in sorted(configs, key=lambda c: c.nu)]


def plan(profile: Profile, experiment: str, device: str | torch.device = "auto",
         chosen_nu: Mapping[str, float] | None = None,
         pending: Mapping[str, Sequence[str]] | None = None) -> list[TrainingJob]:
    """Every training job ``experiment`` (one of ``nets.experiments.EXPERIMENTS`` or
    ``"reproduce"``) needs under ``profile`` on ``device``, each once, in the order
    the serial path would train them (per group: WT, DA, then each nu search).
    ``chosen_nu`` (group -> IR's logit nu, as ``table1.json`` records it): for ``drift``,
    ``tsne`` and ``saliency``, which use Table 1's models, such a group's IR is that one nu,
    not its whole search grid. ``pending`` (experiment -> the groups it still has to run, as
    :func:`nets.experiments.reproduce.pending_groups` finds them in a partly finished folder):
    only what those experiments need in those groups; ``None``: every group.

    Raises ``ValueError`` for an unknown experiment."""
    if experiment != "reproduce" and experiment not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {experiment!r}; known: {', '.join(EXPERIMENTS)}, reproduce")
    dev = resolve_device(device)
    search = AUTO_NU_SEARCH.get(dev.type, "full")
    seeds = tuple(int(s) for s in profile.seeds)
    experiments = set(EXPERIMENTS) if experiment == "reproduce" else {experiment}
    jobs: list[TrainingJob] = []
    for g in profile.groups:
        wanted = {e for e in experiments if pending is None or g in pending.get(e, ())}
        if not wanted:
            continue
        base = table1_configs(profile, g)
        methods, forms = [], []
        if wanted & set(_TABLE1_MODELS):
            methods += ["WT", "DA"]
            forms.append("logit")
        if "spectral" in wanted:
            methods.append("DA")
            forms += list(profile.regularizers)
        for m in dict.fromkeys(methods):
            jobs.append(TrainingJob((base[m],), seeds))
        if chosen_nu and g in chosen_nu and wanted <= _CHOSEN_NU_USERS:  # Table 1 chose IR's nu already
            jobs.append(TrainingJob((replace(base["IR"], regularizer="logit", nu=float(chosen_nu[g])),), seeds))
            forms.remove("logit")
        for reg in dict.fromkeys(forms):
            jobs += _grid_jobs(replace(base["IR"], regularizer=reg), profile.nu_grid(reg), seeds, search)
    if not AUTO_STACK.get(dev.type, True):  # the serial path trains each run alone there
        jobs = [TrainingJob((c,), (s,)) for j in jobs for c in j.configs for s in j.seeds]
    return jobs


def table1_chosen_nu(profile: Profile, results_root=None, precision: str = "fp32") -> dict[str, float]:
    """IR's logit nu per group that this sweep's ``table1.json`` chose (``{}`` where the file is
    missing, unreadable or from other settings: then nothing is known yet)."""
    t1 = read_results(result_path(profile, "table1", results_root))
    if t1 is None or profile_differences(t1.get("meta", {}), profile, precision):
        return {}
    groups = t1.get("groups") or {}
    return {g: float(groups[g]["methods"]["IR"]["nu"]) for g in profile.groups if g in groups}
