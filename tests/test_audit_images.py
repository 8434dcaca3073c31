"""``python -m nets audit --images FILE``: your own labelled images of any shape ``(N, *C, H, W)``,
from a ``.pt`` or ``.npz`` file, audited as the Python API audits the same tensors; a bad file is one
line on stderr, exit status 2, and nothing written."""

from __future__ import annotations

import json
import re
import textwrap

import numpy as np
import pytest
import torch

from nets import audit, audit_cli
from nets.image_file import ImageFileError, load_images, load_labelled, load_split_file, load_unlabelled
from nets.results_io import sha256_file

MODELS = textwrap.dedent('''
    import torch
    from torch import nn

    def rgb_cnn():
        torch.manual_seed(0)
        return nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
                             nn.Linear(24, 10))
''')


@pytest.fixture
def user_module(user_models):
    return user_models("user_models_for_images", MODELS)


@pytest.fixture
def images():
    g = torch.Generator().manual_seed(0)
    return torch.randn(12, 3, 20, 20, generator=g), torch.randint(0, 10, (12,), generator=g)


def run_main(out, *args):
    return audit_cli.main(["--model", "user_models_for_images:rgb_cnn", "--group", "r4", "--n-steps", "2",
                           "--n-resamples", "100", "--out", str(out), *args])


def test_a_pt_file_and_an_npz_file_of_the_same_images_load_alike(tmp_path, images):
    x, y = images
    torch.save({"x": x, "y": y}, tmp_path / "a.pt")
    np.savez(tmp_path / "a.npz", x=x.double().numpy(), y=y.numpy())  # numpy keeps float64
    for name in ("a.pt", "a.npz"):
        xl, yl = load_images(tmp_path / name)
        assert xl.dtype == torch.float32 and torch.equal(xl, x) and torch.equal(yl, y)


def test_n_takes_the_first_images_in_file_order(tmp_path, images):
    x, y = images
    torch.save({"x": x, "y": y}, tmp_path / "a.pt")
    xl, yl = load_images(tmp_path / "a.pt", n=5)
    assert torch.equal(xl, x[:5]) and torch.equal(yl, y[:5])


def test_the_command_audits_the_file_as_the_api_audits_its_tensors(tmp_path, images, user_module):
    import user_models_for_images as m

    x, y = images
    torch.save({"x": x, "y": y}, tmp_path / "imgs.pt")
    out = tmp_path / "out"
    assert run_main(out, "--images", str(tmp_path / "imgs.pt")) == 0
    record = json.loads((out / "audit.json").read_text())
    assert record["input_shape"] == [12, 3, 20, 20] and record["n_samples"] == 12
    expected = audit(m.rgb_cnn().eval(), x, y, "r4", n_steps=2, n_resamples=100, seed=0).to_dict()
    for name in ("LI", "DI", "SI", "accuracy"):
        assert record["measures"][name] == expected["measures"][name], name
    source = record["settings"]["source"]
    assert source["images"] == str(tmp_path / "imgs.pt") and "dataset" not in source
    assert source["images_sha256"] == sha256_file(tmp_path / "imgs.pt")


def _write(tmp_path, case):
    x, y = torch.randn(6, 3, 20, 20), torch.randint(0, 10, (6,))
    path = tmp_path / "bad.pt"
    if case == "no labels":
        torch.save({"x": x}, path)
    elif case == "integer images":
        torch.save({"x": (x * 50 + 128).clamp(0, 255).to(torch.uint8), "y": y}, path)
    elif case == "a label too few":
        torch.save({"x": x, "y": y[:5]}, path)
    elif case == "float labels":
        torch.save({"x": x, "y": y.float()}, path)
    elif case == "flat vectors":
        torch.save({"x": x.flatten(1), "y": y}, path)
    elif case == "a bare tensor":
        torch.save(x, path)
    elif case == "a pickled module":
        torch.save({"x": torch.nn.Linear(2, 2), "y": y}, path)
    elif case == "numpy arrays in a .pt":
        torch.save({"x": x.numpy(), "y": y.numpy()}, path)
    elif case == "a pickle file":
        import pickle

        path.write_bytes(pickle.dumps({"x": x, "y": y}, protocol=4))
    elif case == "object arrays in npz":
        path = tmp_path / "bad.npz"
        np.savez(path, x=np.array([None] * 6, dtype=object), y=y.numpy())
    elif case == "a text file":
        path = tmp_path / "bad.npz"
        path.write_text("not an archive")
    elif case == "a text file named .pt":
        path.write_text("hello, not a torch file")
    elif case == "an empty .npz":
        path = tmp_path / "bad.npz"
        path.write_bytes(b"")
    elif case == "a torch file named .npz":
        path = tmp_path / "bad.npz"
        torch.save({"x": x, "y": y}, path)
    elif case == "another suffix":
        path = tmp_path / "bad.csv"
        path.write_text("1,2,3")
    elif case == "a missing file":
        path = tmp_path / "missing.pt"
    else:
        raise AssertionError(case)
    return path


