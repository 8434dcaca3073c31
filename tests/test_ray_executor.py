"""Distributed sweeps on Ray (``nets.distributed``), on one real local Ray cluster.

The oracle is the serial path: the smoke profile's ``reproduce`` run in this process.
Through Ray (every training stack a task, then the experiments load them) every number
of every results file must equal it; so must a sweep whose first task's worker is
killed mid-training (Ray retries it). Fields that record the sitting (``meta``,
``group_provenance``, wall times) are left out of the comparison.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.abc
import json
import os
import signal
import socket
import sys
import threading
from pathlib import Path

import pytest
import torch

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install -e \".[distributed]\")")

from nets.__main__ import main  # noqa: E402
from nets.distributed import TrainingJob, check_visible, plan, pretrain, table1_chosen_nu, train_jobs  # noqa: E402
from nets.experiments.common import EXPERIMENTS, checkpoint_dir, out_dir  # noqa: E402
from nets.experiments.profiles import get_profile  # noqa: E402
from nets.experiments.reproduce import run_reproduce  # noqa: E402
from nets.experiments.table1 import profile_splits, run_table1  # noqa: E402
from nets.node_provenance import machines, mixed_machines_warning  # noqa: E402
from nets.precision import BF16_CPU_FLAGS, cpu_flags  # noqa: E402
from nets.ray_cluster import (ClusterError, auth_hint, check_address, missing_resources, speaks_grpc,  # noqa: E402
                               starts_own_cluster)
from nets.results_io import ResultsFileError, without_sitting  # noqa: E402
from nets.train import TrainConfig, checkpoint_path  # noqa: E402

SMOKE = get_profile("smoke")


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tasks train with one thread (their CPU share); the serial oracle does too."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def ray_cluster():
    """One local Ray cluster (head with 2 CPUs) for the whole module."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    # workers cannot import this test module: ship the hook below by value
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def serial(tmp_path_factory) -> Path:
    """The oracle: the smoke profile reproduced serially (local executor)."""
    root = tmp_path_factory.mktemp("serial")
    run_reproduce(SMOKE, root, device="cpu", progress=False, command="serial oracle")
    return root


def numbers(path: Path) -> dict:
    """A results file without the fields that describe the sitting (provenance, wall times)."""
    return without_sitting(json.loads(path.read_text()))


