"""bf16 training (``nets.precision``, ``train_runs(precision=...)``): refused on a CPU
without bf16 instructions, float32 everywhere but the autocast training step."""

from __future__ import annotations

import pytest
import torch

import nets.precision as P
from nets.data import synthetic_splits
from nets.train import TrainConfig, checkpoint_path, train_runs

SMALL = dict(hidden=16, n_hidden_layers=2, batch_size=32, epochs=2)


@pytest.fixture(scope="module")
def splits():
    return synthetic_splits(n_train=64, n_val=16, n_test=8, seed=0, size=18)


def test_cpu_flags_are_read_from_the_flags_line(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: X\nflags\t\t: fpu avx2 amx_bf16\n\nflags\t: other\n")
    assert P.cpu_flags(info) == frozenset({"fpu", "avx2", "amx_bf16"})
    assert P.cpu_flags(tmp_path / "missing") == frozenset()


def test_bf16_is_refused_on_a_cpu_without_bf16_instructions():
    with pytest.raises(ValueError, match="neither avx512_bf16 nor amx_bf16"):
        P.check_precision("bf16", "cpu", flags=frozenset({"avx2", "avx512f"}))


@pytest.mark.parametrize("flag", P.BF16_CPU_FLAGS)
def test_bf16_is_allowed_on_a_cpu_with_either_flag_and_on_cuda(flag):
    assert P.check_precision("bf16", "cpu", flags=frozenset({flag})) == "bf16"
    assert P.check_precision("bf16", "cuda") == "bf16"
    assert P.check_precision("fp32", "cpu", flags=frozenset()) == "fp32"


def test_an_unknown_precision_is_refused():
    with pytest.raises(ValueError, match="precision must be one of"):
        P.check_precision("fp16", "cpu")


def test_train_runs_refuses_bf16_where_the_cpu_lacks_the_flags(splits, monkeypatch):
    monkeypatch.setattr(P, "cpu_flags", lambda *a: frozenset({"avx2"}))
    with pytest.raises(ValueError, match="refused on this CPU"):
        train_runs([TrainConfig(**SMALL)], [0], splits, device="cpu", progress=False, precision="bf16")


def test_fp32_is_the_default_and_unchanged_by_naming_it(splits):
    cfg = [TrainConfig(method="IR", nu=1.0, **SMALL)]
    a = train_runs(cfg, [0], splits, device="cpu", progress=False)[0]
    b = train_runs(cfg, [0], splits, device="cpu", progress=False, precision="fp32")[0]
    assert a.history == b.history
    assert all(torch.equal(v, b.model.state_dict()[k]) for k, v in a.model.state_dict().items())


@pytest.mark.parametrize("method", ["DA", "IR"])
def test_bf16_autocasts_the_training_step_and_keeps_weights_float32(splits, tmp_path, monkeypatch, method):
    """With the flags present (patched: this CPU may lack them), bf16 training runs: its
    numbers differ from fp32's (autocast is applied), its weights are float32, and its
    checkpoints live apart from the fp32 ones."""
    monkeypatch.setattr(P, "cpu_flags", lambda *a: frozenset({"amx_bf16"}))
    cfg = TrainConfig(method=method, nu=1.0 if method == "IR" else 0.0, **SMALL)
    fp32 = train_runs([cfg], [0], splits, device="cpu", progress=False, run_dir=tmp_path)[0]
    bf16 = train_runs([cfg], [0], splits, device="cpu", progress=False, run_dir=tmp_path, precision="bf16")[0]
    assert all(v.dtype == torch.float32 for v in bf16.model.state_dict().values())
    assert all(torch.isfinite(torch.tensor(v)).all() for v in bf16.history.values())
    assert bf16.history["loss"] != fp32.history["loss"]
    assert checkpoint_path(tmp_path, cfg, 0).exists() and checkpoint_path(tmp_path / "bf16", cfg, 0).exists()
    state = torch.load(checkpoint_path(tmp_path / "bf16", cfg, 0), weights_only=True)
    tensors = [v for v in _tensors(state)]
    assert tensors and all(t.dtype in (torch.float32, torch.float64, torch.int64, torch.uint8) for t in tensors)


def _tensors(obj):
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _tensors(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from _tensors(v)
