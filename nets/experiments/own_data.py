"""Claims 1, 1b, 2, 3 and 5 on your model and your own images (``python -m nets own-data``).

Protocol. The same as Table 1's and Figure 5's for the CNN (:mod:`nets.experiments.cnn`), on the
train / val / test splits of a file (:func:`nets.image_file.load_split_file`) instead of
Transforming-MNIST: your model (a factory ``PKG.MODULE:FACTORY``, :func:`nets.experiments.cnn.cnn_model`)
trained as WT, DA and IR (logit form, nu searched smallest first on validation SI >= ``si_target``)
for ``epochs`` epochs per seed, the best validation orbit accuracy epoch kept; then, on the test
split, Table 1's accuracy over the full orbit, LI, DI, SI (first ``n_si_samples``), Figure 5's
sigma_max(J) of DA and IR (first ``n_sigma_samples``), and the orbit accuracy per class of each
method and seed (ours, :func:`nets.class_accuracy.per_class_over_seeds`). The verdicts are
:func:`nets.verdicts.verdicts` of those results, thresholds and all; claim 4 (drift towards a second
dataset) and Figure 2 are not run. The number of classes is the width of the model's logits (labels
must lie below it; where they name fewer classes, the report says so). Ours: each run's logit scale
(the norm of the centred logits on the sigma_max images), since two of the thresholds depend on it;
and the trainer's warnings (a factory that seeds itself, logits no label names) once each, in the
results and the report (:mod:`nets.own_data_report`).

Writes ``<out>/own_data.json`` (results, settings, the data file's SHA-256, provenance) and
``<out>/REPORT.md``; checkpoints go to ``<out>/checkpoints/``, so an interrupted run resumes.
``<out>/source.json``, written before anything trains, ties the folder's checkpoints to one data
file (its SHA-256) and model: a later run with another is refused (:class:`OwnDataError`, naming
which) instead of loading checkpoints trained on something else. Other settings may change: a
checkpoint's name holds its group, method, nu, epochs, classes and seed, so added seeds, epochs or
nu values train and the rest load. A run on fewer ``groups`` keeps the other groups' results of
``own_data.json`` when they were made with the same settings (else it says it drops them).
"""

from __future__ import annotations

import json
import math
import time
import warnings
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Sequence

import torch

from nets.class_accuracy import per_class_over_seeds
from nets.experiments.cnn import MLP_ONLY_FIELDS, cnn_model
from nets.experiments.profiles import Profile, check_nu_grid
from nets.experiments.spectral import spectral_entry
from nets.experiments.table1 import evaluate, summarize, table1_configs, table1_protocol, tune
from nets.experiments.common import mean_std
from nets.experiments.own_data_folder import (OwnDataError, claim_source, kept_groups, say_replaced, sitting,
                                              withdrawn_if_refused)
from nets.groups import get_group, group_name
from nets.image_file import load_split_file
from nets.layout_hints import (CHANNELS_LAST_FORWARD, accepts_channels_last, channels_last_hint, channels_last_warning,
                                probe_layouts, shape_str)
from nets.model_checks import ONE_LOGIT_FIX, is_one_logit, logits_inside
from nets.model_spec import one_line
from nets.own_data_report import own_data_report
from nets.precision import exact_float32
from nets.results_io import run_provenance, sha256_file, write_json, write_text
from nets.sensitivity import centered_logit_norm
from nets.train import (ChannelsLast, SameInitialWeights, TrainConfig, UnusedClasses, check_device, check_model_output,
                        seeds_share_initial_weights, train_runs)

__all__ = ["OwnDataError", "OwnDataSettings", "own_profile", "run_own_data"]

#: How channels-last ``--data`` images are fixed, in the refusals and the warning that name them.
SAVE_CHANNELS_FIRST = "save x_train, x_val and x_test as x.permute(0, 3, 1, 2)"