class KillFirstAttempt:
    """``on_epoch_end`` hook: the first call anywhere (marker file absent) creates the
    marker and kills its own process, as a node failure would; later calls do nothing."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __call__(self, epoch: int) -> None:
        try:
            fd = os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return
        os.write(fd, f"killed pid {os.getpid()} after epoch {epoch}\n".encode())
        os.close(fd)
        os.kill(os.getpid(), signal.SIGKILL)


def test_plan_covers_every_run_the_serial_sweep_trains(serial):
    planned = {checkpoint_path(Path("."), c, s).name for j in plan(SMOKE, "reproduce", "cpu")
               for c in j.configs for s in j.seeds}
    trained = {p.name for p in checkpoint_dir(SMOKE, serial).glob("*.pt")}
    assert trained and trained <= planned
    # beyond those: only nu values the ascending search never reached (the whole grid is planned)
    assert all("-IR-" in name for name in planned - trained)


def test_plan_stacks_seeds_and_splits_the_nu_grid_on_cpu():
    profile = SMOKE.with_seeds([0, 1])
    jobs = plan(profile, "table1", "cpu")
    per_group = 2 + len(profile.nu_grid("logit"))  # WT, DA, one job per nu (ascending search on CPU)
    assert len(jobs) == per_group * len(profile.groups)
    assert all(j.seeds == (0, 1) and len(j.configs) == 1 for j in jobs)


def test_spectral_with_no_paper_form_plans_das_runs_only():
    jobs = plan(SMOKE.with_regularizers([]), "spectral", "cpu")
    assert jobs and {c.method for j in jobs for c in j.configs} == {"DA"}
    assert len(jobs) == len(SMOKE.groups)


def test_after_table1_the_experiments_on_its_models_plan_only_the_chosen_nu(serial):
    chosen = table1_chosen_nu(SMOKE, serial)
    t1 = json.loads((serial / "smoke" / "table1.json").read_text())
    assert chosen == {g: t1["groups"][g]["methods"]["IR"]["nu"] for g in SMOKE.groups}
    for experiment in ("drift", "tsne", "saliency"):
        ir = [c for j in plan(SMOKE, experiment, "cpu", chosen_nu=chosen) for c in j.configs if c.method == "IR"]
        assert sorted((c.group, c.nu) for c in ir) == sorted(chosen.items())
    # a group Table 1 has not done yet keeps its whole grid; table1 and spectral search for themselves
    ir = [c for j in plan(SMOKE, "drift", "cpu", chosen_nu={"r4": chosen["r4"]}) for c in j.configs
          if c.method == "IR" and c.group == "t3"]
    assert sorted(c.nu for c in ir) == sorted(SMOKE.nu_grid("logit"))
    for experiment in ("table1", "spectral", "reproduce"):
        assert plan(SMOKE, experiment, "cpu", chosen_nu=chosen) == plan(SMOKE, experiment, "cpu")


def test_pending_groups_plan_only_what_those_experiments_need_in_those_groups():
    everything = plan(SMOKE, "reproduce", "cpu")
    only_t3 = plan(SMOKE, "reproduce", "cpu", pending={e: ("t3",) for e in EXPERIMENTS})
    assert only_t3 == [j for j in everything if j.configs[0].group == "t3"]
    assert plan(SMOKE, "reproduce", "cpu", pending={"spectral": SMOKE.groups}) == plan(SMOKE, "spectral", "cpu")
    assert plan(SMOKE, "reproduce", "cpu", pending={e: () for e in EXPERIMENTS}) == []


def test_reproduce_on_ray_in_a_partly_finished_folder_trains_only_the_pending_experiments(
        serial, tmp_path, monkeypatch):
    """The serial oracle's folder without spectral.json: Ray is sent Figure 5's stacks only, not
    Table 1's whole nu grids again (unless --recompute)."""
    import shutil

    import nets.distributed

    folder = out_dir(SMOKE, tmp_path)
    folder.mkdir(parents=True)
    for p in out_dir(SMOKE, serial).glob("*.json"):
        if p.name != "spectral.json":
            shutil.copy2(p, folder / p.name)
    sent = []
    monkeypatch.setattr(nets.distributed, "train_jobs", lambda jobs, *a, **k: sent.append(list(jobs)))
    pretrain(SMOKE, "reproduce", tmp_path, executor="local", device="cpu", progress=False)
    pretrain(SMOKE, "reproduce", tmp_path, executor="local", device="cpu", progress=False, recompute=True)
    assert sent == [plan(SMOKE, "spectral", "cpu"), plan(SMOKE, "reproduce", "cpu")]


def test_no_nu_is_known_from_a_table1_of_other_settings(serial):
    assert table1_chosen_nu(SMOKE.with_seeds([0, 1]), serial) == {}
    assert table1_chosen_nu(SMOKE, serial, precision="bf16") == {}


def test_unknown_executor_and_experiment_are_refused():
    with pytest.raises(ValueError, match="unknown executor"):
        train_jobs([], None, ".", executor="slurm")
    with pytest.raises(ValueError, match="unknown experiment"):
        plan(SMOKE, "table2")


