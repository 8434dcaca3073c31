"""``python -m nets own-data``: the paper's claims on a model of your own trained on your own images
(train / val / test in one file). It trains WT, DA and IR, decides claims 1, 1b, 2, 3 and 5 (claim 4
and Figure 2 not run), resumes instead of retraining, and refuses bad input in one line before
anything is written."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from nets import own_data_cli
from nets.image_file import ImageFileError, load_split_file
from split_data import brightness_splits as splits

MODELS = textwrap.dedent('''
    import torch
    from torch import nn

    def small():
        return nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 144, 3))

    def two_logits():
        return nn.Sequential(nn.Flatten(), nn.Linear(144, 2))

    def feature_maps():
        return nn.Conv2d(1, 2, 3)

    def rgb():
        return nn.Sequential(nn.Conv2d(3, 2, 3), nn.Flatten(), nn.Linear(2 * 10 * 10, 3))

    def linear():
        return nn.Sequential(nn.Flatten(), nn.Linear(144, 3))

    class PixelColours(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(3, 3)

        def forward(self, x):  # written for (N, H, W, 3)
            return self.lin(x).mean(dim=(1, 2))

    def channels_last_model():
        return PixelColours()

    class Pair(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = linear()

        def forward(self, x):
            return self.inner(x), x

    def pair():
        return Pair()

    def one_logit():
        return nn.Sequential(nn.Flatten(), nn.Linear(144, 1))

    def nan_logits():
        model = linear()
        with torch.no_grad():
            model[1].bias.fill_(float("nan"))
        return model
''')


@pytest.fixture
def user_module(user_models):
    return user_models("user_models_for_own_data", MODELS)


@pytest.fixture
def data(tmp_path):
    path = tmp_path / "mine.pt"
    torch.save(splits(), path)
    return path


def run_main(data, out, *args, model="user_models_for_own_data:small"):
    return own_data_cli.main(["--model", model, "--data", str(data), "--out", str(out), "--epochs", "2",
                              "--seeds", "0", "1", "--nu-grid", "10", "--si-samples", "8", "--sigma-samples", "8",
                              "--threads", "1", "--no-progress", *args])


def test_the_mirror_and_translations_along_both_axes_train_end_to_end(tmp_path, data, user_module):
    # groups beyond the paper's: WT under them is exactly invariant, an unconstrained CNN is not
    out = tmp_path / "out"
    assert run_main(data, out, "--groups", "f2", "t2xy") == 0
    record = json.loads((out / "own_data.json").read_text())
    for g in ("f2", "t2xy"):
        methods = record["table1"]["groups"][g]["methods"]
        assert methods["WT"]["LI"]["mean"] < 1e-9 and methods["WT"]["SI"]["mean"] > 0.999
        assert methods["DA"]["LI"]["mean"] > 1e-6
    assert "f2" in (out / "REPORT.md").read_text()


def test_one_group_named_twice_is_trained_once(tmp_path, data, user_module):
    out = tmp_path / "out"
    assert run_main(data, out, "--groups", "F2", "f2", "t02xy") == 0
    assert list(json.loads((out / "own_data.json").read_text())["table1"]["groups"]) == ["f2", "t2xy"]


def test_the_command_trains_measures_and_decides_the_claims(tmp_path, data, user_module):
    out = tmp_path / "out"
    assert run_main(data, out, "--groups", "r4", "t4") == 0
    record = json.loads((out / "own_data.json").read_text())
    assert record["source"]["n_classes"] == 3 and record["source"]["image_shape"] == [1, 12, 12]
    for g in ("r4", "t4"):
        methods = record["table1"]["groups"][g]["methods"]
        assert set(methods) == {"WT", "DA", "IR"}
        assert methods["WT"]["LI"]["mean"] < 1e-9 and methods["WT"]["SI"]["mean"] > 0.999  # weight tying
        assert methods["DA"]["LI"]["mean"] > 1e-6  # an unconstrained CNN is not invariant
        assert [r["seed"] for r in methods["DA"]["runs"]] == [0, 1]
        assert set(record["spectral"]["groups"][g]["models"]) == {"DA", "IR-logit"}
    report = (out / "REPORT.md").read_text()
    table = report.split("| claim | statement | verdict |")[1].split("\n\n")[0]
    claims = re.findall(r"^\| (\w+) \| .* \| \*\*(.+)\*\* \|$", table, flags=re.M)
    assert [c for c, _ in claims] == ["1", "1b", "2", "3", "5"] and dict(claims)["1"] == "holds"
    assert "claim 4 (needs a second dataset" in report


def test_the_orbit_accuracy_per_class_adds_up_to_table1s_for_every_method_and_seed(tmp_path, data, user_module):
    out = tmp_path / "out"
    assert run_main(data, out, "--groups", "r4") == 0
    record = json.loads((out / "own_data.json").read_text())
    entry, methods = record["per_class"]["groups"]["r4"], record["table1"]["groups"]["r4"]["methods"]
    assert entry["classes"] == [0, 1, 2] and sum(entry["counts"]) == 48
    for m in ("WT", "DA", "IR"):
        for per_class, run in zip(entry["methods"][m]["accuracy"], methods[m]["runs"]):
            assert np.dot(per_class, entry["counts"]) / 48 == pytest.approx(run["accuracy"], abs=1e-9)
    assert "| class | test samples | WT Acc. (%) | DA Acc. (%) | IR Acc. (%) | WT - DA (points) [95%] |" \
        in (out / "REPORT.md").read_text()


def test_a_second_run_loads_the_checkpoints_and_gives_the_same_numbers(tmp_path, data, user_module):
    out = tmp_path / "out"
    assert run_main(data, out, "--groups", "r4") == 0
    first = json.loads((out / "own_data.json").read_text())
    stamps = {p.name: p.stat().st_mtime_ns for p in (out / "checkpoints").glob("*.pt")}
    assert run_main(data, out, "--groups", "r4") == 0
    assert {p.name: p.stat().st_mtime_ns for p in (out / "checkpoints").glob("*.pt")} == stamps
    again = json.loads((out / "own_data.json").read_text())
    assert again["table1"] == first["table1"] and again["spectral"] == first["spectral"]


def test_a_folder_trained_on_other_data_or_another_model_is_refused_naming_which(tmp_path, data, user_module,
                                                                               capsys):
    out = tmp_path / "out"
    assert run_main(data, out, "--groups", "r4") == 0
    before = (out / "own_data.json").read_bytes()
    assert run_main(data, out, "--groups", "r4", model="user_models_for_own_data:linear") == 2
    assert "holds checkpoints trained on other model (user_models_for_own_data:small, " in capsys.readouterr().err
    torch.save(splits(sizes=(("train", 64), ("val", 32), ("test", 48))), data)  # the same path, other images
    assert run_main(data, out, "--groups", "r4") == 2
    assert "holds checkpoints trained on other data (SHA-256 " in capsys.readouterr().err
    assert (out / "own_data.json").read_bytes() == before


def test_other_settings_reuse_the_checkpoints_that_still_apply(tmp_path, data, user_module, capsys):
    out = tmp_path / "out"
    assert run_main(data, out, "--groups", "r4") == 0
    capsys.readouterr()
    stamps = {p.name: p.stat().st_mtime_ns for p in (out / "checkpoints").glob("*.pt")}
    assert run_main(data, out, "--groups", "r4", "--seeds", "0", "1", "2", "--si-samples", "4") == 0
    now = {p.name: p.stat().st_mtime_ns for p in (out / "checkpoints").glob("*.pt")}
    assert {k: now[k] for k in stamps} == stamps and len(now) > len(stamps)  # seeds 0, 1 loaded, seed 2 trained
    result = json.loads((out / "own_data.json").read_text())
    assert result["source"]["settings"]["seeds"] == [0, 1, 2]
    assert "SI on 4 images" in (out / "REPORT.md").read_text()
    assert ("own-data: replacing " + str(out / "own_data.json") + ", made with other settings (seeds [0, 1] there, "
            "[0, 1, 2] here; n_si_samples 8 there, 4 here); its checkpoints are kept") in capsys.readouterr().out


def test_a_run_on_fewer_groups_keeps_the_others_results(tmp_path, data, user_module, capsys):
    out = tmp_path / "out"
    assert run_main(data, out, "--groups", "r4", "f2") == 0
    first = json.loads((out / "own_data.json").read_text())
    assert run_main(data, out, "--groups", "f2") == 0
    again = json.loads((out / "own_data.json").read_text())
    assert set(again["table1"]["groups"]) == {"r4", "f2"}
    assert again["table1"]["groups"]["r4"] == first["table1"]["groups"]["r4"]
    assert "R4" in (out / "REPORT.md").read_text()
    capsys.readouterr()
    assert run_main(data, out, "--groups", "f2", "--si-samples", "4") == 0  # other settings: r4 is not kept
    assert "holds r4 from other settings; not kept" in capsys.readouterr().out
    assert set(json.loads((out / "own_data.json").read_text())["table1"]["groups"]) == {"f2"}


def test_an_edited_file_keeps_none_of_its_groups_and_is_moved_aside_not_sealed_again(tmp_path, data, user_module,
                                                                                      capsys):
    out = tmp_path / "out"
    assert run_main(data, out, "--groups", "r4", "f2") == 0
    edited = json.loads((out / "own_data.json").read_text())
    edited["table1"]["groups"]["r4"]["methods"]["IR"]["accuracy"]["mean"] = 0.999  # a hand edit
    (out / "own_data.json").write_text(json.dumps(edited))
    capsys.readouterr()
    assert run_main(data, out, "--groups", "f2") == 0
    said = capsys.readouterr().out
    assert "no longer matches meta.content_sha256" in said and "moved it to own_data.json.corrupt" in said
    assert set(json.loads((out / "own_data.json").read_text())["table1"]["groups"]) == {"f2"}
    assert json.loads((out / "own_data.json.corrupt").read_text()) == edited  # the edit is kept, as written



def test_a_merged_file_keeps_each_groups_command_and_place(tmp_path, data, user_module):
    out = tmp_path / "out"
    assert run_main(data, out, "--groups", "r4", "f2") == 0
    first = json.loads((out / "own_data.json").read_text())
    assert list(first["group_provenance"]) == ["r4", "f2"]
    assert first["group_provenance"]["r4"]["command"] == first["meta"]["command"]
    assert "Command: `" in (out / "REPORT.md").read_text()  # one sitting: one command, as before
    assert run_main(data, out, "--groups", "r4") == 0
    again = json.loads((out / "own_data.json").read_text())
    for section in ("table1", "spectral", "per_class"):  # r4 rerun keeps its place before the kept f2
        assert list(again[section]["groups"]) == ["r4", "f2"], section
    assert again["group_provenance"]["f2"] == first["group_provenance"]["f2"]  # how the kept group was made
    assert again["group_provenance"]["r4"]["started_at"] == again["meta"]["started_at"]
    text = (out / "REPORT.md").read_text()
    assert text.count("`python -m nets own-data") == 2 and "(R4; " in text and "(F2; " in text
    assert run_main(data, out, "--groups", "f2", "r4") == 0  # every group again, named in another order
    assert list(json.loads((out / "own_data.json").read_text())["table1"]["groups"]) == ["r4", "f2"]

def test_batch_size_and_learning_rate_reach_the_runs_and_the_report(tmp_path, data, user_module):
    out = tmp_path / "out"
    assert run_main(data, out, "--groups", "r4", "--batch-size", "16", "--lr", "0.002") == 0
    result = json.loads((out / "own_data.json").read_text())
    config = result["table1"]["groups"]["r4"]["methods"]["DA"]["config"]
    assert config["batch_size"] == 16 and config["lr"] == 0.002
    assert "(batch 16, Adam lr 0.002)" in (out / "REPORT.md").read_text()
    assert all("bs16" in p.name and "lr0.002" in p.name for p in (out / "checkpoints").glob("*.pt"))


def test_the_report_gives_the_sample_counts_it_used(tmp_path, data, user_module):
    out = tmp_path / "out"
    assert run_main(data, out, "--groups", "r4", "--si-samples", "1000", "--sigma-samples", "1000") == 0
    assert "SI on 48 images (50 integrated-gradients steps), sigma_max on 48" in (out / "REPORT.md").read_text()


def test_pt_and_npz_files_of_the_same_splits_load_alike(tmp_path):
    d = splits()
    torch.save(d, tmp_path / "a.pt")
    np.savez(tmp_path / "a.npz", **{k: v.numpy() for k, v in d.items()})
    a, b = load_split_file(tmp_path / "a.pt"), load_split_file(tmp_path / "a.npz")
    for name in ("train", "val", "test"):
        assert torch.equal(a[name].x, b[name].x) and torch.equal(a[name].y, b[name].y)


def test_splits_of_different_image_shapes_are_refused(tmp_path):
    d = splits()
    d["x_test"] = d["x_test"][..., :10, :10]
    torch.save(d, tmp_path / "a.pt")
    with pytest.raises(ImageFileError, match=r"the splits' images differ in shape: .*x_test \(1, 10, 10\)"):
        load_split_file(tmp_path / "a.pt")


def test_a_file_it_cannot_read_is_told_how_to_save_the_six_arrays(tmp_path):
    torch.save({k: v.numpy() for k, v in splits().items()}, tmp_path / "a.pt")
    with pytest.raises(ImageFileError, match=r'holds a numpy array .* save it as torch.save\(\{"x_train": x_train, '
                                             r'"y_train": y_train, "x_val": x_val, .*"y_test": y_test\}, FILE\)'):
        load_split_file(tmp_path / "a.pt")
    np.savez(tmp_path / "b.npz", x_train=np.array([None], dtype=object))
    with pytest.raises(ImageFileError, match=r"numpy.savez\(FILE, x_train=x_train, y_train=y_train, .*y_test=y_test\)"):
        load_split_file(tmp_path / "b.npz")


SMALL = "user_models_for_own_data:small"
BAD = {  # the array left out of the file, the model, the options, the error
    "no validation labels": ("y_val", SMALL, ["--groups", "r4"],
                             r"needs arrays 'x_val' \(images\) and 'y_val' \(labels\); missing 'y_val'"),
    "a group that does not fit": (None, SMALL, ["--groups", "t5"], r"t5: image width 12 is not divisible by the group order 5"),
    "an unknown group": (None, SMALL, ["--groups", "r5"], r"r5"),
    "labels beyond the logits": (None, "user_models_for_own_data:two_logits", ["--groups", "r4"],
                                 r"y_train holds labels in \[0, 2\], but the model has 2 logits"),
    "output not logits": (None, "user_models_for_own_data:feature_maps", ["--groups", "r4"],
                          r"must return logits \(N, classes\) for images \(N, ...\); got shape \(2, 2, 10, 10\)"),
    "output a tuple": (None, "user_models_for_own_data:pair", ["--groups", "r4"],
                       r"must return logits \(N, classes\) for images \(N, ...\); got tuple"),
    "NaN logits": (None, "user_models_for_own_data:nan_logits", ["--groups", "r4"],
                   r"returned NaN or inf logits for 2 training images, before any training"),
    "a model that refuses the images": (None, "user_models_for_own_data:rgb", ["--groups", "r4"],
                                        r"refused 2 training images of shape \(2, 1, 12, 12\): RuntimeError"),
    "one training class": ("one class", SMALL, ["--groups", "r4"], r"y_train holds one class only \(1\)"),
    "channels-last images under a rotation": (
        "channels last", "user_models_for_own_data:rgb", ["--groups", "r4"],
        r"need a square image, got H=12, W=3; the --data images look channels-last, \(N, H, W, C\) = "
        r"\(N, 12, 12, 3\): save x_train, x_val and x_test as x.permute\(0, 3, 1, 2\), \(N, C, H, W\)$"),
    "images without the channel axis the model takes": (
        "no channel axis", "user_models_for_own_data:rgb", ["--groups", "r4"],
        r"refused 2 training images of shape \(2, 12, 12\): RuntimeError: .*; it accepts \(M, 3, 12, 12\): save "
        r"x_train, x_val and x_test in that layout$"),
    "a model written for channels-last images": (
        "rgb", "user_models_for_own_data:channels_last_model", ["--groups", "r4"],
        r"refused 2 training images of shape \(2, 3, 12, 12\): RuntimeError: .*; it accepts \(M, 12, 12, 3\), "
        r"channels-last: keep the images \(N, C, H, W\), on which the group acts, and wrap the model, forward\(x\) = "
        r"net\(x.permute\(0, 2, 3, 1\)\)$"),
    "a training split of one image (the model is not blamed)": (
        "one image", SMALL, ["--groups", "r4"], r"error: y_train holds one class only"),
    "channels-last images under the mirror": (
        "channels last", "user_models_for_own_data:rgb", ["--groups", "f2"],
        r"refused 2 training images of shape \(2, 12, 12, 3\): RuntimeError: .*; the --data images look channels-last"),
    # the flags' own checks (argparse, naming the flag)
    "a negative seed": (None, SMALL, ["--groups", "r4", "--seeds", "-1"], r"argument --seeds: must be >= 0, got -1"),
    "a seed twice": (None, SMALL, ["--groups", "r4", "--seeds", "0", "0"], r"--seeds must be distinct, got \[0, 0\]"),
    "no epochs": (None, SMALL, ["--groups", "r4", "--epochs", "0"], r"argument --epochs: must be at least 1, got 0"),
    "no SI images": (None, SMALL, ["--groups", "r4", "--si-samples", "0"], r"argument --si-samples: must be at least 1"),
    "a negative learning rate": (None, SMALL, ["--groups", "r4", "--lr", "-1"],
                                 r"argument --lr: must be a finite number > 0, got -1"),
    "a nu of 0": (None, SMALL, ["--groups", "r4", "--nu-grid", "0", "10"], r"--nu-grid needs positive finite values"),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_input_is_one_line_exit_two_and_nothing_written(case, tmp_path, user_module, capsys):
    drop, model, args, message = BAD[case]
    d = splits()
    d.pop(drop, None)
    if drop == "one class":
        d["y_train"] = torch.ones_like(d["y_train"])
    if drop == "channels last":
        d = splits(shape=(12, 12, 3))
    if drop == "rgb":
        d = splits(shape=(3, 12, 12))
    if drop == "no channel axis":
        d = splits(shape=(12, 12))
    if drop == "one image":
        d["x_train"], d["y_train"] = d["x_train"][:1], d["y_train"][:1]
    path = tmp_path / "mine.pt"
    torch.save(d, path)
    out = tmp_path / "out"
    try:
        rc = run_main(path, out, *args, model=model)
    except SystemExit as e:  # argparse's usage error
        rc = e.code
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith(("error: ", "python -m nets own-data: error: ")) and err.count("\n") == 1, err
    assert re.search(message, err), err
    assert not out.exists()


def test_the_worked_example_writes_mnist_with_all_ten_digits_for_its_model(tmp_path, monkeypatch):
    root = Path(__file__).resolve().parents[1]
    path = tmp_path / "mnist10.pt"
    proc = subprocess.run([sys.executable, str(root / "scripts" / "own_data_example.py"), "--out", str(path),
                           "--n-train", "300", "--n-val", "50", "--n-test", "60"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    s = load_split_file(path)
    assert [len(s[k]) for k in ("train", "val", "test")] == [300, 50, 60]
    assert s.train.x.shape[1:] == (1, 28, 28) and set(s.train.y.tolist()) == set(range(10))  # the 9s kept
    assert abs(float(s.train.x.mean())) < 1e-4 and abs(float(s.train.x.std()) - 1) < 1e-3
    monkeypatch.syspath_prepend(str(root / "scripts"))
    from own_data_example import make_cnn

    assert make_cnn()(s.test.x[:5]).shape == (5, 10)


def test_images_with_nan_are_refused_before_anything_is_written(tmp_path, user_module, capsys):
    d = splits()
    d["x_val"][3, 0, 5, 5] = float("nan")
    torch.save(d, tmp_path / "mine.pt")
    assert run_main(tmp_path / "mine.pt", tmp_path / "out", "--groups", "r4") == 2
    assert "x_val holds NaN or inf values" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_model_of_one_logit_is_refused_naming_two_logits_before_anything_is_written(tmp_path, data, user_module,
                                                                                      capsys):
    assert run_main(data, tmp_path / "out", "--groups", "r4", model="user_models_for_own_data:one_logit") == 2
    err = capsys.readouterr().err
    assert "returns one logit per image" in err and "nets.TwoLogits(model)" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_a_device_the_machine_lacks_is_refused_before_anything_is_written(tmp_path, data, user_module, capsys):
    assert run_main(data, tmp_path / "out", "--groups", "r4", "--device", "cuda") == 2
    assert "--device cuda: CUDA is not available on this machine" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_report_of_two_or_three_seeds_says_how_wide_their_intervals_are():
    from nets.own_data_report import own_data_report

    results = json.loads((Path(__file__).resolve().parents[1] / "results" / "own-data-mnist10" /
                          "own_data.json").read_text())
    assert "degree" not in own_data_report(results)  # 4 seeds: no paragraph
    for n, factor in ((2, "8.98"), (3, "2.48")):
        results["source"]["settings"]["seeds"] = list(range(n))
        assert f"With {n} seeds an interval is the mean ± {factor} standard deviations" in own_data_report(results)
