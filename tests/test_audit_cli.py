"""``python -m nets audit`` on a model defined outside the package: it writes the JSON and the figures,
and every bad input is one line on stderr, exit status 2, and nothing written."""

from __future__ import annotations

import json
import re
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from torch import nn
import torch

from nets import audit_cli

ROOT = Path(__file__).resolve().parents[1]

MODELS = textwrap.dedent('''
    import torch
    from torch import nn

    def cnn(channels=1, classes=9):
        torch.manual_seed(0)
        return nn.Sequential(nn.Conv2d(channels, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                             nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(16, classes))

    def rgb_cnn():
        return cnn(channels=3)

    def cnn_float64():
        return cnn().double()

    def five_classes():
        return cnn(classes=5)

    def feature_maps():
        return nn.Conv2d(1, 2, 3)

    class NaNNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(36 * 36, 9)

        def forward(self, x):
            return self.lin(x.flatten(1)) * float("nan")

    def nan_logits():
        return NaNNet()

    def broken():
        raise RuntimeError("cannot build")

    def exits():
        import sys
        sys.exit(3)

    class AssertsRGB(nn.Module):
        def forward(self, x):
            assert x.shape[1] == 3, f"expected (N, 3, H, W), got {tuple(x.shape)}"
            return x.mean(dim=(2, 3))

    def asserting():
        return AssertsRGB()

    class RunsOutOfMemory(nn.Module):
        """A CNN whose allocator gives up on batches of more than 8 images."""

        def __init__(self, error):
            super().__init__()
            self.net, self.error = cnn(), error

        def forward(self, x):
            if x.shape[0] > 8:
                raise self.error
            return self.net(x)

    class ChannelsLastNet(nn.Module):
        """Written for (N, H, W, 3) images: a linear map of each pixel's colour, averaged over the image."""

        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.lin = nn.Linear(3, 9)

        def forward(self, x):
            return self.lin(x).mean(dim=(1, 2))

    def channels_last():
        return ChannelsLastNet()

    def double_cnn():
        return cnn().double()

    def cpu_oom():
        return RunsOutOfMemory(RuntimeError("[enforce fail at alloc_cpu.cpp:119] DefaultCPUAllocator: can't "
                                            "allocate memory: you tried to allocate 9663676416 bytes."))

    def cuda_oom():
        from nets.model_checks import OutOfMemoryError
        return RunsOutOfMemory(OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB"))
''')


@pytest.fixture
def user_module(user_models):
    return user_models("user_models_for_audit", MODELS)


def run_main(out: Path, *args: str) -> int:
    return audit_cli.main(["--group", "r4", "--n", "8", "--n-steps", "2", "--n-resamples", "100",
                           "--out", str(out), *args])