def test_smoke_reproduce_through_ray_equals_the_serial_run(ray_cluster, serial, tmp_path, capsys):
    assert main(["reproduce", "--profile", "smoke", "--results", str(tmp_path), "--device", "cpu",
                 "--executor", "ray", "--no-progress"]) == 0
    assert "not trained on Ray" not in capsys.readouterr().err  # the driver trained nothing: the plan had every run
    files = sorted(p.name for p in out_dir(SMOKE, serial).glob("*.json"))
    assert files == sorted(p.name for p in out_dir(SMOKE, tmp_path).glob("*.json"))
    assert "table1.json" in files and "spectral.json" in files
    for name in files:
        assert numbers(out_dir(SMOKE, tmp_path) / name) == numbers(out_dir(SMOKE, serial) / name), name
    sweep = json.loads((out_dir(SMOKE, tmp_path) / "reproduce.json").read_text())  # its wall time counts Ray's part
    assert 0 < sweep["ray_training"]["wall_time_s"] < sweep["meta"]["wall_time_s"]
    (one,) = sweep["ray_training"]["machines"]  # the local cluster's one kind of machine, as the driver's
    assert one["cpu"] == sweep["meta"]["cpu"]["model"] and one["jobs"] >= 1 and one["torch_threads"] == 1
    for name in files:  # each experiment's own file says its models were trained on Ray, as reproduce.json does
        if name != "reproduce.json":
            assert json.loads((out_dir(SMOKE, tmp_path) / name).read_text())["meta"]["ray_training"]["machines"], name


@pytest.mark.parametrize("seeds", [["0"], ["0", "1"]], ids=["one seed", "two seeds stacked"])
def test_a_ray_run_equals_a_local_run_with_the_same_threads_at_two_threads(ray_cluster, tmp_path, seeds):
    # the tasks train on --task-threads (default --threads) threads: a local run with the same --threads is the oracle,
    # whatever the CPU's kernels make of the thread count (on an Intel Xeon a one-seed stack's last digits differ
    # between 1 and 2 threads: tasks that always trained on 1 thread did not give this run's numbers)
    common = ["table1", "--profile", "smoke", "--seeds", *seeds, "--device", "cpu", "--threads", "2", "--no-progress"]
    try:
        assert main([*common, "--results", str(tmp_path / "serial")]) == 0
        assert main([*common, "--results", str(tmp_path / "ray"), "--executor", "ray"]) == 0
    finally:
        torch.set_num_threads(1)  # the module's other tests run with one thread
    ray_run, serial_run = (out_dir(SMOKE, tmp_path / k) / "table1.json" for k in ("ray", "serial"))
    assert numbers(ray_run) == numbers(serial_run)
    meta = json.loads(ray_run.read_text())["meta"]
    assert "--executor ray" in meta["command"]
    (one,) = meta["ray_training"]["machines"]  # where the models were trained, in the experiment's own file
    assert meta["ray_training"]["task_threads"] == 2 and one["torch_threads"] == 2
    assert "ray_training" not in json.loads(serial_run.read_text())["meta"]


def test_a_task_asking_for_more_cpus_than_any_node_has_is_named_not_left_waiting():
    class Cluster:  # ray's view of a cluster of one 2-CPU node without GPUs, and of a dead 8-CPU one
        @staticmethod
        def nodes():
            return [{"Alive": True, "Resources": {"CPU": 2.0}}, {"Alive": False, "Resources": {"CPU": 8.0}}]

    assert missing_resources(Cluster, 2, 0) is None
    assert missing_resources(Cluster, 3, 0) == (
        "no node of the Ray cluster has the 3 CPU(s) one training task asks for (its nodes: 2 CPU / 0 GPU): give "
        "fewer --task-threads (each task's CPUs; by default --threads), or start nodes with more (ray start "
        "--num-cpus N --num-gpus N)")
    assert "the 1 CPU(s) and 1 GPU(s) one training task" in missing_resources(Cluster, 1, 1)


