#!/usr/bin/env bash
# One prepared check of a GPU machine (issue 18.3): the CUDA tests, the throughput
# benchmark and as much of the paper protocol as fits in the time budget, each stage
# timed, everything it measured written under one folder. For a bare machine with no
# network: it installs nothing and runs the system python with PYTHONPATH=. (PyTorch,
# numpy, scipy, sympy, pytest, hypothesis, scikit-learn, matplotlib and tqdm must be
# there; tests that need captum, jupytext or ray skip).
#
#   DATA_DIR=gpu_data bash scripts/gpu_check.sh              # on the GPU machine
#   DEVICE=cpu PROFILE=smoke bash scripts/gpu_check.sh       # its CPU path (CI)
#
# Environment:
#   DEVICE    cuda (default) or cpu
#   PROFILE   paper (default) or quick / smoke: the sizes of the protocol stages
#   DATA_DIR  folder with the MNIST / Fashion-MNIST (gzipped) IDX files, copied into the
#             data cache first (python -m nets.data fetch --from DATA_DIR); default: the cache as it is
#   OUT       output folder (default: $OUT if set, else build/gpu_check)
#   BUDGET_S  seconds the whole script may take (default 450; the protocol stages get what is left)
#   PYTHON    interpreter (default python3)
#
# Writes under OUT: environment.json, cuda_tests.xml + cuda_tests.log, <DEVICE>.json
# (benchmarks/bench.py: the device's own matmul rate and our share of it), stages.tsv
# (stage, seconds, status), results/<PROFILE>/*.json (the protocol stages' results),
# protocol_extrapolation.json (the whole protocol's time from the measured stages) and
# one <stage>.log per stage. Checkpoints stay outside OUT (build/gpu_check_results).
set -uo pipefail
cd "$(dirname "$0")/.."
START=$(date +%s)
DEVICE="${DEVICE:-cuda}"
PROFILE="${PROFILE:-paper}"
OUT="${OUT:-build/gpu_check}"
BUDGET_S="${BUDGET_S:-450}"
PYTHON="${PYTHON:-python3}"
RESULTS="${RESULTS:-build/gpu_check_results}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export MPLBACKEND=Agg
mkdir -p "$OUT" "$RESULTS"
STAGES="$OUT/stages.tsv"
printf 'stage\tseconds\tstatus\n' > "$STAGES"

elapsed() { echo $(( $(date +%s) - START )); }
left() { echo $(( BUDGET_S - $(elapsed) )); }

# stage NAME TIMEOUT CMD...: run CMD under a time limit, log to OUT/NAME.log, record its time
stage() {
    local name="$1" limit="$2"; shift 2
    local t0 ms rc status
    t0=$(date +%s%N)
    echo "== $name (limit ${limit} s, $(elapsed) s elapsed)"
    timeout --signal=TERM --kill-after=10 "$limit" "$@" > "$OUT/$name.log" 2>&1
    rc=$?
    ms=$(( ($(date +%s%N) - t0) / 1000000 ))
    case $rc in 0) status=ok ;; 124|137) status=timed_out ;; *) status="failed_rc$rc" ;; esac
    printf '%s\t%d.%03d\t%s\n' "$name" $((ms / 1000)) $((ms % 1000)) "$status" >> "$STAGES"
    echo "   $status in $((ms / 1000)).$((ms % 1000 / 100)) s"
    tail -n 3 "$OUT/$name.log" | sed 's/^/   | /'
    return $rc
}

"$PYTHON" - "$OUT/environment.json" "$DEVICE" <<'EOF'
import json, os, platform, subprocess, sys
import torch
dev = sys.argv[2]
env = {"python": platform.python_version(), "torch": torch.__version__, "cuda_build": torch.version.cuda,
       "cuda_available": torch.cuda.is_available(), "device": dev, "platform": platform.platform(),
       "cpu_count": os.cpu_count()}
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    env.update(gpu=p.name, gpu_memory_gib=round(p.total_memory / 2**30, 1), gpu_count=torch.cuda.device_count(),
               capability=f"{p.major}.{p.minor}")
try:
    env["nvidia_smi"] = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20).stdout
except (OSError, subprocess.SubprocessError):
    env["nvidia_smi"] = None
json.dump(env, open(sys.argv[1], "w"), indent=1)
print(json.dumps(env))
EOF
if [ "$DEVICE" != cpu ] && ! "$PYTHON" -c "import torch, sys; sys.exit(not torch.cuda.is_available())"; then
    echo "gpu_check: DEVICE=$DEVICE but torch sees no CUDA device (run with DEVICE=cpu for the CPU path)" >&2
    exit 2
fi

if [ -n "${DATA_DIR:-}" ]; then
    stage data_fetch 120 "$PYTHON" -m nets.data fetch --from "$DATA_DIR" || { echo "gpu_check: no data" >&2; exit 3; }
fi

# 1. the CUDA tests (on DEVICE=cpu they are collected and skip, saying why)
stage cuda_tests 150 "$PYTHON" -m pytest tests/test_cuda.py -m cuda -q -p no:cacheprovider \
    --junitxml="$OUT/cuda_tests.xml"

# 2. Table 1 for R4, the stage that must run (4 seeds x 300 epochs, the logit nu grid
#    stacked), with all the budget but what the benchmark needs after it
NETS=("$PYTHON" -m nets)
COMMON=(--profile "$PROFILE" --device "$DEVICE" --results "$RESULTS" --no-progress)
MARGIN=20
BENCH_S=150
stage table1_r4 "$(( $(left) - BENCH_S - MARGIN > 60 ? $(left) - BENCH_S - MARGIN : 60 ))" \
    "${NETS[@]}" table1 --groups r4 "${COMMON[@]}"

# 3. the throughput benchmark: matmul rate of this device, our training/evaluation share of it
if [ "$PROFILE" = smoke ]; then BENCH=(--rounds 1 --n-si 8 --n-sigma 16 --n-train 256); else BENCH=(); fi
stage bench "$BENCH_S" "$PYTHON" benchmarks/bench.py --device "$DEVICE" --out "$OUT/$DEVICE.json" \
    --quick --no-memory "${BENCH[@]}"

# 4. the rest of the protocol, stage by stage, while the budget lasts (an interrupted
#    stage leaves its checkpoints; the summary counts only finished stages)
for s in spectral:r4 table1:t3 spectral:t3 drift:r4,t3 tsne:r4,t3 saliency:r4,t3; do
    exp="${s%%:*}"; groups="${s#*:}"
    if [ "$(left)" -le $(( MARGIN + 10 )) ]; then
        printf '%s_%s\t0\tskipped_budget\n' "$exp" "${groups//,/_}" >> "$STAGES"; continue
    fi
    stage "${exp}_${groups//,/_}" "$(( $(left) - MARGIN ))" "${NETS[@]}" "$exp" --groups ${groups//,/ } "${COMMON[@]}"
done

# 5. what was measured, and the whole protocol extrapolated from it
mkdir -p "$OUT/results/$PROFILE"
cp "$RESULTS/$PROFILE"/*.json "$OUT/results/$PROFILE/" 2>/dev/null
"$PYTHON" benchmarks/gpu_extrapolate.py --stages "$STAGES" --results "$RESULTS/$PROFILE" --profile "$PROFILE" \
    --out "$OUT/protocol_extrapolation.json"
rc=$?
echo "gpu_check: $(elapsed) s in all; wrote $OUT"
if grep -q $'\tfailed' "$STAGES"; then echo "gpu_check: a stage failed (see $STAGES and its log)" >&2; exit 1; fi
exit $rc
