"""The benchmark compares like with like: on a fixed batch, our trainer's fast path
(``nets.train``'s row gathers from the orbit table and its stacked-model losses) and the
plain reference of ``benchmarks/reference.py`` (``torch.rot90``/``roll``, ``nn.Sequential``,
a loop over the group) give the same augmented batch, the same task loss and logit
regularizer, and the same gradients, for DA, IR and WT. No timing is asserted here.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import reference as R  # noqa: E402
from nets.data import Split  # noqa: E402
from nets.experiments.profiles import PROFILES  # noqa: E402
from nets.groups import R4, T3, Group  # noqa: E402
from nets.models import MLP, InvariantMLP  # noqa: E402
from nets.stacked import StackedMLP  # noqa: E402
from nets.train import batch_inputs, member_losses, orbit_cayley, OrbitData  # noqa: E402

# Small but not tiny: a few hidden layers of width 16, 12x12 images (R4 and T3 act on them).
SHAPE, HIDDEN, LAYERS, CLASSES, B = (12, 12), 16, 3, 5, 24
TOL = {torch.float32: dict(rtol=1e-5, atol=1e-5), torch.float64: dict(rtol=1e-10, atol=1e-12)}
NU = 0.7


def _batch(group: Group, dtype: torch.dtype):
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(B, *SHAPE, generator=gen, dtype=dtype)
    y = torch.randint(0, CLASSES, (B,), generator=gen)
    elements = torch.randint(0, group.order, (B,), generator=gen)
    return x, y, elements


def _models(method: str, group: Group, dtype: torch.dtype):
    """Our MLP/InvariantMLP, the stacked trainer model (1 member) and the reference, same weights."""
    torch.manual_seed(0)
    kw = dict(in_shape=SHAPE, n_classes=CLASSES, hidden=HIDDEN, n_hidden_layers=LAYERS)
    ours = (InvariantMLP(group, **kw) if method == "WT" else MLP(**kw)).to(dtype)
    stacked = StackedMLP(1, SHAPE, CLASSES, HIDDEN, LAYERS, group=group if method == "WT" else None, dtype=dtype)
    stacked.load_member_state_dict(0, ours.state_dict())
    return stacked, R.reference_from(ours)


def _fast_batch(method: str, group: Group, x: torch.Tensor, y: torch.Tensor, elements: torch.Tensor):
    """The trainer's batch of one member: row gathers from the orbit table of ``(x, y)``.
    DA ``(1, B, D)``; IR and WT ``(1, |G|, B, D)``, the orbit of each augmented sample
    with the augmented sample itself first."""
    data = OrbitData(Split(x, y), group, torch.device("cpu"), dtype=x.dtype)
    idx = torch.arange(B).unsqueeze(0)
    return batch_inputs(data, method, elements.unsqueeze(0), idx, orbit_cayley(group, torch.device("cpu")))


@pytest.mark.parametrize("group", [R4, T3], ids=lambda g: g.name)
@pytest.mark.parametrize("method", ["DA", "IR", "WT"])
def test_trainer_batch_equals_rot90_roll_augmentation_and_orbit(method, group):
    x, y, elements = _batch(group, torch.float32)
    x_aug = R.augment(x, group, elements)
    ref = x_aug if method == "DA" else R.orbit(x_aug, group)  # (B, H, W) or (|G|, B, H, W)
    assert torch.equal(_fast_batch(method, group, x, y, elements)[0], ref.flatten(-2))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("group", [R4, T3], ids=lambda g: g.name)
@pytest.mark.parametrize("method", ["DA", "IR", "WT"])
def test_fast_path_and_reference_give_equal_losses_and_gradients(method, group, dtype):
    x, y, elements = _batch(group, dtype)
    x_aug = R.augment(x, group, elements)
    stacked, ref = _models(method, group, dtype)

    task, reg = member_losses(stacked, _fast_batch(method, group, x, y, elements), y.unsqueeze(0), method, "logit")
    nu = NU if method == "IR" else 0.0
    (task + nu * reg).sum().backward()
    ref_loss, ref_task, ref_reg = R.reference_loss(ref, x_aug, y, method, group, nu)
    ref_loss.backward()

    tol = TOL[dtype]
    torch.testing.assert_close(task[0], ref_task.to(dtype), **tol)
    torch.testing.assert_close(reg[0], ref_reg.to(dtype), **tol)
    if method == "IR":
        assert float(ref_reg.detach()) > 0  # a regularizer that is identically 0 would make the check vacuous
    linears = [m for m in ref.modules() if isinstance(m, torch.nn.Linear)]
    assert len(linears) == stacked.n_layers
    for l, lin in enumerate(linears):
        torch.testing.assert_close(stacked.weights[l].grad[0], lin.weight.grad, **tol)
        torch.testing.assert_close(stacked.biases[l].grad[0], lin.bias.grad, **tol)


def test_protocol_flop_count_brackets_the_ascending_nu_search():
    from benchmarks import flops

    p = flops.paper_protocol(100.0)
    paper = PROFILES["paper"]
    n_ir = sum(len(paper.nu_grid(r)) for r in paper.regularizers)  # every form's whole grid
    assert p["nu_grid_sizes"] == {r: len(paper.nu_grid(r)) for r in paper.regularizers}
    for g in p["per_group"].values():
        G = g["order"]
        run = lambda m: p["seeds"] * p["epochs"] * (p["n_train"] * flops.train_flops(m, G)  # noqa: E731
                                                    + p["n_val"] * flops.validation_flops(m, G))
        assert g["configs"]["IR"] == n_ir
        assert g["gflop"] * 1e9 == run("WT") + run("DA") + n_ir * run("IR")
        assert g["gflop_ascending_best_case"] * 1e9 == run("WT") + run("DA") + 3 * run("IR")
    assert p["total_gflop_ascending_best_case"] < p["total_gflop"]
    assert p["lower_bound_s_at_matmul_rate"] == pytest.approx(p["total_gflop"] / 100.0)
