"""``python -m nets``: a map of the tool, one-line errors with exit code 2 before anything is
loaded, and no run that replaces results computed with other settings (issue 16, parts 2 and 4)."""

from __future__ import annotations

import warnings
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

from nets.__main__ import main
from nets.commands import SUBCOMMANDS, build_parser
from nets.experiments.common import SettingsMismatch, check_overwrite
from nets.experiments.profiles import get_profile
from nets.results_io import EXPERIMENTS, committed_files

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def quick_copy(tmp_path) -> Path:
    """A copy of the committed quick results (JSON and REPORT.md, no figures or checkpoints)."""
    dst = tmp_path / "results" / "quick"
    dst.mkdir(parents=True)
    for p in (ROOT / "results" / "quick").glob("*"):
        if p.is_file():
            shutil.copy2(p, dst / p.name)
    return tmp_path / "results"


# ---- the map ---------------------------------------------------------------------------
def test_help_lists_every_subcommand_with_one_line_and_an_example(run_cli):
    rc, out, _ = run_cli("--help")
    assert rc == 0
    for name, sub in SUBCOMMANDS.items():
        assert f"  {name:<12} {sub.summary}" in out
    assert "examples:" in out and "python -m nets reproduce" in out


@pytest.mark.parametrize("name", list(SUBCOMMANDS))
def test_every_subcommand_help_says_what_it_writes_and_where(run_cli, name):
    rc, out, _ = run_cli(name, "--help")
    assert rc == 0 and "writes: " in out and "<results>/<profile>/" in out and "example:" in out


def test_options_before_the_subcommand_still_work():
    a = build_parser().parse_args(["--profile", "smoke", "--no-progress", "table1", "--seeds", "1"])
    assert (a.command, a.profile, a.seeds, a.no_progress) == ("table1", "smoke", [1], True)


