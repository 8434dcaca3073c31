#!/usr/bin/env bash
# One prepared check of a GPU machine (issue 18.3): the CUDA tests, the throughput
# benchmark and as much of the paper protocol as fits in the time budget, each stage
# timed, everything it measured written under one folder. For a bare machine with no
# network: it installs nothing and runs the system python with PYTHONPATH=. (PyTorch,
# numpy, scipy, sympy, pytest, hypothesis, scikit-learn, matplotlib and tqdm must be
# there; tests that need captum, jupytext or ray skip).
#
#   DATA_DIR=gpu_data PACK=$OUT OUT=build/gpu_check GIT_COMMIT=<hash> bash scripts/gpu_check.sh  # on the GPU machine
#   DEVICE=cpu PROFILE=smoke PYTHON=.venv/bin/python bash scripts/gpu_check.sh  # its CPU path (CI)
#
# Environment:
#   DEVICE    cuda (default) or cpu
#   PROFILE   paper (default) or quick / smoke: the sizes of the protocol stages
#   DATA_DIR  folder with the MNIST / Fashion-MNIST (gzipped) IDX files, copied into the
#             data cache first (python -m nets.data fetch --from DATA_DIR --offline: never the
#             network); default: the cache as it is
#   OUT       output folder (default: $OUT if set, else build/gpu_check)
#   PACK      a folder that receives, when the script ends (finished, failed or stopped), OUT packed
#             as gpu_check.tar.gz and beside it stages.tsv, environment.json, <DEVICE>.json and
#             protocol_extrapolation.json: 5 files at most, for a machine that sends back only a
#             few files of a folder (default: none)
#   GIT_COMMIT the commit of the tree, recorded in environment.json where no .git came along
#             (there git_commit is null; nets_sha256, the digest of nets/**/*.py, ties it to the code)
#   BUDGET_S  seconds the whole script may take (default 450): every stage's limit is cut to what is
#             left of it less the seconds the extrapolation and packing keep (FINAL_S, 30), a stage
#             with less than 10 s left is skipped, so the script ends within about BUDGET_S + 15 s
#   PYTHON    interpreter with torch (default python3)
#   RESULTS   where the protocol stages train (checkpoints): an empty or new folder, so that
#             nothing an earlier run trained is loaded and timed as this run's (default: a new
#             temporary folder, removed at the end)
#
# Writes under OUT (and packs it into PACK): environment.json, cuda_tests.xml + cuda_tests.log, <DEVICE>.json
# (benchmarks/bench.py: the device's own matmul rate and our share of it), stages.tsv
# (stage, seconds, status), results/<PROFILE>/*.json (the protocol stages' results),
# protocol_extrapolation.json (the whole protocol's time from the measured stages) and
# one <stage>.log per stage. Checkpoints stay outside OUT (in RESULTS).
set -uo pipefail
cd "$(dirname "$0")/.."
START=$(date +%s)
DEVICE="${DEVICE:-cuda}"
PROFILE="${PROFILE:-paper}"
OUT="${OUT:-build/gpu_check}"
BUDGET_S="${BUDGET_S:-450}"
PYTHON="${PYTHON:-python3}"
die() { echo "gpu_check: $*" >&2; exit 2; }

# Refusals before anything runs, each one line.
if [ -e "$OUT" ] && [ ! -d "$OUT" ]; then die "OUT=$OUT is a file, not a folder"; fi
mkdir -p "$OUT" 2>/dev/null || die "cannot create OUT=$OUT"
"$PYTHON" -c "import torch" 2>/dev/null || die "PYTHON=$PYTHON cannot import torch; set PYTHON to an interpreter that has it (e.g. PYTHON=.venv/bin/python)"
if [ -n "${DATA_DIR:-}" ] && [ ! -d "$DATA_DIR" ]; then die "DATA_DIR=$DATA_DIR is not a folder"; fi
if [ -n "${PACK:-}" ]; then
    if [ -e "$PACK" ] && [ ! -d "$PACK" ]; then die "PACK=$PACK is a file, not a folder"; fi
    mkdir -p "$PACK" 2>/dev/null || die "cannot create PACK=$PACK"
    [ "$(cd "$PACK" && pwd -P)" = "$(cd "$OUT" && pwd -P)" ] && die "PACK and OUT are one folder ($OUT); give OUT another (e.g. OUT=build/gpu_check)"
fi
if [ -n "${RESULTS:-}" ]; then
    if [ -e "$RESULTS" ] && [ ! -d "$RESULTS" ]; then die "RESULTS=$RESULTS is a file, not a folder"; fi
    if [ -n "$(ls -A "$RESULTS" 2>/dev/null)" ]; then
        die "RESULTS=$RESULTS is not empty: an earlier run's checkpoints would be loaded and timed as this run's; give an empty or new folder"
    fi
    mkdir -p "$RESULTS" 2>/dev/null || die "cannot create RESULTS=$RESULTS"
