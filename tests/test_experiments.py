"""Experiments layer: profiles, figures drawn from hand-made results, the CLI, and an
end-to-end ``reproduce`` on the real data with the ``smoke`` profile."""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure

from nets import plots
from nets.experiments.common import write_json
from nets.experiments.profiles import METHOD_FIELDS, PROFILES, SIZE_FIELDS, Profile, get_profile
from nets.results_io import folder_lock
from test_report import fake_drift, fake_results, fake_saliency, fake_spectral, fake_table1, fake_tsne


# ---- profiles ---------------------------------------------------------------------
def test_paper_profile_is_the_papers_protocol():
    p = PROFILES["paper"]
    assert p.seeds == (0, 1, 2, 3)  # "averaged over 4 common random seeds"
    assert p.epochs == 300
    assert (p.n_train, p.n_val, p.n_test) == (10_000, 2_000, 50_000)  # "10k/50k/2k train/test/validation"
    assert p.si_target == 0.95
    assert p.ig_steps == 50
    assert p.groups == ("r4", "t3")
    assert p.betas == tuple(round(0.1 * i, 1) for i in range(11))
    assert p.regularizers == ("logit", "kl", "normalized_logit")
    assert all(len(p.nu_grid(r)) >= 5 and list(p.nu_grid(r)) == sorted(set(p.nu_grid(r))) for r in p.regularizers)
    assert p.n_si_samples == 1_000 and p.n_sigma_samples == 1_000
    assert p == Profile()  # the dataclass defaults are the paper's values


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_profiles_differ_from_paper_only_in_size_fields(name):
    p, paper = PROFILES[name], PROFILES["paper"]
    for f in METHOD_FIELDS:
        assert getattr(p, f) == getattr(paper, f), f"profile {name} changes method field {f}"


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_profile_nu_grids_are_subsets_of_the_papers(name):
    p, paper = PROFILES[name], PROFILES["paper"]
    assert [r for r, _ in p.nu_grids] == [r for r, _ in paper.nu_grids]
    for reg in p.regularizers:
        assert set(p.nu_grid(reg)) <= set(paper.nu_grid(reg)) and p.nu_grid(reg)


def test_every_field_is_either_size_or_method():
    names = {f.name for f in fields(Profile)} - {"name"}
    assert set(SIZE_FIELDS) | set(METHOD_FIELDS) == names
    assert not set(SIZE_FIELDS) & set(METHOD_FIELDS)


def test_smaller_profiles_are_smaller():
    paper = PROFILES["paper"]
    for p in (PROFILES["quick"], PROFILES["smoke"]):
        for f in SIZE_FIELDS:
            if f in ("seeds", "nu_grids"):
                continue
            assert getattr(p, f) <= getattr(paper, f), f
        assert set(p.seeds) <= set(paper.seeds)


def test_with_seeds_changes_only_seeds():
    p = get_profile("quick").with_seeds([5, 6])
    assert p.seeds == (5, 6)
    assert p.epochs == PROFILES["quick"].epochs
    with pytest.raises(ValueError, match="unknown profile 'nope'; known: paper, quick, smoke"):
        get_profile("nope")


def test_with_groups_keeps_the_profiles_order_and_refuses_unknown_groups():
    p = get_profile("paper").with_groups(["T3", "r4"])
    assert p.groups == ("r4", "t3") and p.epochs == 300
    assert get_profile("paper").with_groups(["t3"]).groups == ("t3",)
    for bad in ([], ["r5"], ["r4", "t4"]):
        with pytest.raises(ValueError, match="subset"):
            get_profile("paper").with_groups(bad)


def test_with_regularizers_keeps_the_papers_order_allows_none_and_refuses_other_forms():
    p = get_profile("paper")
    assert p.with_regularizers(["normalized_logit", "logit"]).regularizers == ("logit", "normalized_logit")
    assert p.with_regularizers([]).regularizers == () and p.with_regularizers([]).seeds == p.seeds
    with pytest.raises(ValueError, match="the paper's forms"):
        p.with_regularizers(["detached_normalized_logit"])