def test_only_a_cluster_of_this_process_own_counts_as_one_that_cannot_grow(monkeypatch):
    import nets.ray_cluster

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setattr(nets.ray_cluster, "recorded_cluster", lambda: None)
    assert starts_own_cluster("local") and starts_own_cluster(None)
    assert not starts_own_cluster("auto") and not starts_own_cluster("10.0.0.1:6379")
    assert not starts_own_cluster("ray://10.0.0.1:10001")
    monkeypatch.setattr(nets.ray_cluster, "recorded_cluster", lambda: "10.0.0.1:6379")  # `ray start` ran here
    assert not starts_own_cluster(None) and starts_own_cluster("local")
    monkeypatch.setattr(nets.ray_cluster, "recorded_cluster", lambda: None)
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.1:6379")
    assert not starts_own_cluster(None)


def test_a_cluster_started_here_that_cannot_fit_one_task_is_refused_in_one_line(ray_cluster, tmp_path, monkeypatch):
    # a cluster this call starts cannot grow: a task that fits no node would wait for ever
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", lambda **kw: None)  # "started": the module's 2-CPU cluster
    monkeypatch.setattr(ray, "shutdown", lambda: None)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    cfg = TrainConfig(group="r4", method="DA", epochs=1)
    with pytest.raises(ClusterError, match=r"no node of the Ray cluster has the 3 CPU\(s\)"):
        train_jobs([TrainingJob((cfg,), (0,))], profile_splits(SMOKE), tmp_path, executor="ray", device="cpu",
                   progress=False, cpus_per_task=3, address="local")
    assert not any(tmp_path.iterdir())  # nothing was sent


class KillEveryAttempt:
    """``on_epoch_end`` hook: kills its own process at every attempt, as a node that keeps failing."""

    def __call__(self, epoch: int) -> None:
        os.kill(os.getpid(), signal.SIGKILL)


def test_a_task_whose_retries_ray_spends_is_one_line_saying_to_run_again(ray_cluster, tmp_path):
    cfg = TrainConfig(group="r4", method="DA", epochs=1)
    with pytest.raises(ClusterError, match=r"^the Ray task .* failed in Ray, not in its own code \(WorkerCrashedError: "
                                           r".*; a worker that died was retried 0 times first\); what trained is saved: "
                                           r"once the cause is mended, the same command resumes$") as e:
        train_jobs([TrainingJob((cfg,), (0,))], profile_splits(SMOKE), tmp_path, executor="ray", device="cpu",
                   progress=False, on_epoch_end=KillEveryAttempt(), max_retries=0)
    assert "\n" not in str(e.value)


def test_checkpoints_the_driver_cannot_see_are_named_not_trained_again_here(tmp_path):
    # the tasks wrote into a folder of their own node (--results not shared): the experiment would retrain all
    cfg = TrainConfig(group="r4", method="DA", epochs=1)
    with pytest.raises(ClusterError, match=r"^the Ray tasks ended, but 2 of their 2 checkpoints are not in .* as this "
                                           r"driver sees it \(e.g. .*seed0.pt\): --results must be storage every "
                                           r"node sees at the same path"):
        check_visible([TrainingJob((cfg,), (0, 1))], tmp_path, wait_s=0)
    for s in (0, 1):
        checkpoint_path(tmp_path, cfg, s).touch()
    check_visible([TrainingJob((cfg,), (0, 1))], tmp_path, wait_s=0)


def test_a_ray_sweep_whose_checkpoints_the_driver_cannot_see_ends_in_one_line(tmp_path, monkeypatch):
    # as where the tasks wrote into their own node's folder: Ray "trains" here without writing anything
    import nets.distributed

    monkeypatch.setattr(nets.distributed, "_train_ray", lambda jobs, *a, **k: [{"job": j.name} for j in jobs])
    monkeypatch.setattr(nets.distributed, "check_visible", functools.partial(check_visible, wait_s=0))
    cfg = TrainConfig(group="r4", method="DA", epochs=1)
    with pytest.raises(ClusterError, match="checkpoints are not in .* as this driver sees it"):
        train_jobs([TrainingJob((cfg,), (0,))], profile_splits(SMOKE), tmp_path, executor="ray", device="cpu",
                   progress=False)


