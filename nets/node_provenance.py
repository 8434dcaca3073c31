"""Which machine trained a stack: a Ray task's node, where the results files record the driver's.

A stack's last digits depend on the CPU's vector instructions, the torch build and its threads
(and on CUDA the GPU), so on a cluster whose nodes differ, each stack's numbers are those of the
node that trained it. Each task reports :func:`machine`; the driver groups the reports into kinds
(:func:`machines`) and warns where there is more than one (:func:`mixed_machines_warning`).
"""

from __future__ import annotations

import json
import socket
from typing import Mapping, Sequence

import torch

from nets.results_io import code_version, cpu_info

__all__ = ["machine", "machines", "mixed_machines_warning"]


def machine(device: str = "cpu") -> dict:
    """What decides a training run's last digits on this machine: host, CPU model and vector flags,
    torch build and threads, on ``device`` "cuda" the GPU's name, and the code it ran (``code``: the
    commit of its ``nets``, ``+dirty`` where that differs from it; None outside a git clone): a Ray
    task's node, where the results files record the driver's."""
    cpu = cpu_info()
    gpu = torch.cuda.get_device_name() if str(device).startswith("cuda") and torch.cuda.is_available() else None
    commit, dirty = code_version()
    return {"host": socket.gethostname(), "cpu": cpu["model"], "flags": cpu["flags"], "gpu": gpu,
            "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "code": None if commit is None else commit[:12] + ("+dirty" if dirty else "")}


def machines(records: Sequence[Mapping]) -> list[dict]:
    """The distinct machines (:func:`machine`, host aside) that trained the jobs of ``records``, each
    with its hosts and the number of jobs it trained, most jobs first; a job that only loaded
    finished runs (``epochs_trained`` 0) trained nothing and is not counted."""
    seen: dict[str, dict] = {}
    for r in records:
        if r.get("epochs_trained") == 0:
            continue
        m = dict(r.get("machine") or {})
        host = m.pop("host", "?")
        entry = seen.setdefault(json.dumps(m, sort_keys=True), {**m, "hosts": [], "jobs": 0})
        entry["jobs"] += 1
        if host not in entry["hosts"]:
            entry["hosts"].append(host)
    return sorted(seen.values(), key=lambda e: -e["jobs"])


def mixed_machines_warning(kinds: Sequence[Mapping]) -> str | None:
    """One line where :func:`machines` found more than one kind of machine (CPU, flags, torch build,
    threads or code differ): each stack's last digits are its node's; ``None`` for one kind."""
    if len(kinds) < 2:
        return None
    return (f"the stacks trained on {len(kinds)} kinds of machine ("
            + "; ".join(f"{m.get('cpu')} {'/'.join(m.get('flags') or [])}"
                        + (f", {m['gpu']}" if m.get("gpu") else "")
                        + f", torch {m.get('torch')}, {m.get('torch_threads')} threads"
                        + (f", code {m['code']}" if m.get("code") else "") + f": {m['jobs']} stacks"
                        for m in kinds)
            + "): their numbers may differ from a serial run's by about the seed-to-seed spread (docs/scaling.md)"
            + ("; and they ran different code (code: the commit of each node's nets, none outside a git clone): "
               "give every node the driver's" if len({m.get("code") for m in kinds}) > 1 else ""))