BAD_FILES = {
    "no labels": r"needs arrays 'x' \(images\) and 'y' \(labels\); missing 'y', found \['x'\]",
    "integer images": r"x has dtype torch.uint8; store floating-point images",
    "a label too few": r"y must be one label per image, shape \(6,\), got \(5,\)",
    "float labels": r"y must be integer class indices, got dtype torch.float32",
    "flat vectors": r"x must be images \(N, \*C, H, W\), got shape \(6, 1200\)",
    "a bare tensor": r"holds a Tensor, not a dict",
    "a pickled module": r"cannot read it with torch.load\(weights_only=True\)",
    "numpy arrays in a .pt": r"it holds a numpy array \(numpy\.[\w.]+\), which weights_only=True does not unpickle; "
                             r'save it as torch.save\(\{"x": x, "y": y\}, FILE\) with tensors$',
    "a pickle file": r"it was written by pickle, not torch.save; save it as torch.save",
    "object arrays in npz": r"cannot read it as .npz without pickle",
    "a text file": r"not an .npz file \(an .npz is a zip of arrays; this one is not a zip\); save it as numpy.savez",
    "a text file named .pt": r"cannot read it with torch.load\(weights_only=True\): it is not a file torch.save wrote; ",
    "an empty .npz": r"not an .npz file \(an .npz is a zip of arrays; this one is empty\)",
    "a torch file named .npz": r"a zip but not of numpy arrays \('[^']+' is not one; a torch.save file is read as .pt",
    "another suffix": r"use a .pt / .pth or .npz file, not '.csv'",
    "a missing file": r"missing.pt does not exist",
}


@pytest.mark.parametrize("case", BAD_FILES)
def test_a_bad_file_is_one_line_exit_two_and_nothing_written(case, tmp_path, user_module, capsys):
    path = _write(tmp_path, case)
    out = tmp_path / "out"
    assert run_main(out, "--images", str(path)) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --images ") and err.count("\n") == 1, err
    assert re.search(BAD_FILES[case], err), err
    assert not out.exists()


NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def test_class_names_in_a_pt_or_npz_file_come_back_in_label_order(tmp_path, images):
    x, y = images
    torch.save({"x": x, "y": y, "classes": NAMES}, tmp_path / "a.pt")
    np.savez(tmp_path / "a.npz", x=x.numpy(), y=y.numpy(), classes=np.array(NAMES))
    for name in ("a.pt", "a.npz"):
        assert load_labelled(tmp_path / name).class_names == tuple(NAMES)
    torch.save({"x": x, "y": y}, tmp_path / "b.pt")
    assert load_labelled(tmp_path / "b.pt").class_names is None


@pytest.mark.parametrize("classes, match", [
    (NAMES[:5], r"a label is class 9, but the class names name only 5 classes"),
    (["a", *NAMES[1:4], "a ", *NAMES[5:]], r"class names 0 and 4 are both 'a'"),
    ([*NAMES[:9], ""], r"class name 9 must be non-empty, without '\|' or control characters, got ''"),
    ([*NAMES[:2], "a|b", *NAMES[3:]], r"class name 2 must be non-empty, without '\|'"),
    ([*NAMES[:2], "two\nlines", *NAMES[3:]], r"class name 2 .* got 'two\\nlines'"),
    ([*NAMES[:3], 3, *NAMES[4:]], r"class name 3 must be a string, got int 3"),
    (torch.arange(10), r"class names must be a list of strings in label order, got Tensor"),
])
def test_bad_class_names_are_one_line(tmp_path, images, classes, match):
    x, y = images
    y = y.clone()
    y[0] = 9  # a label that five names do not cover
    torch.save({"x": x, "y": y, "classes": classes}, tmp_path / "a.pt")
    with pytest.raises(ImageFileError, match=match) as e:
        load_labelled(tmp_path / "a.pt")
    assert "\n" not in str(e.value) and "'classes' holds the class names in label order: " in str(e.value)


def test_a_split_file_carries_its_class_names_into_the_splits(tmp_path, images):
    x, y = images
    arrays = {f"{k}_{s}": v for s in ("train", "val", "test") for k, v in (("x", x), ("y", y))}
    torch.save({**arrays, "classes": NAMES}, tmp_path / "d.pt")
    assert load_split_file(tmp_path / "d.pt").class_names == tuple(NAMES)
    torch.save({**arrays, "classes": NAMES[:3]}, tmp_path / "e.pt")
    with pytest.raises(ImageFileError,
                       match=r"^\S*e.pt: 'classes' .*: a label is class \d, but the class names name only 3"):
        load_split_file(tmp_path / "e.pt")