@dataclass(frozen=True)
class OwnDataSettings:
    """Sizes of the run (the command's options): ``seeds``, ``epochs``, IR's ``nu_grid`` (logit form,
    searched smallest first), ``n_si_samples`` (SI, validation and test), ``n_sigma_samples``
    (sigma_max), ``ig_steps`` (integrated gradients), ``si_target`` (IR's validation SI target),
    ``batch_size`` and Adam's ``lr`` (the paper's 512 and 8e-4; a small training split wants a smaller
    batch, or an epoch is one step)."""

    seeds: tuple[int, ...] = (0, 1, 2, 3)
    epochs: int = 20
    nu_grid: tuple[float, ...] = (1.0, 3.0, 10.0, 30.0, 100.0)
    n_si_samples: int = 200
    n_sigma_samples: int = 500
    ig_steps: int = 50
    si_target: float = 0.95
    batch_size: int = TrainConfig.batch_size  # the paper's, as the trainer's
    lr: float = TrainConfig.lr

    def __post_init__(self) -> None:
        if not self.seeds or any(not isinstance(s, int) or s < 0 for s in self.seeds) \
                or len(set(self.seeds)) != len(self.seeds):
            raise OwnDataError(f"seeds must be distinct integers >= 0, got {list(self.seeds)}")
        for name in ("epochs", "n_si_samples", "n_sigma_samples", "ig_steps", "batch_size"):
            if getattr(self, name) < 1:
                raise OwnDataError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise OwnDataError(f"lr must be a finite number > 0, got {self.lr}")
        try:
            object.__setattr__(self, "nu_grid", check_nu_grid(self.nu_grid))
        except ValueError as e:
            raise OwnDataError(str(e)) from None


def own_profile(settings: OwnDataSettings, groups: Sequence[str], sizes: dict[str, int], model: str) -> Profile:
    """The :class:`Profile` the shared Table 1 / Figure 5 code reads: ``settings``, the ``groups``,
    the splits' ``sizes`` (``n_train``, ``n_val``, ``n_test``) and the factory spec ``model``."""
    return Profile(name="own", seeds=tuple(settings.seeds), epochs=settings.epochs, nu_grids=(("logit", settings.nu_grid),),
                   n_si_samples=settings.n_si_samples, n_sigma_samples=settings.n_sigma_samples,
                   ig_steps=settings.ig_steps, si_target=settings.si_target, regularizers=("logit",),
                   groups=tuple(groups), dataset="own", model=model, **sizes)


def _logit_scale(model: torch.nn.Module, x: torch.Tensor, device) -> float:
    """The mean norm of ``model``'s centred logits on ``x`` (``nets.audit``'s ``logit_scale``)."""
    with torch.no_grad():
        return float(centered_logit_norm(model.to(device).eval()(x)).mean())


def _warnings(model: str, factory, config, n_seeds: int, n_labels: int, width: int,
              image_shape: tuple[int, ...]) -> list[str]:
    """What the trainer would warn of for this run, once each and whatever trains this time (so a
    rerun that loads everything reports the same), each also given to :func:`warnings.warn`: seeds
    that start from the same weights, logits that no label names, images that look channels-last
    (``image_shape``: the training split's, ``(N, *C, H, W)``)."""
    out = []
    unrefused = channels_last_warning(image_shape, "the --data images", SAVE_CHANNELS_FIRST)
    if unrefused:  # refused above where the group or the model refuses them
        out.append(unrefused)
    if n_seeds > 1 and seeds_share_initial_weights(config, factory):
        out.append(f"--model {model} builds the same initial weights for every seed (the factory loads fixed "
                   "weights or calls torch.manual_seed itself): the seeds differ only in batch order and "
                   "augmentation, and the intervals over seeds cover only that")
    if n_labels < width:
        out.append(f"the train and val labels name {n_labels} classes (0 to {n_labels - 1}) but --model {model} "
                   f"gives {width} logits: {width - n_labels} are never a target, yet LI, DI and sigma_max sum "
                   f"over all {width} (a model of {n_labels} logits measures the classes alone)")
    for text in out:
        warnings.warn(text, stacklevel=3)
    return out