def _finish_groups(tmp_path, profile, groups, started=0.0):
    from nets.experiments.common import finish

    body = {"groups": {g: {"value": g} for g in groups}}
    return finish(profile, "tsne_merge_test", body, tmp_path, device="cpu", started=started, command="test")


def test_a_run_on_some_groups_keeps_the_other_groups_results(tmp_path, monkeypatch):
    from nets.experiments import common

    monkeypatch.setattr(common, "draw", lambda *a, **k: [])
    paper = PROFILES["paper"]
    first = _finish_groups(tmp_path, paper.with_groups(["t3"]), ["t3"])
    assert first["complete"] is False and first["pending_groups"] == ["r4"]
    both = _finish_groups(tmp_path, paper.with_groups(["r4"]), ["r4"])
    assert list(both["groups"]) == ["r4", "t3"] and both["complete"] is True and both["pending_groups"] == []
    on_disk = json.loads((tmp_path / "paper" / "tsne_merge_test.json").read_text())
    assert on_disk["groups"] == {"r4": {"value": "r4"}, "t3": {"value": "t3"}}


def test_each_group_keeps_the_provenance_of_the_sitting_that_computed_it(tmp_path, monkeypatch):
    from nets.experiments import common
    from nets.experiments.common import finish

    monkeypatch.setattr(common, "draw", lambda *a, **k: [])
    paper = PROFILES["paper"]
    finish(paper.with_groups(["r4"]), "tsne_merge_test", {"groups": {"r4": 1}}, tmp_path, device="cpu",
           started=0.0, command="first sitting")
    both = finish(paper.with_groups(["t3"]), "tsne_merge_test", {"groups": {"t3": 2}}, tmp_path, device="cpu",
                  started=0.0, command="second sitting")
    assert both["meta"]["command"] == "second sitting"
    assert both["group_provenance"]["r4"]["command"] == "first sitting"
    assert both["group_provenance"]["t3"]["command"] == "second sitting"
    again = finish(paper.with_groups(["t3"]), "tsne_merge_test", {"groups": {"t3": 3}}, tmp_path, device="cpu",
                   started=0.0, command="third sitting")
    assert again["group_provenance"]["r4"]["command"] == "first sitting"  # carried over, not re-stamped


def test_report_lists_one_provenance_row_per_sitting():
    from nets.report import render_report

    results = fake_results()
    t1 = results["table1"]
    t1["group_provenance"] = {"r4": {**t1["meta"], "command": "python -m nets table1 --groups r4"},
                              "t3": {**t1["meta"], "command": "python -m nets table1 --groups t3"}}
    text = render_report(results)
    assert "| table1 (r4) | `python -m nets table1 --groups r4`" in text
    assert "| table1 (t3) | `python -m nets table1 --groups t3`" in text


def test_results_of_another_sweep_are_not_merged(tmp_path, monkeypatch):
    from nets.experiments import common

    monkeypatch.setattr(common, "draw", lambda *a, **k: [])
    paper = PROFILES["paper"]
    _finish_groups(tmp_path, paper.with_groups(["t3"]), ["t3"])
    # a later run, let through by check_overwrite's --overwrite
    other_seeds = _finish_groups(tmp_path, paper.with_seeds([7]).with_groups(["r4"]), ["r4"])
    assert list(other_seeds["groups"]) == ["r4"] and other_seeds["pending_groups"] == ["t3"]


def test_a_run_does_not_replace_what_a_run_with_other_settings_wrote_while_it_ran(tmp_path, monkeypatch):
    from nets.experiments import common
    from nets.experiments.common import SettingsMismatch, check_overwrite

    monkeypatch.setattr(common, "draw", lambda *a, **k: [])
    paper = PROFILES["paper"]
    check_overwrite(paper.with_groups(["t3"]), tmp_path, experiments=("tsne_merge_test",))  # this run starts
    other = multiprocessing.get_context("fork").Process(  # another process, with other seeds, finishes first
        target=_finish_groups, args=(tmp_path, paper.with_seeds([7]).with_groups(["r4"]), ["r4"]))
    other.start()
    other.join(60)
    assert other.exitcode == 0
    path = tmp_path / "paper" / "tsne_merge_test.json"
    before = path.read_bytes()
    with pytest.raises(SettingsMismatch, match="another run wrote .* while this one ran"):
        _finish_groups(tmp_path, paper.with_groups(["t3"]), ["t3"])
    assert path.read_bytes() == before


