"""--reuse-from / nets.reuse: adding seeds to a run trains only the new ones, the old ones load from
the source folder, the numbers equal a run of all the seeds from scratch, and the source is never
written."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from nets.experiments.profiles import get_profile
from nets.reuse import ReuseRefused, reuse_checkpoints

ARGS = ("table1", "--profile", "smoke", "--groups", "r4", "--no-progress", "--threads", "1")


def _runs(folder: Path) -> dict:
    t1 = json.loads((folder / "smoke" / "table1.json").read_text())
    return {m: {r["seed"]: {k: r[k] for k in ("accuracy", "LI", "DI", "SI")} for r in e["runs"]}
            for m, e in t1["groups"]["r4"]["methods"].items()}


@pytest.fixture(scope="module")
def one_seed(tmp_path_factory):
    """A smoke Table 1 on R4 with seed 0 only: the run more seeds are added to."""
    from nets.__main__ import main

    root = tmp_path_factory.mktemp("one_seed")
    assert main([*ARGS, "--seeds", "0", "--results", str(root)]) == 0
    return root


def test_added_seeds_train_and_the_old_ones_load_from_the_source(run_cli, one_seed, tmp_path, tree_digest):
    before = tree_digest(one_seed)
    rc, out, err = run_cli(*ARGS, "--seeds", "0", "1", "--results", str(tmp_path), "--reuse-from", str(one_seed))
    assert rc == 0, err
    assert "reused" in out
    old = sorted((one_seed / "smoke" / "checkpoints").glob("*.pt"))
    assert old and all((tmp_path / "smoke" / "checkpoints" / p.name).exists() for p in old)
    # a finished checkpoint is loaded, not retrained: the run's file is still the source's (a hard link)
    assert all(os.path.samefile(p, tmp_path / "smoke" / "checkpoints" / p.name) for p in old)
    assert any(p.name.endswith("seed1.pt") for p in (tmp_path / "smoke" / "checkpoints").glob("*.pt"))
    assert tree_digest(one_seed) == before  # the source folder is never written


def test_the_numbers_equal_a_run_of_all_the_seeds_from_scratch(run_cli, one_seed, tmp_path):
    assert run_cli(*ARGS, "--seeds", "0", "1", "--results", str(tmp_path / "reused"),
                   "--reuse-from", str(one_seed))[0] == 0
    assert run_cli(*ARGS, "--seeds", "0", "1", "--results", str(tmp_path / "scratch"))[0] == 0
    assert _runs(tmp_path / "reused") == _runs(tmp_path / "scratch")


def test_a_source_of_other_sizes_is_refused_in_one_line_and_nothing_is_linked(run_cli, one_seed, tmp_path):
    rc, _, err = run_cli(*ARGS, "--profile", "quick", "--seeds", "0", "--results", str(tmp_path),
                         "--reuse-from", str(one_seed))
    assert rc == 2 and len(err.strip().splitlines()) == 1
    assert "holds no results file" in err  # the smoke folder has no quick/ results
    quick = get_profile("quick")
    (one_seed / "quick").mkdir(exist_ok=True)
    t1 = json.loads((one_seed / "smoke" / "table1.json").read_text())
    (one_seed / "quick" / "table1.json").write_text(json.dumps(t1))  # smoke's sizes filed as quick
    try:
        with pytest.raises(ReuseRefused, match="other settings"):
            reuse_checkpoints(quick, one_seed, tmp_path)
    finally:
        (one_seed / "quick" / "table1.json").unlink()
        (one_seed / "quick").rmdir()
    assert not (tmp_path / "quick" / "checkpoints").exists()


def test_fewer_paper_forms_reuse_the_source_runs_as_more_seeds_do(one_seed, tmp_path):
    """The regularizer forms, like a nu grid, only choose which IR runs exist: DA alone
    (``spectral --regularizers``) at more seeds takes the source's checkpoints."""
    report = reuse_checkpoints(get_profile("smoke").with_regularizers([]).with_seeds([0, 1]), one_seed, tmp_path)
    assert report.linked and any(n.startswith("r4-DA-") and n.endswith("seed0.pt") for n in report.linked)


