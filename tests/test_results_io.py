"""nets.results_io: the one atomic writer, JSON I/O, damaged files moved aside, and its place at
the bottom of the import graph."""

from __future__ import annotations

import errno
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from nets import results_io as rio
from nets.results_io import folder_dirty

ROOT = Path(__file__).resolve().parents[1]


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


@pytest.mark.parametrize("kind", ["text", "json", "bytes", "torch", "figure"])
def test_every_atomic_writer_honours_the_umask(tmp_path, umask_022, kind):
    from matplotlib.figure import Figure

    path = tmp_path / f"out.{ 'png' if kind == 'figure' else kind}"
    {"text": lambda: rio.write_text(path, "x"),
     "json": lambda: rio.write_json(path, {"a": 1}),
     "bytes": lambda: rio.write_bytes(path, b"x"),
     "torch": lambda: rio.atomic_torch_save({"a": torch.ones(2)}, path),
     "figure": lambda: rio.save_figure_file(Figure(), path)}[kind]()
    assert _mode(path) == 0o644


def test_the_data_cache_install_honours_the_umask(tmp_path, umask_022):
    import hashlib

    from nets.fetch_step import FileSpec, install_verified

    src = tmp_path / "src.bin"
    src.write_bytes(b"payload")
    spec = FileSpec("x.bin", hashlib.sha256(b"payload").hexdigest())
    install_verified(src, tmp_path / "cache" / "x.bin", spec)
    assert _mode(tmp_path / "cache" / "x.bin") == 0o644


def test_a_temporary_file_a_killed_write_left_is_removed_by_a_later_write_of_that_file(tmp_path):
    import time

    old, young = tmp_path / ".r.json.abc12345.tmp", tmp_path / ".r.json.def45678.tmp"
    other = tmp_path / ".r.json.bak.abc12345.tmp"  # r.json.bak's, not r.json's
    for t in (old, young, other):
        t.write_bytes(b"half")
    hour_ago = time.time() - rio.atomic.STALE_TEMPORARY_S - 1
    for t in (old, other):
        os.utime(t, (hour_ago, hour_ago))
    rio.write_json(tmp_path / "r.json", {"new": 2})
    assert not old.exists() and young.exists()  # one written within the hour may be another process's at work
    assert other.exists()


def test_a_write_syncs_the_file_and_then_its_folder_so_the_rename_survives_a_power_cut(tmp_path, monkeypatch):
    import stat

    synced, fsync = [], os.fsync

    def record(fd):
        synced.append(stat.S_ISDIR(os.fstat(fd).st_mode))
        fsync(fd)

    monkeypatch.setattr(rio.atomic.os, "fsync", record)
    rio.write_json(tmp_path / "r.json", {"new": 2})
    assert synced == [False, True]  # the temporary file's bytes, then the folder that holds the rename


def test_a_write_past_the_file_size_limit_says_so_once(tmp_path, monkeypatch):
    def fail(*a, **k):
        raise OSError(errno.EFBIG, os.strerror(errno.EFBIG))

    monkeypatch.setattr(rio.atomic.os, "replace", fail)
    with pytest.raises(rio.ResultsWriteError, match=r"r.json in .*: File too large; r.json was not changed$"):
        rio.write_json(tmp_path / "r.json", {"new": 2})  # it read "File too large (File too large)"


@pytest.mark.parametrize("error", [errno.ENOSPC, errno.EACCES])
def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch, error):
    # We run as root, where chmod cannot make a folder read-only: the failure is simulated
    # by an os.replace that raises what a full disk / read-only folder raises.
    path = rio.write_json(tmp_path / "r.json", {"old": 1})

    def fail(*a, **k):
        raise OSError(error, os.strerror(error))

    monkeypatch.setattr(rio.atomic.os, "replace", fail)
    with pytest.raises(rio.ResultsWriteError) as e:
        rio.write_json(path, {"new": 2})
    assert str(tmp_path) in str(e.value) and "\n" not in str(e.value)
    assert rio.read_json(path) == {"old": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]


@pytest.mark.parametrize("where", ["the folder itself", "a folder above it"])
def test_a_file_where_the_results_folder_should_be_is_one_line_before_and_at_the_write(tmp_path, where):
    (tmp_path / "taken").write_text("a file")
    folder = tmp_path / "taken" if where == "the folder itself" else tmp_path / "taken" / "sub"
    with pytest.raises(rio.ResultsWriteError, match="is a file, not a folder") as before:
        rio.check_folder(folder)
    with pytest.raises(rio.ResultsWriteError, match="cannot create the folder .*a file stands where a folder") as at_write:
        rio.write_json(folder / "r.json", {"new": 2})
    assert all(str(folder) in str(e.value) and "\n" not in str(e.value) for e in (before, at_write))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]


def test_check_folder_accepts_a_missing_folder_under_a_writable_one_and_creates_nothing(tmp_path):
    assert rio.check_folder(tmp_path / "a" / "b") == tmp_path / "a" / "b"
    assert list(tmp_path.iterdir()) == []