def test_a_file_there_when_the_run_started_is_replaced_as_check_overwrite_allowed(tmp_path, monkeypatch):
    from nets.experiments import common
    from nets.experiments.common import check_overwrite

    monkeypatch.setattr(common, "draw", lambda *a, **k: [])
    paper = PROFILES["paper"]
    path = tmp_path / "paper" / "tsne_merge_test.json"
    _finish_groups(tmp_path, paper.with_seeds([7]).with_groups(["r4"]), ["r4"])
    future = time.time() + 120  # its clock ahead of ours: only a change since the check counts
    os.utime(path, (future, future))
    check_overwrite(paper.with_groups(["t3"]), tmp_path, experiments=("tsne_merge_test",), overwrite=True)
    assert list(_finish_groups(tmp_path, paper.with_groups(["t3"]), ["t3"])["groups"]) == ["t3"]


def _finish_in_a_process(tmp_path, group):
    from nets.experiments import common

    common.draw = lambda *a, **k: []
    real_merge = common._merge_groups

    def slow_merge(*args, **kwargs):  # widen the read-merge-write window where a lost update would happen
        time.sleep(0.5)
        return real_merge(*args, **kwargs)

    common._merge_groups = slow_merge
    _finish_groups(tmp_path, PROFILES["paper"].with_groups([group]), [group])


def test_runs_of_one_sweep_finishing_together_keep_each_others_groups(tmp_path):
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_finish_in_a_process, args=(tmp_path, g)) for g in ("r4", "t3")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0]
    merged = json.loads((tmp_path / "paper" / "tsne_merge_test.json").read_text())
    assert list(merged["groups"]) == ["r4", "t3"] and merged["complete"] is True


def test_a_run_finishing_while_another_holds_the_folders_lock_waits_for_it(tmp_path):
    """Deterministic where the test above is a race: with the lock held here, a run in another process
    writes nothing until it is released, then writes its group."""
    ctx = multiprocessing.get_context("fork")
    with folder_lock(tmp_path / "paper"):
        child = ctx.Process(target=_finish_in_a_process, args=(tmp_path, "r4"))
        child.start()
        child.join(3)
        assert child.is_alive() and not (tmp_path / "paper" / "tsne_merge_test.json").exists()
    child.join(60)
    assert child.exitcode == 0
    assert list(json.loads((tmp_path / "paper" / "tsne_merge_test.json").read_text())["groups"]) == ["r4"]


def test_figures_are_drawn_after_the_json_is_written(tmp_path, monkeypatch):
    from nets.experiments import common

    seen = []
    monkeypatch.setattr(common, "draw", lambda name, results, fig_dir: seen.append(
        (tmp_path / "paper" / f"{name}.json").exists()))
    _finish_groups(tmp_path, PROFILES["paper"], ["r4", "t3"])
    assert seen == [True]


def _fake_reproduce_runners(monkeypatch, calls: list):
    """Runners that record the groups they are asked for and write a JSON as the real ones do."""
    from nets.experiments import common, reproduce
    from nets.experiments.common import EXPERIMENTS, finish

    def make(name):
        def run(profile, results_root, **kw):
            calls.append((name, profile.groups))
            body = {"groups": {g: {"value": g} for g in profile.groups}}
            return finish(profile, name, body, results_root, device="cpu", started=time.time(),
                          command=kw.get("command"))
        return run

    monkeypatch.setattr(common, "draw", lambda *a, **k: [])
    monkeypatch.setattr(reproduce, "experiment_runners", lambda: {n: make(n) for n in EXPERIMENTS})
    monkeypatch.setattr("nets.report.write_report", lambda d, **k: Path(d) / "REPORT.md")


