"""Wall time of a profile's ``reproduce``: serial (2 threads) against Ray (2 one-thread workers).

Usage::

    python benchmarks/ray_quick.py [--profile quick] [--out build/bench/ray_quick_cpu.json]

Side by side in one run, each from an empty results folder (so everything trains):

* serial: ``python -m nets reproduce --profile P --threads 2`` (the local executor);
* Ray: ``python -m nets reproduce --profile P --threads 2 --executor ray --task-threads 1``
  on a local Ray cluster it starts with ``num_cpus=2``: every training stack is a task
  declaring one CPU and training with one thread, two at a time; the experiments then
  evaluate in the driver with 2 threads, as serially.

Each is a fresh process timed from start to exit (Ray's start-up included). The JSON
records both wall times, their ratio, whether every number of every results file is
equal (provenance and wall times left out; the stacks trained on 1 thread against 2, so
they are equal only on a CPU whose kernels sum alike at both: the AMD EPYC of the committed
run, not every Intel Xeon), the CPU model and the flags that matter, and the load average
before and after (the machine may be shared).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from nets.experiments.common import write_json  # noqa: E402
from nets.results_io import cpu_info, without_sitting  # noqa: E402

def timed(cmd: list[str], log: Path) -> float:
    t0 = time.perf_counter()
    with open(log, "w") as f:
        subprocess.run(cmd, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT, check=True,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", default="quick")
    ap.add_argument("--out", type=Path, default=None,
                    help="JSON output (default build/bench/ray_<profile>_cpu.json, git-ignored: a committed "
                         "benchmarks/results/ file is written only when named here)")
    args = ap.parse_args(argv)
    out = args.out or ROOT / "build" / "bench" / f"ray_{args.profile}_cpu.json"
    base = [sys.executable, "-m", "nets", "reproduce", "--profile", args.profile, "--threads", "2", "--no-progress",
            "--device", "cpu"]
    res: dict = {"profile": args.profile, "cpu": cpu_info(), "loadavg_start": list(os.getloadavg())}
    with tempfile.TemporaryDirectory(prefix="ray_quick_") as tmp:
        tmp = Path(tmp)
        runs = {"serial_2_threads": base + ["--results", str(tmp / "serial")],
                "ray_2_workers_1_thread": base + ["--results", str(tmp / "ray"), "--executor", "ray", "--task-threads",
                                                  "1"]}
        for name, cmd in runs.items():
            print(f"{name}: {' '.join(cmd[1:])}", flush=True)
            res[name] = {"command": " ".join(["python", *cmd[1:]]), "wall_s": round(timed(cmd, tmp / f"{name}.log"), 2)}
            print(f"  {res[name]['wall_s']} s", flush=True)
        a, b = tmp / "serial" / args.profile, tmp / "ray" / args.profile
        files = sorted(p.name for p in a.glob("*.json"))
        res["results_files"] = files
        res["equal_numbers"] = bool(files) and files == sorted(p.name for p in b.glob("*.json")) and all(
            without_sitting(json.loads((a / n).read_text())) == without_sitting(json.loads((b / n).read_text())) for n in files)
    res["speedup"] = round(res["serial_2_threads"]["wall_s"] / res["ray_2_workers_1_thread"]["wall_s"], 3)
    res["loadavg_end"] = list(os.getloadavg())
    write_json(out, res)
    print(f"serial {res['serial_2_threads']['wall_s']} s, ray {res['ray_2_workers_1_thread']['wall_s']} s "
          f"(x{res['speedup']}), equal numbers: {res['equal_numbers']}; wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
