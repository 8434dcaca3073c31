"""The paper's claims 1-5 on a CNN (issue 17, part 3): Table 1, Figure 4 and Figure 5 for
:class:`nets.cnn.SmallCNN`.

Protocol. The paper's, with the CNN in place of the MLP: WT, DA and IR on each group of the
profile, Adam (lr 8e-4), batch size 512, the best-validation-orbit-accuracy epoch kept
(:class:`~nets.train.TrainConfig`'s defaults), trained by :func:`nets.train.train_runs` with the
CNN's factory. WT pools the first layer over the orbit, ``after_first_layer(max_g relu(conv1(g
x)))``, the paper's weight tying at the first layer (Section 4.1), because the CNN exposes
``first_layer`` / ``after_first_layer`` (pooling the logits instead would average the whole network
over the orbit, a different model from the paper's WT). IR is the logit form (Eq. 4), its nu the
smallest of the CNN's grid whose mean validation SI reaches the target, searched in ascending order
(:func:`nets.experiments.table1.tune`, as for the MLP). The measures are those of the MLP's
experiments, through the same functions: Table 1 (:func:`~nets.experiments.table1.evaluate`),
Figure 4 (:func:`~nets.experiments.drift.drift_results`) and Figure 5 for DA and IR
(:func:`~nets.experiments.spectral.spectral_entry`).

Your model. ``python -m nets cnn --model PKG.MODULE:FACTORY`` (``Profile.model``) runs the same
protocol, measures and verdicts on a model of your own in place of the SmallCNN (:func:`cnn_model`;
docs/cnn.md).

Sizes. The CNN costs about 20 times the MLP per image, so its epochs and nu grid are its own,
per profile name (:data:`CNN_SIZES`; docs/cnn.md gives the measured epoch times behind them);
every other size is the profile's; ``--epochs`` and ``--nu-grid`` replace the first two for one
run (:func:`cnn_sizes`; the full 300 epochs on a GPU). ``cnn.json`` records them (``cnn_sizes``), and its
``meta.profile`` is the profile as run: the named profile with the CNN's sizes.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace
from typing import Callable, Sequence

import torch
from torch import nn

from nets.cnn import CNN_CHANNELS, CNN_STRIDES, SmallCNN
from nets.experiments.common import checkpoint_dir, finish
from nets.experiments.drift import drift_results
from nets.experiments.profiles import Profile, check_nu_grid
from nets.experiments.spectral import sigma_inputs, spectral_entry
from nets.experiments.table1 import evaluate, summarize, table1_configs, table1_protocol, tune
from nets.data.splits import N_CLASSES, PADDED_SIZE
from nets.groups import get_group
from nets.image_layout import image_layout
from nets.model_spec import ModelSpecError, load_factory, spec_model_name
from nets.train import TrainConfig, resolve_device, train_runs
from nets.train.factory import input_shape_of, model_dtype

__all__ = ["CNNSizes", "CNN_SIZES", "MODEL_NAME", "CNNModel", "build_cnn", "cnn_model", "cnn_profile", "cnn_sizes",
           "recorded_sizes", "run_cnn"]

#: ``TrainConfig.model`` of the CNN's runs (their keys and checkpoints start ``cnn-``).
MODEL_NAME = "cnn"


@dataclass(frozen=True)
class CNNSizes:
    """The CNN's own sizes for one profile (the others are the profile's).

    - ``epochs``: training epochs of every CNN model.
    - ``nu_grid``: IR's (logit form) nu values, searched smallest first; a subset of the
      paper's logit grid (1, 3, 10, 30, 100).
    - ``n_test``, ``n_si_samples``, ``n_drift_samples``, ``n_sigma_samples``: evaluation sizes
      (``None``: the profile's).
    - ``why``: the reason for these values, recorded in ``cnn.json``.
    """

    epochs: int
    nu_grid: tuple[float, ...]
    n_test: int | None = None
    n_si_samples: int | None = None
    n_drift_samples: int | None = None
    n_sigma_samples: int | None = None
    why: str = ""


CNN_SIZES: dict[str, CNNSizes] = {
    "smoke": CNNSizes(epochs=2, nu_grid=(10.0,), n_test=256, n_si_samples=8, n_drift_samples=64,
                      n_sigma_samples=16, why="CI: under a minute, end to end"),
    "quick": CNNSizes(epochs=6, nu_grid=(30.0,),
                      why="fits ~45 min on the shared 2-core CPU (1 seed, 10k training images); one nu, the "
                          "value at which the MLP's logit form first reached SI 0.95 in the pilot "
                          "(nets/experiments/profiles.py); measured epoch times in docs/cnn.md"),
    "paper": CNNSizes(epochs=6, nu_grid=(10.0, 30.0, 100.0), n_test=10_000, n_si_samples=200,
                      n_drift_samples=2_000, n_sigma_samples=500,
                      why="300 epochs do not fit 4 hours on the shared 2-core CPU (93 to 180 hours for 4 seeds); "
                          "6 epochs of 4 seeds, DA, WT and up to three IR nu on both groups, with the evaluation "
                          "cut to the quick profile's sizes (SI on 200 samples), take about 4 hours (docs/cnn.md); "
                          "the validation curves (figures/cnn_val_curves) are still rising at epoch 6"),
}


def build_cnn(config: TrainConfig) -> SmallCNN:
    """The factory :func:`nets.train.train_runs` calls for every CNN run."""
    return SmallCNN(config.n_classes)


#: ``TrainConfig`` fields that size the paper's MLP only: left out of the configs that ``cnn.json``
#: records for a ``--model`` of your own (the SmallCNN's records keep them, as committed).
MLP_ONLY_FIELDS = ("hidden", "n_hidden_layers")


@dataclass(frozen=True)
class CNNModel:
    """The model the CNN experiment trains: ``name`` (``TrainConfig.model``, the prefix of its run
    keys and checkpoints), ``factory(config) -> nn.Module`` for :func:`nets.train.train_runs`, and
    ``record``, how ``cnn.json`` describes it."""

    name: str
    factory: Callable[[TrainConfig], nn.Module]
    record: dict


def cnn_model(profile: Profile, *, check_logits: bool = False) -> CNNModel:
    """The model of ``profile``: :class:`~nets.cnn.SmallCNN` (``profile.model`` is ``None``), or the
    one its factory spec ``PKG.MODULE:FACTORY`` builds when called with no arguments
    (``python -m nets cnn --model``; :func:`nets.model_spec.load_factory`, whose one-line
    :class:`~nets.model_spec.ModelSpecError` it raises). Such a model takes its inputs in the layout
    its ``input_shape`` attribute declares (else as stored, ``(M, 36, 36)``), in training and in every
    measure (:func:`nets.image_layout.image_layout`: the checkpoints of one that declares
    ``input_shape`` hold it under ``inner.``), and
    returns 9 logits; WT pools its first layer when it has ``first_layer`` / ``after_first_layer``,
    else its logits. Its weights must be float32, as the experiment's images are. ``check_logits``:
    also refuse a model whose logits are not the experiment's 9 (:func:`check_logit_count`), on the
    one model this builds to describe it."""
    if profile.model is None:
        return CNNModel(MODEL_NAME, build_cnn, {
            "class": "nets.cnn.SmallCNN", "name": MODEL_NAME, "channels": list(CNN_CHANNELS),
            "strides": list(CNN_STRIDES), "parameters": sum(p.numel() for p in SmallCNN().parameters())})
    spec = profile.model
    probe = load_factory(spec)
    try:
        dtype = model_dtype(probe, spec)  # the trainer's rule (meta and half-precision weights refused)
    except ValueError as e:
        raise ModelSpecError(str(e)) from None
    if dtype != torch.float32:
        raise ModelSpecError(f"--model {spec} builds {dtype} weights; the experiment measures in float32, as the "
                             f"SmallCNN: build it in float32 (nets.train.train_runs trains a float64 model from Python)")
    try:  # the model's own fault, named before any run is: its declared input_shape must fit the images
        input_shape_of(probe, (PADDED_SIZE, PADDED_SIZE))
    except ValueError as e:
        raise ModelSpecError(f"--model {spec}: {e}") from None
    record = {"factory": spec, "class": f"{type(probe).__module__}.{type(probe).__qualname__}",
              "name": spec_model_name(spec), "parameters": sum(p.numel() for p in probe.parameters()),
              "input_shape": list(getattr(probe, "input_shape", ())) or None}
    if check_logits:
        check_logit_count(spec, probe)
    return CNNModel(spec_model_name(spec), lambda config: image_layout(load_factory(spec)), record)


def check_logit_count(spec: str, model: nn.Module | None = None) -> None:
    """Refuse, in one :class:`~nets.model_spec.ModelSpecError`, a ``--model`` whose logits are not the
    experiment's 9 classes (Transforming-MNIST's digits 0-8), tried on two blank images in the layout it
    takes: ``cnn`` has no option for other classes (``own-data`` trains on data of your own). A model that
    raises on them, or returns no ``(2, classes)`` tensor, or one logit, is left to the trainer's checks,
    which name more. ``model``: the one ``spec`` builds, if already built (it is put in eval mode)."""
    try:
        with torch.no_grad():
            net = image_layout(model if model is not None else load_factory(spec)).eval()
            out = net(torch.zeros(2, PADDED_SIZE, PADDED_SIZE))
    except Exception:  # noqa: BLE001 - the trainer's checks say what the model refuses
        return
    if isinstance(out, torch.Tensor) and out.ndim == 2 and out.shape[0] == 2 and out.shape[1] not in (1, N_CLASSES):
        raise ModelSpecError(f"--model {spec} returns {out.shape[1]} logits, but the experiment's data has "
                             f"{N_CLASSES} classes (Transforming-MNIST's digits 0-{N_CLASSES - 1}): return "
                             f"{N_CLASSES} logits; for data of your own, python -m nets own-data")


def cnn_sizes(profile_name: str, *, epochs: int | None = None,
              nu_grid: Sequence[float] | None = None) -> CNNSizes:
    """:data:`CNN_SIZES` of ``profile_name``, with ``epochs`` and the IR ``nu_grid`` replaced where
    given (``python -m nets cnn --epochs N --nu-grid NU ...``; the grid is searched smallest first,
    so it is sorted); ``why`` then records the change. Raises ValueError for a profile name without
    CNN sizes, epochs < 1, or an empty grid or a nu that is not a positive finite number."""
    if profile_name not in CNN_SIZES:
        raise ValueError(f"no CNN sizes for profile {profile_name!r}; known: {', '.join(CNN_SIZES)}")
    base = CNN_SIZES[profile_name]
    if epochs is None and nu_grid is None:
        return base
    if epochs is not None and epochs < 1:
        raise ValueError(f"--epochs must be >= 1, got {epochs}")
    if nu_grid is not None:
        nu_grid = check_nu_grid(nu_grid)
    changed = ([f"--epochs {epochs}"] if epochs is not None else []) + \
              ([f"--nu-grid {' '.join(f'{nu:g}' for nu in nu_grid)}"] if nu_grid is not None else [])
    return replace(base, epochs=base.epochs if epochs is None else epochs,
                   nu_grid=base.nu_grid if nu_grid is None else nu_grid,
                   why=f"set on the command line ({', '.join(changed)}); the {profile_name} profile's own: "
                       f"{base.epochs} epochs, nu grid {list(base.nu_grid)} ({base.why})")


def recorded_sizes(cnn: dict) -> CNNSizes:
    """The :class:`CNNSizes` a ``cnn.json`` was computed with (its ``cnn_sizes``), so that a later
    evaluation rebuilds exactly the profile it ran (``--epochs`` and ``--nu-grid`` included).
    A ``ValueError`` naming the problem when the record is missing or malformed."""
    rec = cnn.get("cnn_sizes")
    if not isinstance(rec, dict):
        raise ValueError("cnn.json has no cnn_sizes record")
    try:
        fields = {k: v for k, v in rec.items() if k != "profile"}
        return CNNSizes(**{**fields, "nu_grid": tuple(float(nu) for nu in fields["nu_grid"])})
    except (KeyError, TypeError) as e:
        raise ValueError(f"cnn.json's cnn_sizes cannot be read back ({e})") from None


def cnn_profile(profile: Profile, sizes: CNNSizes | None = None) -> Profile:
    """``profile`` with the CNN's sizes (``sizes``, default :data:`CNN_SIZES` of its name): epochs,
    IR's logit nu grid (the only form trained) and the evaluation sizes it sets. Raises ValueError
    for a profile name without CNN sizes."""
    s = sizes if sizes is not None else cnn_sizes(profile.name)
    evaluation = {k: getattr(s, k) for k in ("n_test", "n_si_samples", "n_drift_samples", "n_sigma_samples")
                  if getattr(s, k) is not None}
    return replace(profile, epochs=s.epochs, nu_grids=(("logit", tuple(s.nu_grid)),), regularizers=("logit",),
                   **evaluation)


def run_cnn(profile: Profile, results_root=None, *, device: str = "auto", progress: bool = True,
            command: str | None = None, sizes: CNNSizes | None = None) -> dict:
    """Train (or load) the CNN's WT, DA and IR on every group of ``profile`` (with the CNN's sizes:
    ``sizes``, default :data:`CNN_SIZES` of the profile's name; :func:`cnn_profile`), measure
    Table 1, Figure 4 and Figure 5 (DA vs IR), and write ``<results_root>/<profile>/cnn.json`` and
    its figures (``figures/cnn_*``). Returns the results."""
    started = time.time()
    sizes = sizes if sizes is not None else cnn_sizes(profile.name)
    prof = cnn_profile(profile, sizes)
    own = cnn_model(prof, check_logits=True)
    dev = resolve_device(device)
    run_dir = checkpoint_dir(prof, results_root)
    splits, test, x_sigma = sigma_inputs(prof, dev)
    on_device = replace(splits, test=test)  # the test images on the device once, for every run's evaluation
    k = len(prof.seeds)
    table1, models, nus, spectral = {}, {}, {}, {}
    for g in prof.groups:
        base = table1_configs(prof, g, model=own.name)
        fixed = train_runs([base["WT"], base["DA"]], list(prof.seeds), splits, device=dev, run_dir=run_dir,
                           progress=progress, model_fn=own.factory)
        selection, ir_runs = tune(base["IR"], prof, splits, device=dev, run_dir=run_dir, progress=progress,
                                  model_fn=own.factory)
        models[g] = {"WT": fixed[:k], "DA": fixed[k:], "IR": ir_runs}
        nus[g] = float(ir_runs[0].config.nu)
        methods = {}
        for m, rs in models[g].items():
            methods[m] = summarize(rs[0].config, [evaluate(r, on_device, g, prof, dev) for r in rs])
            methods[m].update(engine=rs[0].engine, wt_pooling=rs[0].wt_pooling)
            if profile.model is not None:  # the paper MLP's sizes, which your model does not have
                for field in MLP_ONLY_FIELDS:
                    methods[m]["config"].pop(field, None)
        table1[g] = {"methods": methods, "nu_selection": selection}
        spectral[g] = {"models": {key: spectral_entry(models[g][m], x_sigma, test, get_group(g), dev)
                                  for key, m in (("DA", "DA"), ("IR-logit", "IR"))},
                       "nu_selections": {"logit": selection}}
    drift = drift_results(models, nus, prof, dev)
    pooling = sorted({m["WT"][0].wt_pooling for m in models.values()})
    body = {
        "model": {**own.record, "wt_pooling": pooling},
        "cnn_sizes": {"profile": prof.name, **asdict(sizes)},
        "protocol": {
            "training": "Adam lr 8e-4, batch size 512, best validation orbit accuracy epoch kept; "
                        f"{prof.epochs} epochs (cnn_sizes), seeds {list(prof.seeds)}.",
            "WT": ("first-layer group pooling: after_first_layer(max_g relu(conv1(g x))), as the paper's WT."
                   if profile.model is None else "group pooling as nets.train.wt_pooling_of chooses for the model "
                   "(its first layer where it has first_layer / after_first_layer, else its logits): "
                   + ", ".join(pooling) + "."),
            "IR": f"logit form, nu tuned on validation SI >= {prof.si_target}, ascending search over "
                  f"{list(sizes.nu_grid)}.",
            "measures": "as table1.json, drift.json and spectral.json (DA and IR-logit only) of the MLP; "
                        "each sub-dict holds its protocol.",
        },
        "table1": {"protocol": table1_protocol(prof, splits), "groups": table1},
        "drift": drift,
        "spectral": {"protocol": {"sigma_max": f"sigma_max(J) of the logits' input Jacobian, per sample on the "
                                               f"first {len(x_sigma)} test samples, averaged; also on the "
                                               "centered logits; accuracy over the full test orbit.",
                                  "n_sigma_samples": len(x_sigma)},
                     "groups": spectral},
    }
    return finish(prof, "cnn", body, results_root, device=str(dev), started=started, command=command)
