"""A group of your own by spec, ``"PKG.MODULE:ATTR"``: wherever a group name goes (``get_group``, a run's
config, ``own-data --groups``, ``audit --group``) the spec finds it, run files get a safe name, reports
write it as given, and a spec that gives no group is a one-line error."""

from __future__ import annotations

import json
import textwrap

import pytest
import torch

from nets import audit_cli, own_data_cli
from nets.groups import R4, Group, as_group, get_group, group_key, group_label, group_name
from nets.train import TrainConfig
from split_data import brightness_splits

GROUPS = textwrap.dedent('''
    import torch
    from nets.groups import Group

    class HalfTurnMirror(Group):
        """{identity, half turn, left-right mirror, both}: the Klein four-group."""
        name = "halfturn_mirror"
        order = 4

        def compose(self, a, b):
            return self._check_element(a) ^ self._check_element(b)

        def inverse(self, a):
            return self._check_element(a)

        def _act_reference(self, grid, g):
            if g & 1:
                grid = torch.rot90(grid, 2, dims=(-2, -1))
            if g & 2:
                grid = torch.flip(grid, dims=(-1,))
            return grid

    INSTANCE = HalfTurnMirror()
    NOT_A_GROUP = 3

    def broken():
        raise RuntimeError("no group today")

    def small():
        from torch import nn
        return nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 144, 3))
''')


@pytest.fixture
def module(user_models, request):
    name = f"user_groups_{request.node.name.split('[')[0][-40:]}"  # one module per test: groups are cached by spec
    user_models(name, GROUPS)
    return name


def test_a_spec_gives_the_group_whether_it_names_an_instance_or_a_class(module):
    by_class, by_instance = get_group(f"{module}:HalfTurnMirror"), get_group(f"{module}:INSTANCE")
    assert by_class.order == by_instance.order == 4 and by_class.name == "halfturn_mirror"
    x = torch.arange(6.0).view(1, 2, 3)
    assert torch.equal(by_class.act(x, 3), torch.flip(torch.rot90(x, 2, dims=(-2, -1)), dims=(-1,)))
    assert get_group(f"{module}:HalfTurnMirror") is by_class  # imported and built once per process


@pytest.mark.parametrize("attr, message", [
    ("NOT_A_GROUP", "is a int, not a nets.groups.Group"),
    ("missing", "has no 'missing'"),
    ("broken", r"broken\(\) failed: RuntimeError: no group today"),
])
def test_a_spec_that_gives_no_group_is_a_one_line_error(module, attr, message):
    with pytest.raises(ValueError, match=message) as e:
        get_group(f"{module}:{attr}")
    assert "\n" not in str(e.value)


def test_an_unimportable_module_is_named():
    with pytest.raises(ValueError, match="cannot import module 'no_such_groups_module' for group"):
        get_group("no_such_groups_module:G")


def test_a_spec_keeps_its_case_in_configs_and_gets_a_safe_file_name(module):
    spec = f"{module}:HalfTurnMirror"
    assert group_name(spec) == spec and group_name(" R4 ") == "r4"
    assert group_key(spec) == f"{module}.HalfTurnMirror" and group_label(spec) == spec and group_label("t3") == "T3"
    config = TrainConfig(group=spec, method="DA")
    assert config.group == spec and config.key() == f"{module}.HalfTurnMirror-DA"


def test_a_run_names_its_group_rather_than_holding_a_group_object():
    with pytest.raises(ValueError, match="a run's group is a name or a 'PKG.MODULE:ATTR' spec, got int"):
        TrainConfig(group=4, method="DA")