def test_the_audit_command_runs_end_to_end_on_a_model_outside_the_package(tmp_path, user_module):
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(user_module), str(ROOT)])}
    proc = subprocess.run([sys.executable, "-m", "nets", "audit", "--model", "user_models_for_audit:cnn",
                           "--dataset", "mnist", "--group", "r4", "--n", "16", "--n-steps", "3",
                           "--n-resamples", "100", "--out", str(out)],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "| SI |" in proc.stdout and "eval mode" in proc.stdout
    record = json.loads((out / "audit.json").read_text())
    assert record["n_samples"] == 16 and record["input_shape"] == [16, 1, 36, 36]
    assert "Accuracy over the orbit per class" in proc.stdout
    assert sum(c["n"] for c in record["classes"]["classes"]) == 16
    assert (out / "audit.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "audit.pdf").read_bytes()[:4] == b"%PDF"


def test_two_weights_files_of_one_name_are_told_apart_by_their_paths(tmp_path, user_module):
    import user_models_for_audit as m

    model = m.cnn()
    for run, c in (("runA", 1.0), ("runB", 2.0)):
        with torch.no_grad():
            model[-1].weight.mul_(c)
        (tmp_path / run).mkdir()
        torch.save(model.state_dict(), tmp_path / run / "model.pt")
    a, b = (str(tmp_path / r / "model.pt") for r in ("runA", "runB"))
    out = tmp_path / "out"
    assert run_main(out, "--model", "user_models_for_audit:cnn", "--weights", b,
                    "--baseline", "user_models_for_audit:cnn", "--baseline-weights", a) == 0
    record = json.loads((out / "compare.json").read_text())
    assert (record["a"], record["b"]) == (f"user_models_for_audit:cnn ({a})", f"user_models_for_audit:cnn ({b})")
    assert record["effects"]["logit_scale"]["effect"]["value"] != pytest.approx(1.0, rel=1e-3)


def test_a_baseline_of_another_dtype_is_measured_on_the_images_in_its_own(tmp_path, user_module):
    """The images were cast to the audited model's dtype and refused by the baseline: 'cast one of them'."""
    out = tmp_path / "out"
    assert run_main(out, "--model", "user_models_for_audit:cnn_float64", "--baseline", "user_models_for_audit:cnn") == 0
    record = json.loads((out / "compare.json").read_text())
    assert record["effects"]["LI"]["effect"]["value"] == pytest.approx(1.0, rel=1e-4)  # the same weights, float64


def test_a_model_compared_with_itself_is_told_apart_as_the_baseline(tmp_path, user_module):
    out = tmp_path / "out"
    assert run_main(out, "--model", "user_models_for_audit:cnn", "--baseline", "user_models_for_audit:cnn") == 0
    record = json.loads((out / "compare.json").read_text())
    assert (record["a"], record["b"]) == ("user_models_for_audit:cnn [baseline]", "user_models_for_audit:cnn")


def test_weights_load_from_a_state_dict_file(tmp_path, user_module):
    import user_models_for_audit as m

    model = m.cnn()
    with torch.no_grad():
        model[-1].bias.fill_(100.0)  # every class alike: the audit must see the loaded weights
    torch.save(model.state_dict(), tmp_path / "w.pt")
    assert run_main(tmp_path / "out", "--model", "user_models_for_audit:cnn", "--weights", str(tmp_path / "w.pt")) == 0
    record = json.loads((tmp_path / "out" / "audit.json").read_text())
    assert record["settings"]["source"]["weights"] == str(tmp_path / "w.pt")


@pytest.mark.parametrize("wrap", ["training checkpoint", "data parallel"])
def test_weights_load_from_a_training_checkpoint_or_a_data_parallel_model(tmp_path, wrap):
    from nets.model_spec import load_weights

    saved = nn.Linear(4, 3)
    sd = saved.state_dict()
    obj = {"state_dict": sd, "epoch": 7, "lr": 1e-3} if wrap == "training checkpoint" \
        else {f"module.{k}": v for k, v in sd.items()}
    torch.save(obj, tmp_path / "w.pt")
    model = nn.Linear(4, 3)
    load_weights(model, str(tmp_path / "w.pt"))
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), sd.values()))


def test_weights_file_with_two_state_dicts_names_them(tmp_path):
    from nets.model_spec import ModelSpecError, load_weights

    sd = nn.Linear(4, 3).state_dict()
    torch.save({"model": sd, "ema": sd}, tmp_path / "w.pt")
    with pytest.raises(ModelSpecError, match="holds state dicts under 'model', 'ema'; save the one to audit alone"):
        load_weights(nn.Linear(4, 3), str(tmp_path / "w.pt"))


def test_the_record_says_which_code_machine_and_command_made_it(tmp_path, user_module):
    assert run_main(tmp_path / "out", "--model", "user_models_for_audit:cnn", "--seed", "3") == 0
    prov = json.loads((tmp_path / "out" / "audit.json").read_text())["settings"]["provenance"]
    assert prov["command"].startswith("python -m nets audit --group r4") and "--seed 3" in prov["command"]
    assert prov["versions"]["torch"] == torch.__version__ and "flags" in json.dumps(prov["cpu"])
    assert {"git_commit", "git_dirty", "started_at", "wall_time_s", "precision"} <= set(prov)