def test_reproduce_runs_only_the_groups_missing_from_this_sweeps_results(tmp_path, monkeypatch):
    from nets.experiments.reproduce import run_reproduce

    calls = []
    _fake_reproduce_runners(monkeypatch, calls)
    paper = PROFILES["paper"]
    _finish_groups_as(tmp_path, paper.with_groups(["r4"]), "table1")  # an interrupted sweep: table1 on R4 only
    _finish_groups_as(tmp_path, paper, "drift")  # drift on both groups
    run_reproduce(paper, tmp_path, progress=False, command="test")
    assert dict(calls) == {"table1": ("t3",), "spectral": ("r4", "t3"), "tsne": ("r4", "t3"),
                           "saliency": ("r4", "t3")}  # drift: nothing left to run
    table1 = json.loads((tmp_path / "paper" / "table1.json").read_text())
    assert table1["complete"] is True and list(table1["groups"]) == ["r4", "t3"]
    sweep = json.loads((tmp_path / "paper" / "reproduce.json").read_text())
    assert sweep["kept_groups"]["drift"] == ["r4", "t3"] and "drift" not in sweep["experiment_wall_time_s"]


def test_reproduce_does_not_keep_results_of_another_sweep(tmp_path, monkeypatch):
    from nets.experiments.reproduce import run_reproduce

    calls = []
    _fake_reproduce_runners(monkeypatch, calls)
    paper = PROFILES["paper"]
    _finish_groups_as(tmp_path, paper.with_seeds([7]), "table1")  # same folder, other seeds
    run_reproduce(paper, tmp_path, progress=False, command="test")
    assert dict(calls)["table1"] == ("r4", "t3")


def test_reproduce_recompute_runs_every_group_again(tmp_path, monkeypatch):
    from nets.experiments.reproduce import run_reproduce

    calls = []
    _fake_reproduce_runners(monkeypatch, calls)
    paper = PROFILES["paper"]
    for name in ("table1", "drift", "spectral", "tsne", "saliency"):
        _finish_groups_as(tmp_path, paper, name)
    run_reproduce(paper, tmp_path, progress=False, command="test")
    assert calls == []  # a finished sweep: nothing to run
    run_reproduce(paper, tmp_path, progress=False, command="test", recompute=True)
    assert [g for _, g in calls] == [("r4", "t3")] * 5


def test_cli_recompute_is_for_reproduce_only(tmp_path):
    from nets.__main__ import main

    with pytest.raises(SystemExit):
        main(["drift", "--profile", "smoke", "--recompute", "--results", str(tmp_path)])


def _finish_groups_as(tmp_path, profile, experiment):
    from nets.experiments.common import finish

    body = {"groups": {g: {"value": g} for g in profile.groups}}
    return finish(profile, experiment, body, tmp_path, device="cpu", started=0.0, command="earlier")


def test_profile_to_dict_is_json():
    d = PROFILES["paper"].to_dict()
    assert json.loads(json.dumps(d))["nu_grids"]["logit"] == list(PROFILES["paper"].nu_grid("logit"))


# ---- results IO --------------------------------------------------------------------
def test_write_json_is_atomic_and_converts_numpy(tmp_path):
    path = write_json(tmp_path / "sub" / "r.json", {"a": np.float32(1.5), "b": np.arange(3), "c": float("nan"),
                                                     "d": (1, 2)})
    assert json.loads(path.read_text()) == {"a": 1.5, "b": [0, 1, 2], "c": None, "d": [1, 2]}
    assert [p.name for p in path.parent.iterdir()] == ["r.json"]  # no temporary file left


def test_json_keeps_number_lists_on_one_line():
    from nets.experiments.common import dumps

    data = {"maps": [[[1.0, 2.0], [3.0, 4.0]]], "runs": [{"seed": 0, "x": [1, 2]}], "s": "a [b, c]"}
    text = dumps(data)
    assert json.loads(text) == data
    assert '"maps": [[[1.0,2.0],[3.0,4.0]]]' in text
    assert '"s": "a [b, c]"' in text