def test_a_worker_killed_mid_task_is_retried_and_the_sweep_completes(ray_cluster, serial, tmp_path):
    marker = tmp_path / "killed"
    records = pretrain(SMOKE, "table1", tmp_path, executor="ray", device="cpu", progress=False,
                       on_epoch_end=KillFirstAttempt(marker), max_retries=2)
    assert marker.exists(), "no task was killed: the test did not test a retry"
    killed_pid = int(marker.read_text().split()[2])
    assert killed_pid not in {r["pid"] for r in records}  # every job finished in a live worker
    run_table1(SMOKE, tmp_path, device="cpu", progress=False)
    assert numbers(out_dir(SMOKE, tmp_path) / "table1.json") == numbers(out_dir(SMOKE, serial) / "table1.json")


class KillOnceAfter(KillFirstAttempt):
    """Kills its own process once, at the end of epoch ``epoch`` (after that epoch's checkpoint)."""

    def __init__(self, marker: Path, epoch: int) -> None:
        super().__init__(marker)
        self.epoch = epoch

    def __call__(self, epoch: int) -> None:
        if epoch >= self.epoch:
            super().__call__(epoch)


def test_a_task_killed_after_a_checkpoint_resumes_there_and_ends_as_an_uninterrupted_run(ray_cluster, tmp_path):
    # the smoke profile checkpoints only at its end: here every epoch, so the retry resumes mid-run (epoch 2 of 3)
    job = TrainingJob((TrainConfig(group="r4", method="IR", epochs=3, nu=4.0),), (0, 1))
    splits = profile_splits(SMOKE)
    marker = tmp_path / "killed"
    (retried,) = train_jobs([job], splits, tmp_path / "killed_run", executor="ray", device="cpu", progress=False,
                            on_epoch_end=KillOnceAfter(marker, 2), max_retries=1, checkpoint_every=1)
    assert marker.read_text().endswith("after epoch 2\n"), "no task was killed after a checkpoint"
    assert retried["epochs_trained"] == 1  # the retry trained epoch 3 only: it resumed from epoch 2's checkpoint
    (record,) = train_jobs([job], splits, tmp_path / "whole", executor="local", device="cpu", progress=False)
    assert record["epochs_trained"] == 3
    for s in job.seeds:
        got, want = (torch.load(checkpoint_path(tmp_path / d, job.configs[0], s), weights_only=True)
                     for d in ("killed_run", "whole"))
        assert got["history"] == want["history"] and got["best_epoch"] == want["best_epoch"]
        assert all(torch.equal(got["best_state"][k], want["best_state"][k]) for k in want["best_state"])


def test_the_ray_executor_trains_into_the_checkpoint_folder_and_a_rerun_resumes(ray_cluster, tmp_path, capsys):
    profile = SMOKE.with_groups(["r4"])
    job = TrainingJob(tuple(c for c in plan(profile, "table1", "cpu")[0].configs), profile.seeds)
    run_dir = tmp_path / "ckpt"
    first = train_jobs([job], profile_splits(profile), run_dir, executor="ray", device="cpu", progress=False)
    paths = [checkpoint_path(run_dir, c, s) for c in job.configs for s in job.seeds]
    stamps = [p.stat().st_mtime_ns for p in paths]
    again = train_jobs([job], profile_splits(profile), run_dir, executor="ray", device="cpu", progress=True)
    assert [p.stat().st_mtime_ns for p in paths] == stamps  # finished runs are loaded, not retrained
    assert first[0]["epochs_trained"] >= profile.epochs and again[0]["epochs_trained"] == 0
    assert f"[1/1] {job.name}: finished before, loaded in" in capsys.readouterr().out


