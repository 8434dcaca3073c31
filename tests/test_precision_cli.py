"""``--precision fp32|bf16`` on the experiment subcommands (issue 18, part 5): refused before
anything is loaded where the CPU lacks bf16 instructions, recorded in every results file,
never mixed with float32 results, and fp32 runs exactly as before the flag existed.

Where a test needs bf16 to be allowed it fakes the CPU's flags (``nets.precision.cpu_flags``),
as tests/test_precision.py does; without real bf16 instructions the run is only slower."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

import nets.precision as P
from nets.experiments.common import SettingsMismatch, check_overwrite, metadata
from nets.experiments.profiles import get_profile
from nets.results_io import profile_differences, read_json, write_json

ROOT = Path(__file__).resolve().parents[1]
QUICK = get_profile("quick")


@pytest.fixture
def no_bf16(monkeypatch):
    monkeypatch.setattr(P, "cpu_flags", lambda *a: frozenset({"avx2", "avx512f"}))


@pytest.fixture
def bf16_cpu(monkeypatch):
    monkeypatch.setattr(P, "cpu_flags", lambda *a: frozenset({"avx2", "avx512_bf16"}))


def _fp32_copy(dst: Path) -> Path:
    """A copy of the committed (float32) quick results' JSON files in ``dst``/quick."""
    (dst / "quick").mkdir(parents=True)
    for p in (ROOT / "results" / "quick").glob("*.json"):
        shutil.copy2(p, dst / "quick" / p.name)
    return dst


# ---- the flag's errors -------------------------------------------------------------------
@pytest.mark.parametrize("command", ["table1", "reproduce", "spectral"])
def test_bf16_on_a_cpu_without_bf16_instructions_is_one_line_exit_2_before_any_data(run_cli, no_data, no_bf16,
                                                                                     tmp_path, command):
    rc, _, err = run_cli(command, "--profile", "smoke", "--device", "cpu", "--precision", "bf16",
                         "--results", str(tmp_path))
    assert rc == 2 and len(err.strip().splitlines()) == 1, err
    assert "avx512_bf16" in err and "amx_bf16" in err and "refused on this CPU" in err
    assert not any(tmp_path.iterdir())


def test_an_unknown_precision_is_one_line_exit_2(run_cli, no_data, tmp_path):
    rc, _, err = run_cli("table1", "--precision", "fp16", "--results", str(tmp_path))
    assert rc == 2 and "invalid choice: 'fp16'" in err and len(err.strip().splitlines()) == 1
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("command", ["report", "centered", "intervals"])
def test_subcommands_that_train_nothing_of_their_own_take_no_precision(run_cli, tmp_path, command):
    rc, _, err = run_cli(command, "--precision", "bf16", "--results", str(tmp_path))
    assert rc == 2 and "--precision" in err


def test_a_bf16_folder_given_a_float32_command_says_which_commands_read_it(tmp_path):
    (tmp_path / "quick").mkdir()
    for p in (ROOT / "results" / "bf16" / "quick").glob("*.json"):
        shutil.copy2(p, tmp_path / "quick" / p.name)
    with pytest.raises(SettingsMismatch, match=r"give the folder's precision again \(--precision bf16: table1, drift"):
        check_overwrite(QUICK, tmp_path, experiments=("table1",))


# ---- never mixed with float32 results ---------------------------------------------------
def test_the_committed_fp32_results_are_still_the_same_sweep_for_fp32_and_another_for_bf16():
    meta = read_json(ROOT / "results" / "quick" / "table1.json")["meta"]
    assert "precision" not in meta  # written before precision was recorded: float32
    assert profile_differences(meta, QUICK) == []
    assert profile_differences(meta, QUICK, "bf16") == ["precision"]


def test_a_bf16_run_into_a_folder_of_fp32_results_refuses_and_changes_nothing(run_cli, no_data, bf16_cpu, tmp_path,
                                                                              tree_digest):
    root = _fp32_copy(tmp_path / "results")
    before = tree_digest(root)
    rc, _, err = run_cli("table1", "--profile", "quick", "--device", "cpu", "--precision", "bf16",
                         "--results", str(root))
    assert rc == 2 and len(err.strip().splitlines()) == 1
    assert 'precision "fp32" there, "bf16" here' in err and "--results ANOTHER_DIR" in err
    assert tree_digest(root) == before
    check_overwrite(QUICK, root)  # the same folder is fine for fp32


