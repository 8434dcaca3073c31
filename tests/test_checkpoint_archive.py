"""Checkpoints kept in the repository's history: manifest, restore, and the errors that name the fix."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from nets.checkpoint_archive import ArchiveError, manifest_path, read_manifest, restore, write_manifest

REPO = Path(__file__).resolve().parents[1]
FILES = {"r4-DA-seed0.pt": b"first checkpoint bytes", "r4-DA-seed1.pt": bytes(range(256)) * 40}


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout


def _repo_with_checkpoints(tmp_path: Path) -> tuple[Path, Path]:
    """A new git repo with :data:`FILES` in ``results/paper/checkpoints`` (not yet committed)."""
    repo = tmp_path / "repo"
    ck = repo / "results" / "paper" / "checkpoints"
    ck.mkdir(parents=True)
    git(repo, "init", "-q")
    git(repo, "config", "user.email", "t@example.org")
    git(repo, "config", "user.name", "t")
    for name, data in FILES.items():
        (ck / name).write_bytes(data)
    return repo, ck


@pytest.fixture
def archived(tmp_path: Path) -> Path:
    """A git repo whose checkpoints were committed, put in a manifest, then removed from the tree."""
    repo, ck = _repo_with_checkpoints(tmp_path)
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "checkpoints")
    write_manifest(repo / "results" / "paper", "paper")
    git(repo, "rm", "-q", "-r", "--cached", "results/paper/checkpoints")
    git(repo, "add", "results/paper/checkpoints.manifest.json")
    git(repo, "commit", "-q", "-m", "checkpoints leave the tree")
    for p in ck.iterdir():
        p.unlink()
    return repo


def test_manifest_records_size_hash_and_the_commit_that_holds_each_file(archived):
    m = read_manifest(archived / "results" / "paper")
    assert m["commit"] == git(archived, "rev-parse", "HEAD~1").strip()
    assert {e["name"]: (e["size"], e["sha256"]) for e in m["files"]} == {
        n: (len(d), hashlib.sha256(d).hexdigest()) for n, d in FILES.items()}


def test_restore_brings_back_every_file_byte_identical(archived):
    report = restore(archived / "results" / "paper")
    assert sorted(report.restored) == sorted(FILES)
    ck = archived / "results" / "paper" / "checkpoints"
    assert {p.name: p.read_bytes() for p in ck.iterdir()} == FILES


def test_restore_twice_keeps_verified_files(archived):
    restore(archived / "results" / "paper")
    again = restore(archived / "results" / "paper")
    assert again.restored == [] and sorted(again.verified) == sorted(FILES)


def test_restore_replaces_a_damaged_copy(archived):
    ck = archived / "results" / "paper" / "checkpoints"
    ck.mkdir(exist_ok=True)
    (ck / "r4-DA-seed0.pt").write_bytes(b"truncated")
    report = restore(archived / "results" / "paper")
    assert "r4-DA-seed0.pt" in report.restored
    assert (ck / "r4-DA-seed0.pt").read_bytes() == FILES["r4-DA-seed0.pt"]


def test_restore_keeps_the_local_copy_it_replaces_under_a_new_name(archived):
    ck = archived / "results" / "paper" / "checkpoints"
    ck.mkdir(exist_ok=True)
    (ck / "r4-DA-seed0.pt").write_bytes(b"a run retrained here")
    report = restore(archived / "results" / "paper")
    assert report.moved_aside == ["r4-DA-seed0.pt.corrupt"]
    assert (ck / "r4-DA-seed0.pt.corrupt").read_bytes() == b"a run retrained here"
    assert "1 local copy that differed kept as r4-DA-seed0.pt.corrupt" in report.summary()


def test_a_file_another_process_restored_meanwhile_is_kept_not_moved_aside(archived, monkeypatch):
    """Two runs of other ``--groups`` started together both restore: by the time one would write
    a file, the other may have written it. That file matches the manifest and is kept (it was
    moved aside as ``.corrupt``, one per checkpoint, before)."""
    from nets import checkpoint_archive

    ck = archived / "results" / "paper" / "checkpoints"
    real_git = checkpoint_archive._git

    def git_and_the_other_process(repo, *args, binary=False):
        out = real_git(repo, *args, binary=binary)
        if args[:2] == ("cat-file", "blob"):  # the other process writes the same file first
            name = next(n for n, d in FILES.items() if d == out.stdout)
            (ck / name).write_bytes(out.stdout)
        return out

    monkeypatch.setattr(checkpoint_archive, "_git", git_and_the_other_process)
    report = restore(archived / "results" / "paper")
    assert report.moved_aside == [] and sorted(report.verified) == sorted(FILES)
    assert {p.name: p.read_bytes() for p in ck.iterdir()} == FILES


def test_restores_into_one_folder_take_turns_on_its_lock(archived):
    """A restore waits while another process holds the results folder's lock."""
    from nets.results_io import folder_lock

    folder = archived / "results" / "paper"
    code = f"from nets.checkpoint_archive import restore; restore({str(folder)!r})"
    with folder_lock(folder):
        child = subprocess.Popen([sys.executable, "-c", code], cwd=REPO)
        with pytest.raises(subprocess.TimeoutExpired):
            child.wait(timeout=5)
        assert not (folder / "checkpoints").exists() or not any((folder / "checkpoints").iterdir())
    assert child.wait(timeout=60) == 0
    assert {p.name: p.read_bytes() for p in (folder / "checkpoints").iterdir()} == FILES


