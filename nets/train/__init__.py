"""Training the paper's three kinds of model (Sections 3.3 and 4.1).

The package, one concern per module: :mod:`~nets.train.config` (:class:`TrainConfig`,
:class:`TrainedRun`, names, seeds), :mod:`~nets.train.losses` (task loss, regularizer forms),
:mod:`~nets.train.batches` (the orbit data on the device, batch inputs),
:mod:`~nets.train.evaluate` (accuracy over the full orbit), :mod:`~nets.train.checkpoints`
(path, atomic save, load, layout), :mod:`~nets.train.factory` (a factory's model, built per seed and
checked), :mod:`~nets.train.stacks` (the members of a stack: the paper
MLP as a StackedMLP, any model by ``vmap`` or one at a time), :mod:`~nets.train.pooling` (WT for
any model), :mod:`~nets.train.loop` (the epoch loop), :mod:`~nets.train.run_checks` (what is checked
before anything trains), :mod:`~nets.train.runs` (:func:`train_runs`),
:mod:`~nets.train.nu` (choosing ``nu``: :func:`select_nu`, :func:`tune_nu`).

Any model. ``TrainConfig(model="name")`` with ``train_runs(..., model_fn=f)`` trains the model
``f(config)`` with DA, WT or IR (see :mod:`~nets.train.stacks` and :mod:`~nets.train.pooling`,
and docs/trainer.md), in the dtype of its parameters (float32 or float64,
:func:`~nets.train.factory.model_dtype`); ``model="mlp"`` (the default) is the paper's MLP.

* ``DA``: the plain :class:`~nets.models.MLP` trained with data augmentation, a
  uniformly random group element per sample per epoch.
* ``WT``: the weight-tied :class:`~nets.models.InvariantMLP`, also trained with
  augmentation.
* ``IR``: the MLP with augmentation plus ``nu`` times an invariance regularizer,
  Eq. 4: ``min_theta L_f(D) + nu I_f(D, G)``.

Regularizer forms (:func:`invariance_regularizer`), on the logits of the whole
orbit of each augmented sample ``x_a`` (one forward of all ``|G|`` members), the
task loss (cross-entropy) on ``x_a`` itself, and the regularizer comparing
``f(x_a)`` with the other members ``f(h x_a)``, ``h != e``, averaged over ``h``
and the batch:

* ``"logit"`` (default, Eq. 2): ``1/2 ||f(x) - f(hx)||^2``;
* ``"kl"`` (Eq. 1): ``KL(softmax f(x) || softmax f(hx))``, from ``log_softmax``;
* ``"normalized_logit"`` (Section 4.4): ``||f(x) - f(hx)||^2 / (||f(x)||^2 + eps)``
  with ``eps = NORMALIZED_LOGIT_EPS`` (1e-6; our guard, not in the paper,
  against a vanishing denominator);
* ``"centered_normalized_logit"`` (ours, not the paper's): the normalized form on the
  class-centered logits ``v - mean_c v_c``, which a class-common shift cannot lower;
* ``"detached_normalized_logit"`` (ours, another reading of Section 4.4): the normalized
  form's value with no gradient through its denominator ``||f(x)||^2``.

Protocol (Section 4.1, "Training details"): Adam, learning rate 0.0008, batch
size 512, 300 epochs; the final model is the epoch with the best validation
accuracy, where accuracy is taken over the validation set's *full orbit* (every
sample under every group element). The last partial batch of an epoch is kept.

Performance. All data live on the device as one tensor: the training set's
orbit table ``(|G| N, D)`` is built once, so an augmented batch (or the orbit
of one, for IR and WT) is a single row gather; one random permutation and one
draw of group elements per epoch. Several runs of one method/group/regularizer
(different seeds and ``nu``) train together as one :class:`~nets.stacked.StackedMLP`
(``torch.baddbmm`` over the members; another model: ``stack_module_state`` +
``vmap(functional_call)``, or one at a time, :mod:`~nets.train.stacks`); member ``s`` still has its own
initialisation, data order, augmentation draws and ``nu``, and gets exactly the
gradient of its own loss. Adam is fused where the device supports it. The
host reads device values once per epoch (losses and validation accuracy).

Randomness. Every run draws from two explicit CPU ``torch.Generator`` objects
derived from its seed (initial weights; data order and augmentation), never
from the global RNG (a factory model's initial weights and random layers come from
the global RNG forked and seeded from the run's seed, :func:`~nets.train.factory.init_model`),
so a seed gives the same initial weights and the same batches on every device and whether it is stacked or not, and the same seed
on the same device gives the same numbers. Two runs with the same seed but
different methods start from the same weights and see the same batches
("common random seeds", Section 4.2).

Resuming. With ``run_dir`` each run writes ``<key>-seed<seed>.pt`` atomically
(temporary file, then ``os.replace``) every ``checkpoint_every`` epochs and at
the end: current and best weights, Adam state, the data generator's state,
history and wall time; plain tensors, dicts, lists and numbers, so it loads with
``torch.load(..., weights_only=True)``. Calling again skips finished runs and
continues unfinished ones from their last checkpoint, with the same final
result as an uninterrupted run (same device and the same stacking).
"""