BAD = {
    "factory that cannot be imported": (["--model", "no_such_module_for_audit:cnn"], "cannot import module"),
    "factory that fails": (["--model", "user_models_for_audit:broken"], "cannot build"),
    "factory that exits": (["--model", "user_models_for_audit:exits"],
                           r"user_models_for_audit:exits\(\) failed: it called sys.exit\(3\)"),
    "output not (N, classes)": (["--model", "user_models_for_audit:feature_maps"], r"logits"),
    "input shape the model refuses": (["--model", "user_models_for_audit:rgb_cnn"],
                                      r"refused input of shape \(M, 1, 36, 36\) \(M = 32, the batch the measure "
                                      r"built\); it accepts \(M, 3, 36, 36\)"),
    "group that does not fit": (["--model", "user_models_for_audit:cnn", "--group", "t5"], "divisible"),
    "NaN logits": (["--model", "user_models_for_audit:nan_logits", "--channels", "0"], "NaN or inf logits"),
    "negative bootstrap seed": (["--model", "user_models_for_audit:cnn", "--seed", "-1"],
                                "the bootstrap seed must be an int >= 0, got -1"),
    "device torch does not know": (["--model", "user_models_for_audit:cnn", "--device", "gpu"],
                                   "unknown --device 'gpu'; use auto, cpu, cuda or cuda:N"),
    "no threads": (["--model", "user_models_for_audit:cnn", "--threads", "0"], "--threads must be >= 1, got 0"),
    "chunk size 0": (["--model", "user_models_for_audit:cnn", "--chunk-size", "0"], "--chunk-size must be at least 1"),
    "CUDA device this machine lacks": (["--model", "user_models_for_audit:cnn", "--device", "cuda:99"],
                                       "--device cuda:99: (CUDA is not available|this machine has)"),
    "labels out of range": (["--model", "user_models_for_audit:five_classes"], r"labels y must be in \[0, 5\)"),
    "weights that do not match": (["--model", "user_models_for_audit:cnn", "--weights", "{mismatch}"],
                                  "does not match the model"),
    "weights file missing": (["--model", "user_models_for_audit:cnn", "--weights", "{missing}"], "does not exist"),
    "baseline weights without a baseline": (["--model", "user_models_for_audit:cnn", "--baseline-weights",
                                             "{mismatch}"], "--baseline-weights needs --baseline"),
    "model that asserts on its input": (["--model", "user_models_for_audit:asserting"],
                                        r"refused input of shape \(M, 1, 36, 36\).*AssertionError: expected"),
    "baseline that cannot be imported": (["--model", "user_models_for_audit:cnn", "--baseline",
                                          "no_such_module_for_audit:cnn"],
                                         "cannot import module 'no_such_module_for_audit' for --baseline"),
    "whole model saved instead of its weights": (["--model", "user_models_for_audit:cnn", "--weights", "{whole}"],
                                                 r"cannot load weights .*weights_only=True: [^\x1b]*$"),
    "baseline that refuses the images": (["--model", "user_models_for_audit:cnn", "--baseline",
                                          "user_models_for_audit:rgb_cnn"],
                                         r"--baseline user_models_for_audit:rgb_cnn: .*refused input of shape"),
    "three-channel model on one-channel dataset images": (["--model", "user_models_for_audit:rgb_cnn"],
                                                          r"it accepts \(M, 3, 36, 36\).*\(with --dataset: give "
                                                          r"--channels 3\)$"),
}


@pytest.mark.parametrize("case", BAD)
def test_a_bad_input_is_one_line_exit_two_and_nothing_written(case, tmp_path, user_module, capsys):
    import user_models_for_audit as m

    torch.save(m.five_classes().state_dict(), tmp_path / "mismatch.pt")
    torch.save(m.cnn(), tmp_path / "whole.pt")  # the pickled module, which weights_only=True refuses
    args, message = BAD[case]
    args = [a.format(mismatch=tmp_path / "mismatch.pt", missing=tmp_path / "missing.pt", whole=tmp_path / "whole.pt")
            for a in args]
    out = tmp_path / "out"
    assert run_main(out, *args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert re.search(message, err), err
    assert not out.exists()


@pytest.mark.parametrize("where", ["a file", "below a file"])
def test_an_out_folder_that_cannot_be_made_is_one_line_exit_one_before_the_audit(where, tmp_path, user_module,
                                                                                capsys, monkeypatch):
    (tmp_path / "taken").write_text("a file")
    out = tmp_path / "taken" if where == "a file" else tmp_path / "taken" / "sub"
    monkeypatch.setattr(audit_cli, "audit_images", lambda *a: pytest.fail("the audit ran before --out was checked"))
    assert run_main(out, "--model", "user_models_for_audit:cnn") == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: --out {out}: ") and err.count("\n") == 1 and "not a folder" in err, err
    assert (tmp_path / "taken").read_text() == "a file"


def test_a_smaller_chunk_size_measures_the_same_numbers_and_is_recorded(tmp_path, user_module):
    records = {}
    for chunk in ("256", "3"):
        assert run_main(tmp_path / chunk, "--model", "user_models_for_audit:cnn", "--chunk-size", chunk) == 0
        records[chunk] = json.loads((tmp_path / chunk / "audit.json").read_text())
    assert records["3"]["settings"]["chunk_size"] == 3
    for k, e in records["256"]["measures"].items():
        assert records["3"]["measures"][k]["value"] == pytest.approx(e["value"], rel=1e-5, abs=1e-9), k


@pytest.mark.parametrize("model", ["cpu_oom", "cuda_oom"])
def test_running_out_of_memory_in_the_model_is_one_line_naming_the_chunk_size_exit_one_and_nothing_written(
        model, tmp_path, user_module, capsys):
    # the model fails only on batches larger than a probe's: the orbit's batch, not a layout it refuses
    out = tmp_path / "out"
    assert run_main(out, "--model", f"user_models_for_audit:{model}", "--chunk-size", "64") == 1
    err = capsys.readouterr().err
    assert err.startswith("error: out of memory on --device cpu at --chunk-size 64") and err.count("\n") == 1, err
    assert "lower --chunk-size" in err and "refused input" not in err and not out.exists()


def test_another_runtime_error_is_not_taken_for_running_out_of_memory(tmp_path, user_module, monkeypatch):
    from nets import auditing

    def broken(*a, **k):
        raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")

    monkeypatch.setattr(auditing, "audit", broken)
    with pytest.raises(RuntimeError, match="shapes cannot be multiplied"):
        run_main(tmp_path / "out", "--model", "user_models_for_audit:cnn")


def test_the_subcommand_plugs_into_another_parser():
    import argparse

    parser = argparse.ArgumentParser(prog="python -m nets")
    audit_cli.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["audit", "--model", "m:f", "--group", "d4", "--channels", "3", "--out", "o"])
    assert (args.command, args.model, args.group, args.channels, args.n) == ("audit", "m:f", "d4", 3, None)