def test_a_manifest_hash_that_disagrees_with_history_is_refused(archived):
    path = manifest_path(archived / "results" / "paper")
    m = json.loads(path.read_text())
    m["files"][0]["sha256"] = "0" * 64
    path.write_text(json.dumps(m))
    with pytest.raises(ArchiveError, match="does not match the manifest's SHA-256"):
        restore(archived / "results" / "paper")
    assert not (archived / "results" / "paper" / "checkpoints" / m["files"][0]["name"]).exists()


@pytest.mark.parametrize("name", ["../../../evil.pt", "sub/r4.pt", "/tmp/abs.pt", "..", ""])
def test_a_manifest_naming_anything_but_a_plain_file_name_is_refused_and_nothing_written(archived, name):
    path = manifest_path(archived / "results" / "paper")
    m = json.loads(path.read_text())
    m["files"][0]["name"] = name
    path.write_text(json.dumps(m))
    before = sorted(p for p in archived.rglob("*") if ".git" not in p.parts)
    with pytest.raises(ArchiveError, match="not a plain file name"):
        restore(archived / "results" / "paper")
    assert sorted(p for p in archived.rglob("*") if ".git" not in p.parts) == before


def test_a_manifest_naming_one_file_twice_is_refused_and_nothing_written(archived):
    """Restored in turn, the second entry's blob would land in the first's file, verified against itself."""
    path = manifest_path(archived / "results" / "paper")
    m = json.loads(path.read_text())
    assert len(m["files"]) >= 2
    m["files"][1]["name"] = m["files"][0]["name"]
    path.write_text(json.dumps(m))
    before = sorted(p for p in archived.rglob("*") if ".git" not in p.parts)
    with pytest.raises(ArchiveError, match=f"lists '{m['files'][0]['name']}' more than once"):
        restore(archived / "results" / "paper")
    assert sorted(p for p in archived.rglob("*") if ".git" not in p.parts) == before


def test_a_shallow_clone_is_told_to_unshallow(archived, tmp_path):
    shallow = tmp_path / "shallow"
    subprocess.run(["git", "clone", "-q", "--depth", "1", f"file://{archived}", str(shallow)], check=True)
    with pytest.raises(ArchiveError, match="git fetch --unshallow"):
        restore(shallow / "results" / "paper")


def test_a_folder_without_manifest_says_so(tmp_path):
    with pytest.raises(ArchiveError, match="does not exist"):
        restore(tmp_path)


def test_manifest_refuses_files_not_committed(archived):
    ck = archived / "results" / "paper" / "checkpoints"
    (ck / "r4-WT-seed0.pt").write_bytes(b"never committed")
    with pytest.raises(ArchiveError, match="not committed"):
        write_manifest(archived / "results" / "paper", "paper")


