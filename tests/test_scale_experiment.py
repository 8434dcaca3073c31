"""The logit-scale experiment (ours, beyond the paper): ``python -m nets scale`` splits Figure 5's
sigma_max(J) of the centered logits into their scale and the sensitivity per unit of scale.

The measures are checked against their definitions (scaling and shifting the logits), the smoke
run end to end (it follows ``spectral`` and ``centered`` into one temporary folder, about 30 s on
2 CPU cores, and must train nothing), and the report's rule on synthetic seeds.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from torch import nn

from nets.__main__ import main
from nets.experiments.scale import MEASURES, scale_measures
from nets.metrics import centered_logit_norm
from nets.scale_report import direction, mechanism, ratio_tests, scale_reading, scale_section
from nets.verdicts import fmt


class Affine(nn.Module):
    """``a f(x) + b 1``: the same classifier at another logit scale, shifted in every class alike."""

    def __init__(self, model: nn.Module, a: float, b: float = 0.0) -> None:
        super().__init__()
        self.model, self.a, self.b = model, a, b

    def forward(self, x):
        return self.a * self.model(x) + self.b


def _cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.Tanh(), nn.Flatten(), nn.Linear(4 * 12 * 12, 5)).double()


X = torch.randn(6, 1, 12, 12, generator=torch.Generator().manual_seed(1), dtype=torch.float64)


def test_centered_logit_norm_is_the_norm_of_the_logits_less_their_class_mean():
    f = torch.randn(7, 5, dtype=torch.float64)
    expected = (f - f.mean(dim=1, keepdim=True)).norm(dim=1)
    assert torch.allclose(centered_logit_norm(f), expected, rtol=1e-12)


def test_centered_logit_norm_refuses_logits_that_are_not_n_by_classes():
    with pytest.raises(ValueError, match=r"logits must be \(N, C\)"):
        centered_logit_norm(torch.zeros(3, 4, 5))


def test_scaling_the_logits_scales_sigma_and_scale_but_not_their_ratio():
    model = _cnn()
    base, scaled = scale_measures(model, X), scale_measures(Affine(model, 3.0), X)
    assert scaled["sigma_max_centered"] == pytest.approx(3 * base["sigma_max_centered"], rel=1e-9)
    assert scaled["logit_scale"] == pytest.approx(3 * base["logit_scale"], rel=1e-9)
    assert scaled["relative_sensitivity"] == pytest.approx(base["relative_sensitivity"], rel=1e-9)


def test_a_shift_common_to_every_class_changes_none_of_the_measures():
    model = _cnn()
    base, shifted = scale_measures(model, X), scale_measures(Affine(model, 1.0, b=50.0), X)
    for k in MEASURES:
        assert shifted[k] == pytest.approx(base[k], rel=1e-9)


# ---- end to end, smoke profile ------------------------------------------------------------------
@pytest.fixture(scope="module")
def smoke(centered_smoke, checkpoint_mtimes) -> tuple[Path, dict[str, int]]:
    """The shared smoke folder (spectral, then centered; tests/conftest.py) after ``scale`` (one
    thread), and its checkpoints before scale ran."""
    folder = centered_smoke[0]
    before = checkpoint_mtimes(folder)
    threads = torch.get_num_threads()
    try:
        assert main(["scale", "--profile", "smoke", "--results", str(folder.parent), "--no-progress",
                     "--threads", "1"]) == 0
    finally:
        torch.set_num_threads(threads)
    return folder, before


def _read(folder: Path, name: str) -> dict:
    return json.loads((folder / f"{name}.json").read_text())


def test_every_model_of_spectral_and_centered_is_measured_at_its_chosen_nu(smoke):
    folder, _ = smoke
    sc, sp, ce = _read(folder, "scale"), _read(folder, "spectral"), _read(folder, "centered")
    for g, entry in sc["groups"].items():
        expected = {**{k: m["key"] for k, m in sp["groups"][g]["models"].items()},
                    "IR-centered_normalized_logit": ce["groups"][g]["model"]["key"]}
        assert {k: m["key"] for k, m in entry["models"].items()} == expected


def test_the_detached_forms_model_is_measured_too_when_the_folder_has_detached_json(smoke, tmp_path):
    import shutil

    copy = tmp_path / "smoke"
    shutil.copytree(smoke[0], copy)
    threads = torch.get_num_threads()
    try:
        for cmd in ("detached", "scale"):
            assert main([cmd, "--profile", "smoke", "--results", str(tmp_path), "--no-progress", "--threads", "1"]) == 0
    finally:
        torch.set_num_threads(threads)
    sc, de = _read(copy, "scale"), _read(copy, "detached")
    assert set(sc["sources"]) == {"spectral.json", "centered.json", "detached.json"}
    for g, entry in sc["groups"].items():
        m = entry["models"]["IR-detached_normalized_logit"]
        assert m["key"] == de["groups"][g]["model"]["key"] and m["source"] == "detached.json"
        for r in m["runs"]:
            assert r["sigma_max_centered"] == pytest.approx(r["sigma_max_centered_recorded"], rel=1e-5)


def test_an_edited_centered_json_is_named_measured_without_and_left_where_it_is(smoke, tmp_path, capsys):
    import json
    import shutil

    copy = tmp_path / "smoke"
    shutil.copytree(smoke[0], copy)
    edited = json.loads((copy / "centered.json").read_text())
    edited["meta"]["wall_time_s"] += 1.0  # any change after its run wrote it (a fixed 1.0 was none where it ran 1 s)
    (copy / "centered.json").write_text(json.dumps(edited))
    capsys.readouterr()
    threads = torch.get_num_threads()
    try:
        assert main(["scale", "--profile", "smoke", "--results", str(tmp_path), "--no-progress", "--threads", "1"]) == 0
    finally:
        torch.set_num_threads(threads)
    err = capsys.readouterr().err
    assert f"warning: {copy / 'centered.json'} is damaged (its content no longer matches" in err
    assert "measures without its models" in err and json.loads((copy / "centered.json").read_text()) == edited
    assert set(_read(copy, "scale")["sources"]) == {"spectral.json"}


def test_sigma_is_scale_times_sensitivity_per_unit_of_scale_for_every_seed(smoke):
    for entry in _read(smoke[0], "scale")["groups"].values():
        for m in entry["models"].values():
            for r in m["runs"]:
                assert r["sigma_max_centered"] == pytest.approx(r["logit_scale"] * r["relative_sensitivity"],
                                                                rel=1e-12)


def test_the_recomputed_sigma_equals_the_one_spectral_and_centered_recorded(smoke):
    for entry in _read(smoke[0], "scale")["groups"].values():
        for m in entry["models"].values():
            for r in m["runs"]:
                assert r["sigma_max_centered"] == pytest.approx(r["sigma_max_centered_recorded"], rel=1e-5)


def test_scale_trains_nothing(smoke, checkpoint_mtimes):
    folder, before = smoke
    assert checkpoint_mtimes(folder) == before


def test_the_figure_and_the_report_section_are_written(smoke, capsys):
    folder, _ = smoke
    assert (folder / "figures" / "scale.png").stat().st_size > 0
    assert main(["report", "--profile", "smoke", "--results", str(folder.parent)]) == 0
    report = (folder / "REPORT.md").read_text()
    assert "Figure 5 split into logit scale" in report and "figures/scale.png" in report


def test_a_missing_checkpoint_is_one_line_exit_1_and_nothing_is_written(smoke, tmp_path, capsys):
    folder, _ = smoke
    copy = tmp_path / "smoke"
    copy.mkdir()
    for name in ("spectral.json", "centered.json"):
        (copy / name).write_bytes((folder / name).read_bytes())
    capsys.readouterr()
    assert main(["scale", "--profile", "smoke", "--results", str(tmp_path), "--no-progress"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no checkpoint" in err and "evaluates only" in err
    assert not (copy / "scale.json").exists()


def test_without_spectral_json_it_says_what_to_run_first(tmp_path, capsys):
    assert main(["scale", "--profile", "smoke", "--results", str(tmp_path), "--no-progress"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "python -m nets spectral --profile smoke" in err


# ---- the report's rule ---------------------------------------------------------------------------
def _model(scale: list[float], relative: list[float], method: str = "IR") -> dict:
    runs = [{"seed": i, "logit_scale": s, "relative_sensitivity": r, "sigma_max_centered": s * r}
            for i, (s, r) in enumerate(zip(scale, relative))]
    return {"method": method, "regularizer": "centered_normalized_logit" if method == "IR" else None,
            "nu": 10.0 if method == "IR" else None, "key": "k", "runs": runs,
            **{k: {"mean": sum(r[k] for r in runs) / len(runs), "std": 0.0} for k in MEASURES}}


DA = _model([30.0, 32.0, 31.0, 29.0], [0.33, 0.34, 0.35, 0.33], "DA")


def test_a_model_with_a_third_of_das_scale_and_the_same_relative_sensitivity_is_smaller_scale():
    ir = _model([10.0, 10.5, 10.4, 9.6], [0.34, 0.33, 0.35, 0.34])
    assert mechanism(ratio_tests(ir, DA)) == "smaller scale"


def test_the_scale_free_reading_is_supported_when_only_the_relative_sensitivity_falls():
    ir = _model([31.0, 30.0, 33.0, 28.0], [0.20, 0.21, 0.19, 0.20])
    tests = ratio_tests(ir, DA)
    assert mechanism(tests) == "smoother" and scale_reading(tests) == "supported"


def test_the_scale_free_reading_is_not_supported_when_the_scale_falls():
    ir = _model([20.0, 21.0, 20.5, 19.0], [0.34, 0.33, 0.35, 0.34])
    assert scale_reading(ratio_tests(ir, DA)) == "not supported"


def test_a_seed_with_a_zero_scale_is_left_out_by_name_and_the_others_still_decide():
    """A collapsed model (constant logits: scale 0, sigma 0, relative sensitivity undefined) on one
    seed: the other seeds' ratios stand, on the side that seed's limit (-inf) agrees with."""
    ir = _model([10.0, 10.5, 10.4, 9.6], [0.34, 0.33, 0.35, 0.34])
    ir["runs"][3].update(logit_scale=0.0, sigma_max_centered=0.0, relative_sensitivity=float("nan"))
    tests = ratio_tests(ir, DA)
    assert tests["logit_scale"].left_out == {3: -math.inf} and tests["logit_scale"].test.interval.n == 3
    (seed, limit), = tests["relative_sensitivity"].left_out.items()  # not finite: its side unknown
    assert seed == 3 and math.isnan(limit)
    assert direction(tests["logit_scale"]) == "lower" and mechanism(tests) == "smaller scale"


@pytest.mark.parametrize("zero_in, others_ratio", [("DA", "lower"), ("IR", "higher")])
def test_a_left_out_seed_on_the_other_side_keeps_the_direction_undecided(zero_in, others_ratio):
    """DA's scale 0 on one seed (its ratio +inf) stands against "lower" on the others, IR's (-inf)
    against "higher"."""
    da = _model([30.0, 32.0, 31.0, 29.0], [0.33, 0.34, 0.35, 0.33], "DA")
    scales = [10.0, 10.5, 10.4, 9.6] if others_ratio == "lower" else [90.0, 95.0, 93.0, 91.0]
    ir = _model(scales, [0.34] * 4)
    assert direction(ratio_tests(ir, da)["logit_scale"]) == others_ratio
    ({"DA": da, "IR": ir}[zero_in])["runs"][3].update(logit_scale=0.0, sigma_max_centered=0.0)
    assert direction(ratio_tests(ir, da)["logit_scale"]) == "not distinguishable"


def test_a_model_identical_to_da_is_neither_lower_nor_higher():
    """An interval of no width at 0 was read "lower" (a decision that accepts high == 0)."""
    assert direction(ratio_tests(_model([30.0, 32.0, 31.0, 29.0], [0.33, 0.34, 0.35, 0.33]), DA)["logit_scale"]) \
        == "not distinguishable"


def test_a_seed_whose_value_is_not_finite_keeps_either_direction_undecided():
    ir = _model([10.0, 10.5, 10.4, 9.6], [0.34, 0.33, 0.35, 0.34])
    ir["runs"][3]["logit_scale"] = float("nan")  # its side unknown
    assert direction(ratio_tests(ir, DA)["logit_scale"]) == "not distinguishable"


def test_every_seed_left_out_reads_not_distinguishable_and_names_them():
    ir = _model([0.0, 0.0, 0.0, 0.0], [0.34, 0.33, 0.35, 0.34])
    rt = ratio_tests(ir, DA)["logit_scale"]
    assert rt.test is None and direction(rt) == "not distinguishable"
    text = "\n".join(scale_section({"groups": {"r4": {"models": {"DA": DA, "IR-centered_normalized_logit": ir}}}},
                                   fmt=fmt))
    assert "seeds 0, 1, 2, 3 left out: no log-ratio" in text and "not measured" not in text


def test_the_section_is_absent_without_scale_json_and_names_the_reading_with_it():
    assert scale_section(None, fmt=fmt) == []
    ir = _model([31.0, 30.0, 33.0, 28.0], [0.20, 0.21, 0.19, 0.20])
    text = "\n".join(scale_section({"groups": {"r4": {"models": {"DA": DA, "IR-centered_normalized_logit": ir}}}},
                                   fmt=fmt))
    assert "R4: supported" in text and "smoother" in text
