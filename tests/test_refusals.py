"""Bad input and interruptions across the command-line tools: one line naming the problem, the
documented exit status, and nothing moved, half-written or left behind.

- Output paths are checked before the work (an empty name, a folder given for a file).
- Evaluation-only commands leave a damaged checkpoint or results file where it is and say so;
  only a command that recomputes a file moves it aside.
- ``torch.load`` refusals say why in words (empty, cut short, not a torch.save file, pickle).
- Ctrl-C in ``audit`` / ``own-data`` is one line and exit 130.
- ``benchmarks/`` and ``scripts/`` refuse bad counts and groups through argparse.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import pickle
import shutil
import socket
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

import nets.audit_cli as audit_cli
import nets.own_data_cli as own_data_cli
from nets.checkpoint_archive import archived_hint
from nets.cli_types import group_arg, nonnegative_int, positive_int
from nets.data.cli import main as data_main
from nets.ray_cluster import ClusterError, check_address, recorded_cluster, speaks_grpc
from nets.experiments.common import folder_precision, settings_conflicts
from nets.experiments.intervals import load_runs
from nets.experiments.profiles import get_profile
from nets.experiments.scale import cnn_plan
from nets.experiments.table1 import profile_splits, table1_configs
from nets.image_file import load_labelled
from nets.notebooks import main as notebooks_main
from nets.results_io import (ResultsFileError, ResultsWriteError, WouldTrain, check_file, check_folder, load_refusal,
                             load_torch_file, peek_results, read_results, read_torch_file)
from theory.spectral_flow import main as theory_main

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.gpu_extrapolate import read_stages  # noqa: E402


# ---- output paths, checked before the work ---------------------------------------------------
def test_an_empty_folder_name_is_refused_not_taken_as_the_current_folder():
    with pytest.raises(ResultsWriteError, match="empty name"):
        check_folder("")


def test_a_folder_given_where_a_file_is_written_is_refused(tmp_path):
    with pytest.raises(ResultsWriteError, match="it is a folder"):
        check_file(tmp_path)
    with pytest.raises(ResultsWriteError, match="empty name"):
        check_file("")
    assert check_file(tmp_path / "new" / "report.json") == tmp_path / "new" / "report.json"
    assert not (tmp_path / "new").exists()  # checking creates nothing


@pytest.mark.parametrize("argv, words", [
    (["--seed", "-1"], "--seed must be a non-negative integer"),
    (["--tolerance-scale", "-1"], "--tolerance-scale must be a finite number >= 0"),
    (["--tolerance-scale", "nan"], "--tolerance-scale must be a finite number >= 0"),
    (["--plot", "flow.svg"], "name the figure's file with .png or .pdf"),
    (["--json", ""], "empty name"),
])
def test_the_theory_report_refuses_bad_options_before_any_check_runs(argv, words, capsys):
    with pytest.raises(SystemExit) as e:
        theory_main(argv)
    assert e.value.code == 2
    assert words in capsys.readouterr().err


def test_the_theory_report_refuses_a_folder_for_its_json(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        theory_main(["--json", str(tmp_path), "--only", "nothing-matches"])
    assert e.value.code == 2 and "it is a folder" in capsys.readouterr().err


@pytest.mark.parametrize("n", ["0", "-3", "33", "50001"])
def test_data_show_refuses_a_sample_count_outside_the_figure_before_loading_data(n, tmp_path, capsys, no_data):
    assert data_main(["show", "--n", n, "--out", str(tmp_path / "s.png")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--n must be in [1, 32]" in err
    assert not (tmp_path / "s.png").exists()


def test_data_show_refuses_an_unwritable_figure_before_loading_data(tmp_path, capsys, no_data):
    (tmp_path / "file").write_text("x")
    assert data_main(["show", "--out", str(tmp_path / "file" / "s.png")]) == 1
    assert "is a file, not a folder" in capsys.readouterr().err


def test_checkpoints_add_outside_manifest_is_a_usage_error(run_cli):
    rc, _, err = run_cli("checkpoints", "restore", "--profile", "smoke", "--add", "x.pt")
    assert rc == 2 and "--add applies to `manifest` only" in err


def test_audit_refuses_an_empty_out(run_cli):
    rc, _, err = run_cli("audit", "--model", "nets.models:MLP", "--group", "r4", "--n", "4", "--out", "")
    assert rc == 1 and "empty name" in err


# ---- damaged files: say why, and move aside only what is recomputed ----------------------------
def _torch_file(path: Path, obj) -> Path:
    torch.save(obj, path)
    return path


@pytest.mark.parametrize("make, words", [
    (lambda p: p.write_bytes(b""), "it is empty or cut short"),
    (lambda p: p.write_text("garbage\n"), "it is not a file torch.save wrote"),
    (lambda p: p.write_bytes(_torch_file(p, {"w": torch.ones(50)}).read_bytes()[:200]), "it is cut short"),
    (lambda p: p.write_bytes(pickle.dumps([1, 2, 3])), "written by pickle, not torch.save"),
    (lambda p: _torch_file(p, [torch.ones(2)]), "it holds a list, not a dict"),
])
def test_a_damaged_torch_file_is_named_with_its_cause_and_left_where_it_is(make, words, tmp_path):
    path = tmp_path / "run.pt"
    make(path)
    with pytest.raises(ResultsFileError, match=words) as e:
        read_torch_file(path)
    assert str(e.value).count("\n") == 0 and "weights_only" not in str(e.value)
    assert path.exists()


def test_load_refusal_never_repeats_the_exception_type():
    assert load_refusal(EOFError()) == "it is empty or cut short"
    assert load_refusal(RuntimeError("")) == "RuntimeError"


def test_a_checkpoint_that_training_rebuilds_is_moved_aside_with_its_cause(tmp_path, capsys):
    path = tmp_path / "run.pt"
    path.write_bytes(b"")
    assert load_torch_file(path) is None
    assert not path.exists() and (tmp_path / "run.pt.corrupt").exists()
    assert "(it is empty or cut short); moved it to run.pt.corrupt" in capsys.readouterr().err


def test_peeking_at_a_damaged_results_file_leaves_it_and_reading_it_to_recompute_moves_it(tmp_path, capsys):
    path = tmp_path / "table1.json"
    path.write_text("{bad")
    assert peek_results(path) is None and path.exists()
    assert read_results(path) is None and not path.exists()
    assert "moved it to table1.json.corrupt and recomputing it" in capsys.readouterr().err


@pytest.fixture
def smoke_copy(table1_smoke, tmp_path) -> Path:
    """A copy of the smoke Table 1 folder (its root), for a test to damage."""
    shutil.copytree(table1_smoke / "smoke", tmp_path / "smoke")
    return tmp_path


def test_settings_checks_leave_a_damaged_results_file_for_the_command_that_recomputes_it(smoke_copy):
    t1 = smoke_copy / "smoke" / "table1.json"
    t1.write_text("{bad")
    profile = get_profile("smoke")
    assert settings_conflicts(profile, smoke_copy) == []
    assert folder_precision(profile, smoke_copy) == "fp32"
    assert t1.read_text() == "{bad"


def test_evaluation_only_commands_leave_a_damaged_table1_json_where_it_is(smoke_copy, run_cli):
    t1 = smoke_copy / "smoke" / "table1.json"
    t1.write_text("{bad")
    for command in ("per-class", "between"):
        rc, _, err = run_cli(command, "--profile", "smoke", "--results", str(smoke_copy), "--no-progress")
        assert rc == 1 and "table1.json is not a valid results file" in err and "recomputing" not in err
        assert t1.read_text() == "{bad"


def test_loading_runs_to_evaluate_refuses_a_damaged_checkpoint_and_leaves_it(smoke_copy):
    profile = get_profile("smoke")
    run_dir = smoke_copy / "smoke" / "checkpoints"
    configs = [table1_configs(profile, "r4")["WT"]]
    damaged = next(run_dir.glob("r4-WT-*.pt"))
    damaged.write_text("garbage\n")
    with pytest.raises(WouldTrain, match="is damaged .it is not a file torch.save wrote.; this command evaluates only"):
        load_runs(configs, list(profile.seeds), profile_splits(profile), run_dir, "cpu")
    assert damaged.read_text() == "garbage\n" and not list(run_dir.glob("*.corrupt"))


def test_scale_of_the_cnn_names_a_damaged_cnn_json_and_leaves_it(tmp_path):
    path = tmp_path / "smoke" / "cnn.json"
    path.parent.mkdir()
    path.write_text("[1, 2]")
    with pytest.raises(ValueError, match="holds a JSON list, not the CNN's results"):
        cnn_plan(get_profile("smoke"), tmp_path)
    path.write_text("{bad")
    with pytest.raises(ResultsFileError, match="cnn.json"):
        cnn_plan(get_profile("smoke"), tmp_path)
    assert path.read_text() == "{bad"


# ---- images files ------------------------------------------------------------------------------
def test_sparse_images_are_read_as_their_dense_values(tmp_path):
    x = torch.zeros(3, 1, 6, 6)
    x[0, 0, 2, 3] = 1.5
    torch.save({"x": x.to_sparse(), "y": torch.tensor([0, 1, 2])}, tmp_path / "imgs.pt")
    got = load_labelled(tmp_path / "imgs.pt")
    assert got.x.layout == torch.strided and torch.equal(got.x, x)


# ---- Ctrl-C ------------------------------------------------------------------------------------
def test_ctrl_c_in_an_audit_is_one_line_and_exit_130(monkeypatch, tmp_path, capsys):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(audit_cli, "_run", interrupted)
    assert audit_cli.main(["--model", "nets.models:MLP", "--group", "r4", "--out", str(tmp_path / "a")]) == 130
    err = capsys.readouterr().err.strip()
    assert err.startswith("interrupted:") and err.count("\n") == 0 and "run the same command again" in err


@pytest.mark.parametrize("saved", [0, 1, 3])
def test_ctrl_c_in_own_data_is_one_line_says_what_the_checkpoints_hold_and_exit_130(monkeypatch, tmp_path, capsys,
                                                                                   saved):
    out = tmp_path / "od"

    def interrupted(*args, **kwargs):
        (out / "checkpoints").mkdir(parents=True)
        for i in range(saved):
            (out / "checkpoints" / f"run{i}.pt").write_bytes(b"x")
        raise KeyboardInterrupt
    monkeypatch.setattr(own_data_cli, "run_own_data", interrupted)
    rc = own_data_cli.main(["--model", "m:f", "--data", "d.pt", "--groups", "r4", "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert rc == 130 and err.count("\n") == 0 and f"{out}/checkpoints/" in err
    if saved:  # what it says is there, is there
        assert f"{saved} checkpoint file{'s' if saved > 1 else ''} in" in err and "resume" in err
    else:  # nothing saved yet: it does not claim a checkpoint, and says the rerun starts over
        assert "no training run had saved a checkpoint yet" in err and "start over" in err


def _own_data_file(path: Path) -> Path:
    g = torch.Generator().manual_seed(0)
    data = {f"{a}_{s}": (torch.randn(8, 1, 6, 6, generator=g) if a == "x" else torch.arange(8) % 3)
            for s in ("train", "val", "test") for a in "xy"}
    torch.save(data, path)
    return path


def test_own_data_withdraws_its_source_json_when_training_refuses_the_model(user_models, tmp_path, run_cli):
    user_models("split_models", "import torch.nn as nn\n"
                                "class Split(nn.Module):\n"
                                "    def __init__(self):\n"
                                "        super().__init__(); self.a = nn.Linear(36, 5); self.b = nn.Linear(5, 3)\n"
                                "    def first_layer(self, x): return self.a(x.flatten(1))\n"
                                "    def after_first_layer(self, h): return self.b(h) * 2\n"
                                "    def forward(self, x): return self.b(self.first_layer(x))\n"
                                "def split(): return Split()\n")
    data = _own_data_file(tmp_path / "data.pt")
    kept, fresh = tmp_path / "kept", tmp_path / "fresh" / "od"
    kept.mkdir()
    for out in (kept, fresh):
        rc, _, err = run_cli("own-data", "--model", "split_models:split", "--data", str(data), "--groups", "r4",
                             "--out", str(out), "--epochs", "1", "--seeds", "0", "--no-progress")
        assert rc == 2 and "after_first_layer(first_layer(x)) is not its forward(x)" in err
    assert kept.is_dir() and not any(kept.iterdir())  # the user's folder stays, empty as it was
    assert not fresh.exists()


def test_a_missing_archived_checkpoint_is_named_with_the_command_that_restores_it(tmp_path, run_cli):
    folder = tmp_path / "results" / "paper"
    folder.mkdir(parents=True)
    (folder / "checkpoints.manifest.json").write_text(json.dumps(
        {"format": 1, "profile": "paper", "commit": "0" * 40, "directory": "results/paper/checkpoints",
         "files": [{"name": "r4-DA-seed0.pt", "sha256": "0" * 64, "size": 1, "blob": "0" * 40}]}))
    weights = folder / "checkpoints" / "r4-DA-seed0.pt"
    rc, _, err = run_cli("audit", "--model", "nets.models:MLP", "--weights", str(weights), "--group", "r4",
                         "--n", "4", "--channels", "0", "--out", str(tmp_path / "a"))
    assert rc == 2
    assert f"checkpoints restore --profile paper --results {tmp_path / 'results'}" in err
    assert archived_hint(folder / "checkpoints" / "other.pt") is None


def test_own_data_refuses_a_model_that_cannot_train_before_writing_anything(user_models, tmp_path, run_cli):
    user_models("frozen_models", "import torch.nn as nn\n"
                                 "class Frozen(nn.Module):\n"
                                 "    def __init__(self):\n"
                                 "        super().__init__(); self.f = nn.Linear(36, 3)\n"
                                 "    def forward(self, x): return self.f(x.flatten(1)).detach()\n"
                                 "def frozen(): return Frozen()\n")
    _own_data_file(tmp_path / "data.pt")
    out = tmp_path / "od"
    rc, _, err = run_cli("own-data", "--model", "frozen_models:frozen", "--data", str(tmp_path / "data.pt"),
                         "--groups", "r4", "--out", str(out), "--epochs", "1", "--no-progress")
    assert rc == 2 and "carry no gradient" in err
    assert not out.exists()


# ---- benchmarks/ and scripts/ ------------------------------------------------------------------
@pytest.mark.parametrize("kind, text, words", [
    (positive_int, "0", "must be at least 1"),
    (positive_int, "x", "is not an integer"),
    (nonnegative_int, "-1", "must be >= 0"),
    (group_arg, "zz", "unknown group 'zz'"),
])
def test_tool_options_are_refused_by_argparse_in_one_line(kind, text, words):
    with pytest.raises(argparse.ArgumentTypeError, match=words):
        kind(text)
    assert group_arg("R4") == "r4" and positive_int("3") == 3


@pytest.mark.parametrize("content, words", [
    ("", "no stages in it"),
    ("garbage\n", "no stages in it"),
    ("stage\tsecs\tstatus\nstartup\t1\tok\n", "no column seconds"),
    ("stage\tseconds\tstatus\nstartup\tabc\tok\n", "line 2: seconds 'abc' is not a time >= 0"),
    ("stage\tseconds\tstatus\nstartup\t-1\tok\n", "line 2: seconds '-1' is not a time >= 0"),
])
def test_a_stages_file_that_is_not_one_is_refused_not_extrapolated_to_zero(content, words, tmp_path):
    path = tmp_path / "stages.tsv"
    path.write_text(content)
    with pytest.raises(ValueError, match=words):
        read_stages(path)


def test_a_good_stages_file_reads_as_its_rows(tmp_path):
    path = tmp_path / "stages.tsv"
    path.write_text("stage\tseconds\tstatus\nstartup\t3.5\tok\ntable1_r4\t0\tskipped_budget\n")
    assert [r["stage"] for r in read_stages(path)] == ["startup", "table1_r4"]


@pytest.mark.parametrize("option", ["--jobs", "--threads", "--timeout"])
def test_the_notebook_runner_refuses_counts_below_one(option, capsys):
    with pytest.raises(SystemExit) as e:
        notebooks_main([option, "0", "--only", "table1"])
    assert e.value.code == 2 and "must be at least 1, got 0" in capsys.readouterr().err


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def _server(reply: bytes):
    """A local TCP server that answers every connection with ``reply`` and closes it; its HOST:PORT."""
    server = socket.create_server(("127.0.0.1", 0))

    def serve():
        while True:
            try:
                conn, _ = server.accept()
            except OSError:  # closed
                return
            with conn:
                conn.recv(64)
                conn.sendall(reply)

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield f"127.0.0.1:{server.getsockname()[1]}"
    finally:
        server.close()


def test_a_port_where_a_web_server_answers_is_one_line_naming_the_gcs_port_not_minutes_of_retries(monkeypatch):
    """The dashboard's port (8265) given for the cluster's: Ray would retry for about 14 minutes."""
    monkeypatch.delenv("RAY_USE_TLS", raising=False)
    with _server(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n") as address:
        with pytest.raises(ClusterError, match=f"something answers at {address}, but not a Ray cluster's GCS.*6379"):
            check_address(address)


def test_a_port_where_a_grpc_server_answers_passes_the_address_check(monkeypatch):
    monkeypatch.delenv("RAY_USE_TLS", raising=False)
    with _server(bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])) as address:  # an HTTP/2 SETTINGS frame, as gRPC replies
        check_address(address)


def test_an_ipv6_address_in_brackets_as_ray_writes_it_is_checked_not_refused(monkeypatch):
    monkeypatch.delenv("RAY_USE_TLS", raising=False)
    try:  # Python built with IPv6 is not a machine with ::1 up
        server = socket.create_server(("::1", 0), family=socket.AF_INET6) if socket.has_ipv6 else None
    except OSError as e:
        server = None
        pytest.skip(f"no IPv6 loopback on this machine ({e})")
    if server is None:
        pytest.skip("no IPv6 on this machine")
    with server:  # listens, never replies: answers a TCP connect, fails the gRPC probe (after its 5 s)
        address = f"[::1]:{server.getsockname()[1]}"
        with pytest.raises(ClusterError, match=r"something answers at \[::1\]"):
            check_address(address)


def test_a_server_that_trickles_bytes_is_refused_within_the_probes_deadline():
    """The probe's timeout is for the whole reply, not per byte."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        def trickle():
            conn, _ = server.accept()
            with conn, contextlib.suppress(OSError):  # the probe hangs up after its deadline
                for _ in range(8):
                    conn.sendall(b"x")
                    time.sleep(0.5)
        threading.Thread(target=trickle, daemon=True).start()
        t0 = time.monotonic()
        assert not speaks_grpc(f"127.0.0.1:{server.getsockname()[1]}", timeout=1.0)
        assert time.monotonic() - t0 < 2.5


def test_a_bad_address_from_ray_address_says_where_it_came_from(monkeypatch):
    monkeypatch.setenv("RAY_ADDRESS", f"127.0.0.1:{_closed_port()}")
    with pytest.raises(ClusterError, match=r"\(from RAY_ADDRESS\)"):
        check_address(None)


def test_a_dead_cluster_that_ray_records_as_started_here_is_one_line_not_minutes_of_retries(tmp_path, monkeypatch):
    pytest.importorskip("ray")
    monkeypatch.setenv("RAY_TMPDIR", str(tmp_path))
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    (tmp_path / "ray").mkdir()
    dead = f"127.0.0.1:{_closed_port()}"
    (tmp_path / "ray" / "ray_current_cluster").write_text(dead)  # as `ray start` left it, killed without `ray stop`
    assert recorded_cluster() == dead
    for address in (None, "auto"):
        with pytest.raises(ClusterError, match=f"Ray records a cluster started on this machine at {dead}.*ray stop"):
            check_address(address)
    check_address("local")  # a new local cluster: Ray's record is not used