def test_a_baseline_is_compared_on_the_same_images_with_paired_intervals(tmp_path, user_module):
    import user_models_for_audit as m

    model = m.cnn()
    with torch.no_grad():
        model[-1].weight.mul_(2.0)  # twice the baseline's logits, up to the bias
        model[-1].bias.mul_(2.0)
    torch.save(model.state_dict(), tmp_path / "twice.pt")
    out = tmp_path / "out"
    assert run_main(out, "--model", "user_models_for_audit:cnn", "--weights", str(tmp_path / "twice.pt"),
                    "--baseline", "user_models_for_audit:cnn", "--n", "20") == 0  # 20: enough for a direction
    record = json.loads((out / "compare.json").read_text())
    assert record["a"] == "user_models_for_audit:cnn" and record["b"] == "user_models_for_audit:cnn (twice.pt)"
    effects = record["effects"]
    assert effects["logit_scale"]["effect"]["value"] == pytest.approx(2.0, rel=1e-5)
    assert effects["sigma_per_scale"]["effect"]["value"] == pytest.approx(1.0, rel=1e-5)
    assert effects["accuracy"]["effect"]["value"] == 0 and effects["logit_scale"]["direction"] == "B > A"
    assert all(c["effect"]["value"] == 0 for c in record["classes"].values())  # same argmax, class by class
    assert record["settings"]["source"]["baseline"] == "user_models_for_audit:cnn"
    audit_record = json.loads((out / "audit.json").read_text())  # B's own numbers are the audit's
    assert effects["LI"]["b"] == audit_record["measures"]["LI"]



@pytest.mark.parametrize("flag, value", [("--si-samples", "0"), ("--n-resamples", "50"), ("--n-steps", "0")])
def test_a_bad_size_is_named_by_its_option(flag, value, tmp_path, run_cli):
    rc, _, err = run_cli("audit", "--model", "nets.models:MLP", "--group", "r4", "--channels", "0", "--n", "8",
                         flag, value, "--out", str(tmp_path / "a"))
    assert rc == 2 and err.startswith(f"error: {flag} must be") and err.count("\n") == 1, err


def test_the_channels_hint_is_for_the_audited_model_not_for_a_refusing_baseline(tmp_path, user_module, capsys):
    assert run_main(tmp_path / "out", "--model", "user_models_for_audit:cnn", "--baseline",
                    "user_models_for_audit:rgb_cnn") == 2
    err = capsys.readouterr().err
    assert "--baseline user_models_for_audit:rgb_cnn" in err and "--channels" not in err


def test_an_audit_without_baseline_moves_an_earlier_comparison_aside_not_leaving_it_beside(tmp_path, user_module,
                                                                                          capsys):
    out = tmp_path / "out"
    assert run_main(out, "--model", "user_models_for_audit:cnn", "--baseline", "user_models_for_audit:cnn") == 0
    before = (out / "compare.json").read_bytes()
    assert run_main(out, "--model", "user_models_for_audit:cnn") == 0
    assert not (out / "compare.json").exists() and (out / "compare.json.earlier").read_bytes() == before
    assert "an earlier audit's comparison, aside to compare.json.earlier" in capsys.readouterr().out