@pytest.mark.parametrize("flags, says", [
    (["--task-threads", "2"], "--task-threads applies to --executor ray only"),
    (["--executor", "ray", "--task-threads", "0"], "--task-threads must be >= 1, got 0"),
    (["--task-gpus", "0.5"], "--task-gpus applies to --executor ray only"),
    (["--executor", "ray", "--task-gpus", "0"], "--task-gpus must be more than 0 and at most 8 GPUs, got 0.0"),
    (["--executor", "ray", "--task-gpus", "nan"], "--task-gpus must be more than 0 and at most 8 GPUs, got nan"),
    (["--executor", "ray", "--device", "cpu", "--task-gpus", "0.25"],
     "--task-gpus applies to tasks that train on CUDA (--device cuda), not on cpu"),
    (["--executor", "ray", "--address", ""], "--address '' is empty or has spaces around it"),
    (["--executor", "ray", "--address", " auto"], "--address ' auto' is empty or has spaces around it")])
def test_ray_flags_without_the_ray_executor_or_out_of_range_are_one_line_before_any_data(capsys, no_data, tmp_path,
                                                                                         flags, says):
    assert main(["table1", "--profile", "smoke", "--results", str(tmp_path), *flags]) == 2
    err = capsys.readouterr().err
    assert says in err and len(err.strip().splitlines()) == 1 and not any(tmp_path.iterdir())


def test_the_cli_refuses_an_address_without_the_ray_executor(capsys):
    assert main(["table1", "--profile", "smoke", "--address", "auto"]) == 2
    assert "--address applies to --executor ray only" in capsys.readouterr().err


@pytest.mark.skipif(not any(f in cpu_flags() for f in BF16_CPU_FLAGS),
                    reason="Ray workers see the real CPU flags, and this CPU has no bf16 instructions")
def test_a_ray_task_trains_at_the_precision_it_is_given(ray_cluster, tmp_path):
    cfg = TrainConfig(group="r4", method="DA", epochs=1)
    splits = profile_splits(SMOKE)
    train_jobs([TrainingJob((cfg,), (0,))], splits, tmp_path, executor="ray", device="cpu", progress=False,
               precision="bf16")
    assert checkpoint_path(tmp_path / "bf16", cfg, 0).exists() and not checkpoint_path(tmp_path, cfg, 0).exists()


class RaiseOwnError:
    """``on_epoch_end`` hook: the task fails with a one-line error of our own."""

    def __call__(self, epoch: int) -> None:
        raise ResultsFileError("a damaged file, said in one line")


def test_a_tasks_own_error_is_raised_not_rays_wrapper_with_its_remote_traceback(ray_cluster, tmp_path):
    cfg = TrainConfig(group="r4", method="DA", epochs=1)
    with pytest.raises(ResultsFileError) as e:
        train_jobs([TrainingJob((cfg,), (0,))], profile_splits(SMOKE), tmp_path, executor="ray", device="cpu",
                   progress=False, on_epoch_end=RaiseOwnError(), max_retries=0)
    assert str(e.value) == "a damaged file, said in one line"


@pytest.mark.parametrize("address, says", [("127.0.0.1:1", "nothing answers at the Ray address 127.0.0.1:1"),
                                           ("garbage", "Ray address 'garbage' is not HOST:PORT"),
                                           ("127.0.0.1:99999", "is not HOST:PORT (a port 1 to 65535)")])
def test_a_ray_address_where_no_cluster_answers_is_one_line_before_any_data(capsys, tmp_path, address, says):
    argv = ["table1", "--profile", "smoke", "--executor", "ray", "--address", address, "--results", str(tmp_path)]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert says in err and len(err.strip().splitlines()) == 1
    assert not any(tmp_path.iterdir())


