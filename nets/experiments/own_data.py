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
dataset) and Figure 2 are not run. The number of classes is the width of the model's logits.

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

import contextlib
import json
import math
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Iterator, Sequence

import torch

from nets.class_accuracy import per_class_over_seeds, per_class_rows
from nets.experiments.cnn import MLP_ONLY_FIELDS, cnn_model
from nets.experiments.profiles import Profile, check_nu_grid
from nets.experiments.spectral import spectral_entry
from nets.experiments.table1 import evaluate, summarize, table1_configs, table1_protocol, tune
from nets.groups import get_group, group_label, group_name
from nets.image_file import load_split_file
from nets.markdown import markdown_table
from nets.model_checks import ONE_LOGIT_FIX, is_one_logit, logits_inside
from nets.model_spec import one_line
from nets.results_io import run_provenance, sha256_file, write_json, write_text
from nets.train import check_device, check_model_output, train_runs
from nets.stats import t_half_width_factor
from nets.verdicts import pm_text, verdicts

__all__ = ["OwnDataError", "OwnDataSettings", "own_profile", "run_own_data", "own_data_report", "NOT_RUN"]

#: Claims this experiment does not evaluate, and why.
NOT_RUN = {"4": "needs a second dataset to drift towards", "Fig. 2": "t-SNE is not run"}


class OwnDataError(ValueError):
    """A folder, file or setting the experiment cannot use; one line."""


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
    batch_size: int = 512
    lr: float = 8e-4

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


#: What ``source.json`` must keep for the checkpoints in the folder to be this run's (the rest of a
#: checkpoint's identity is in its file name).
CHECKPOINT_SOURCE = ("data_sha256", "model")


def _claim_source(out: Path, source: dict) -> None:
    """Write ``out/source.json`` (``source`` in its JSON form); where ``out/checkpoints/`` already holds
    checkpoints, first check that the ``source.json`` there names the same data (SHA-256) and model
    (:data:`CHECKPOINT_SOURCE`)."""
    path = out / "source.json"
    if path.exists() and any((out / "checkpoints").glob("*.pt")):
        old = json.loads(path.read_text())
        changed = [k for k in CHECKPOINT_SOURCE if old.get(k) != source[k]]
        if changed:
            was = {"data_sha256": f"data (SHA-256 {str(old.get('data_sha256'))[:12]}..., "
                                  f"{source['data_sha256'][:12]}... now)",
                   "model": f"model ({old.get('model')}, {source['model']} now)"}
            raise OwnDataError(f"--out {out} holds checkpoints trained on other {' and '.join(was[k] for k in changed)} "
                               "(source.json); they would be loaded as this run's: give another --out")
    write_json(path, source)


@contextlib.contextmanager
def _withdrawn_if_refused(out: Path, fresh: Sequence[Path]) -> Iterator[None]:
    """Run the ``with`` block; where it raises ValueError (a refusal the checks before training could
    not see: WT's first-layer pooling, a factory's shared modules, a batch norm's lone last sample)
    before any checkpoint exists, remove what this run added to ``out`` (``fresh``: its
    ``source.json``, then the folders it created, if empty), then re-raise."""
    try:
        yield
    except ValueError:
        if not any((out / "checkpoints").glob("**/*.pt")):
            for path in fresh:
                with contextlib.suppress(OSError):
                    path.unlink() if path.name == "source.json" else path.rmdir()  # a folder: only when empty
        raise


def _kept_groups(out: Path, source: dict, groups: Sequence[str], progress: bool) -> dict:
    """The other groups' sections of an earlier ``own_data.json`` in ``out`` made from the same data,
    model and settings (``source`` in its JSON form): ``{"table1": {g: ...}, "spectral": ...,
    "per_class": ..., "group_provenance": {g: how that group was made}, "order": the file's groups
    in its order}`` (empty where there is none); an earlier file made otherwise has its other groups
    dropped, said on stdout."""
    path = out / "own_data.json"
    try:
        old = json.loads(path.read_text()) if path.exists() else None
    except (OSError, ValueError):
        old = None
    if old is None:
        return {}
    order = list(old.get("table1", {}).get("groups", {}))  # a rerun group keeps its place, kept or not
    others = [g for g in order if g not in groups]
    if not others:
        return {"order": order}
    same = all(old.get("source", {}).get(k) == source[k] for k in (*CHECKPOINT_SOURCE, "settings"))
    if not same:
        print(f"own-data: {path} holds {', '.join(others)} from other settings; not kept (add them to --groups to "
              f"rerun them with these)", flush=True)
        return {"order": order}
    if progress:
        print(f"own-data: keeping {', '.join(others)} from {path} (same data, model and settings)", flush=True)
    made = old.get("group_provenance") or {}  # a file from before per-group provenance: its meta for each
    return {**{k: {g: old[k]["groups"][g] for g in others if g in old.get(k, {}).get("groups", {})}
               for k in ("table1", "spectral", "per_class")},
            "group_provenance": {g: made.get(g) or sitting(old.get("meta", {})) for g in others}, "order": order}


