"""Probes of a model on a few of the images, for :func:`nets.model_checks.check_model`: that each sample's
logits depend on that sample alone and not on chance (:func:`check_samplewise`), and that randomness
drawn per sample, drop-path in training mode, is off (:func:`check_copies_agree`). Each raises one
``ValueError`` line naming the problem.
"""

from __future__ import annotations

from typing import Callable

import torch

from nets.model_logits import MemoryFormatRefused, check_output_kind, is_export_guard, model_logits

__all__ = ["SAMPLEWISE_RTOL", "check_samplewise", "COPIES", "check_copies_agree", "dynamically_quantized"]


#: How far (relative to the largest logit) a sample's logits may move between two calls, or between
#: a batch of two and the sample alone, before the model counts as random or batch-mixing: kernel
#: choices differ by batch size (round-off, TF32 convolutions on CUDA), sample mixing does not stay
#: this small.
SAMPLEWISE_RTOL = {"cpu": 1e-4, "other": 1e-2}


#: How many of the first samples :func:`check_samplewise` searches for one unlike the first.
_PROBE_SEARCH = 64


def check_samplewise(model: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> None:
    """Refuse (one-line ``ValueError``) a model whose logits for a sample change from one call to
    the next (randomness left on in evaluation, such as ``F.dropout(h, p)`` whose ``training``
    defaults to True) or depend on the other samples of the batch (a layer using batch
    statistics), whatever modules cause it: probed on two samples of ``x`` (the first and the
    next one unlike it among the first 64, or, when there is none, the first flipped and halved),
    called twice and the first alone, without
    gradients, each call on its own copy (so ``x`` is never changed). Also refused: a model that
    edits its input in place, and one that maps the pair but not the first sample alone (non-finite
    logits from a batch variance of one sample, or a model that cannot take a batch of one). A model
    that refuses the pair or returns malformed or non-finite logits for it passes: the measure's own
    call then reports that with the batch it built (:func:`model_logits`). Probabilities in place of
    logits are refused, log-probabilities warned of (:func:`~nets.model_logits.check_output_kind`)."""
    first = x[:1].detach()
    # a second sample unlike the first (duplicates would hide a batch-mixing model), among the first few
    head = x[:_PROBE_SEARCH].detach()
    differs = (head != first).flatten(1).any(1)
    other = head[int(differs.float().argmax())][None] if bool(differs.any()) else 0.5 * first.flip(-1, -2)
    pair = torch.cat([first, other])
    given = pair.clone()  # the model gets copies only: x is never handed to it
    try:
        with torch.no_grad():
            a = model_logits(model, given)
            b = model_logits(model, pair.clone())
    except ValueError:
        return
    check_output_kind(a)
    try:
        with torch.no_grad():
            alone = model_logits(model, first.clone())
    except ValueError as e:  # the pair maps, the sample alone does not: NaN from a batch variance of one sample
        if isinstance(e, MemoryFormatRefused) or (e.__cause__ is not None and is_export_guard(e.__cause__)):
            raise  # channels_last images of a model with a .view(), or exported for one batch size: said so
        raise ValueError(f"the model maps two samples but not the first alone ({e}): a layer uses batch "
                         f"statistics (BatchNorm in training mode, or x.std(0) / x.var(0) in its forward? call .eval() "
                         f"on the network the model calls), or it cannot take a batch of one (a squeeze() of the "
                         f"batch axis?); the measures need a model that maps each sample on its own, in batches of "
                         f"any size") from None
    if not torch.equal(given, pair):
        raise ValueError("the model edits its input in place (its forward changed the images it was given); the "
                         "measures reuse the images and differentiate through them: compute out of place "
                         "(x = x * 2, not x.mul_(2))")
    scale = float(a.detach().abs().max()) + 1e-12
    rtol = SAMPLEWISE_RTOL["cpu" if a.device.type == "cpu" else "other"]
    moved = float((a - b).detach().abs().max()) / scale
    if moved > rtol:
        raise ValueError(f"model output changes from one call to the next (by {moved:.2g} of the largest logit): "
                         f"randomness is on (dropout? F.dropout needs training=self.training; drop-path?); the "
                         f"measures need a deterministic model: call model.eval() or switch the randomness off")
    moved = float((a[:1] - alone).detach().abs().max()) / scale
    if moved > rtol:
        dynamic = dynamically_quantized(model)
        why = (f"its layer {dynamic[0]} is dynamically quantized (torch.ao.quantization.quantize_dynamic), which "
               f"scales its input by the batch's range; measure the float model" if dynamic else
               "a layer uses batch statistics (BatchNorm in training mode? call .eval() on the network the model "
               "calls)")
        raise ValueError(f"model output for a sample depends on the rest of the batch (it moves by {moved:.2g} "
                         f"of the largest logit when the sample is alone): {why}; the measures need a model that "
                         f"maps each sample on its own")


def dynamically_quantized(model: object) -> list[str]:
    """The submodules of ``model`` quantized by ``torch.ao.quantization.quantize_dynamic`` (their
    activations' scale is taken from each batch), each as ``"name (type)"``; ``[]`` for none or a plain callable."""
    if not isinstance(model, torch.nn.Module):
        return []
    return [f"{name or 'the model'} ({type(m).__name__})" for name, m in model.named_modules()
            if type(m).__module__.startswith("torch.ao.nn.quantized.dynamic")]


#: How many copies of one sample :func:`check_copies_agree` compares, two to a batch.
COPIES = 64


def check_copies_agree(model: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> None:
    """Refuse (one-line ``ValueError``) a model whose logits differ between two copies of one sample in
    one batch: randomness drawn per sample (stochastic depth, drop-path, written by hand or timm's
    ``DropPath``, in training mode), which two calls on two samples (:func:`check_samplewise`) miss as
    often as no sample is dropped. :data:`COPIES` copies of the first sample of ``x``, in batches of
    two (a model that expands its batch, as WT by its group, stays at :func:`check_samplewise`'s
    size), without gradients, stopping at the first pair that differs: a drop rate of 0.1 leaves a
    pair alike with probability 0.82, all 32 pairs with 0.2%. A model that refuses the batch passes
    (the measure's own call reports it). :func:`check_model` runs it once per model and modes."""
    pair = x[:1].detach().expand(2, *x.shape[1:])
    for _ in range(COPIES // 2):
        try:
            with torch.no_grad():
                out = model_logits(model, pair.clone())
        except ValueError:
            return
        moved = float((out[1] - out[0]).detach().abs().max()) / (float(out.detach().abs().max()) + 1e-12)
        if moved > SAMPLEWISE_RTOL["cpu" if out.device.type == "cpu" else "other"]:
            raise ValueError(f"model output differs between two copies of one sample in one batch (by {moved:.2g} "
                             f"of the largest logit): randomness drawn per sample is on (drop-path or stochastic "
                             f"depth in training mode?); the measures need a deterministic model: call model.eval()")
