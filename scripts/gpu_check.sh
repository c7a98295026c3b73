#!/usr/bin/env bash
# The prepared GPU check (issues 17 and 18): run on a machine with a CUDA GPU, from a source checkout,
# with NumPy, Numba + numba-cuda, PyTorch and pytest installed (nothing else is installed here).
#
#   scripts/gpu_check.sh OUTDIR
#
# Steps, each under `timeout` so that the whole run ends within GPU_CHECK_SECONDS (default 470 s,
# under 8 minutes); a step that fails or times out does not stop the next:
#   env          versions, nvidia-smi, what Python can import, and whether Numba and torch see a GPU;
#   cuda_tests   every CUDA test (ids containing "cuda" in the test files that use CUDA), on the device;
#   torch_cuda   the tests in tests/torch whose ids contain "cuda": CUDA tensors in and out, on the device;
#   bench_torch  benchmarks/bench_torch.py's GPU rows: quantize on CUDA tensors vs device copy, CUDA == CPU bits;
#   bench_cuda   benchmarks/bench_cuda.py: CUDA quantize and emulated GEMM throughput;
#   torch_tests  the rest of tests/torch (CPU), with what is left of the time.
# NUMBA_ENABLE_CUDASIM=0 throughout (tests/conftest.py would otherwise turn the simulator on), and
# PYTHONPATH starts with the project root, so lowbit need not be pip-installed. PYTHON picks the
# interpreter (default: python3).
# Logs: OUTDIR/<step>.log (pytest steps also OUTDIR/<step>.xml), and OUTDIR/summary.txt.
# Exit status: 0 when every step passed on a GPU; 1 when a step failed or timed out; 2 when no GPU
# was found (the steps still run, and skip or fail, so that the script itself is exercised).
set -u -o pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 OUTDIR" >&2
    exit 64
fi
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
mkdir -p "$1"
OUT="$(cd "$1" && pwd)"
cd "$ROOT" || exit 1

export NUMBA_ENABLE_CUDASIM=0
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONDONTWRITEBYTECODE=1
PYTHON="${PYTHON:-$(command -v python3 || command -v python)}"
TOTAL="${GPU_CHECK_SECONDS:-470}"
KILL_GRACE=5 # seconds between timeout's TERM and KILL
START=$(date +%s)
FAILED=0
SUMMARY="$OUT/summary.txt"
: >"$SUMMARY"

note() {
    echo "$*" | tee -a "$SUMMARY"
}

# run_step NAME BUDGET_SECONDS COMMAND...: run COMMAND under timeout (its budget, cut to what is left
# of the total), log to OUT/NAME.log, and add a summary line.
run_step() {
    local name=$1 budget=$2
    shift 2
    local left=$((TOTAL - ($(date +%s) - START) - KILL_GRACE))
    local limit=$((budget < left ? budget : left))
    local log="$OUT/$name.log"
    if [ "$limit" -lt 10 ]; then
        note "$(printf '%-12s %-9s %5s s  %s' "$name" "NO TIME" 0 "not run: the ${TOTAL} s budget is spent")"
        FAILED=1
        return
    fi
    local cmd="$*"
    cmd="${cmd%%$'\n'*}" # its first line only: the env step's inline script would fill the log
    echo "== $name (limit ${limit} s)"
    {
        echo "\$ ${cmd:0:300}"
        echo "# limit ${limit} s, started $(date -u +%FT%TZ)"
    } >"$log"
    local t0
    t0=$(date +%s)
    timeout -k "$KILL_GRACE" "$limit" "$@" >>"$log" 2>&1
    local rc=$?
    local secs=$(($(date +%s) - t0))
    echo "# exit status $rc after ${secs} s" >>"$log"
    local status=PASS
    if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
        status=TIMEOUT
    elif [ $rc -ne 0 ]; then
        status="FAIL($rc)"
    fi
    [ "$status" = PASS ] || FAILED=1
    note "$(printf '%-12s %-9s %5d s  %s' "$name" "$status" "$secs" "$log")"
    tail -n 3 "$log" | sed 's/^/    /'
}

# The test files that use CUDA. Within them, pytest's -k cuda selects the tests whose ids contain
# "cuda" (a module named test_cuda_*.py counts whole). tests/torch runs in its own step.
cuda_test_files() {
    grep -rlE 'cuda' tests --include='test_*.py' | grep -v '^tests/torch/' | sort
}