def run_own_data(model: str, data: str | Path, groups: Sequence[str], out: str | Path,
                 settings: OwnDataSettings = OwnDataSettings(), *, device: str = "auto", progress: bool = True,
                 command: str | None = None) -> dict:
    """Train (or load) WT, DA and IR of ``model`` on the file ``data`` for each group, measure
    Table 1 and Figure 5, decide the claims, write ``own_data.json`` and ``REPORT.md`` into ``out``
    (module docstring). Returns the results. Raises :class:`OwnDataError` /
    :class:`~nets.image_file.ImageFileError` / the trainer's one-line ``ValueError`` for bad input,
    before anything trains. On CUDA it trains and measures in IEEE float32
    (:func:`nets.precision.exact_float32`)."""
    dev = check_device(device)
    with exact_float32(dev):
        return _run_own_data(model, data, groups, out, settings, dev=dev, progress=progress, command=command)


def _run_own_data(model: str, data: str | Path, groups: Sequence[str], out: str | Path, settings: OwnDataSettings,
                  *, dev: torch.device, progress: bool, command: str | None) -> dict:
    started = time.time()
    out = Path(out)
    if not groups:
        raise OwnDataError("give at least one group (--groups r4 ...)")
    groups = list(dict.fromkeys(group_name(g) for g in groups))  # "F2 f2" is one group; an unknown name: one line
    splits = load_split_file(data, flag="--data")
    chlast = channels_last_hint(splits.train.x.shape, "the --data images look", SAVE_CHANNELS_FIRST)
    for g in groups:
        try:
            get_group(g).orbit_index(*splits.train.x.shape[-2:])  # check_shape (one line), then the action
        except ValueError as e:
            raise ValueError(f"{e}{chlast}") from None
    sizes = {"n_train": len(splits.train), "n_val": len(splits.val), "n_test": len(splits.test)}
    prof = own_profile(settings, groups, sizes, model)
    own = cnn_model(prof)
    probe = splits.train.x[:2]  # two images, or the one a training split of one holds
    k = len(probe)
    images = f"{k} training image{'s' if k > 1 else ''}"
    net = own.factory(None).eval()
    try:
        with torch.no_grad():
            logits = net(probe)
    except Exception as e:  # whatever the model raises on the images; the trainer's checks name more
        needed = None if chlast else probe_layouts(net, probe)
        accepts = ("" if not needed else
                   f"; it accepts {shape_str(needed)}, channels-last: keep the images (N, C, H, W), on which the "
                   f"group acts, and wrap the model, forward(x) = {CHANNELS_LAST_FORWARD}"
                   if accepts_channels_last(needed, probe.shape) else
                   f"; it accepts {shape_str(needed)}: save x_train, x_val and x_test in that layout")
        raise OwnDataError(f"--model {model} refused {images} of shape "
                           f"{tuple(probe.shape)}: {type(e).__name__}: {one_line(e)}{chlast}{accepts}") from None
    if is_one_logit(logits, k):
        raise OwnDataError(f"--model {model} returns one logit per image ({tuple(logits.shape)} for {images}); "
                           f"for a binary classifier of one logit, let the factory return {ONE_LOGIT_FIX}")
    if not isinstance(logits, torch.Tensor) or logits.dim() != 2 or logits.shape[0] != k:
        got = f"shape {tuple(logits.shape)}" if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise OwnDataError(f"--model {model} must return logits (N, classes) for images (N, ...); got {got} for "
                           f"{images}{logits_inside(logits)}")
    if not bool(torch.isfinite(logits).all()):
        raise OwnDataError(f"--model {model} returned NaN or inf logits for {images}, before any training")
    width = int(logits.shape[-1])
    for name in ("train", "val", "test"):
        y = splits[name].y
        if int(y.min()) < 0 or int(y.max()) >= width:
            raise OwnDataError(f"y_{name} holds labels in [{int(y.min())}, {int(y.max())}], but the model has "
                               f"{width} logits: labels must be in [0, {width})")
    if len(torch.unique(splits.train.y)) < 2:
        raise OwnDataError(f"y_train holds one class only ({int(splits.train.y[0])}): a classifier needs at least two "
                           "to learn, and accuracy, DI and SI mean nothing without them")
    check_model_output(own.factory(None), splits.train.x[:2], width, f"--model {model}")  # nothing to train: before
    # source.json is written, as the warnings' probe, which builds the model for two seeds
    n_labels = 1 + max(int(splits[name].y.max()) for name in ("train", "val"))  # the classes it trains on
    notes = _warnings(model, own.factory, replace(table1_configs(prof, groups[0], model=own.name)["DA"],
                                                  n_classes=width), len(settings.seeds), n_labels, width,
                   tuple(splits.train.x.shape))
    # As the files hold it (tuples as lists), so that it compares equal to what they read back
    source = json.loads(json.dumps({"data": str(data), "data_sha256": sha256_file(data), "model": model,
                                    "settings": asdict(settings)}))
    fresh = [p for p in (out / "source.json", out / "checkpoints", out) if not p.exists()]  # what this run adds
    claim_source(out, source)
    run_dir, k = out / "checkpoints", len(settings.seeds)
    table1, spectral, per_class = {}, {}, {}
    test = splits.test.to(dev)
    x_sigma = test.x[:min(settings.n_sigma_samples, len(test))]
    with withdrawn_if_refused(out, fresh), warnings.catch_warnings():  # a refusal leaves the folder as it was
        for category in (SameInitialWeights, UnusedClasses, ChannelsLast):  # said once above, in this command's words
            warnings.simplefilter("ignore", category)
        for g in groups:
            base = {m: replace(c, n_classes=width, batch_size=settings.batch_size, lr=settings.lr)
                    for m, c in table1_configs(prof, g, model=own.name).items()}
            fixed = train_runs([base["WT"], base["DA"]], list(settings.seeds), splits, device=dev, run_dir=run_dir,
                               progress=progress, model_fn=own.factory)
            selection, ir_runs = tune(base["IR"], prof, splits, device=dev, run_dir=run_dir, progress=progress,
                                      model_fn=own.factory)
            runs = {"WT": fixed[:k], "DA": fixed[k:], "IR": ir_runs}
            methods = {}
            for m, rs in runs.items():
                methods[m] = summarize(rs[0].config, [{**evaluate(r, splits, g, prof, dev),
                                                       "logit_scale": _logit_scale(r.model, x_sigma, dev)}
                                                      for r in rs])
                methods[m]["logit_scale"] = mean_std([e["logit_scale"] for e in methods[m]["runs"]])
                methods[m].update(engine=rs[0].engine, wt_pooling=rs[0].wt_pooling)
                for field in MLP_ONLY_FIELDS:
                    methods[m]["config"].pop(field, None)
            table1[g] = {"methods": methods, "nu_selection": selection}
            per_class[g] = per_class_over_seeds({m: [r.model.to(dev).eval() for r in rs] for m, rs in runs.items()},
                                                test.x, test.y, g)
            spectral[g] = {"models": {key: spectral_entry(runs[m], x_sigma, test, get_group(g), dev)
                                      for key, m in (("DA", "DA"), ("IR-logit", "IR"))},
                           "nu_selections": {"logit": selection}}
    kept = kept_groups(out, source, groups, progress)
    merged = [{**kept.get(name, {}), **section}
              for name, section in (("table1", table1), ("spectral", spectral), ("per_class", per_class))]
    # a group keeps its place in the file, rerun or kept; groups new to it come after, in --groups order
    order = [g for g in dict.fromkeys([*kept.get("order", []), *groups]) if g in merged[0]]
    table1, spectral, per_class = ({g: m[g] for g in order if g in m} for m in merged)
    results = {
        "source": {**source, "sizes": sizes, "image_shape": list(splits.train.x.shape[1:]), "n_classes": width,
                   "n_labels": n_labels,
                   "class_names": None if splits.class_names is None else list(splits.class_names)},
        "model": own.record,
        "table1": {"protocol": table1_protocol(prof, splits), "groups": table1},
        "spectral": {"protocol": {"n_sigma_samples": len(x_sigma)}, "groups": spectral},
        "per_class": {"protocol": "orbit accuracy per class on the test split, per seed (nets.class_accuracy)",
                      "groups": per_class},
        "warnings": notes,
    }
    results["meta"] = run_provenance(device=str(dev), started=started, command=command)
    made = {**kept.get("group_provenance", {}), **{g: sitting(results["meta"]) for g in groups}}
    results["group_provenance"] = {g: made[g] for g in order}
    say_replaced(out / "own_data.json", source["settings"])
    write_json(out / "own_data.json", results)
    write_text(out / "REPORT.md", own_data_report(results))
    return results