def test_own_data_trains_and_decides_the_claims_under_your_group(tmp_path, module):
    data = tmp_path / "mine.pt"
    torch.save(brightness_splits((("train", 64), ("val", 32), ("test", 32))), data)
    spec, out = f"{module}:HalfTurnMirror", tmp_path / "out"
    assert own_data_cli.main(["--model", f"{module}:small", "--data", str(data), "--groups", spec, "--out", str(out),
                              "--epochs", "2", "--seeds", "0", "1", "--nu-grid", "10", "--si-samples", "8",
                              "--sigma-samples", "8", "--threads", "1", "--no-progress"]) == 0
    methods = json.loads((out / "own_data.json").read_text())["table1"]["groups"][spec]["methods"]
    assert methods["WT"]["LI"]["mean"] < 1e-9 and methods["WT"]["SI"]["mean"] > 0.999  # pooled over your group
    assert methods["DA"]["LI"]["mean"] > 1e-6
    assert all(":" not in p.name for p in (out / "checkpoints").iterdir())
    assert f"| {spec} | WT |" in (out / "REPORT.md").read_text()
    wt = next((out / "checkpoints").glob("*-WT-*seed0.pt"))  # audited pooled over the group it was trained under
    images = tmp_path / "images.pt"
    test = brightness_splits((("test", 16),))
    torch.save({"x": test["x_test"], "y": test["y_test"]}, images)
    assert audit_cli.main(["--model", f"{module}:small", "--weights", str(wt), "--images", str(images), "--group",
                           spec, "--out", str(tmp_path / "audit"), "--n", "16", "--n-resamples", "100"]) == 0
    record = json.loads((tmp_path / "audit" / "audit.json").read_text())
    assert record["settings"]["source"]["wt_pooling"]["group"] == spec  # the spec as given, not the group's name


def test_audit_measures_under_your_group(tmp_path, module):
    images = tmp_path / "images.pt"
    torch.save({"x": torch.randn(16, 1, 12, 12, generator=torch.Generator().manual_seed(1)),
                "y": torch.arange(16) % 3}, images)
    out = tmp_path / "audit"
    assert audit_cli.main(["--model", f"{module}:small", "--images", str(images), "--group", f"{module}:INSTANCE",
                           "--out", str(out), "--n", "16"]) == 0
    record = json.loads((out / "audit.json").read_text())
    assert record["measures"]["LI"]["value"] > 0
    assert record["group"] == f"{module}:INSTANCE"  # the spec as given, not the group's name (docs/api.md)


def test_every_record_of_an_audit_names_your_group_by_its_spec(tmp_path, module):
    images = tmp_path / "images.pt"
    torch.save({"x": torch.randn(16, 1, 12, 12, generator=torch.Generator().manual_seed(1)),
                "y": torch.arange(16) % 3}, images)
    out, spec = tmp_path / "audit", f"{module}:INSTANCE"
    assert audit_cli.main(["--model", f"{module}:small", "--baseline", f"{module}:small", "--images", str(images),
                           "--group", spec, "--out", str(out), "--n", "16", "--n-resamples", "200"]) == 0
    record = json.loads((out / "audit.json").read_text())
    assert (record["group"], record["classes"]["group"]) == (spec, spec)  # the group's name would not find it
    assert json.loads((out / "compare.json").read_text())["group"] == spec


def _klein(**attrs):
    body = {"compose": lambda self, a, b: a ^ b, "inverse": lambda self, a: a,
            "_act_reference": lambda self, grid, g: torch.flip(grid, (-1,)) if g & 1 else grid, **attrs}
    return type("Klein", (Group,), body)


@pytest.mark.parametrize("attrs,message", [
    ({"order": 2}, r"group class Klein must set name, a non-empty str \(e.g. name = 'klein'\), got None"),
    ({"name": "", "order": 2}, r"must set name, a non-empty str"),
    ({"name": "k", "order": "2"}, r"group k: order must be the number of elements, an int >= 1, got '2'"),
])
def test_a_group_class_without_a_name_or_order_is_named_when_built(attrs, message):
    with pytest.raises(ValueError, match=message):
        _klein(**attrs)()


def test_a_group_class_given_for_its_instance_says_to_call_it():
    with pytest.raises(TypeError, match=r"got the class Klein; pass a group, an instance of it: Klein\(\)"):
        as_group(_klein(name="k", order=2))


def test_a_built_in_group_object_names_a_run_by_its_name():
    assert TrainConfig(group=R4).group == "r4" and TrainConfig(group=get_group("t5y")).key() == "t5y-DA"


def test_a_group_object_of_your_own_is_refused_asking_for_its_spec():
    with pytest.raises(ValueError, match=r"give group 'k' as the 'PKG.MODULE:ATTR' spec of where its class is defined"):
        TrainConfig(group=_klein(name="k", order=2)())