# ---- figures -----------------------------------------------------------------------
def _labels(fig: Figure) -> list[str]:
    return [t for ax in fig.axes for t in (ax.get_xlabel(), ax.get_ylabel(), ax.get_title()) if t]


def test_table1_figure_has_one_axis_per_measure_with_paper_markers():
    fig = plots.plot_table1(fake_table1())
    assert len(fig.axes) == 4
    ylabels = [ax.get_ylabel() for ax in fig.axes]
    assert ylabels == [plots.MEASURE_TEX[m] for m in ("accuracy", "LI", "DI", "SI")]
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == [r"$\mathbb{R}^2_4$", r"$\mathbb{T}^2_3$"]
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == ["WT", "DA", "IR", "paper (Table 1)"]


def test_nu_selection_figure_plots_si_and_accuracy_per_group():
    fig = plots.plot_nu_selection(fake_spectral())
    assert len(fig.axes) == 4
    assert fig.axes[0].get_xscale() == "log"
    assert r"$SI_f$ on validation" in _labels(fig)
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == ["logit", "KL", "normalized logit", r"chosen $\nu$"]
    assert len(plots.plot_nu_selection(fake_table1()).axes) == 4


def test_drift_figure_has_di_and_accuracy_ratio_rows():
    fig = plots.plot_drift(fake_drift())
    assert len(fig.axes) == 4
    labels = _labels(fig)
    assert r"$DI_f$ on $\mathcal{D}_{1\to 2}(\beta)$ (nats)" in labels
    assert any("Acc" in s for s in labels) and any(r"$\beta$" in s for s in labels)
    assert len(fig.axes[0].get_lines()) == 3  # one line per method


def test_spectral_figure_has_one_bar_per_model():
    fig = plots.plot_spectral(fake_spectral())
    assert len(fig.axes) == 4
    assert fig.axes[0].get_ylabel().startswith(r"$\sigma_{\max}(J)$")
    assert len(fig.axes[0].patches) == 4  # DA + three IR forms


def test_a_panel_of_five_bars_shortens_normalized_so_neighbouring_tick_labels_do_not_touch():
    four = fake_spectral()
    five = fake_spectral()
    for entry in five["groups"].values():
        entry["models"]["IR-detached_normalized_logit"] = {**entry["models"]["IR-normalized_logit"],
                                                           "regularizer": "detached_normalized_logit"}
    ticks = [[t.get_text() for t in plots.plot_spectral(r).axes[0].get_xticklabels()] for r in (four, five)]
    assert any("normalized" in t for t in ticks[0])  # four bars: the full name, as the paper's Figure 5
    assert len(ticks[1]) == 5 and not any("normalized" in t for t in ticks[1])
    assert "IR\nnorm.\nlogit" in ticks[1][3] and "IR\ndetached\nnorm." in ticks[1][4]


def test_spectral_figure_marks_sigma_max_of_centered_logits_only_when_measured():
    from test_report import _with_class_common_shift

    def diamonds(fig: Figure) -> list:
        return [ln for ln in fig.axes[0].get_lines() if ln.get_marker() == "D"]

    plain = plots.plot_spectral(fake_spectral())
    assert not diamonds(plain) and plain.axes[0].get_legend() is None
    fig = plots.plot_spectral(_with_class_common_shift(fake_spectral(), "normalized_logit", 0.99, 0.25))
    assert len(diamonds(fig)) == 1
    assert len(diamonds(fig)[0].get_ydata()) == 4  # DA + three IR forms
    assert list(diamonds(fig)[0].get_ydata())[-1] == pytest.approx(0.25)  # the normalized-logit bar
    assert "centered logits" in fig.axes[0].get_legend().get_texts()[0].get_text()


