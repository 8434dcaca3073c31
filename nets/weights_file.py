"""The model a weights file holds, weight tying included.

A WT run (Section 4.1) trains your model inside the group pooling of
:class:`nets.train.GroupPooled`, and its checkpoint holds the model's weights alone; loaded into
the bare model they give a model that is not invariant at all. :func:`checkpoint_model` rebuilds
the pooling the run was trained with (its group, its ``pool``, and the pooling recorded in the
checkpoint), so ``python -m nets audit --weights`` of a WT run's checkpoint measures the model that
was trained. Any other weights file is loaded as :func:`nets.model_spec.load_weights` loads it.
"""

from __future__ import annotations

from torch import nn

from nets.groups import get_group
from nets.model_spec import ModelSpecError, load_state, one_line, read_weights, wt_config
from nets.models import InvariantMLP
from nets.train import GroupPooled
from nets.train.checkpoints import recorded_wt_pooling

__all__ = ["POOLED_PREFIX", "checkpoint_model"]

#: Prefix of the weights in a factory model's WT checkpoint (:class:`nets.train.GroupPooled` holds
#: the model as ``model``); the paper's MLP's WT checkpoint (:class:`nets.models.InvariantMLP`) has none.
POOLED_PREFIX = "model."


def checkpoint_model(model: nn.Module, path: str) -> nn.Module:
    """``model`` (built by your factory) holding the weights in the file ``path``; for a WT run's
    checkpoint, wrapped in the :class:`~nets.train.GroupPooled` it was trained in (over the run's
    group, with its ``pool``), unless ``model`` is already pooled (a ``GroupPooled`` or an
    ``InvariantMLP``). Returns the model to measure, in eval mode (as the trainer's ``run.model``; a
    BatchNorm or Dropout layer would otherwise make its outputs depend on the batch): ``model``
    itself or its pooled form.

    Raises ``ModelSpecError`` (one line) for a file that cannot be read or does not fit, a
    checkpoint whose group is unknown here, or a model that pools differently from the recorded run
    (``first_layer-max`` recorded for a model without ``first_layer``)."""
    obj, state = read_weights(path)
    config = wt_config(obj)
    if config is None or isinstance(model, (GroupPooled, InvariantMLP)):
        load_state(model, state, path, obj)
        return model.eval()
    if state and all(k.startswith(POOLED_PREFIX) for k in state):
        state = {k[len(POOLED_PREFIX):]: v for k, v in state.items()}
    load_state(model, state, path, obj)
    group = str(config.get("group"))  # as the run named it: records give a custom group's spec
    try:
        get_group(group)
    except ValueError as e:
        raise ModelSpecError(f"weights file {path} is a WT run's checkpoint over a group not known here: "
                             f"{one_line(e)}") from e
    pooled = GroupPooled(model, group, pool=config.get("pool", "max"))
    recorded = recorded_wt_pooling(obj)
    if pooled.pooling != recorded:
        raise ModelSpecError(f"weights file {path} is a WT run trained with {recorded} pooling, but the model "
                             f"would be pooled as {pooled.pooling} (first-layer pooling needs first_layer and "
                             f"after_first_layer, as when it was trained)")
    return pooled.eval()
