"""The caller's torch state and the form of its tensors do not change the numbers: a ``torch.autocast``
around the trainer or ``audit`` is turned off inside them (a measure called under one says so), the
trainer trains under a caller's ``torch.no_grad()`` and refuses ``torch.inference_mode()`` in one line,
and images that require grad, or were made under ``inference_mode``, train and are measured as plain
images. Synthetic 12 x 12 images, a small CNN, one epoch: no data to fetch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from nets.auditing import audit
from nets.data import Split, Splits
from nets.metrics import jacobian_spectral_norm, logit_invariance
from nets.model_checks import AutocastActive
from nets.train import TrainConfig, train_runs

CONFIGS = [TrainConfig(method=m, model="net", epochs=1, batch_size=16, n_classes=4, nu=1.0 if m == "IR" else 0.0)
           for m in ("DA", "WT", "IR")]


def splits(seed: int = 0) -> Splits:
    g = torch.Generator().manual_seed(seed)
    part = lambda k: Split(torch.randn(k, 1, 12, 12, generator=g), torch.randint(0, 4, (k,), generator=g))  # noqa: E731
    return Splits("synthetic", part(32), part(16), part(8), 0.0, 1.0, seed)


def net(config: TrainConfig | None = None) -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.Tanh(), nn.Flatten(), nn.Linear(4 * 144, 4))


def trained(data: Splits | None = None) -> list[dict[str, torch.Tensor]]:
    runs = train_runs(CONFIGS, [0], data or splits(), device="cpu", progress=False, model_fn=net)
    return [r.model.state_dict() for r in runs]


def same(a: list[dict], b: list[dict]) -> bool:
    return all(torch.equal(x[k], y[k]) for x, y in zip(a, b) for k in x)


def test_the_trainer_trains_in_float32_under_a_callers_bf16_autocast():
    with torch.autocast("cpu", dtype=torch.bfloat16):
        inside = trained()
    assert same(inside, trained())


def test_audit_under_a_callers_autocast_measures_as_outside_it():
    torch.manual_seed(0)
    model, data = net().eval(), splits().test
    with torch.autocast("cpu", dtype=torch.bfloat16):
        inside = audit(model, data.x, data.y, "r4", n_steps=4, n_resamples=100)
    outside = audit(model, data.x, data.y, "r4", n_steps=4, n_resamples=100)
    assert {k: e.value for k, e in inside.measures.items()} == {k: e.value for k, e in outside.measures.items()}


def test_a_measure_under_a_callers_autocast_warns_that_it_measures_in_that_type():
    torch.manual_seed(0)
    model, x = net().eval(), splits().test.x
    with torch.autocast("cpu", dtype=torch.bfloat16), pytest.warns(
            AutocastActive, match=r"measured under the caller's torch.autocast \(torch.bfloat16\)"):
        logit_invariance(model, x, "r4")


def test_the_trainer_trains_under_a_callers_no_grad_as_outside_it():
    with torch.no_grad():
        inside = trained()
    assert same(inside, trained())


def test_the_trainer_under_inference_mode_is_refused_in_one_line_naming_it():
    with torch.inference_mode(), pytest.raises(ValueError, match=r"^train_runs was called under "
                                                                 r"torch.inference_mode\(\)") as e:
        trained()
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("form", ["requires_grad", "inference"])
def test_images_that_require_grad_or_were_made_under_inference_mode_train_as_plain_images(form):
    plain = splits()

    def made(split: Split) -> Split:
        if form == "requires_grad":
            return Split(split.x.clone().requires_grad_(True), split.y)
        with torch.inference_mode():
            return Split(split.x.clone(), split.y.clone())

    given = Splits("synthetic", made(plain.train), made(plain.val), made(plain.test), 0.0, 1.0, 0)
    assert same(trained(given), trained(plain))


def test_sigma_max_of_images_made_under_inference_mode_is_that_of_plain_images():
    torch.manual_seed(0)
    model, x = net().eval(), splits().test.x
    with torch.inference_mode():
        made = x.clone()
    torch.testing.assert_close(jacobian_spectral_norm(model, made), jacobian_spectral_norm(model, x), rtol=0, atol=0)


def test_a_split_of_numpy_arrays_is_refused_naming_torch_from_numpy():
    with pytest.raises(ValueError, match=r"Split needs torch tensors x and y; got x numpy.ndarray, y builtins.list: "
                                         r"give torch.as_tensor\(\.\.\.\) \(torch.from_numpy"):
        Split(np.zeros((2, 12, 12), dtype=np.float32), [0, 1])


def test_cublas_without_its_workspace_setting_under_deterministic_mode_is_named_with_the_setting():
    """torch's own words on CUDA (tests here have no GPU): the fix is an environment variable."""
    from nets.model_logits import deterministic_fix

    said = RuntimeError("Deterministic behavior was enabled with either `torch.use_deterministic_algorithms(True)` "
                        "or `at::Context::setDeterministicAlgorithms(true)`, but this operation is not deterministic "
                        "because it uses CuBLAS and you have CUDA >= 10.2. To enable deterministic behavior in this "
                        "case, you must set an environment variable before running your PyTorch application: "
                        "CUBLAS_WORKSPACE_CONFIG=:4096:8 or CUBLAS_WORKSPACE_CONFIG=:16:8.")
    assert "CUBLAS_WORKSPACE_CONFIG=:4096:8 in the environment before Python starts" in deterministic_fix(said)
    assert deterministic_fix(RuntimeError("mat1 and mat2 shapes cannot be multiplied")) is None


def test_an_op_without_a_deterministic_implementation_under_deterministic_mode_is_named_not_the_layout():
    class Unpools(nn.Module):
        def forward(self, x):
            pooled, where = nn.functional.max_pool2d(x, 2, return_indices=True)
            return nn.functional.max_unpool2d(pooled, where, 2).flatten(1)[:, :4]

    before = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        with pytest.raises(ValueError, match=r"no deterministic implementation, and "
                                             r"torch\.use_deterministic_algorithms\(True\) is on") as e:
            logit_invariance(Unpools(), splits().test.x, "r4")
    finally:
        torch.use_deterministic_algorithms(before)
    assert "(N, *C, H, W)" not in str(e.value) and "\n" not in str(e.value)