def test_spectral_figure_marks_a_form_whose_nu_search_missed_the_target():
    labels = lambda fig: [t.get_text() for t in fig.axes[0].get_xticklabels()]  # noqa: E731
    reached = plots.plot_spectral(fake_spectral(reached=True))
    missed = plots.plot_spectral(fake_spectral(reached=False))
    assert not any("dagger" in s for s in labels(reached))
    assert sum("dagger" in s for s in labels(missed)) == 3  # every IR form, not DA
    assert "grid reached" in missed.get_supxlabel() and "grid reached" not in reached.get_supxlabel()


def test_tsne_figure_has_a_panel_per_group_and_method():
    fig = plots.plot_tsne(fake_tsne())
    assert len(fig.axes) == 6
    assert "orbit / class distance = 0.90" in fig.axes[1].get_title()


def test_saliency_figure_has_a_cell_per_sample_element_and_method():
    res = fake_saliency(n=2)
    fig = plots.plot_saliency(res, "r4")
    assert len(fig.axes) == 2 * 4 * 3
    fig = plots.plot_saliency(res, "t3")
    assert len(fig.axes) == 2 * 3 * 3


# ---- CLI ---------------------------------------------------------------------------
def test_cli_report_redraws_figures_from_json(tmp_path, capsys):
    from nets.__main__ import main

    out = tmp_path / "smoke"
    for name, r in fake_results().items():
        write_json(out / f"{name}.json", r)
    assert main(["report", "--profile", "smoke", "--results", str(tmp_path)]) == 0
    assert (out / "REPORT.md").exists()
    stems = ["table1", "nu_selection_table1", "drift", "spectral", "nu_selection_spectral", "tsne",
             "saliency_r4", "saliency_t3"]
    for stem in stems:
        for ext in (".png", ".pdf"):
            assert (out / "figures" / f"{stem}{ext}").stat().st_size > 1000
    assert "![" in (out / "REPORT.md").read_text()


def test_cli_passes_groups_to_the_experiment(tmp_path, monkeypatch):
    from nets import experiments
    from nets.__main__ import main

    seen = {}

    def fake_runner(profile, results_root, **kw):
        seen["groups"] = profile.groups
        return {}

    monkeypatch.setattr(experiments, "runner", lambda name: fake_runner)
    assert main(["drift", "--profile", "paper", "--groups", "t3", "--results", str(tmp_path), "--no-progress"]) == 0
    assert seen["groups"] == ("t3",)


def test_cli_rejects_unknown_experiment():
    from nets.__main__ import main

    with pytest.raises(SystemExit):
        main(["nope", "--profile", "smoke"])


# ---- end to end on the real data ----------------------------------------------------
def _real_data_available() -> bool:
    from nets.fetch_step import dataset_dir

    names = ("train-images-idx3-ubyte", "t10k-images-idx3-ubyte")
    return all((dataset_dir(d) / n).exists() for d in ("mnist", "fmnist") for n in names)


@pytest.mark.skipif(not _real_data_available() and os.environ.get("CI", "").lower() != "true",
                    reason="MNIST / Fashion-MNIST not fetched (python -m nets.data fetch); required on CI")
def test_smoke_reproduce_end_to_end(tmp_path):
    import torch

    from nets.__main__ import main

    threads = torch.get_num_threads()
    try:
        # one thread: the smoke sizes gain nothing from two, and a shared CI core stays usable
        assert main(["reproduce", "--profile", "smoke", "--results", str(tmp_path), "--no-progress",
                     "--threads", "1"]) == 0
        _check_smoke_results(tmp_path)
        # a second run reuses the checkpoints (no retraining) and gives the same numbers
        before = json.loads((tmp_path / "smoke" / "table1.json").read_text())
        ckpts = {p: p.stat().st_mtime_ns for p in (tmp_path / "smoke" / "checkpoints").glob("*.pt")}
        assert main(["table1", "--profile", "smoke", "--results", str(tmp_path), "--no-progress",
                     "--threads", "1"]) == 0
        again = json.loads((tmp_path / "smoke" / "table1.json").read_text())
        assert {p: p.stat().st_mtime_ns for p in ckpts} == ckpts  # loaded, not rewritten
        for g in ("r4", "t3"):
            for m in ("WT", "DA", "IR"):
                assert again["groups"][g]["methods"][m]["runs"][0]["accuracy"] == \
                    before["groups"][g]["methods"][m]["runs"][0]["accuracy"]
    finally:
        torch.set_num_threads(threads)