# ---- bad input: one line, exit 2, nothing loaded --------------------------------------------
BAD = {
    "repeated seeds": (["table1", "--seeds", "0", "0"], "more than once"),
    "negative seed": (["table1", "--seeds", "-1"], "non-negative"),
    "unknown group": (["table1", "--groups", "r5"], "['r4', 't3']"),
    "unknown profile": (["table1", "--profile", "huge"], "'paper', 'quick', 'smoke'"),
    "unknown subcommand": (["table2"], "table1"),
    "bad threads": (["table1", "--threads", "0"], "--threads"),
    "threads by the ten thousand": (["table1", "--threads", "99999"], "is more than 4 per logical CPU of this machine"),
    "seeds given to report": (["report", "--profile", "smoke", "--seeds", "5"], "--seeds does not apply to report"),
    "groups given to report": (["report", "--profile", "smoke", "--groups", "t3"], "--groups does not apply to report"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_one_line_and_exit_2(run_cli, no_data, tmp_path, case):
    argv, says = BAD[case]
    rc, _, err = run_cli(*argv, "--results", str(tmp_path))
    assert rc == 2 and says in err and len(err.strip().splitlines()) == 1, err
    assert not any(tmp_path.iterdir())


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_device_cuda_without_cuda_is_refused_before_any_data_is_loaded(run_cli, no_data, tmp_path):
    rc, _, err = run_cli("table1", "--profile", "smoke", "--device", "cuda", "--results", str(tmp_path))
    assert rc == 2 and "CUDA is not available" in err and len(err.strip().splitlines()) == 1


@pytest.mark.skipif(torch.backends.mps.is_available(), reason="this machine has MPS")
def test_device_mps_without_mps_is_refused_before_any_data_is_loaded(run_cli, no_data, tmp_path):
    rc, _, err = run_cli("table1", "--profile", "smoke", "--device", "mps", "--results", str(tmp_path))
    assert rc == 2 and "MPS (Apple's GPU) is not available" in err and len(err.strip().splitlines()) == 1


# ---- nothing overwritten by accident ----------------------------------------------------
@pytest.mark.parametrize("argv", [[e] for e in EXPERIMENTS] + [["reproduce"], ["reproduce", "--recompute"]],
                         ids=lambda a: " ".join(a))
def test_a_run_with_other_seeds_refuses_and_changes_nothing(run_cli, no_data, quick_copy, argv, tree_digest):
    before = tree_digest(quick_copy)
    rc, _, err = run_cli(*argv, "--profile", "quick", "--seeds", "0", "1", "--results", str(quick_copy))
    assert rc == 2 and len(err.strip().splitlines()) == 1
    assert str(quick_copy / "quick") in err and "seeds [0] there, [0,1] here" in err
    assert "--results ANOTHER_DIR" in err and "--overwrite" in err
    assert tree_digest(quick_copy) == before


def test_a_run_with_other_sizes_refuses(quick_copy):
    from dataclasses import replace

    with pytest.raises(SettingsMismatch, match="epochs 25 there, 3 here"):
        check_overwrite(replace(get_profile("quick"), epochs=3), quick_copy)


def test_a_groups_subset_of_the_same_sweep_may_still_merge(quick_copy):
    check_overwrite(get_profile("quick").with_groups(["r4"]), quick_copy)  # no SettingsMismatch


def _commit(folder: Path, *files: Path) -> None:
    """Make ``folder`` a git repository with ``files`` committed, as a clone holds its reference results."""
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(folder)]
    subprocess.run([*git[:5], "init", "-q", str(folder)], check=True)
    subprocess.run([*git, "add", *map(str, files)], check=True)
    subprocess.run([*git, "commit", "-qm", "reference results"], check=True)


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_a_run_that_would_rewrite_committed_results_refuses_and_changes_nothing(run_cli, no_data, quick_copy,
                                                                                tree_digest):
    _commit(quick_copy, quick_copy / "quick" / "table1.json")
    before = tree_digest(quick_copy / "quick")
    rc, _, err = run_cli("table1", "--profile", "quick", "--results", str(quick_copy))
    assert rc == 2 and len(err.strip().splitlines()) == 1
    assert "committed to the repository" in err and "table1.json" in err and "--results results/local" in err
    assert tree_digest(quick_copy / "quick") == before


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_committed_results_refuse_only_the_commands_that_would_rewrite_them(quick_copy):
    _commit(quick_copy, quick_copy / "quick" / "table1.json")
    quick = get_profile("quick")
    check_overwrite(quick, quick_copy, writes=("scale",))  # adds scale.json beside them: no refusal
    with pytest.raises(SettingsMismatch, match="committed to the repository"):
        check_overwrite(quick, quick_copy, writes=("table1",))
    check_overwrite(quick, quick_copy, writes=("table1",), overwrite=True)


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_a_repository_git_cannot_read_refuses_the_run_naming_the_problem_instead_of_guessing(quick_copy):
    _commit(quick_copy, quick_copy / "quick" / "table1.json")
    (quick_copy / ".git" / "HEAD").write_text("garbage\n")  # as broken for git as a dubious-ownership refusal
    quick = get_profile("quick")
    with pytest.raises(SettingsMismatch, match="cannot tell whether .* committed") as e:
        check_overwrite(quick, quick_copy, writes=("table1",))
    assert len(str(e.value).splitlines()) == 1 and "--overwrite" in str(e.value)
    check_overwrite(quick, quick_copy, writes=("table1",), overwrite=True)


def test_a_folder_outside_any_repository_has_nothing_committed(tmp_path):
    (tmp_path / "table1.json").write_text("{}")
    assert committed_files([tmp_path / "table1.json"]) == []


def test_overwrite_lets_the_run_replace_them(quick_copy):
    check_overwrite(get_profile("quick").with_seeds([0, 1]), quick_copy, overwrite=True)


def test_overwrite_by_one_experiment_names_the_files_of_other_settings_it_leaves(quick_copy, capsys):
    check_overwrite(get_profile("quick").with_seeds([0, 1]), quick_copy, overwrite=True, writes=("table1",))
    err = capsys.readouterr().err
    assert "other settings (table1.json) are replaced as this run rewrites them; drift.json, " in err
    assert "stay as they are, so the folder will hold results of two settings (REPORT.md names them)" in err


def test_the_issue_command_no_longer_touches_the_committed_paper_results(run_cli, no_data, tmp_path, tree_digest):
    paper = tmp_path / "results" / "paper"
    paper.mkdir(parents=True)
    shutil.copy2(ROOT / "results" / "paper" / "table1.json", paper / "table1.json")
    before = tree_digest(tmp_path)
    rc, _, err = run_cli("table1", "--profile", "paper", "--groups", "r4", "--seeds", "0",
                         "--results", str(tmp_path / "results"))
    assert rc == 2 and "seeds [0,1,2,3] there, [0] here" in err
    assert tree_digest(tmp_path) == before


def test_main_sh_writes_to_a_git_ignored_folder_of_its_own():
    import subprocess

    text = (ROOT / "scripts" / "main.sh").read_text()
    assert '--results "$RESULTS"' in text and 'RESULTS="${RESULTS:-results/local}"' in text
    out = subprocess.run(["git", "check-ignore", "-q", "results/local/quick/table1.json"], cwd=ROOT)
    assert out.returncode == 0  # ignored


# ---- report ---------------------------------------------------------------------------------
def test_report_on_an_empty_folder_is_one_line(run_cli, tmp_path):
    rc, _, err = run_cli("report", "--profile", "smoke", "--results", str(tmp_path))
    assert rc == 1 and "no results in" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("command", ["table1", "report"])
def test_results_that_name_a_file_are_one_line_exit_1_before_any_data_is_loaded(run_cli, no_data, tmp_path, command):
    (tmp_path / "afile").write_text("not a folder")
    rc, _, err = run_cli(command, "--profile", "smoke", "--results", str(tmp_path / "afile"))
    assert rc == 1 and len(err.strip().splitlines()) == 1, err
    assert f"{tmp_path / 'afile'} is a file, not a folder" in err
    assert (tmp_path / "afile").read_text() == "not a folder"


@pytest.mark.parametrize("sub", ["figures", "checkpoints"])
def test_a_file_where_the_figures_or_checkpoints_go_is_one_line_before_any_data_is_loaded(run_cli, no_data, tmp_path,
                                                                                           sub):
    (tmp_path / "smoke").mkdir()
    (tmp_path / "smoke" / sub).write_text("not a folder")  # it was met after Table 1 trained
    rc, _, err = run_cli("table1", "--profile", "smoke", "--results", str(tmp_path))
    assert rc == 1 and len(err.strip().splitlines()) == 1, err
    assert f"{tmp_path / 'smoke' / sub} is a file, not a folder" in err


def test_intervals_without_table1_is_one_line_naming_the_command_to_run_first(run_cli, tmp_path):
    rc, _, err = run_cli("intervals", "--profile", "smoke", "--results", str(tmp_path))
    assert rc == 1 and len(err.strip().splitlines()) == 1, err
    assert "table1.json" in err and "python -m nets table1 --profile smoke" in err


def test_report_names_a_corrupt_results_file_and_exits_1(run_cli, quick_copy, tree_digest):
    (quick_copy / "quick" / "drift.json").write_text('{"meta": {"experiment": "dri')
    before = tree_digest(quick_copy)
    rc, _, err = run_cli("report", "--profile", "quick", "--results", str(quick_copy))
    assert rc == 1 and "drift.json" in err and len(err.strip().splitlines()) == 1
    assert tree_digest(quick_copy) == before


@pytest.mark.parametrize("errno_name", ["ENOSPC", "EROFS"])
def test_a_full_or_read_only_folder_is_one_line_naming_it_and_nothing_half_written(run_cli, monkeypatch,
                                                                                   quick_copy, errno_name, tree_digest):
    # Tests run as root, where chmod cannot make a folder read-only; os.replace is made to
    # fail as it does on a full disk or read-only filesystem instead.
    import errno
    import os

    import nets.results_io.atomic as atomic

    code = getattr(errno, errno_name)

    def fail(*a, **k):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(atomic.os, "replace", fail)
    before = tree_digest(quick_copy / "quick")
    rc, _, err = run_cli("report", "--profile", "quick", "--results", str(quick_copy))
    assert rc == 1 and str(quick_copy / "quick") in err and len(err.strip().splitlines()) == 1
    assert tree_digest(quick_copy / "quick") == before  # no temporary file left, nothing replaced


@pytest.mark.skipif(not hasattr(__import__("os"), "geteuid") or __import__("os").geteuid() == 0,
                    reason="root writes into read-only folders; the monkeypatched tests above cover it")
def test_a_read_only_results_folder_is_one_line_naming_it(run_cli, quick_copy, tree_digest):
    folder = quick_copy / "quick"
    before = tree_digest(folder)
    folder.chmod(0o555)
    try:
        rc, _, err = run_cli("report", "--profile", "quick", "--results", str(quick_copy))
    finally:
        folder.chmod(0o755)
    assert rc == 1 and str(folder) in err and len(err.strip().splitlines()) == 1
    assert tree_digest(folder) == before


def test_a_training_run_into_a_full_disk_stops_with_one_line_and_leaves_no_temporary_file(run_cli, monkeypatch,
                                                                                         tmp_path):
    import errno
    import os

    import nets.results_io.atomic as atomic

    def full(*a, **k):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(atomic.os, "replace", full)  # the first checkpoint cannot be written
    rc, _, err = run_cli("table1", "--profile", "smoke", "--groups", "r4", "--no-progress",
                         "--results", str(tmp_path))
    ckpts = tmp_path / "smoke" / "checkpoints"
    assert rc == 1 and "the disk is full" in err and str(ckpts) in err
    assert len([ln for ln in err.splitlines() if "error:" in ln]) == 1
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]  # nothing half-written