def test_a_bf16_run_without_results_goes_to_results_bf16(run_cli, no_data, bf16_cpu, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _fp32_copy(tmp_path / "results" / "bf16")  # float32 results where bf16's default folder is: refused there
    rc, _, err = run_cli("table1", "--profile", "quick", "--device", "cpu", "--precision", "bf16")
    assert rc == 2 and str(Path("results") / "bf16" / "quick") in err


def test_bf16_results_from_another_folder_are_refused_for_fp32_too(tmp_path):
    folder = tmp_path / "quick"
    folder.mkdir()
    meta = json.loads((ROOT / "results" / "quick" / "table1.json").read_text())
    meta["meta"]["precision"] = "bf16"
    write_json(folder / "table1.json", meta)  # as a bf16 run would have written it
    with pytest.raises(SettingsMismatch, match='precision "bf16" there, "fp32" here'):
        check_overwrite(QUICK, tmp_path)
    check_overwrite(QUICK, tmp_path, precision="bf16")


# ---- fp32 exactly as before ------------------------------------------------------------
@pytest.mark.parametrize("extra", [[], ["--precision", "fp32"]], ids=["default", "named"])
def test_an_fp32_run_calls_the_experiment_exactly_as_before_the_flag(run_cli, monkeypatch, tmp_path, extra):
    calls = []
    import nets.experiments

    monkeypatch.setattr(nets.experiments, "runner", lambda name: lambda *a, **k: calls.append(k) or {})
    rc, _, _ = run_cli("table1", "--profile", "smoke", "--device", "cpu", "--results", str(tmp_path), *extra)
    assert rc == 0 and len(calls) == 1 and "precision" not in calls[0]


def test_fp32_metadata_keeps_the_profile_dict_and_records_the_precision():
    meta = metadata(QUICK, "table1", device="cpu", started=0.0, command="x")
    committed = read_json(ROOT / "results" / "quick" / "table1.json")["meta"]
    assert meta["profile"] == committed["profile"] and meta["precision"] == "fp32"
    assert {"avx512_bf16", "amx_bf16"} <= set(P.BF16_CPU_FLAGS) and "flags" in meta["cpu"]


# ---- bf16 end to end ---------------------------------------------------------------------
def test_a_bf16_smoke_table1_runs_end_to_end_and_records_its_precision(run_cli, bf16_cpu, tmp_path):
    rc, out, err = run_cli("table1", "--profile", "smoke", "--groups", "r4", "--device", "cpu",
                           "--precision", "bf16", "--no-progress", "--results", str(tmp_path))
    assert rc == 0, err
    t1 = read_json(tmp_path / "smoke" / "table1.json")
    assert t1["meta"]["precision"] == "bf16" and "bf16" in t1["meta"]["command"]
    assert isinstance(t1["meta"]["cpu"]["flags"], list)
    ir = t1["groups"]["r4"]["methods"]["IR"]
    assert 0.0 <= ir["accuracy"]["mean"] <= 1.0 and ir["LI"]["mean"] == ir["LI"]["mean"]
    ckpts = tmp_path / "smoke" / "checkpoints"
    assert any((ckpts / "bf16").glob("*.pt")) and not any(ckpts.glob("*.pt"))  # bf16 runs apart from fp32's
    for p in (ckpts / "bf16").glob("*.pt"):  # the kept (best) weights are float32
        state = torch.load(p, weights_only=True)["best_state"]
        assert state and all(v.dtype == torch.float32 for v in state.values() if v.is_floating_point())


def test_the_local_executor_passes_the_precision_to_every_job(bf16_cpu, tmp_path):
    from nets.data import synthetic_splits
    from nets.distributed import TrainingJob, train_jobs
    from nets.train import TrainConfig, checkpoint_path

    cfg = TrainConfig(hidden=16, n_hidden_layers=2, batch_size=32, epochs=1)
    splits = synthetic_splits(n_train=64, n_val=16, n_test=8, seed=0, size=18)
    train_jobs([TrainingJob((cfg,), (0,))], splits, tmp_path, executor="local", device="cpu", progress=False,
               precision="bf16")
    assert checkpoint_path(tmp_path / "bf16", cfg, 0).exists() and not checkpoint_path(tmp_path, cfg, 0).exists()


# ---- evaluation-only commands read the folder's precision ---------------------------------
@pytest.fixture(scope="module")
def bf16_folder(tmp_path_factory):
    """A smoke folder (R4) whose Table 1 and spectral models were trained in bf16 (checkpoints in
    ``checkpoints/bf16/`` only)."""
    from nets.__main__ import main

    root = tmp_path_factory.mktemp("bf16")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(P, "cpu_flags", lambda *a: frozenset({"avx2", "avx512_bf16"}))
        for command in ("table1", "spectral"):
            assert main([command, "--profile", "smoke", "--groups", "r4", "--device", "cpu", "--precision", "bf16",
                         "--no-progress", "--results", str(root)]) == 0
    assert not list((root / "smoke" / "checkpoints").glob("*.pt")), "bf16 checkpoints only, none in float32's place"
    return root


def _per_seed_agreement(name: str, body: dict) -> list[tuple[float, float]]:
    """(measured here, recorded by table1.json / spectral.json) per seed and model."""
    g = body["groups"]["r4"]
    if name == "scale":
        return [(r["sigma_max_centered"], r["sigma_max_centered_recorded"]) for m in g["models"].values()
                for r in m["runs"]]
    if name == "intervals":
        return [pair for m in g["table1"].values() for pair in zip(m["SI"]["per_seed"], m["SI"]["per_seed_json"])]
    recorded = g["paper_check"]["per_seed_table1_json"]
    return [pair for m, values in g["settings"]["paper"]["methods"].items()
            for pair in zip(values["per_seed"], recorded[m])]


@pytest.mark.parametrize("command", ["scale", "intervals", "si-settings"])
def test_an_evaluation_command_measures_a_bf16_folders_own_models_on_a_cpu_without_bf16(run_cli, no_bf16,
                                                                                         bf16_folder, command):
    rc, _, err = run_cli(command, "--profile", "smoke", "--groups", "r4", "--device", "cpu", "--no-progress",
                         "--results", str(bf16_folder))
    assert rc == 0, err
    name = command.replace("-", "_")
    body = read_json(bf16_folder / "smoke" / f"{name}.json")
    assert body["meta"]["precision"] == "bf16"
    pairs = _per_seed_agreement(name, body)
    assert pairs and all(abs(a - b) <= 1e-5 * max(1.0, abs(b)) for a, b in pairs), pairs


def test_results_files_that_disagree_on_the_precision_are_refused_naming_both():
    from nets.experiments.common import trained_precision
    from nets.results_io import ResultsFileError

    assert trained_precision({"table1.json": {"meta": {}}, "spectral.json": {"meta": {"precision": "fp32"}}}) == "fp32"
    with pytest.raises(ResultsFileError, match="table1.json: bf16, spectral.json: fp32"):
        trained_precision({"table1.json": {"meta": {"precision": "bf16"}}, "spectral.json": {"meta": {}}})