def _check_smoke_results(tmp_path):
    out = tmp_path / "smoke"
    for name in ("table1", "drift", "spectral", "tsne", "saliency"):
        r = json.loads((out / f"{name}.json").read_text())
        assert r["meta"]["profile"]["name"] == "smoke"
        assert r["meta"]["command"].startswith("python -m nets reproduce")
        assert set(r["groups"]) == {"r4", "t3"}
    t1 = json.loads((out / "table1.json").read_text())
    assert t1["complete"] is True and t1["pending_groups"] == []
    wt = t1["groups"]["r4"]["methods"]["WT"]
    assert wt["LI"]["mean"] < 1e-6  # weight tying is invariant whatever the training
    sel = t1["groups"]["r4"]["nu_selection"]
    assert sel["grid"] == list(PROFILES["smoke"].nu_grid("logit")) and "reached_target" in sel
    for model in json.loads((out / "spectral.json").read_text())["groups"]["r4"]["models"].values():
        # centering is a projection of the logits: it never raises sigma_max
        assert model["sigma_max_centered"]["mean"] <= model["sigma_max"]["mean"] * (1 + 1e-5)
        assert 0.0 <= model["common_logit_share"]["mean"] <= 1.0
    # the rounded arrays hold their decimals, not the 17 digits of a float32 rounded in float32
    saliency = json.loads((out / "saliency.json").read_text())["groups"]["r4"]
    maps, images = np.asarray(saliency["methods"]["DA"]["maps"]), np.asarray(saliency["images"])
    coords = np.asarray(json.loads((out / "tsne.json").read_text())["groups"]["r4"]["methods"]["DA"]["coords"])
    assert np.array_equal(maps, np.round(maps, 3)) and np.array_equal(coords, np.round(coords, 3))
    assert np.array_equal(images, np.round(images, 2))
    for stem in ("table1", "drift", "spectral", "tsne", "saliency_r4", "saliency_t3"):
        assert (out / "figures" / f"{stem}.png").exists() and (out / "figures" / f"{stem}.pdf").exists()
    report = (out / "REPORT.md").read_text()
    assert "## Verdicts" in report and "not drawn" not in report
    assert "python -m nets reproduce --profile smoke" in report
    assert json.loads((out / "reproduce.json").read_text())["meta"]["experiment"] == "reproduce"
    assert any((out / "checkpoints").iterdir())


class _Stop(Exception):
    pass


@pytest.mark.skipif(not _real_data_available() and os.environ.get("CI", "").lower() != "true",
                    reason="MNIST / Fashion-MNIST not fetched (python -m nets.data fetch); required on CI")
def test_table1_stopped_in_the_second_group_keeps_the_first(tmp_path, monkeypatch):
    import torch

    from nets.experiments import table1
    from nets.report import write_report

    real_tune = table1.tune

    def tune_until_t3(base, *a, **kw):
        if base.group == "t3":
            raise _Stop  # the sweep is killed while the second group trains
        return real_tune(base, *a, **kw)

    monkeypatch.setattr(table1, "tune", tune_until_t3)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with pytest.raises(_Stop):
            table1.run_table1(PROFILES["smoke"], tmp_path, device="cpu", progress=False)
    finally:
        torch.set_num_threads(threads)
    t1 = json.loads((tmp_path / "smoke" / "table1.json").read_text())
    assert list(t1["groups"]) == ["r4"] and t1["pending_groups"] == ["t3"] and t1["complete"] is False
    assert set(t1["groups"]["r4"]["methods"]) == {"WT", "DA", "IR"}
    report = write_report(tmp_path / "smoke").read_text()
    assert "`table1` covers R4 only (T3 pending)" in report