def sitting(meta: dict) -> dict:
    """What ``group_provenance`` keeps of one sitting's ``meta``: its command, start and wall time."""
    return {k: meta.get(k) for k in ("command", "started_at", "wall_time_s")}


def run_own_data(model: str, data: str | Path, groups: Sequence[str], out: str | Path,
                 settings: OwnDataSettings = OwnDataSettings(), *, device: str = "auto", progress: bool = True,
                 command: str | None = None) -> dict:
    """Train (or load) WT, DA and IR of ``model`` on the file ``data`` for each group, measure
    Table 1 and Figure 5, decide the claims, write ``own_data.json`` and ``REPORT.md`` into ``out``
    (module docstring). Returns the results. Raises :class:`OwnDataError` /
    :class:`~nets.image_file.ImageFileError` / the trainer's one-line ``ValueError`` for bad input,
    before anything trains."""
    started = time.time()
    out = Path(out)
    dev = check_device(device)
    if not groups:
        raise OwnDataError("give at least one group (--groups r4 ...)")
    groups = list(dict.fromkeys(group_name(g) for g in groups))  # "F2 f2" is one group; an unknown name: one line
    splits = load_split_file(data, flag="--data")
    for g in groups:
        get_group(g).check_shape(*splits.train.x.shape[-2:])  # one that does not fit: one line
    sizes = {"n_train": len(splits.train), "n_val": len(splits.val), "n_test": len(splits.test)}
    prof = own_profile(settings, groups, sizes, model)
    own = cnn_model(prof)
    try:
        with torch.no_grad():
            logits = own.factory(None).eval()(splits.train.x[:2])
    except Exception as e:  # whatever the model raises on the images; the trainer's checks name more
        raise OwnDataError(f"--model {model} refused 2 training images of shape "
                           f"{tuple(splits.train.x[:2].shape)}: {type(e).__name__}: {one_line(e)}") from None
    if is_one_logit(logits, 2):
        raise OwnDataError(f"--model {model} returns one logit per image ({tuple(logits.shape)} for 2 training "
                           f"images); for a binary classifier of one logit, let the factory return {ONE_LOGIT_FIX}")
    if not isinstance(logits, torch.Tensor) or logits.dim() != 2 or logits.shape[0] != 2:
        got = f"shape {tuple(logits.shape)}" if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise OwnDataError(f"--model {model} must return logits (N, classes) for images (N, ...); got {got} for 2 "
                           f"training images{logits_inside(logits)}")
    if not bool(torch.isfinite(logits).all()):
        raise OwnDataError(f"--model {model} returned NaN or inf logits for 2 training images, before any training")
    width = int(logits.shape[-1])
    for name in ("train", "val", "test"):
        y = splits[name].y
        if int(y.min()) < 0 or int(y.max()) >= width:
            raise OwnDataError(f"y_{name} holds labels in [{int(y.min())}, {int(y.max())}], but the model has "
                               f"{width} logits: labels must be in [0, {width})")
    check_model_output(own.factory(None), splits.train.x[:2], width, f"--model {model}")  # nothing to train: before
    # source.json is written. As the files hold it (tuples as lists), so that it compares equal to what they read back
    source = json.loads(json.dumps({"data": str(data), "data_sha256": sha256_file(data), "model": model,
                                    "settings": asdict(settings)}))
    fresh = [p for p in (out / "source.json", out / "checkpoints", out) if not p.exists()]  # what this run adds
    _claim_source(out, source)
    run_dir, k = out / "checkpoints", len(settings.seeds)
    table1, spectral, per_class = {}, {}, {}
    test = splits.test.to(dev)
    x_sigma = test.x[:min(settings.n_sigma_samples, len(test))]
    with _withdrawn_if_refused(out, fresh):  # a refusal at training leaves the folder as it was
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
                methods[m] = summarize(rs[0].config, [evaluate(r, splits, g, prof, dev) for r in rs])
                methods[m].update(engine=rs[0].engine, wt_pooling=rs[0].wt_pooling)
                for field in MLP_ONLY_FIELDS:
                    methods[m]["config"].pop(field, None)
            table1[g] = {"methods": methods, "nu_selection": selection}
            per_class[g] = per_class_over_seeds({m: [r.model.to(dev).eval() for r in rs] for m, rs in runs.items()},
                                                test.x, test.y, g)
            spectral[g] = {"models": {key: spectral_entry(runs[m], x_sigma, test, get_group(g), dev)
                                      for key, m in (("DA", "DA"), ("IR-logit", "IR"))},
                           "nu_selections": {"logit": selection}}
    kept = _kept_groups(out, source, groups, progress)
    merged = [{**kept.get(name, {}), **section}
              for name, section in (("table1", table1), ("spectral", spectral), ("per_class", per_class))]
    # a group keeps its place in the file, rerun or kept; groups new to it come after, in --groups order
    order = [g for g in dict.fromkeys([*kept.get("order", []), *groups]) if g in merged[0]]
    table1, spectral, per_class = ({g: m[g] for g in order if g in m} for m in merged)
    results = {
        "source": {**source, "sizes": sizes, "image_shape": list(splits.train.x.shape[1:]), "n_classes": width,
                   "class_names": None if splits.class_names is None else list(splits.class_names)},
        "model": own.record,
        "table1": {"protocol": table1_protocol(prof, splits), "groups": table1},
        "spectral": {"protocol": {"n_sigma_samples": len(x_sigma)}, "groups": spectral},
        "per_class": {"protocol": "orbit accuracy per class on the test split, per seed (nets.class_accuracy)",
                      "groups": per_class},
    }
    results["meta"] = run_provenance(device=str(dev), started=started, command=command)
    made = {**kept.get("group_provenance", {}), **{g: sitting(results["meta"]) for g in groups}}
    results["group_provenance"] = {g: made[g] for g in order}
    write_json(out / "own_data.json", results)
    write_text(out / "REPORT.md", own_data_report(results))
    return results