def test_a_full_disk_inside_torch_save_is_the_one_line_full_disk_error_and_leaves_no_file(tmp_path, monkeypatch):
    # torch.save's writer reports ENOSPC as a RuntimeError ("unexpected pos ...") raised while the OSError is handled
    def full(obj, f):
        try:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        except OSError:
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 2240 vs 2134")

    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(rio.ResultsWriteError, match="cannot write c.pt in .*the disk is full") as e:
        rio.atomic_torch_save({"w": torch.ones(2)}, tmp_path / "c.pt")
    assert "\n" not in str(e.value) and list(tmp_path.iterdir()) == []


def test_an_interrupted_write_keeps_the_old_file(tmp_path):
    path = rio.write_text(tmp_path / "r.txt", "old")

    def interrupt(f):
        f.write("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        rio.atomic_write(path, interrupt)
    assert path.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["r.txt"]


def test_ctrl_c_inside_torch_save_stays_a_keyboard_interrupt_and_keeps_the_old_file(tmp_path, monkeypatch):
    # torch.save's real zip writer, interrupted mid-record, fails again in its cleanup ("unexpected
    # pos ..."); that RuntimeError must not hide the Ctrl-C (a run would exit 1 with a traceback, not 130)
    path = rio.atomic_torch_save({"w": torch.zeros(4)}, tmp_path / "c.pt")
    real_fdopen = os.fdopen

    class InterruptedFile:
        def __init__(self, f):
            self.f, self.written = f, 0

        def write(self, data):
            if self.written > 200:
                raise KeyboardInterrupt
            self.written += len(data)
            return self.f.write(data)

        def __getattr__(self, name):
            return getattr(self.f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

    monkeypatch.setattr(rio.atomic.os, "fdopen", lambda *a, **k: InterruptedFile(real_fdopen(*a, **k)))
    with pytest.raises(KeyboardInterrupt) as e:
        rio.atomic_torch_save({"w": torch.ones(4096)}, path)
    assert e.value.__suppress_context__ or e.value.__context__ is None
    monkeypatch.undo()
    assert torch.equal(torch.load(path)["w"], torch.zeros(4))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.pt"]


def test_an_error_raised_while_ctrl_c_is_handled_is_raised_as_the_ctrl_c(tmp_path):
    def cleanup_fails(f):
        try:
            raise KeyboardInterrupt
        finally:
            raise RuntimeError("cleanup failed")

    with pytest.raises(KeyboardInterrupt):
        rio.atomic_write(tmp_path / "r.txt", cleanup_fails)
    assert list(tmp_path.iterdir()) == []


def test_a_write_failing_while_a_caller_handles_ctrl_c_is_its_own_error_not_that_ctrl_c(tmp_path):
    # a last save in an `except KeyboardInterrupt:` that hits a full disk: the one-line disk error
    def full(f):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    caught = None
    try:
        raise KeyboardInterrupt
    except KeyboardInterrupt:
        try:
            rio.atomic_write(tmp_path / "r.txt", full)
        except rio.ResultsWriteError as e:
            caught = e
        except KeyboardInterrupt:  # not raised on: it would end the test session
            pytest.fail("the disk error came out as the KeyboardInterrupt the caller was handling")
    assert caught is not None and "the disk is full" in str(caught)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("content", [b"", b"{\"meta\": {", b"\x00\xff garbage"])
def test_read_json_names_a_damaged_file(tmp_path, content):
    path = tmp_path / "table1.json"
    path.write_bytes(content)
    with pytest.raises(rio.ResultsFileError, match="table1.json"):
        rio.read_json(path)


def test_read_results_moves_a_damaged_file_aside(tmp_path, capsys):
    path = tmp_path / "table1.json"
    path.write_text("{ truncated")
    assert rio.read_results(path) is None
    assert not path.exists() and (tmp_path / "table1.json.corrupt").read_text() == "{ truncated"
    assert "table1.json" in capsys.readouterr().err


def test_a_second_damaged_file_is_moved_beside_the_first_not_onto_it(tmp_path):
    path = tmp_path / "table1.json"
    for text in ("{", "[", "]"):
        path.write_text(text)
        assert rio.read_results(path) is None
    assert [(tmp_path / f"table1.json.corrupt{k}").read_text() for k in ("", ".1", ".2")] == ["{", "[", "]"]


@pytest.mark.parametrize("damage", ["empty", "truncated", "garbage"])
def test_load_torch_file_moves_a_damaged_checkpoint_aside(tmp_path, capsys, damage):
    path = tmp_path / "r4-DA-seed0.pt"
    rio.atomic_torch_save({"w": torch.arange(1000.0)}, path)
    data = path.read_bytes()
    path.write_bytes({"empty": b"", "truncated": data[: len(data) // 2], "garbage": b"not a checkpoint"}[damage])
    assert rio.load_torch_file(path, "checkpoint") is None
    assert (tmp_path / "r4-DA-seed0.pt.corrupt").exists() and not path.exists()
    err = capsys.readouterr().err.strip()
    assert str(path) in err and "from scratch" in err and len(err.splitlines()) == 1


def test_a_checkpoint_whose_tensor_bytes_changed_is_damaged_not_loaded_with_other_numbers(tmp_path):
    """torch.load does not check a zip record's CRC-32: a flipped byte inside a tensor loaded as another weight."""
    path = rio.atomic_torch_save({"w": torch.arange(1000.0)}, tmp_path / "r4-DA-seed0.pt")
    data = bytearray(path.read_bytes())
    at = bytes(data).index(torch.arange(1000.0).numpy().tobytes()[400:416]) + 8  # inside the tensor's record
    data[at] ^= 0x40
    path.write_bytes(bytes(data))
    with pytest.raises(rio.ResultsFileError, match=r"r4-DA-seed0.pt is damaged \(its record .*data/0 fails its "
                                                   r"CRC-32 check"):
        rio.read_torch_file(path)


def test_load_torch_file_reads_a_good_file(tmp_path):
    path = rio.atomic_torch_save({"w": torch.arange(3.0)}, tmp_path / "ok.pt")
    assert torch.equal(rio.load_torch_file(path)["w"], torch.arange(3.0))


def test_importing_the_library_runs_no_subprocess():
    modules = ["nets", "nets.results_io", "nets.experiments", "nets.experiments.common", "nets.report",
               "nets.plots", "nets.train", "nets.data", "nets.fetch_step", "nets.metrics", "nets.commands", "nets.__main__"]
    code = ("import subprocess\n"
            "def boom(*a, **k): raise AssertionError('subprocess at import: %r' % (a,))\n"
            "subprocess.Popen.__init__ = boom\n"
            "import os; os.system = boom\n"
            + "".join(f"import {m}\n" for m in modules))
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr


def test_without_sitting_keeps_the_numbers_and_drops_provenance_and_wall_times_at_any_depth():
    result = {"meta": {"wall_time_s": 3.0}, "group_provenance": {"r4": {}},
              "groups": {"r4": {"acc": [0.5, 0.25], "train_wall_time_s": 9.0,
                                "runs": [{"seed": 0, "wall_time_s": 1.0, "meta": {}}]}}}
    assert rio.without_sitting(result) == {"groups": {"r4": {"acc": [0.5, 0.25], "runs": [{"seed": 0}]}}}
    assert result["meta"] == {"wall_time_s": 3.0}  # the argument is left as it was


@pytest.mark.parametrize("content, why", [("[]", "a JSON list"), ("{}", "no meta record"),
                                          ('{"meta": {}, "protocol": {}}', "no groups object")])
def test_report_on_json_that_is_not_a_results_object_is_one_line(tmp_path, run_cli, content, why):
    (tmp_path / "smoke").mkdir()
    (tmp_path / "smoke" / "table1.json").write_text(content)
    rc, _, err = run_cli("report", "--profile", "smoke", "--results", str(tmp_path))
    assert rc != 0 and err.count("\n") == 1, err
    assert f"table1.json is not a valid results file ({why})" in err
    assert (tmp_path / "smoke" / "table1.json").read_text() == content  # kept where it was


def test_a_grouped_results_file_without_groups_is_damaged_and_moved_aside_by_the_command_that_recomputes_it(tmp_path,
                                                                                                          capsys):
    from nets.results_io.files import read_results, results_damage

    path = tmp_path / "table1.json"
    path.write_text('{"meta": {}, "protocol": {}}')
    assert results_damage(path, {"meta": {}}) == "no groups object"
    assert results_damage(tmp_path / "reproduce.json", {"meta": {}}) is None  # not a file of groups
    assert rio.peek_results(path) is None and path.exists()  # a look leaves it
    assert read_results(path) is None and not path.exists()
    assert (tmp_path / "table1.json.corrupt").read_text() == '{"meta": {}, "protocol": {}}'
    assert "table1.json is damaged" in capsys.readouterr().err


def _code_repo(root: Path) -> Path:
    """A repository with ``code/m.py`` committed and ``*.log`` ignored; returns ``code``."""
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(root)]
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    (root / "code").mkdir()
    (root / "code" / "m.py").write_text("x = 1\n")
    (root / ".gitignore").write_text("*.log\n")
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "code"], check=True)
    return root / "code"


def test_a_folder_is_clean_as_committed_and_ignores_what_git_ignores(tmp_path):
    code = _code_repo(tmp_path)
    (code / "run.log").write_text("ignored\n")
    assert folder_dirty(code) is False


def test_an_edited_file_makes_the_folder_dirty(tmp_path):
    code = _code_repo(tmp_path)
    (code / "m.py").write_text("x = 2\n")
    assert folder_dirty(code) is True


def test_a_new_untracked_module_makes_the_folder_dirty(tmp_path):
    """A run may import it; ``git diff`` alone does not see it."""
    code = _code_repo(tmp_path)
    (code / "new.py").write_text("y = 1\n")
    assert folder_dirty(code) is True


def test_a_change_outside_the_folder_leaves_it_clean(tmp_path):
    code = _code_repo(tmp_path)
    (tmp_path / "notes.py").write_text("z = 1\n")
    (tmp_path / ".gitignore").write_text("*.log\n*.tmp\n")
    assert folder_dirty(code) is False


def test_a_folder_outside_any_commit_has_no_answer(tmp_path):
    assert folder_dirty(tmp_path) is None