# What Python can import, and whether Numba and torch see a GPU (a line "GPU: yes" or "GPU: no").
ENV_PY='
import importlib, os, platform, sys
print("python", sys.version.split()[0], platform.platform())
print("NUMBA_ENABLE_CUDASIM =", os.environ.get("NUMBA_ENABLE_CUDASIM"))
need = {
    "lowbit needs": ["numpy", "numba", "yaml", "scipy"],
    "the GPU check needs": ["numba.cuda", "torch", "pytest"],
    "the tests need": ["ml_dtypes", "hypothesis"],
}
missing = []
for what, names in need.items():
    for name in names:
        try:
            version = getattr(importlib.import_module(name), "__version__", "")
            print(f"{name:12s} {version}")
        except Exception as err:  # a broken install counts as missing, with its reason
            print(f"{name:12s} MISSING ({what} it): {err}")
            missing.append(name)
try:
    import lowbit
    print("lowbit", lowbit.__version__, "from", os.path.dirname(lowbit.__file__))
except Exception as err:
    print("lowbit: cannot import:", err)
    missing.append("lowbit")
gpu = False
try:
    from numba import cuda
    gpu = cuda.is_available()
    print("numba.cuda sees a GPU:", gpu)
    if gpu:
        cuda.detect()
except Exception as err:
    print("numba.cuda:", err)
try:
    import torch
    print("torch.cuda.is_available():", torch.cuda.is_available(), "CUDA", torch.version.cuda)
    if torch.cuda.is_available():
        print("torch device:", torch.cuda.get_device_name())
    gpu = gpu and torch.cuda.is_available()
except Exception as err:
    print("torch:", err)
if missing:
    print("MISSING:", ", ".join(missing))
print("GPU:", "yes" if gpu else "no", flush=True)
sys.exit(1 if missing else 0)
'

note "gpu_check: $(date -u +%FT%TZ) on $(hostname), root $ROOT, budget ${TOTAL} s, python $PYTHON"
# shellcheck disable=SC2016  # $0 and $1 are the inner shell's: the interpreter and the script
run_step env 60 bash -c '(nvidia-smi || echo "nvidia-smi: not available") 2>&1; echo; "$0" -c "$1"' "$PYTHON" "$ENV_PY"
grep '^MISSING:' "$OUT/env.log" | sed 's/^/gpu_check: /' | tee -a "$SUMMARY"
GPU=no
grep -q '^GPU: yes' "$OUT/env.log" && GPU=yes
if [ "$GPU" = no ]; then
    note "gpu_check: NO GPU FOUND (Numba and torch must both see one; see $OUT/env.log)."
    note "gpu_check: the steps still run, and their CUDA tests skip or fail; this run is not a GPU check."
fi

PYTEST=("$PYTHON" -m pytest -q -ra -p no:cacheprovider --durations=10)
mapfile -t CUDA_FILES < <(cuda_test_files)
run_step cuda_tests 150 "${PYTEST[@]}" --junitxml="$OUT/cuda_tests.xml" -k cuda "${CUDA_FILES[@]}"
run_step torch_cuda 90 "${PYTEST[@]}" --junitxml="$OUT/torch_cuda.xml" -k "cuda or device_" tests/torch
run_step bench_torch 50 "$PYTHON" benchmarks/bench_torch.py --skip-cpu --gpu-n-log2 26 --repeat 5
run_step bench_cuda 60 "$PYTHON" benchmarks/bench_cuda.py --n-log2 26 --size 1024 --repeat 3
# The CPU-only torch tests last: they gain nothing from the GPU, and get what is left of the budget.
run_step torch_tests 150 "${PYTEST[@]}" --junitxml="$OUT/torch_tests.xml" -k "not (cuda or device_)" tests/torch

if [ "$GPU" = yes ]; then
    # On a GPU, a skipped CUDA test means that the device path went unchecked.
    skipped=$(grep -hE '^SKIPPED .*(CUDA|GPU|cuda)' "$OUT/cuda_tests.log" "$OUT/torch_cuda.log" 2>/dev/null)
    if [ -n "$skipped" ]; then
        note "gpu_check: CUDA tests were skipped on a GPU machine:"
        note "$skipped"
        FAILED=1
    fi
fi
note "gpu_check: $(($(date +%s) - START)) s in all; logs in $OUT"
if [ "$GPU" = no ]; then
    note "gpu_check: result: NO GPU (exit 2)"
    exit 2
fi
if [ $FAILED -ne 0 ]; then
    note "gpu_check: result: FAILED (exit 1)"
    exit 1
fi
note "gpu_check: result: all steps passed"