def _settings_text(st: dict, n_test: int) -> str:
    d = OwnDataSettings()
    batch = st.get("batch_size", d.batch_size)
    lr = st.get("lr", d.lr)
    training = "" if (batch, lr) == (d.batch_size, d.lr) else f" (batch {batch}, Adam lr {lr:g})"
    return (f"Seeds {list(st['seeds'])}, {st['epochs']} epoch{'s' if st['epochs'] != 1 else ''} each{training}; IR's nu searched smallest first over "
            f"{[float(nu) for nu in st['nu_grid']]} for validation SI >= {st['si_target']}; SI on "
            f"{min(st['n_si_samples'], n_test)} images ({st['ig_steps']} integrated-gradients steps), sigma_max "
            f"on {min(st['n_sigma_samples'], n_test)}")


def _few_seeds_text(n: int) -> list[str]:
    """For 2 or 3 seeds, a paragraph on how wide their t intervals are; nothing otherwise."""
    if n not in (2, 3):
        return []
    return [f"With {n} seeds an interval is the mean ± {t_half_width_factor(n):.3g} standard deviations over the "
            f"seeds ({n - 1} degree{'s' if n > 2 else ''} of freedom): wide enough to reach past what a measure can be "
            "(accuracy differences beyond 100 points, SI beyond 1, LI below 0), so few checks can be decided; "
            "4 or more seeds give intervals that can.\n"]


def _commands_text(results: dict) -> str:
    """``Command: `...` (N s)``, or, for a file whose groups were made by several commands (a run on
    fewer ``--groups`` keeps the others), each command with the groups it made."""
    made = results.get("group_provenance") or {}
    sittings: dict[tuple, list[str]] = {}
    for g, p in made.items():
        sittings.setdefault((p.get("command"), p.get("started_at"), p.get("wall_time_s")), []).append(g)
    if len(sittings) <= 1:
        return f"Command: `{results['meta'].get('command')}` ({results['meta'].get('wall_time_s') or 0:.0f} s)"
    return "Commands: " + "; ".join(f"`{cmd}` ({', '.join(group_label(g) for g in gs)}; {wall or 0:.0f} s)"
                                    for (cmd, _, wall), gs in sittings.items())