def test_only_the_seeds_may_differ(one_seed, tmp_path):
    smoke = get_profile("smoke")
    report = reuse_checkpoints(smoke.with_seeds([0, 1, 2]), one_seed, tmp_path)
    assert report.linked and not report.present
    again = reuse_checkpoints(smoke.with_seeds([0, 1, 2]), one_seed, tmp_path)
    assert not again.linked and sorted(again.present) == sorted(report.linked)  # a file the run has is kept


def test_another_nu_grid_reuses_the_runs_it_shares_with_the_source(run_cli, one_seed, tmp_path):
    """A grid only chooses which IR runs exist: seeds added at the nu the source chose (--nu-grid 100,
    the smoke grid being [1, 100]) load that nu's checkpoint and give the numbers of a run from scratch."""
    grid = ("--nu-grid", "100")
    rc, out, err = run_cli(*ARGS, *grid, "--seeds", "0", "1", "--results", str(tmp_path / "reused"),
                           "--reuse-from", str(one_seed))
    assert rc == 0, err
    nu100 = [p.name for p in (one_seed / "smoke" / "checkpoints").glob("*nu100*seed0.pt")]
    assert nu100 and all(os.path.samefile(one_seed / "smoke" / "checkpoints" / n,
                                          tmp_path / "reused" / "smoke" / "checkpoints" / n) for n in nu100)
    assert run_cli(*ARGS, *grid, "--seeds", "0", "1", "--results", str(tmp_path / "scratch"))[0] == 0
    assert _runs(tmp_path / "reused") == _runs(tmp_path / "scratch")


def test_its_own_folder_and_an_empty_source_are_refused(one_seed, tmp_path):
    smoke = get_profile("smoke")
    with pytest.raises(ReuseRefused, match="own folder"):
        reuse_checkpoints(smoke, one_seed, one_seed)
    with pytest.raises(ReuseRefused, match="holds no results file"):
        reuse_checkpoints(smoke, tmp_path / "nothing", tmp_path)


def test_the_committed_paper_run_lends_its_archived_checkpoints_to_more_seeds(tmp_path):
    """A source with a checkpoint manifest is restored from the repository's history first, and the
    committed paper results (4 seeds) are accepted for a paper run of 12 seeds."""
    import shutil

    from nets.checkpoint_archive import manifest_path, read_manifest
    from nets.results_io import EXPERIMENTS

    paper = Path(__file__).resolve().parent.parent / "results" / "paper"
    src = tmp_path / "src" / "paper"
    src.mkdir(parents=True)
    shutil.copy(manifest_path(paper), manifest_path(src))
    for name in EXPERIMENTS:
        shutil.copy(paper / f"{name}.json", src / f"{name}.json")
    report = reuse_checkpoints(get_profile("paper").with_seeds(range(12)), tmp_path / "src", tmp_path / "dst")
    names = sorted(f["name"] for f in read_manifest(paper)["files"])
    assert sorted(report.restored) == names and sorted(report.linked) == names
    assert report.target == tmp_path / "dst" / "paper" / "checkpoints"


def test_report_refuses_it_in_one_line(run_cli, one_seed, tmp_path):
    rc, _, err = run_cli("report", "--profile", "smoke", "--results", str(one_seed), "--reuse-from", str(tmp_path))
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "--reuse-from" in err


def test_a_damaged_results_file_in_the_source_is_named_and_left_where_it_is(run_cli, one_seed, tmp_path):
    src = tmp_path / "src" / "smoke"
    src.mkdir(parents=True)
    (src / "table1.json").write_text("{not json")
    rc, _, err = run_cli(*ARGS, "--seeds", "0", "--results", str(tmp_path / "dst"), "--reuse-from", str(tmp_path / "src"))
    assert rc == 1 and len(err.strip().splitlines()) == 1 and "table1.json" in err
    assert sorted(p.name for p in src.iterdir()) == ["table1.json"]  # not moved aside: the source is only read