def test_the_audit_table_names_the_classes_of_the_file(tmp_path, images, user_module, capsys):
    x, y = images
    torch.save({"x": x, "y": y, "classes": NAMES}, tmp_path / "a.pt")
    assert run_main(tmp_path / "out", "--images", str(tmp_path / "a.pt")) == 0
    printed = capsys.readouterr().out
    rows = [ln for ln in printed.splitlines() if "of the orbit" in ln or "never wrong" in ln]  # per class
    assert rows and all(ln.startswith(f"| {ln.split()[1]} {NAMES[int(ln.split()[1])]} |") for ln in rows)
    saved = json.loads((tmp_path / "out" / "audit.json").read_text())
    assert saved["classes"]["class_names"] == NAMES


def test_n_beyond_the_file_is_refused(tmp_path, images):
    torch.save({"x": images[0], "y": images[1]}, tmp_path / "a.pt")
    with pytest.raises(ImageFileError, match=r"^n must be in \[1, 12\] for the 12 images"):
        load_images(tmp_path / "a.pt", n=13)


def test_file_errors_name_the_command_line_option_only_where_one_gave_the_file(tmp_path, images):
    torch.save({"x": images[0]}, tmp_path / "a.pt")
    with pytest.raises(ImageFileError,
                       match=r"^\S*a.pt: needs arrays 'x' .* for images without labels: load_unlabelled$"):
        load_labelled(tmp_path / "a.pt")
    with pytest.raises(ImageFileError,
                       match=r"^--images \S*a.pt: needs arrays .* without labels: --no-labels$"):
        load_labelled(tmp_path / "a.pt", flag="--images")
    with pytest.raises(ImageFileError, match=r"^--n must be in \[1, 12\]"):
        load_unlabelled(tmp_path / "a.pt", n=13, flag="--images")
    with pytest.raises(ImageFileError, match=r"^--data \S*a.pt: needs arrays 'x_train'"):
        load_split_file(tmp_path / "a.pt", flag="--data")


def test_channels_are_for_dataset_images_only(tmp_path, images, user_module, capsys):
    torch.save({"x": images[0], "y": images[1]}, tmp_path / "a.pt")
    assert run_main(tmp_path / "out", "--images", str(tmp_path / "a.pt"), "--channels", "3") == 2
    assert "--channels shapes --dataset images" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_images_and_a_dataset_are_one_or_the_other(tmp_path, user_module):
    with pytest.raises(SystemExit) as e:
        run_main(tmp_path / "out", "--images", "a.pt", "--dataset", "mnist")
    assert e.value.code == 2


# ---- images without labels: --no-labels ----------------------------------------------
def test_a_file_without_labels_names_the_no_labels_option(tmp_path, images, user_module, capsys):
    torch.save({"x": images[0]}, tmp_path / "x.pt")
    assert run_main(tmp_path / "out", "--images", str(tmp_path / "x.pt")) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "missing 'y'" in err and "--no-labels" in err
    assert not (tmp_path / "out").exists()


def test_no_labels_audits_the_images_alone_as_the_api_does_without_y(tmp_path, images, user_module):
    import user_models_for_images as m

    x, _ = images
    torch.save({"x": x}, tmp_path / "x.pt")
    out = tmp_path / "out"
    assert run_main(out, "--images", str(tmp_path / "x.pt"), "--no-labels") == 0
    record = json.loads((out / "audit.json").read_text())
    expected = audit(m.rgb_cnn().eval(), x, None, "r4", n_steps=2, n_resamples=100, seed=0).to_dict()
    assert "accuracy" not in record["measures"] and record["classes"] is None
    assert record["measures"] == expected["measures"]
    assert record["settings"]["labels"] is False and record["settings"]["source"]["labels"] is False


def test_no_labels_does_not_read_the_labels_a_file_holds(tmp_path, images, user_module):
    x, y = images
    torch.save({"x": x}, tmp_path / "x.pt")
    torch.save({"x": x, "y": y.float()}, tmp_path / "xy.pt")  # labels it could not use
    assert run_main(tmp_path / "a", "--images", str(tmp_path / "x.pt"), "--no-labels") == 0
    assert run_main(tmp_path / "b", "--images", str(tmp_path / "xy.pt"), "--no-labels") == 0
    a, b = (json.loads((tmp_path / d / "audit.json").read_text())["measures"] for d in ("a", "b"))
    assert a == b


def test_images_past_the_range_of_a_float16_model_are_named_not_called_infinite(tmp_path, images):
    torch.save({"x": images[0] * 1e5, "y": images[1]}, tmp_path / "a.pt")  # finite in the file, as float32
    with pytest.raises(ImageFileError, match=r"^--images \S*a.pt: x does not fit the model's float16: its values "
                                             r"reach .*, past that type's largest, 6.55e\+04; scale the images"):
        load_labelled(tmp_path / "a.pt", dtype=torch.float16, flag="--images")
    assert bool(torch.isfinite(load_labelled(tmp_path / "a.pt", dtype=torch.bfloat16).x).all())  # float32's range