def test_a_subcommand_module_listed_in_extensions_is_added_and_called(run_cli, monkeypatch):
    import types

    import nets.commands as cli

    seen = {}
    ext = types.ModuleType("fake_audit_cli")

    def add_parser(subparsers):
        p = subparsers.add_parser("audit", description="audit a model: LI, DI, SI, sigma_max")
        p.add_argument("--n", type=int)
        return p

    ext.add_parser = add_parser
    ext.main = lambda argv: seen.setdefault("argv", argv) and 0
    monkeypatch.setitem(__import__("sys").modules, "fake_audit_cli", ext)
    monkeypatch.setattr(cli, "EXTENSIONS", ("fake_audit_cli", "not_a_module_yet"))
    rc, out, _ = run_cli("--help")
    assert rc == 0 and "  audit        audit a model: LI, DI, SI, sigma_max" in out
    assert main(["audit", "--n", "5"]) == 0 and seen["argv"] == ["--n", "5"]


def test_ctrl_c_inside_matplotlib_is_one_line_exit_130_and_nothing_half_written(run_cli, monkeypatch, quick_copy,
                                                                                 tree_digest):
    import nets.plot_style

    def interrupted(fig, path, **kw):
        raise KeyboardInterrupt  # as if Ctrl-C arrived while matplotlib renders

    monkeypatch.setattr(nets.plot_style, "save_figure_file", interrupted)
    before = tree_digest(quick_copy)
    rc, _, err = run_cli("report", "--profile", "quick", "--results", str(quick_copy))
    assert rc == 130 and err.startswith("interrupted:") and len(err.strip().splitlines()) == 1
    assert "Traceback" not in err
    assert tree_digest(quick_copy) == before


