"""Training an experiment's runs ahead of it, serially or as Ray tasks.

An experiment (``nets.experiments``) trains its models as it goes: it calls
``nets.train.train_runs`` / ``tune_nu``, which load every run already finished in
the checkpoint folder and train the rest. :mod:`nets.sweep_plan` plans those same runs up
front (:func:`~nets.sweep_plan.plan`); this module trains them with an executor (:func:`train_jobs`), so
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
from dataclasses import replace
from pathlib import Path
from typing import Callable, Sequence

import torch

from nets.data import Splits
from nets.precision import check_precision
from nets.results_io import precision_dir
from nets.experiments.common import checkpoint_dir
from nets.experiments.profiles import Profile
from nets.experiments.reproduce import pending_groups
from nets.experiments.table1 import profile_splits
from nets.node_provenance import machine
from nets.ray_cluster import ClusterError, auth_hint, check_address, import_ray, missing_resources, starts_own_cluster
from nets.sweep_plan import TrainingJob, plan, table1_chosen_nu  # noqa: F401 (re-exported: defined here before)
from nets.train import checkpoint_path, resolve_device, train_runs

__all__ = ["EXECUTORS", "TrainingJob", "plan", "pretrain", "table1_chosen_nu", "train_jobs", "training_splits"]

#: The executors :func:`train_jobs` knows.
EXECUTORS: tuple[str, ...] = ("local", "ray")


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
    precision = executor_kwargs.get("precision", "fp32")
    pending = pending_groups(profile, results_root, precision, recompute) if experiment == "reproduce" else None
    jobs = plan(profile, experiment, device, chosen_nu=table1_chosen_nu(profile, results_root, precision),
                pending=pending)
    if progress:
        print(f"{experiment} ({profile.name}): {len(jobs)} training stacks, "
              f"{sum(j.n_runs for j in jobs)} runs, executor {executor}", flush=True)
    return train_jobs(jobs, profile_splits(profile), checkpoint_dir(profile, results_root), executor=executor,
                      device=device, progress=progress, **executor_kwargs)