def test_a_manifest_of_checkpoints_outside_any_clone_is_refused_in_one_line(tmp_path):
    ck = tmp_path / "elsewhere" / "paper" / "checkpoints"  # not inside a git clone
    ck.mkdir(parents=True)
    (ck / "r4-DA-seed0.pt").write_bytes(b"x")
    with pytest.raises(ArchiveError, match="is not inside a git clone"):
        write_manifest(tmp_path / "elsewhere" / "paper", "paper")


def test_restore_where_a_file_stands_for_the_checkpoint_folder_is_one_line(archived, capsys):
    from nets.checkpoints_cli import main

    ck = archived / "results" / "paper" / "checkpoints"
    ck.rmdir()
    ck.write_bytes(b"not a folder")
    assert main(["restore", "--profile", "paper", "--results", str(archived / "results")]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and str(ck) in err


def _archive_later(repo: Path, name: str, data: bytes) -> str:
    """Commit one more checkpoint, add it to the manifest, take it out of the tree; its commit id."""
    ck = repo / "results" / "paper" / "checkpoints"
    (ck / name).write_bytes(data)
    git(repo, "add", "-f", f"results/paper/checkpoints/{name}")
    git(repo, "commit", "-q", "-m", "one more checkpoint")
    held = git(repo, "rev-parse", "HEAD").strip()
    write_manifest(repo / "results" / "paper", "paper", add=[name])
    git(repo, "rm", "-q", "--cached", f"results/paper/checkpoints/{name}")
    git(repo, "add", "results/paper/checkpoints.manifest.json")
    git(repo, "commit", "-q", "-m", "it leaves the tree")
    (ck / name).unlink()
    return held


def test_a_file_archived_later_names_its_own_commit_and_restores_with_the_others(archived):
    first = read_manifest(archived / "results" / "paper")
    held = _archive_later(archived, "r4-WT-seed0.pt", b"archived later")
    m = read_manifest(archived / "results" / "paper")
    assert m["commit"] == first["commit"] and m["files"][:2] == first["files"]
    assert m["files"][2]["commit"] == held and held != first["commit"]
    report = restore(archived / "results" / "paper")
    assert sorted(report.restored) == sorted([*FILES, "r4-WT-seed0.pt"])
    assert (archived / "results" / "paper" / "checkpoints" / "r4-WT-seed0.pt").read_bytes() == b"archived later"


def test_adding_to_a_folder_without_a_manifest_archives_those_files_only(tmp_path):
    repo, ck = _repo_with_checkpoints(tmp_path)
    git(repo, "add", "results/paper/checkpoints/r4-DA-seed1.pt")
    git(repo, "commit", "-q", "-m", "the one checkpoint worth keeping")
    write_manifest(repo / "results" / "paper", "paper", add=["r4-DA-seed1.pt"])
    m = read_manifest(repo / "results" / "paper")
    assert [e["name"] for e in m["files"]] == ["r4-DA-seed1.pt"]
    assert m["commit"] == git(repo, "rev-parse", "HEAD").strip()
    (ck / "r4-DA-seed1.pt").unlink()
    assert restore(repo / "results" / "paper").restored == ["r4-DA-seed1.pt"]
    assert {p.name: p.read_bytes() for p in ck.iterdir()} == FILES


def test_adding_a_file_already_in_the_manifest_is_refused(archived):
    restore(archived / "results" / "paper")
    with pytest.raises(ArchiveError, match="already in the manifest"):
        write_manifest(archived / "results" / "paper", "paper", add=["r4-DA-seed0.pt"])


def test_checkpoints_on_another_dataset_restore_into_that_datasets_folder(tmp_path):
    repo, ck = _repo_with_checkpoints(tmp_path)
    fm = ck / "fmnist"
    fm.mkdir()
    (fm / "t3-DA-seed0.pt").write_bytes(b"an fmnist checkpoint")
    git(repo, "add", "results/paper/checkpoints/fmnist/t3-DA-seed0.pt")
    git(repo, "commit", "-q", "-m", "fmnist checkpoint")
    write_manifest(repo / "results" / "paper", "paper", add=["t3-DA-seed0.pt"], dataset="fmnist")
    m = read_manifest(repo / "results" / "paper")
    assert m["dataset"] == "fmnist" and m["directory"] == "results/paper/checkpoints/fmnist"
    (fm / "t3-DA-seed0.pt").unlink()
    report = restore(repo / "results" / "paper")
    assert report.restored == ["t3-DA-seed0.pt"] and report.directory == fm
    assert (fm / "t3-DA-seed0.pt").read_bytes() == b"an fmnist checkpoint"
    assert not (ck / "t3-DA-seed0.pt").exists()  # never where the paper dataset's runs would find it


def test_adding_checkpoints_on_another_dataset_to_a_paper_manifest_is_refused(archived):
    restore(archived / "results" / "paper")
    with pytest.raises(ArchiveError, match="holds checkpoints on mnist, not on fmnist"):
        write_manifest(archived / "results" / "paper", "paper", add=["r4-DA-seed0.pt"], dataset="fmnist")


def test_the_committed_manifests_restore_into_their_datasets_checkpoint_folder():
    paths = sorted((REPO / "results").glob("**/checkpoints.manifest.json"))
    assert REPO / "results" / "paper" / "checkpoints.manifest.json" in paths and len(paths) >= 4
    for path in paths:
        m = json.loads(path.read_text())
        folder = path.parent.relative_to(REPO).as_posix()
        expected = folder + "/checkpoints" + ("/" + m["dataset"] if "dataset" in m else "")
        assert m["directory"] == expected, path


def test_cli_restores_and_reports_errors_in_one_line(archived, tmp_path):
    cmd = [sys.executable, "-m", "nets", "checkpoints", "restore", "--profile", "paper",
           "--results", str(archived / "results")]
    ok = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    assert ok.returncode == 0, ok.stderr
    assert "2 checkpoint(s) restored" in ok.stdout
    bad = subprocess.run([*cmd[:-1], str(tmp_path / "nowhere")], capture_output=True, text=True, cwd=REPO)
    assert bad.returncode == 1
    assert bad.stderr.count("\n") == 1 and bad.stderr.startswith("error: ")


def test_the_committed_paper_manifest_points_into_this_clones_history():
    m = read_manifest(REPO / "results" / "paper")
    names = [e["name"] for e in m["files"]]
    # the paper sweep's 140, then those archived later (the centered form's 8, the CNN's 16, the detached form's 8), each once
    assert len(names) >= 140 and len(set(names)) == len(names)
    out = subprocess.run(["git", "-C", str(REPO), "cat-file", "--batch-check"], check=True, capture_output=True,
                         text=True, input="".join(e["blob"] + "\n" for e in m["files"])).stdout.split("\n")
    assert [line.split()[-1] for line in out if line] == [str(e["size"]) for e in m["files"]]


def test_the_tracked_tree_is_small_enough_to_ship():
    names = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z"], check=True, capture_output=True).stdout
    total = sum((REPO / n).stat().st_size for n in names.decode().split("\0") if n and (REPO / n).is_file())
    assert total <= 16 * 2**20, f"tracked files are {total / 2**20:.1f} MiB"


def test_reproduce_with_every_experiment_complete_rewrites_nothing(tmp_path):
    import shutil

    from nets.experiments.profiles import get_profile
    from nets.experiments.reproduce import run_reproduce

    src = REPO / "results" / "paper"
    dst = tmp_path / "paper"
    dst.mkdir()
    for p in src.glob("*.json"):
        shutil.copy(p, dst / p.name)
    shutil.copy(src / "REPORT.md", dst / "REPORT.md")
    shutil.copytree(src / "figures", dst / "figures")
    run_reproduce(get_profile("paper"), tmp_path, device="cpu", progress=False, command="test")
    for name in ("reproduce.json", "REPORT.md"):
        assert (dst / name).read_bytes() == (src / name).read_bytes(), name