def test_the_ray_executor_without_ray_installed_is_one_line_naming_the_install(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ModuleNotFoundError, as without Ray
    assert main(["table1", "--profile", "smoke", "--executor", "ray", "--results", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert '--executor ray needs Ray: pip install -e ".[distributed]"' in err and len(err.strip().splitlines()) == 1


class BrokenRay(importlib.abc.MetaPathFinder):
    """Ray installed but not importable (a library of its own missing), as a finder raising on import."""

    def find_spec(self, name, path=None, target=None):
        if name == "ray":
            raise ImportError("libray_fake.so: cannot open shared object file: No such file or directory")
        return None


def test_a_ray_that_is_installed_but_does_not_import_keeps_its_own_error(monkeypatch, capsys, tmp_path):
    """Reinstalling the extra is not the fix there: the line says what failed."""
    monkeypatch.delitem(sys.modules, "ray")
    monkeypatch.setattr(sys, "meta_path", [BrokenRay(), *sys.meta_path])
    assert main(["table1", "--profile", "smoke", "--executor", "ray", "--results", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "installed but does not import (ImportError: libray_fake.so" in err and len(err.strip().splitlines()) == 1
    assert not any(tmp_path.iterdir())


def test_the_gcs_address_of_a_real_cluster_passes_the_address_check(ray_cluster, monkeypatch):
    """Ray's GCS answers the gRPC probe (nets.ray_cluster.speaks_grpc) that a web server fails."""
    monkeypatch.delenv("RAY_USE_TLS", raising=False)
    gcs = ray.get_runtime_context().gcs_address
    assert speaks_grpc(gcs)
    check_address(gcs)


@pytest.mark.parametrize("command", ["intervals", "cnn"])
def test_commands_that_plan_no_ray_tasks_take_no_executor(command, tmp_path):
    with pytest.raises(SystemExit) as e:
        main([command, "--profile", "smoke", "--executor", "ray", "--results", str(tmp_path)])
    assert e.value.code == 2


@pytest.mark.parametrize("address, mode, hinted", [("10.0.0.1:6379", None, True), ("10.0.0.1:6379", "token", False),
                                                   ("auto", None, False), ("ray://10.0.0.1:10001", None, False)])
def test_the_token_hint_is_given_for_a_host_port_join_made_without_token_authentication(
        monkeypatch, address, mode, hinted):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    if mode is None:
        monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    else:
        monkeypatch.setenv("RAY_AUTH_MODE", mode)
    assert ("RAY_AUTH_MODE=token" in auth_hint(address)) is hinted


def test_a_join_made_with_a_token_that_fails_says_to_check_the_token(monkeypatch):
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    assert "is the cluster's: `ray get-auth-token`" in auth_hint("10.0.0.1:6379")


def test_a_refused_join_by_address_is_one_line_saying_how_to_present_the_clusters_token(monkeypatch, tmp_path):
    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)

    def refused(*args, **kwargs):  # what ray.init raises when the cluster rejects a driver without its token
        raise ConnectionError("Failed to connect to Ray cluster at 127.0.0.1:PORT")

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", refused)
    with socket.create_server(("127.0.0.1", 0)) as server:  # something answers there, as a head node's GCS would:
        def settings():  # with an HTTP/2 SETTINGS frame, as gRPC does
            conn, _ = server.accept()
            with conn, contextlib.suppress(OSError):
                conn.recv(64)
                conn.sendall(bytes([0, 0, 0, 4, 0, 0, 0, 0, 0]))

        threading.Thread(target=settings, daemon=True).start()
        address = f"127.0.0.1:{server.getsockname()[1]}"
        cfg = TrainConfig(group="r4", method="DA", epochs=1)
        with pytest.raises(ClusterError) as e:
            train_jobs([TrainingJob((cfg,), (0,))], profile_splits(SMOKE), tmp_path, executor="ray", device="cpu",
                       address=address, progress=False)
    message = str(e.value)
    assert message.startswith(f"could not join the Ray cluster at {address}") and "\n" not in message
    assert "RAY_AUTH_MODE=token" in message


def test_reproduce_on_ray_trains_nothing_where_every_experiment_is_done(tmp_path, monkeypatch, capsys):
    """A folder whose results are all there (a restored paper folder, here the committed quick
    one) has nothing left to train: the serial pass trains nothing, and neither may Ray, whose plan
    covers whole nu grids that the serial ascending search never trained."""
    import shutil

    import nets.distributed
    import nets.experiments

    folder = tmp_path / "quick"
    folder.mkdir()
    for p in (Path(__file__).resolve().parents[1] / "results" / "quick").glob("*.json"):
        shutil.copy2(p, folder / p.name)
    calls = []
    monkeypatch.setattr(nets.distributed, "pretrain", lambda *a, **k: calls.append(a))
    monkeypatch.setattr(nets.experiments, "runner", lambda name: lambda *a, **k: tmp_path)
    assert main(["reproduce", "--profile", "quick", "--results", str(tmp_path), "--executor", "ray",
                 "--no-progress"]) == 0
    assert calls == [] and "nothing to train on Ray" in capsys.readouterr().out


def test_stacks_trained_on_different_machines_are_counted_and_warned_about():
    """Each task reports its node; the driver tells kinds of machine apart (hosts aside)."""
    node = {"cpu": "AMD EPYC", "flags": ["avx2"], "gpu": None, "torch": "2.13.0+cpu", "torch_threads": 1}
    records = [{"machine": {**node, "host": h}, "epochs_trained": 5} for h in ("a", "b")]
    records.append({"machine": {**node, "cpu": "Intel Xeon", "host": "c"}, "epochs_trained": 5})
    kinds = machines(records)
    assert [(k["cpu"], k["hosts"], k["jobs"]) for k in kinds] == [("AMD EPYC", ["a", "b"], 2), ("Intel Xeon", ["c"], 1)]
    warning = mixed_machines_warning(kinds)
    assert "2 kinds of machine" in warning and "seed-to-seed spread" in warning
    assert mixed_machines_warning(machines(records[:2])) is None
    loaded = {**records[2], "epochs_trained": 0}  # a job that only loaded finished runs trained nothing there
    assert mixed_machines_warning(machines([*records[:2], loaded])) is None
    assert "different code" not in warning
    other_code = {"machine": {**node, "host": "d", "code": "0123456789ab"}, "epochs_trained": 5}
    warning = mixed_machines_warning(machines([*records[:2], other_code]))
    assert "code 0123456789ab" in warning and "they ran different code" in warning


def test_a_cpu_driver_on_a_cluster_with_gpus_warns_that_they_stay_idle(ray_cluster, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(ray, "cluster_resources", lambda: {"CPU": 2.0, "GPU": 4.0})  # GPU workers, a CPU head
    cfg = TrainConfig(group="r4", method="DA", epochs=1)
    train_jobs([TrainingJob((cfg,), (0,))], profile_splits(SMOKE), tmp_path / "auto", executor="ray", device="auto",
               progress=False)
    assert "the cluster has 4 GPU(s), but the stacks train on cpu" in capsys.readouterr().err
    train_jobs([TrainingJob((cfg,), (0,))], profile_splits(SMOKE), tmp_path / "cpu", executor="ray", device="cpu",
               progress=False)  # asked for by name: no warning
    assert "GPU(s)" not in capsys.readouterr().err


def test_a_run_the_plan_missed_is_named_when_the_driver_trains_it(monkeypatch, capsys, tmp_path):
    """The driver measures what the tasks trained; a run it must train itself is one the plan missed, said so."""
    monkeypatch.setattr("nets.distributed.pretrain", lambda *a, **k: [])  # a plan that missed every run
    assert main(["table1", "--profile", "smoke", "--seeds", "0", "--device", "cpu", "--results", str(tmp_path),
                 "--executor", "ray", "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "2 run(s) were not trained on Ray (r4-WT-e2 seed 0, r4-DA-e2 seed 0)" in err
    assert "the plan of the sweep missed them" in err
    assert json.loads((out_dir(SMOKE, tmp_path) / "table1.json").read_text())["meta"]["ray_training"]["machines"] == []