def test_a_checkpoint_of_another_config_is_named_in_one_line_exit_1_and_kept(run_cli, tmp_path):
    from nets.train import TrainConfig, checkpoint_path

    smoke = get_profile("smoke")
    mine = TrainConfig(method="DA", group="r4", epochs=smoke.epochs)
    other = TrainConfig(method="DA", group="r4", epochs=smoke.epochs, lr=1e-3)
    path = checkpoint_path(tmp_path / "smoke" / "checkpoints", mine, 0)
    path.parent.mkdir(parents=True)
    torch.save({"format": 1, "config": other.to_dict(), "seed": 0, "finished": True}, path)
    before = path.read_bytes()
    rc, _, err = run_cli("table1", "--profile", "smoke", "--groups", "r4", "--seeds", "0", "--no-progress",
                         "--results", str(tmp_path))
    assert rc == 1 and len(err.strip().splitlines()) == 1
    assert str(path) in err and "move it away" in err
    assert path.read_bytes() == before  # the user's file is kept as it was


def test_a_warning_given_again_with_the_same_text_is_printed_once(monkeypatch, capsys):
    """torch warns again at every measure (a vmap rule it lacks): the command says each text once."""
    import nets.__main__ as cli

    def run(argv, command):
        command[:] = ["audit"]
        warnings.warn("slow path", UserWarning)  # from two lines, as two measures would: Python says both
        warnings.warn("slow path", UserWarning)
        warnings.warn("another", UserWarning)
        return 0

    monkeypatch.setattr(cli, "_main", run)
    assert cli.main([]) == 0
    assert capsys.readouterr().err.splitlines() == ["python -m nets audit: warning: slow path",
                                                    "python -m nets audit: warning: another"]
