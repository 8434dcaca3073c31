"""What ``python -m nets audit`` (:mod:`nets.audit_cli`) measures, made ready: the models and the project's images.

* :func:`ready_model`: the model a ``PKG.MODULE:FACTORY`` spec builds (:func:`nets.model_spec.load_factory`),
  with a weights file loaded (a WT run's checkpoint: pooled over its group as it was trained,
  :func:`nets.weights_file.checkpoint_model`), moved to the device and put in eval mode (an exported
  model runs as it was exported), and the note the command prints about its weights (none
  given: the factory's own; a pooled checkpoint), else ``None``.
* :func:`audit_images`: the first ``n`` test images of Transforming-MNIST / -FMNIST in the layout
  ``--channels`` asks for, with their labels and class names.

A problem with either (a weights file that does not exist, with the hint of an archived one; a
model that cannot move to the device; ``--n`` out of range) is an :class:`AuditError`, one line
naming the option. All three are re-exported by :mod:`nets.audit_cli`.
"""

from __future__ import annotations

import torch
from torch import nn

from nets.checkpoint_archive import archived_hint
from nets.image_file import LabelledImages
from nets.model_hooks import exported
from nets.model_spec import load_factory, one_line
from nets.weights_file import checkpoint_model

__all__ = ["AuditError", "ready_model", "audit_images"]


class AuditError(ValueError):
    """A problem with the command's inputs; printed as one line."""


def ready_model(spec: str, weights: str | None, device: torch.device, asked: str,
                flag: str = "--model") -> tuple[nn.Module, str | None]:
    """The model of ``spec`` with ``weights`` loaded (a WT run's checkpoint: pooled as it was
    trained, :func:`nets.weights_file.checkpoint_model`), on ``device``, in eval mode, and a
    note to print when it holds no weights file's or is pooled (else ``None``). ``flag`` names the
    option in the note and the errors (``--model``, ``--baseline``), ``asked`` the ``--device`` as given."""
    model = load_factory(spec, flag)
    if not weights:
        note = (f"{flag} has no weights file: the factory's own weights (untrained unless it loads some; "
                f"new at every call unless it seeds them)")
    else:
        hint = archived_hint(weights)
        if hint is not None:
            raise AuditError(f"weights file {weights} does not exist; {hint}")
        built, model = model, checkpoint_model(model, weights)
        note = (f"{flag} weights: a WT run's checkpoint, measured pooled over {model.group.name} "
                f"({model.pooling}) as it was trained" if model is not built else None)
    try:
        model = model.to(device)  # torch.export's module refuses eval(): it runs as it was exported
        return (model if exported(model) else model.eval()), note
    except (RuntimeError, AssertionError) as e:  # e.g. out of device memory
        raise AuditError(f"cannot move the model to --device {asked}: {one_line(e)}") from e


def audit_images(dataset: str, n: int, channels: int) -> LabelledImages:
    """The first ``n`` test images of Transforming-MNIST/-FMNIST in the layout ``channels`` asks for,
    their labels and the dataset's class names (``None`` for MNIST, whose classes are their digits)."""
    from nets.data import load_splits

    splits = load_splits(dataset, progress=False)
    test = splits.test
    if not 1 <= n <= len(test.y):
        raise AuditError(f"--n must be in [1, {len(test.y)}] for the {dataset} test split, got {n}")
    x, y = test.x[:n], test.y[:n]
    if channels == 1:
        x = x.unsqueeze(1)
    elif channels == 3:
        x = x.unsqueeze(1).repeat(1, 3, 1, 1)
    return LabelledImages(x, y, splits.class_names)
