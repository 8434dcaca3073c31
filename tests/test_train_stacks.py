"""The two ways of stacking the paper's MLP agree: the StackedMLP engine (``torch.baddbmm`` over
the members) and the generic engine (``stack_module_state`` + ``vmap(functional_call)`` over
:class:`nets.models.MLP`), given the same weights and the same batches of the same seeds, give
equal task losses, regularizers and gradients for DA, WT and IR, to float32 round-off.

Their initial weights are drawn differently (``StackedMLP.reset_parameters`` vs the factory's
``nn.Linear`` initialisation under a seeded RNG), so the generic stack is loaded with the
StackedMLP's weights before comparing.
"""

from __future__ import annotations

import pytest
import torch

from nets.data import synthetic_splits
from nets.groups import get_group
from nets.models import MLP
from nets.train import (
    GenericStack,
    MLPStack,
    OrbitData,
    TrainConfig,
    batch_inputs,
    member_losses,
    orbit_cayley,
    stream_seed,
)

SEEDS = [0, 1, 2]
SMALL = dict(hidden=16, n_hidden_layers=2, batch_size=32)


def _mlp(config: TrainConfig) -> MLP:
    return MLP(in_shape=(18, 18), n_classes=config.n_classes, hidden=config.hidden,
               n_hidden_layers=config.n_hidden_layers)


def _both(method: str, pool: str = "max"):
    splits = synthetic_splits(n_train=64, n_val=16, n_test=8, seed=0, size=18)
    data = OrbitData(splits.train, get_group("r4"), torch.device("cpu"))
    nus = [0.5, 1.0, 2.0] if method == "IR" else [0.0] * 3
    paper = [TrainConfig(method=method, nu=nu, pool=pool, **SMALL) for nu in nus]
    generic = [TrainConfig(method=method, nu=nu, pool=pool, model="mlp_generic", **SMALL) for nu in nus]
    stacked = MLPStack(paper, SEEDS, data, torch.device("cpu"))
    vmapped = GenericStack(generic, SEEDS, data, torch.device("cpu"), _mlp, vmap=True)
    prefix = "model." if method == "WT" else ""
    for s in range(len(SEEDS)):
        vmapped.load_member(s, {prefix + k: v for k, v in stacked.model.member_state_dict(s).items()})
    return data, stacked, vmapped, torch.tensor(nus), prefix


def _losses_and_grads(stack, data: OrbitData, method: str, nu: torch.Tensor):
    gens = [torch.Generator().manual_seed(stream_seed(s, 1)) for s in SEEDS]
    idx = torch.stack([torch.randperm(data.N, generator=g)[:32] for g in gens])
    elem = torch.stack([torch.randint(0, data.G, (32,), generator=g) for g in gens])
    x = batch_inputs(data, stack.batch_method, elem, idx, orbit_cayley(data.group, torch.device("cpu")))
    task, reg = member_losses(stack, x, data.y[idx], method, "logit")
    for p in stack.params:
        p.grad = None
    (task + nu * reg).sum().backward()
    return task.detach(), reg.detach(), {n: p.grad for n, p in zip(stack.names, stack.params)}


@pytest.mark.parametrize("method, pool", [("DA", "max"), ("WT", "max"), ("WT", "mean"), ("IR", "max")])
def test_stacked_mlp_and_generic_stack_give_equal_losses_and_gradients(method, pool):
    """WT's mean pooling too: the stacked engine's own mean of relu responses against GroupPooled's."""
    data, stacked, vmapped, nu, prefix = _both(method, pool)
    t1, r1, g1 = _losses_and_grads(stacked, data, method, nu)
    t2, r2, g2 = _losses_and_grads(vmapped, data, method, nu)
    torch.testing.assert_close(t1, t2, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(r1, r2, rtol=1e-5, atol=1e-6)
    if method == "IR":
        assert float(r1.min()) > 0  # a regularizer that is there to compare
    for name, grad in g1.items():
        torch.testing.assert_close(grad, g2[prefix + name], rtol=1e-4, atol=1e-6)


def test_a_resumed_sweep_says_which_stacks_had_finished_before(tmp_path, capsys):
    from nets.distributed import TrainingJob, train_jobs
    from nets.train import TrainConfig

    jobs = [TrainingJob((TrainConfig(hidden=16, n_hidden_layers=2, batch_size=32, epochs=2, method=m),), (0, 1))
            for m in ("DA", "WT")]
    splits = synthetic_splits(n_train=64, n_val=16, n_test=8, seed=0, size=18)
    train_jobs(jobs[:1], splits, tmp_path, executor="local", device="cpu", progress=False)
    records = train_jobs(jobs, splits, tmp_path, executor="local", device="cpu", progress=True)
    assert [r["epochs_trained"] for r in records] == [0, 2]
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"[1/2] {jobs[0].name}: finished before, loaded in")
    assert out[1].startswith(f"[2/2] trained {jobs[1].name} in")