else  # a temporary folder, removed at the end (the results JSON files are copied to OUT)
    RESULTS=$(mktemp -d "${TMPDIR:-/tmp}/gpu_check_results.XXXXXX") || die "cannot create a temporary RESULTS folder"
    TEMP_RESULTS=1
fi
# The small files (and the names given) into PACK: after each stage, so that a run stopped from
# outside (SIGKILL, no EXIT trap) still sends back what it measured so far, and at the end.
pack_so_far() {
    [ -n "${PACK:-}" ] || return 0
    for f in stages.tsv environment.json "$DEVICE.json" "$@"; do [ -f "$OUT/$f" ] && cp "$OUT/$f" "$PACK/"; done
    return 0
}
# When the script ends, however it ends: the results JSON files into OUT, OUT packed into PACK,
# a temporary RESULTS folder removed.
finish_up() {
    mkdir -p "$OUT/results/$PROFILE"
    cp "$RESULTS/$PROFILE"/*.json "$OUT/results/$PROFILE/" 2>/dev/null
    if [ -n "${PACK:-}" ]; then
        tar -czf "$PACK/gpu_check.tar.gz" -C "$OUT" . && pack_so_far protocol_extrapolation.json
        echo "gpu_check: packed $OUT into $PACK/gpu_check.tar.gz"
    fi
    [ -n "${TEMP_RESULTS:-}" ] && rm -rf "$RESULTS"
}
trap finish_up EXIT
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export MPLBACKEND=Agg
export PYTHONUNBUFFERED=1  # a stage stopped at its limit keeps what it printed
# Stopped (Ctrl-C, a time limit): stop the running stage too (timeout passes the signal on to it)
# instead of leaving it running on its own.
STAGE_PID=
trap 'trap - TERM INT; [ -n "$STAGE_PID" ] && kill -TERM "$STAGE_PID" 2>/dev/null; wait; exit 143' TERM INT
STAGES="$OUT/stages.tsv"
printf 'stage\tseconds\tstatus\n' > "$STAGES"

elapsed() { echo $(( $(date +%s) - START )); }
left() { echo $(( BUDGET_S - $(elapsed) )); }
FINAL_S=30  # kept for the extrapolation and the packing at the end

# stage NAME LIMIT CMD...: run CMD under a time limit (LIMIT cut to what the budget has left less
# FINAL_S; skipped with less than 10 s), log to OUT/NAME.log, record its time
stage() {
    local name="$1" limit="$2"; shift 2
    local t0 ms rc status cap
    cap=$(( $(left) - FINAL_S ))
    [ "$limit" -gt "$cap" ] && limit=$cap
    if [ "$limit" -lt 10 ]; then
        printf '%s\t0\tskipped_budget\n' "$name" >> "$STAGES"
        echo "== $name skipped: $(elapsed) s of the ${BUDGET_S} s budget spent"
        pack_so_far
        return 124
    fi
    t0=$(date +%s%N)
    echo "== $name (limit ${limit} s, $(elapsed) s elapsed)"
    timeout --signal=TERM --kill-after=5 "$limit" "$@" > "$OUT/$name.log" 2>&1 &
    STAGE_PID=$!
    wait "$STAGE_PID"
    rc=$?
    STAGE_PID=
    ms=$(( ($(date +%s%N) - t0) / 1000000 ))
    case $rc in 0) status=ok ;; 124|137) status=timed_out ;; *) status="failed_rc$rc" ;; esac
    printf '%s\t%d.%03d\t%s\n' "$name" $((ms / 1000)) $((ms % 1000)) "$status" >> "$STAGES"
    echo "   $status in $((ms / 1000)).$((ms % 1000 / 100)) s"
    tail -n 3 "$OUT/$name.log" | sed 's/^/   | /'
    pack_so_far
    return $rc
}

"$PYTHON" - "$OUT/environment.json" "$DEVICE" "$PROFILE" "$BUDGET_S" <<'EOF'
import json, os, platform, subprocess, sys
import torch
import hashlib, pathlib
from nets.results_io.provenance import code_version, cpu_info, versions
dev, profile, budget = sys.argv[2], sys.argv[3], int(sys.argv[4])
commit, dirty = code_version()
digest = hashlib.sha256()
for f in sorted(pathlib.Path("nets").rglob("*.py")):
    digest.update(f.as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
env = {"python": platform.python_version(), "torch": torch.__version__, "cuda_build": torch.version.cuda,
       "cuda_available": torch.cuda.is_available(), "device": dev, "platform": platform.platform(),
       "cpu_count": os.cpu_count(), "cpu": cpu_info(), "versions": versions(), "git_commit": commit,
       "git_dirty": dirty, "git_commit_declared": os.environ.get("GIT_COMMIT") or None,
       "nets_sha256": digest.hexdigest(), "profile": profile, "budget_s": budget, "precision": "fp32"}
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    env.update(gpu=p.name, gpu_memory_gib=round(p.total_memory / 2**30, 1), gpu_count=torch.cuda.device_count(),
               capability=f"{p.major}.{p.minor}", bf16_supported=torch.cuda.is_bf16_supported())
for key, cmd in (("nvidia_smi", ["nvidia-smi", "-L"]),
                 ("nvidia_driver", ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"])):
    try:
        env[key] = subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        env[key] = None
json.dump(env, open(sys.argv[1], "w"), indent=1)
print(json.dumps({k: env[k] for k in ("device", "torch", "cuda_available", "git_commit")}))
EOF
pack_so_far
if [ "$DEVICE" != cpu ] && ! "$PYTHON" -c "import torch, sys; sys.exit(not torch.cuda.is_available())"; then
    echo "gpu_check: DEVICE=$DEVICE but torch sees no CUDA device (run with DEVICE=cpu for the CPU path)" >&2
    exit 2
fi

# the data: copied from DATA_DIR, or else the cache verified; never the network
stage data_fetch 120 "$PYTHON" -m nets.data fetch ${DATA_DIR:+--from "$DATA_DIR"} --offline --quiet \
    || { echo "gpu_check: no data (see $OUT/data_fetch.log, or $STAGES if it was skipped; give DATA_DIR)" >&2
         exit 3; }

# 0. what every stage pays before its work (a new process: torch, the data, the device), so that
#    the extrapolation counts it once, as reproduce's single process does
stage startup 120 "$PYTHON" -c "import sys, torch; from nets.data import load_splits; load_splits('mnist'); \
torch.zeros(1, device=sys.argv[1]).sum().item()" "$DEVICE"

# 1. the CUDA tests (on DEVICE=cpu they are collected and skip, saying why)
stage cuda_tests 150 "$PYTHON" -m pytest tests/test_cuda.py -m cuda -q -p no:cacheprovider \
    --junitxml="$OUT/cuda_tests.xml"

# 2. Table 1 for R4, the stage that must run (4 seeds x 300 epochs, the logit nu grid
#    stacked), with all the budget but what the benchmark needs after it
NETS=("$PYTHON" -m nets)
COMMON=(--profile "$PROFILE" --device "$DEVICE" --results "$RESULTS" --no-progress)
BENCH_S=150
stage table1_r4 "$(( $(left) - BENCH_S - FINAL_S > 60 ? $(left) - BENCH_S - FINAL_S : 60 ))" \
    "${NETS[@]}" table1 --groups r4 "${COMMON[@]}"
TABLE1_RC=$?

# 3. the throughput benchmark: matmul rate of this device, our training/evaluation share of it
if [ "$PROFILE" = smoke ]; then BENCH=(--rounds 1 --n-si 8 --n-sigma 16 --n-train 256); else BENCH=(); fi
stage bench "$BENCH_S" "$PYTHON" benchmarks/bench.py --device "$DEVICE" --out "$OUT/$DEVICE.json" \
    --quick --no-memory "${BENCH[@]}"

# 4. the rest of the protocol, stage by stage, while the budget lasts (an interrupted
#    stage leaves its checkpoints; the summary counts only finished stages)
for s in spectral:r4 table1:t3 spectral:t3 drift:r4,t3 tsne:r4,t3 saliency:r4,t3; do
    exp="${s%%:*}"; groups="${s#*:}"
    stage "${exp}_${groups//,/_}" "$(left)" "${NETS[@]}" "$exp" --groups ${groups//,/ } "${COMMON[@]}"
done

# 5. what was measured, and the whole protocol extrapolated from it (from the checkpoints of
#    runs a stopped stage left, where no results file has them)
timeout --signal=TERM --kill-after=5 $(( FINAL_S - 10 )) "$PYTHON" benchmarks/gpu_extrapolate.py --stages "$STAGES" \
    --results "$RESULTS/$PROFILE" --profile "$PROFILE" --device "$DEVICE" --out "$OUT/protocol_extrapolation.json"
rc=$?
echo "gpu_check: $(elapsed) s in all; wrote $OUT"
if grep -q $'\tfailed' "$STAGES"; then echo "gpu_check: a stage failed (see $STAGES and its log)" >&2; exit 1; fi
if [ "$TABLE1_RC" -ne 0 ]; then
    echo "gpu_check: Table 1 for R4, the stage that must run, did not finish (see $STAGES)" >&2; exit 4
fi
exit $rc