def own_data_report(results: dict) -> str:
    """REPORT.md of an ``own_data.json``: the verdicts, Table 1 and Figure 5 per group, every check."""
    ours = [v for v in verdicts({k: results[k] for k in ("table1", "spectral")}) if v.claim not in NOT_RUN]
    src, model = results["source"], results["model"]
    lines = ["# The paper's claims on your model and your data\n",
             f"Model `{src['model']}` ({model.get('class')}, {model.get('parameters'):,} parameters), data "
             f"`{src['data']}` (SHA-256 {src['data_sha256'][:16]}..., images {tuple(src['image_shape'])}, "
             f"{src['n_classes']} classes; train / val / test {src['sizes']['n_train']} / {src['sizes']['n_val']} / "
             f"{src['sizes']['n_test']}). {_settings_text(src['settings'], src['sizes']['n_test'])}. "
             f"{_commands_text(results)}.\n",
             f"WT pools over the orbit as `nets.train` chose for the model: "
             f"{', '.join(sorted({e['methods']['WT'].get('wt_pooling') or '?' for e in results['table1']['groups'].values()}))} "
             "(`first_layer-*`: its first layer, as the paper's WT; `logits-mean`: the whole model's logits).\n",
             "Each check is decided on a 95% interval over seeds (`nets.verdicts`, the paper profile's thresholds); "
             "not run here: " + "; ".join(f"{c if c.startswith('Fig') else 'claim ' + c} ({why})"
                                          for c, why in NOT_RUN.items()) + ".\n",
             *_few_seeds_text(len(src["settings"]["seeds"])),
             markdown_table(["claim", "statement", "verdict"], [[v.claim, v.statement, f"**{v.status}**"]
                                                                 for v in ours]) + "\n"]
    rows = []
    for g, entry in results["table1"]["groups"].items():
        for m, e in entry["methods"].items():
            rows.append([group_label(g), m, "" if e.get("nu") is None else f"{e['nu']:g}", pm_text(e["accuracy"], 100.0),
                         *(pm_text(e[q]) for q in ("LI", "DI", "SI"))])
    lines += ["Table 1 (mean ± std over seeds):\n",
              markdown_table(["group", "method", "nu", "Acc. (%)", "LI", "DI", "SI"], rows) + "\n"]
    rows = [[group_label(g), f"{nu:g}", "not trained" if si is None else f"{si:.4f}",
             "" if acc is None else f"{100 * acc:.1f}", "**chosen**" if nu == sel["chosen"] else ""]
            for g, entry in results["table1"]["groups"].items()
            for sel in [entry["nu_selection"]] for nu, si, acc in zip(sel["grid"], sel["si"], sel["accuracy"])]
    lines += [f"IR's nu search (validation SI, mean over seeds; target {src['settings']['si_target']}):\n",
              markdown_table(["group", "nu", "validation SI", "validation Acc. (%)", ""], rows) + "\n"]
    rows = [[group_label(g), key, pm_text(e["sigma_max"]), pm_text(e["accuracy"], 100.0)]
            for g, entry in results["spectral"]["groups"].items() for key, e in entry["models"].items()]
    lines += ["Figure 5, sigma_max of the input Jacobian (mean ± std over seeds):\n",
              markdown_table(["group", "model", "sigma_max", "Acc. (%)"], rows) + "\n"]
    for g, entry in results.get("per_class", {}).get("groups", {}).items():  # absent from runs before it existed
        header, rows, note = per_class_rows(entry, class_names=src.get("class_names"))
        lines += [f"Accuracy over the orbit per class, {group_label(g)} (mean over seeds; a class the group maps "
                  "onto another, a 6 turned into a 9, caps an invariant model there; `nets.class_accuracy`):\n",
                  markdown_table(header, rows) + "\n", *([note + "\n"] if note else [])]
    lines += ["Checks:\n"]
    for v in ours:
        lines += [f"- claim {v.claim}: {c.detail}" for c in v.checks]
        lines += [f"- claim {v.claim}, note: {n}" for n in v.notes]
    return "\n".join(lines) + "\n"