def test_an_audit_of_another_model_moves_the_earlier_record_aside_and_the_same_audit_replaces_it(tmp_path,
                                                                                                 user_module, capsys):
    out = tmp_path / "out"
    assert run_main(out, "--model", "user_models_for_audit:cnn") == 0
    first = (out / "audit.json").read_bytes()
    assert run_main(out, "--model", "user_models_for_audit:cnn") == 0  # the same audit again: replaced
    assert not (out / "audit.json.earlier").exists() and "aside" not in capsys.readouterr().out
    assert run_main(out, "--model", "user_models_for_audit:cnn", "--n", "6") == 0  # other images: kept aside
    assert (out / "audit.json.earlier").exists() and json.loads((out / "audit.json").read_text())["n_samples"] == 6
    assert json.loads((out / "audit.json.earlier").read_text())["n_samples"] == json.loads(first)["n_samples"]
    assert "from an audit of user_models_for_audit:cnn under r4, aside to audit.json.earlier" in capsys.readouterr().out


def test_weights_retrained_in_place_are_another_audit_and_its_comparison_is_kept_with_it(tmp_path, user_module,
                                                                                        capsys):
    import user_models_for_audit as m

    out, weights = tmp_path / "out", tmp_path / "mine.pt"
    torch.save(m.cnn().state_dict(), weights)
    args = ("--model", "user_models_for_audit:cnn", "--weights", str(weights), "--baseline", "user_models_for_audit:cnn")
    assert run_main(out, *args) == 0
    before = (out / "compare.json").read_bytes()
    model = m.cnn()
    with torch.no_grad():
        model[-1].bias.add_(1.0)
    torch.save(model.state_dict(), weights)  # the same path, other weights
    assert run_main(out, *args) == 0
    assert (out / "compare.json.earlier").read_bytes() == before and (out / "audit.json.earlier").exists()
    assert "compare.json, from an audit of user_models_for_audit:cnn under r4" in capsys.readouterr().out


@pytest.mark.parametrize("flags,message", [
    (["--groups", "r4", "t3"], "--groups is another command's option: audit measures one group, --group GROUP "
                               "(run it once per group)"),
    (["--group", "r4", "--ig-steps=20"], "--ig-steps is another command's option: audit names it --n-steps"),
])
def test_own_datas_names_for_options_are_told_audits_name_in_one_line(flags, message, capsys):
    with pytest.raises(SystemExit) as e:
        audit_cli.build_parser().parse_args(["--model", "m:f", "--out", "o", *flags])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count("\n") == 1 and message in err, err


def test_an_abbreviated_option_still_works():
    assert audit_cli.build_parser().parse_args(["--model", "m:f", "--out", "o", "--gro", "r4"]).group == "r4"


def test_channels_last_images_that_the_group_does_not_refuse_are_measured_with_one_warning(tmp_path, user_module,
                                                                                          run_cli):
    """f2 on (N, 8, 8, 3) flips the colour channels, not the image: measured as asked, and said once."""
    torch.manual_seed(0)
    torch.save({"x": torch.randn(8, 8, 8, 3), "y": torch.randint(0, 9, (8,))}, tmp_path / "nhwc.pt")
    rc, out, err = run_cli("audit", "--model", "user_models_for_audit:channels_last", "--images",
                           str(tmp_path / "nhwc.pt"), "--group", "f2", "--n-steps", "2", "--n-resamples", "100",
                           "--out", str(tmp_path / "a"))
    assert rc == 0, err
    assert err.count("look channels-last") == 1, err  # SI adds that its smoothing spans the 3 "pixels" of the width
    assert ("warning: the --images images (8, 8, 8, 3) look channels-last, (N, H, W, C): the group acts on their "
            "last two axes, width and channels here; if they are, save x as x.permute(0, 3, 1, 2), (N, C, H, W) "
            "(a model written for (N, H, W, C) then takes them through a wrapper whose forward is "
            "net(x.permute(0, 2, 3, 1)))") in err


def test_dataset_images_are_cast_to_a_float64_models_dtype_as_image_files_are(tmp_path, user_module):
    # they were refused: "x has dtype torch.float32 but the model's parameters are torch.float64; cast one of them
    # (e.g. x.to(torch.float64))", a fix a command-line user cannot apply
    out = tmp_path / "out"
    assert run_main(out, "--model", "user_models_for_audit:double_cnn", "--dataset", "mnist") == 0
    record = json.loads((out / "audit.json").read_text())
    assert record["n_samples"] == 8 and 0 <= record["measures"]["SI"]["value"] <= 1
