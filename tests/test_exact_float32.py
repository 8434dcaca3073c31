"""On CUDA, float32 means IEEE float32 (``nets.precision.exact_float32``): no TF32 in cuBLAS or
cuDNN, cuDNN's deterministic algorithms only, the settings before restored after; the trainer and
the audit enter it on their device, and a results file made on CUDA records the settings.

torch's flags can be set without a GPU, so these run anywhere; tests/test_cuda.py checks on a GPU
what the settings are for (a CNN's measures agree with the CPU's, one seed trains twice the same)."""

from __future__ import annotations

import time

import pytest
import torch
from torch import nn

import nets.auditing
import nets.train.runs
from nets.auditing import audit
from nets.data import synthetic_splits
from nets.precision import EXACT_FLOAT32, exact_float32
from nets.results_io import NEW_TF32_API, cuda_float32, run_provenance
from nets.train import TrainConfig, train_runs


@pytest.fixture
def torch_default_settings():
    """The settings torch starts with (as cuda_float32 reads them); torch's flags are put back after the
    test whatever it changed."""
    b = torch.backends
    flags = (b.cuda.matmul.allow_tf32, b.cudnn.allow_tf32, b.cudnn.deterministic, b.cudnn.benchmark)
    yield cuda_float32()
    b.cuda.matmul.allow_tf32, b.cudnn.allow_tf32, b.cudnn.deterministic, b.cudnn.benchmark = flags


def test_on_cuda_the_block_runs_in_ieee_float32_with_deterministic_cudnn(torch_default_settings):
    with exact_float32("cuda"):
        assert cuda_float32() == EXACT_FLOAT32
        assert cuda_float32()["conv"] == "ieee" and cuda_float32()["cudnn_deterministic"] is True
    assert cuda_float32() == torch_default_settings


def test_the_settings_before_come_back_when_the_block_raises(torch_default_settings):
    with pytest.raises(KeyError):
        with exact_float32(torch.device("cuda", 1)):
            raise KeyError("a model failed")
    assert cuda_float32() == torch_default_settings


def test_nested_blocks_restore_the_outer_blocks_settings(torch_default_settings):
    with exact_float32("cuda"):
        inside = cuda_float32()
        with exact_float32("cuda:0"):
            pass
        assert cuda_float32() == inside
    assert cuda_float32() == torch_default_settings


def test_blocks_that_overlap_in_two_threads_keep_the_settings_until_the_last_leaves(torch_default_settings):
    """Thread A enters, B enters, A leaves (B still inside), B leaves: the order two threads may take."""
    a, b = exact_float32("cuda"), exact_float32("cuda")
    a.__enter__()
    b.__enter__()
    a.__exit__(None, None, None)
    assert cuda_float32() == EXACT_FLOAT32
    b.__exit__(None, None, None)
    assert cuda_float32() == torch_default_settings


def test_torchs_own_readers_of_the_tf32_flags_work_inside_the_block(torch_default_settings):
    """torch 2.9+ refuses to read allow_tf32 once fp32_precision set it otherwise; the block sets them
    through allow_tf32, so torch's cudnn.flags() (and torch.compile's convolutions) still read them."""
    with exact_float32("cuda"):
        assert torch.backends.cudnn.allow_tf32 is False and torch.backends.cuda.matmul.allow_tf32 is False
        with torch.backends.cudnn.flags(enabled=True):
            pass


@pytest.mark.skipif(not NEW_TF32_API, reason=f"torch {torch.__version__} has no fp32_precision settings")
def test_settings_made_through_fp32_precision_come_back_as_they_were(torch_default_settings):
    b = torch.backends
    b.cuda.matmul.fp32_precision, b.cudnn.conv.fp32_precision = "tf32", "tf32"
    with exact_float32("cuda"):
        assert cuda_float32() == EXACT_FLOAT32
    assert (b.cuda.matmul.fp32_precision, b.cudnn.conv.fp32_precision) == ("tf32", "tf32")
    assert cuda_float32()["matmul"] == "tf32"


@pytest.mark.parametrize("device", ["cpu", None, torch.device("cpu"), "auto"])
def test_other_devices_change_nothing(torch_default_settings, device):
    with exact_float32(device):
        assert cuda_float32() == torch_default_settings


def test_a_cuda_run_records_how_float32_ran_and_a_cpu_run_does_not():
    with exact_float32("cuda"):
        meta = run_provenance(device="cuda:0", started=time.time(), command="x")
    assert meta["cuda_float32"]["conv"] == "ieee" and meta["cuda_float32"]["cudnn_deterministic"] is True
    assert "cuda_float32" not in run_provenance(device="cpu", started=time.time(), command="x")


def _as_on_cuda(monkeypatch, module) -> None:
    """``module``'s exact_float32 applies the CUDA settings whatever the device, as it would on a GPU."""
    monkeypatch.setattr(module, "exact_float32", lambda device: exact_float32("cuda"))


def test_the_trainer_trains_inside_the_block(monkeypatch, torch_default_settings):
    seen = []
    train_stack = nets.train.runs.train_stack

    def spy(*args, **kwargs):
        seen.append(cuda_float32())
        return train_stack(*args, **kwargs)

    _as_on_cuda(monkeypatch, nets.train.runs)
    monkeypatch.setattr(nets.train.runs, "train_stack", spy)
    splits = synthetic_splits(n_train=32, n_val=8, n_test=4, seed=0, size=18)
    train_runs([TrainConfig(method="DA", epochs=1, hidden=8, n_hidden_layers=1, batch_size=16)], [0], splits,
               device="cpu", progress=False)
    assert seen and all(s["conv"] == "ieee" and s["cudnn_deterministic"] for s in seen)
    assert cuda_float32() == torch_default_settings


class _Probe(nn.Module):
    """A linear classifier that notes the settings each forward pass ran under (its checks',
    the measures', the layer profile's)."""

    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Linear(36, 3)
        self.seen: list[dict] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(cuda_float32())
        return self.head(x.flatten(1))


def test_the_audit_measures_inside_the_block(monkeypatch, torch_default_settings):
    _as_on_cuda(monkeypatch, nets.auditing)
    model = _Probe().eval()
    x, y = torch.randn(6, 1, 6, 6, generator=torch.Generator().manual_seed(0)), torch.tensor([0, 1, 2, 0, 1, 2])
    audit(model, x, y, "r4", n_steps=4, n_resamples=100)
    assert model.seen and all(s["conv"] == "ieee" and s["cudnn_deterministic"] for s in model.seen)
    assert cuda_float32() == torch_default_settings
