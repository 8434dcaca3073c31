"""Training an experiment's runs ahead of it, serially or as Ray tasks.

An experiment (``nets.experiments``) trains its models as it goes: it calls
``nets.train.train_runs`` / ``tune_nu``, which load every run already finished in
the checkpoint folder and train the rest. This module plans those same runs up
front (:func:`plan`) and trains them with an executor (:func:`train_jobs`), so
that the experiment afterwards finds every run finished and only loads and
measures. The results are the serial path's in every number because

* each :class:`TrainingJob` is exactly one stack the serial path trains (a
  group x method x regularizer x nu with its seeds stacked; on a device whose
  ``AUTO_NU_SEARCH`` is ``"full"``, a regularizer's whole nu grid, as
  ``tune_nu`` stacks it there; one run per job where ``AUTO_STACK`` is off), and
* a run's numbers depend only on its config, seed, data, device, stacking and
  torch threads (``nets.train``'s contract), not on the process that trains it:
  each task trains on ``--task-threads`` threads, by default the driver's
  ``--threads``.

The nu searches: the plan trains a regularizer's whole grid, in parallel on a
cluster; the experiment's ascending search then measures the finished runs
smallest nu first and stops at the first that reaches the SI target, exactly as
serially, so the chosen nu, and every recorded number, is the serial one (grid
values past the chosen one were trained for nothing, but concurrently).

Executors: ``"local"`` trains the jobs one after another in this process;
``"ray"`` sends each job as a Ray task (``ray.remote`` with ``num_cpus``,
``num_gpus`` and ``max_retries``) that sets torch's threads to its CPU share,
trains into the checkpoint folder and returns. A task whose worker dies is
retried by Ray and resumes from the run's last checkpoint. The checkpoint folder
must be on storage every node of the cluster sees (docs/scaling.md). Ray is an
optional dependency (``pip install -e ".[distributed]"``), imported only by
the ``"ray"`` executor.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Mapping, Sequence

import torch

from nets.data import Splits
from nets.precision import check_precision
from nets.results_io import precision_dir, profile_differences, read_results, result_path
from nets.experiments.profiles import Profile
from nets.node_provenance import machine
from nets.ray_cluster import ClusterError, auth_hint, check_address, import_ray, missing_resources, starts_own_cluster
from nets.train import AUTO_NU_SEARCH, AUTO_STACK, TrainConfig, checkpoint_path, resolve_device, train_runs

__all__ = ["EXECUTORS", "TrainingJob", "plan", "pretrain", "table1_chosen_nu", "train_jobs", "training_splits"]

#: The executors :func:`train_jobs` knows.
EXECUTORS: tuple[str, ...] = ("local", "ray")

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
    from nets.experiments.common import EXPERIMENTS
    from nets.experiments.table1 import table1_configs

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


def training_splits(splits: Splits) -> Splits:
    """``splits`` without its test images (training reads train and val only), so
    that shipping it to the workers of a cluster costs only what training needs."""
    return replace(splits, test=splits.test.subset(0))


def _train_job(job: TrainingJob, splits: Splits, run_dir: str, device: str, threads: int | None,
               on_epoch_end: Callable[[int], None] | None, precision: str = "fp32", checkpoint_every: int = 10) -> dict:
    """Train one job into ``run_dir`` at ``precision`` (finished runs there are loaded,
    unfinished ones resume); returns its name, wall time, process id, the epochs it trained
    (summed over its stacks; 0 when every run had finished before) and the machine that trained
    it (:func:`machine`)."""
    if threads is not None:
        torch.set_num_threads(threads)
    started, epochs = time.time(), [0]

    def count(done: int) -> None:
        epochs[0] += 1
        if on_epoch_end is not None:
            on_epoch_end(done)

    train_runs(list(job.configs), list(job.seeds), splits, device=device, run_dir=run_dir, progress=False,
               on_epoch_end=count, precision=precision, checkpoint_every=checkpoint_every)
    return {"job": job.name, "wall_time_s": time.time() - started, "pid": os.getpid(), "epochs_trained": epochs[0],
            "machine": machine(device)}


def job_line(k: int, n: int, record: dict) -> str:
    """The progress line of the ``k``-th of ``n`` jobs done: trained, or loaded where every run of
    it had finished before (a resumed sweep)."""
    if record.get("epochs_trained") == 0:
        return f"[{k}/{n}] {record['job']}: finished before, loaded in {record['wall_time_s']:.1f} s"
    return f"[{k}/{n}] trained {record['job']} in {record['wall_time_s']:.1f} s"


def train_jobs(
    jobs: Sequence[TrainingJob],
    splits: Splits,
    run_dir: str | os.PathLike,
    *,
    executor: str = "local",
    device: str | torch.device = "auto",
    address: str | None = None,
    cpus_per_task: int = 1,
    gpus_per_task: float | None = None,
    max_retries: int = 3,
    on_epoch_end: Callable[[int], None] | None = None,
    progress: bool = True,
    precision: str = "fp32",
    checkpoint_every: int = 10,
) -> list[dict]:
    """Train every job into ``run_dir``; returns one record per job (``job``,
    ``wall_time_s``, ``pid``, ``epochs_trained``, ``machine``) in the order of ``jobs``.

    ``executor="local"``: in this process, one job after another (torch's threads
    as they are). ``executor="ray"``: one Ray task per job, declaring
    ``cpus_per_task`` CPUs (torch's threads inside the task are set to it) and,
    on CUDA, ``gpus_per_task`` GPUs (default 1); a task whose worker dies is
    retried up to ``max_retries`` times. Connects to the Ray cluster at ``address``
    (``"auto"``: the one running on this machine; ``None``: ``RAY_ADDRESS``, else one that
    ``ray start`` started on this machine, else a new local cluster), or uses the one this
    process already joined (``ray.is_initialized()``); a cluster started here is shut down at
    the end.
    ``on_epoch_end`` goes to ``train_runs`` (must be picklable for Ray), and so does
    ``precision`` (checked here, in the driver, for ``device``; each task checks it again
    on its own node: a CPU node without bf16 instructions refuses bf16), and ``checkpoint_every``
    (epochs between checkpoints: where a retried task resumes).

    Raises ``ValueError`` for an unknown executor or precision, or a CPU share < 1;
    :class:`ClusterError` (one line) when Ray is missing (naming the install command), when
    nothing answers at a ``HOST:PORT`` address, when the cluster cannot be started or
    joined, when no node of a cluster of this call's own fits one task, when a task fails in
    Ray rather than in its own code, or when the driver cannot see the checkpoints the tasks
    wrote (:func:`check_visible`); and the first job's own error (for instance ``nets.train.TrainingDiverged``, not
    Ray's wrapper around it) once every task has ended, each failure printed as it happens."""
    if executor not in EXECUTORS:
        raise ValueError(f"unknown executor {executor!r}; known: {', '.join(EXECUTORS)}")
    if int(cpus_per_task) < 1:
        raise ValueError(f"cpus_per_task must be >= 1, got {cpus_per_task}")
    if gpus_per_task is not None and not gpus_per_task > 0:
        raise ValueError(f"gpus_per_task must be > 0, got {gpus_per_task}")
    dev = resolve_device(device)
    check_precision(precision, dev)
    run_dir = str(Path(run_dir).resolve())  # workers may run elsewhere: the target of a link only the driver has
    jobs = list(jobs)
    if executor == "local":
        out = []
        for k, job in enumerate(jobs):
            out.append(_train_job(job, splits, run_dir, str(dev), None, on_epoch_end, precision, checkpoint_every))
            if progress:
                print(job_line(k + 1, len(jobs), out[-1]), flush=True)
        return out
    out = _train_ray(jobs, splits, run_dir, dev, address, int(cpus_per_task), gpus_per_task, max_retries,
                     on_epoch_end, progress, precision, checkpoint_every, device_chosen=str(device) != "auto")
    check_visible(jobs, precision_dir(run_dir, precision))
    return out


def check_visible(jobs: Sequence[TrainingJob], folder: Path, wait_s: float = 10.0) -> None:
    """Every run of ``jobs`` has its checkpoint in ``folder`` as this process sees it, or a one-line
    :class:`ClusterError`: the Ray tasks wrote into a folder of their own node (``--results`` on
    storage the nodes do not share, or at another path there), and the experiment would train the
    whole sweep again here, silently. Looks again for ``wait_s`` seconds (a network file system may
    show a new file late)."""
    paths = [checkpoint_path(folder, c, s) for j in jobs for c in j.configs for s in j.seeds]
    deadline = time.monotonic() + wait_s
    while (missing := [p for p in paths if not p.exists()]) and time.monotonic() < deadline:
        time.sleep(1.0)
    if missing:
        raise ClusterError(f"the Ray tasks ended, but {len(missing)} of their {len(paths)} checkpoints are not in "
                           f"{folder} as this driver sees it (e.g. {missing[0].name}): --results must be storage "
                           f"every node sees at the same path (docs/scaling.md)")


def _last_line(e: BaseException) -> str:
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    return lines[-1] if lines else type(e).__name__


def _train_ray(jobs, splits, run_dir, dev, address, cpus, gpus, max_retries, on_epoch_end, progress,
               precision="fp32", checkpoint_every=10, device_chosen=False) -> list[dict]:
    ray = import_ray()
    started_here = not ray.is_initialized()
    own = started_here and starts_own_cluster(address)  # a cluster of this call's own, which cannot grow
    if started_here:
        check_address(address)
        try:  # worker output reaches the driver whatever --no-progress says: it carries their warnings
            ray.init(address=address, include_dashboard=False, log_to_driver=True)
        except Exception as e:  # noqa: BLE001 - Ray raises ConnectionError, ValueError or a bare Exception
            where = f"join the Ray cluster at {address}" if address else "start or join a Ray cluster"
            raise ClusterError(f"could not {where}: {_last_line(e)}{auth_hint(address)}") from None
    try:
        if dev.type == "cuda":
            gpus = 1 if gpus is None else gpus
            task_device = "cuda"  # Ray sets CUDA_VISIBLE_DEVICES to the task's GPU(s)
        else:
            gpus, task_device = 0, str(dev)
            idle = 0 if device_chosen else ray.cluster_resources().get("GPU", 0)
            if idle:  # --device auto is resolved on the driver: a CPU-only head leaves its workers' GPUs idle
                print(f"warning: the cluster has {idle:g} GPU(s), but the stacks train on {dev} (the device this "
                      "driver resolved); run the driver on a GPU node with --device cuda to use them "
                      "(docs/scaling.md)", file=sys.stderr, flush=True)
        lacking = missing_resources(ray, cpus, gpus)
        if lacking and own:  # the tasks would wait for ever
            raise ClusterError(lacking)
        if lacking:  # an autoscaling cluster adds such a node when the tasks ask
            print(f"warning: {lacking}; the tasks wait until such a node joins", file=sys.stderr, flush=True)
        remote = ray.remote(num_cpus=cpus, num_gpus=gpus, max_retries=max_retries)(_train_job)
        data = ray.put(training_splits(splits))
        refs = [remote.remote(job, data, run_dir, task_device, cpus, on_epoch_end, precision, checkpoint_every)
                for job in jobs]
        index = {ref: k for k, ref in enumerate(refs)}
        out: list[dict | None] = [None] * len(refs)
        errors: list[BaseException] = []
        pending = list(refs)
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            k = index[ready[0]]
            try:
                out[k] = ray.get(ready[0])
            except Exception as e:  # noqa: BLE001 - re-raised below, after every task ended
                cause = getattr(e, "cause", None)  # a RayTaskError wraps what the task raised
                errors.append(cause if isinstance(cause, BaseException) else ClusterError(
                    f"the Ray task {jobs[k].name} failed in Ray, not in its own code ({type(e).__name__}: "
                    f"{_last_line(e)}; a worker that died was retried {max_retries} times first); what trained is "
                    f"saved: once the cause is mended, the same command resumes"))
                print(f"error in the Ray task {jobs[k].name}: {_last_line(cause if cause is not None else e)} "
                      "(raised once every other task has ended)", flush=True)
                continue
            if progress:
                print(job_line(len(refs) - len(pending), len(refs), out[k]), flush=True)
        if errors:
            raise errors[0]
        return out  # type: ignore[return-value]
    finally:
        if started_here:
            ray.shutdown()


def table1_chosen_nu(profile: Profile, results_root=None, precision: str = "fp32") -> dict[str, float]:
    """IR's logit nu per group that this sweep's ``table1.json`` chose (``{}`` where the file is
    missing, unreadable or from other settings: then nothing is known yet)."""
    t1 = read_results(result_path(profile, "table1", results_root))
    if t1 is None or profile_differences(t1.get("meta", {}), profile, precision):
        return {}
    groups = t1.get("groups") or {}
    return {g: float(groups[g]["methods"]["IR"]["nu"]) for g in profile.groups if g in groups}


def pretrain(profile: Profile, experiment: str, results_root=None, *, executor: str = "ray",
             device: str | torch.device = "auto", progress: bool = True, recompute: bool = False,
             **executor_kwargs) -> list[dict]:
    """Train every job :func:`plan` lists for ``experiment`` into the profile's checkpoint
    folder (``<results_root>/<profile>/checkpoints``) with ``executor``, on the profile's
    splits; running the experiment afterwards then trains nothing. ``executor_kwargs``
    go to :func:`train_jobs` (``address``, ``cpus_per_task``, ``max_retries``, ``precision``, ...).
    Where this sweep's ``table1.json`` (same settings and precision) already chose IR's nu for a
    group, ``drift`` / ``tsne`` / ``saliency`` train that nu only (:func:`plan`'s ``chosen_nu``).
    For ``"reproduce"``, only what the experiments and groups still to run need (unless
    ``recompute``: everything), as the serial pass after it runs only those."""
    from nets.experiments.common import checkpoint_dir
    from nets.experiments.reproduce import pending_groups
    from nets.experiments.table1 import profile_splits

    precision = executor_kwargs.get("precision", "fp32")
    pending = pending_groups(profile, results_root, precision, recompute) if experiment == "reproduce" else None
    jobs = plan(profile, experiment, device, chosen_nu=table1_chosen_nu(profile, results_root, precision),
                pending=pending)
    if progress:
        print(f"{experiment} ({profile.name}): {len(jobs)} training stacks, "
              f"{sum(j.n_runs for j in jobs)} runs, executor {executor}", flush=True)
    return train_jobs(jobs, profile_splits(profile), checkpoint_dir(profile, results_root), executor=executor,
                      device=device, progress=progress, **executor_kwargs)