from __future__ import annotations

from nets.train.batches import MAX_ORBIT_TABLE_BYTES, OrbitData, batch_inputs, orbit_cayley, orbit_index_nd
from nets.train.checkpoints import (
    CHECKPOINT_FORMAT,
    atomic_save,
    build_model,
    checkpoint_path,
    load_checkpoint,
    run_from_checkpoint,
    save_members,
)
from nets.train.config import (
    CENTERED_FORM,
    DETACHED_FORM,
    HISTORY_KEYS,
    METHODS,
    PAPER_MODEL,
    REGULARIZERS,
    Method,
    Pool,
    Regularizer,
    TrainConfig,
    TrainedRun,
    TrainingDiverged,
    check_device,
    resolve_device,
    set_threads,
    stream_seed,
)
from nets.train.evaluate import orbit_accuracy, shared_orbit_accuracy, stacked_orbit_accuracy
from nets.train.factory import ModelFn, can_stack, check_model_output, declared_input_shape, init_model, input_shape_of
from nets.train.loop import Member, make_adam, train_stack
from nets.train.losses import (
    NORMALIZED_LOGIT_EPS,
    centered_normalized_logit_distance,
    class_centered,
    half_squared_logit_distance,
    invariance_regularizer,
    kl_from_log_probs,
    member_losses,
    normalized_logit_distance,
    regularizer_members,
    task_loss_members,
)
from nets.train.nu import AUTO_NU_SEARCH, NuSearch, NuSelection, select_nu, tune_nu
from nets.train.pooling import FirstLayerPooling, GroupPooled, wt_pooling_of
from nets.train.run_checks import ChannelsLast, SameInitialWeights, UnusedClasses, seeds_share_initial_weights
from nets.train.runs import (AUTO_MIN_CHECKPOINT_S, AUTO_STACK, ResumedElsewhere, UnplannedTraining, train_runs,
                             trained_before)
from nets.train.stacks import GenericStack, MLPStack

__all__ = [
    "ChannelsLast",
    "SameInitialWeights",
    "UnusedClasses",
    "seeds_share_initial_weights",
    "Method",
    "Regularizer",
    "Pool",
    "METHODS",
    "REGULARIZERS",
    "CENTERED_FORM",
    "DETACHED_FORM",
    "PAPER_MODEL",
    "HISTORY_KEYS",
    "TrainConfig",
    "TrainedRun",
    "NuSelection",
    "NuSearch",
    "TrainingDiverged",
    "NORMALIZED_LOGIT_EPS",
    "CHECKPOINT_FORMAT",
    "AUTO_STACK",
    "AUTO_MIN_CHECKPOINT_S",
    "AUTO_NU_SEARCH",
    "MAX_ORBIT_TABLE_BYTES",
    "resolve_device",
    "check_device",
    "set_threads",
    "stream_seed",
    "invariance_regularizer",
    "half_squared_logit_distance",
    "kl_from_log_probs",
    "normalized_logit_distance",
    "centered_normalized_logit_distance",
    "class_centered",
    "regularizer_members",
    "task_loss_members",
    "member_losses",
    "OrbitData",
    "orbit_cayley",
    "orbit_index_nd",
    "batch_inputs",
    "orbit_accuracy",
    "stacked_orbit_accuracy",
    "shared_orbit_accuracy",
    "checkpoint_path",
    "atomic_save",
    "load_checkpoint",
    "build_model",
    "run_from_checkpoint",
    "save_members",
    "Member",
    "make_adam",
    "train_stack",
    "train_runs",
    "trained_before",
    "UnplannedTraining",
    "ResumedElsewhere",
    "select_nu",
    "tune_nu",
    "ModelFn",
    "FirstLayerPooling",
    "GroupPooled",
    "wt_pooling_of",
    "MLPStack",
    "GenericStack",
    "can_stack",
    "check_model_output",
    "init_model",
    "declared_input_shape",
    "input_shape_of",
]
