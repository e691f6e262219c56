#!/usr/bin/env bash
# GPU checks of batscope, one short run (about 6 minutes on an H200; every step stops at a
# deadline GPU_CHECK_SECONDS after the start, default 560, so the whole fits one 10-minute call),
# most valuable first:
# 1. the `gpu` tests (GPU vs CPU parity, finite differences on the GPU, Network on
#    backend="gpu") and the CUDA source tests (nvcc, NVRTC through CuPy, host build; dense,
#    conv and pool kernels, the Net3 network);
# 2. when the authors' code is at hand, benchmarks/peer_bats_reference.py: batscope and the
#    reference side by side (agreement on one batch and samples/s, 784-800-10 and Net3);
# 3. engine/bench.py's 784-800-10 benchmark at batch 50 and 1000 and its Net3
#    (15C5-P2-40C5-P2-300-10) benchmark at batch 20 and 1000;
# 4. a cProfile of the 784-800-10 benchmark on the GPU (profile_gpu_dense.txt);
# 5. with the Fashion-MNIST files at hand, the output neurons silent at initialisation under
#    the reference's own CuPy draw beside batscope's (scripts/dead_outputs_at_init.py --cupy);
# 6. with real MNIST at hand, one epoch of the paper's 784-800-10 multi-spike experiment on the
#    GPU through the training layer (`python -m batscope.training.cli train`, no Panel needed):
#    its summary line is the end-to-end check (run folder, test accuracy, epoch time).
# Logs go to $OUT (or a temporary folder, printed at the end), at most 8 files: env.txt,
# pytest_gpu.txt, profile_gpu_dense.txt, one file per step (bench_gpu.json holds both
# benchmarks) and stderr.txt with every step's messages. Run from the repository root:
#     bash scripts/gpu_check.sh
#
# Nothing is downloaded. Needed on the machine: python3 with numpy, numba, pytest,
# pytest-timeout, tqdm and CuPy (the device image has cupy-cuda13x); param for steps 5 and 6;
# nvcc for the source tests. Missing packages travel as wheels in .whl/ (ignored by git), made on a
# machine with pip, for example
#     python3 -m pip download --no-deps --only-binary=:all: -d .whl param==2.4.2
#     python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#         --implementation cp --platform manylinux2014_x86_64 -d .whl \
#         cupy-cuda13x==14.2.0 cuda-pathfinder nvidia-cuda-nvrtc
# (match --python-version to the machine's python3; nvidia-cuda-nvrtc only without a CUDA
# toolkit) and carry .whl with the working tree; this script installs every wheel there into
# /tmp/site without an index.
# Real MNIST for the tests and the benchmark: copy ../shared/datasets/mnist to
# shared/datasets/mnist in the checkout (it travels); otherwise the tests use the embedded
# MNIST sample and the benchmark synthetic MNIST-like input. The authors' code and Fashion-MNIST
# likewise: copy ../shared/peers/bats-reference to shared/peers/bats-reference (or set
# BATS_REFERENCE), ../shared/datasets/fashion-mnist-unofficial-split to shared/datasets/.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
LOG=${OUT:-$(mktemp -d /tmp/batscope_gpu_check.XXXXXX)}
mkdir -p "$LOG"
export PYTHONUNBUFFERED=1 TQDM_DISABLE=1
status=0
DEADLINE=$(($(date +%s) + ${GPU_CHECK_SECONDS:-560}))
ERR="$LOG/stderr.txt"
: >"$ERR"

# limit SECONDS: SECONDS, or what is left before the deadline if that is less; 1 when less
# than 10 s are left (never 0, which `timeout` reads as no limit)
limit() {
    local left=$((DEADLINE - $(date +%s)))
    ((left < 10)) && left=1
    echo $((left < $1 ? left : $1))
}

# step FILE SECONDS COMMAND...: COMMAND for at most SECONDS (see limit), stdout appended to
# FILE, stderr to stderr.txt under a heading; both printed
step() {
    local file=$1 seconds
    seconds=$(limit "$2")
    shift 2
    echo "== $file (${seconds} s at most): $*" >>"$ERR"
    if ((seconds == 1)); then
        echo "$file: skipped, the deadline has passed" | tee -a "$ERR"
        status=1
        return
    fi
    timeout "$seconds" "$@" >>"$LOG/$file" 2>"$LOG/.step.err" || status=1
    cat "$LOG/$file" "$LOG/.step.err"
    cat "$LOG/.step.err" >>"$ERR"
    rm -f "$LOG/.step.err"
}

# shim, wheels, datasets
source "$ROOT/scripts/device_env.sh"

{
    date -u
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1
    nvcc --version 2>&1 | tail -n 2
    python3 -c "import sys, numpy, numba
print(sys.version.split()[0], numpy.__version__, numba.__version__)"
    python3 -c "import cupy; print('cupy', cupy.__version__, cupy.cuda.runtime.runtimeGetVersion())"
    python3 -c "from batscope.engine.backend import gpu_status; print('gpu_status:', gpu_status())"
} 2>&1 | tee "$LOG/env.txt"

timeout "$(limit 200)" python3 -m pytest -q -p no:cacheprovider -o addopts="" -rA \
    --timeout 150 tests/gpu tests/engine/test_cuda_sources.py 2>&1 | tee "$LOG/pytest_gpu.txt" ||
    status=1

REF=${BATS_REFERENCE:-}
for d in shared/peers/bats-reference ../shared/peers/bats-reference; do
    [ -z "$REF" ] && [ -d "$d/bats" ] && REF=$d
done
if [ -n "$REF" ]; then
    step peer_bats_reference.json 150 python3 benchmarks/peer_bats_reference.py \
        --reference "$REF"
else
    echo "peer_bats_reference: no bats-reference folder, side-by-side timing skipped"
fi

# each benchmark on the GPU also runs batch 1000 (its "batch_1000" entry)
for net in dense net3; do
    step bench_gpu.json 60 python3 -m batscope.engine.bench --backend gpu --net "$net" \
        --samples 2000
done

# where a GPU training step's host time goes (Python, CuPy calls, synchronisations): the
# 784-800-10 benchmark at batch 50 (kernels already compiled above) under cProfile, the 40
# functions of the engine and CuPy with the most time of their own, then the 25 most inclusive
timeout "$(limit 60)" python3 -m cProfile -o "$LOG/.bench.prof" -m batscope.engine.bench \
    --backend gpu --samples 4000 >/dev/null 2>>"$ERR" || status=1
python3 - "$LOG/.bench.prof" >"$LOG/profile_gpu_dense.txt" 2>>"$ERR" <<'PY'
import pstats, sys
stats = pstats.Stats(sys.argv[1], stream=sys.stdout)
stats.sort_stats("tottime").print_stats("engine|cupy|synchron", 40)
stats.sort_stats("cumulative").print_stats("engine", 25)
PY
rm -f "$LOG/.bench.prof"

FASHION=../shared/datasets/fashion-mnist-unofficial-split
if [ -f "$FASHION/train-images-idx3-ubyte.gz" ]; then
    step dead_outputs.txt 90 python3 scripts/dead_outputs_at_init.py \
        --data-dir "$FASHION" --seeds 0 1 2 3 4 5 6 7 8 9 --images 500 --cupy
else
    echo "dead_outputs: no Fashion-MNIST files in $FASHION, the reference's own draw skipped"
fi

MNIST=../shared/datasets/mnist
if [ -f "$MNIST/train-images-idx3-ubyte.gz" ]; then
    RUNS=$(mktemp -d /tmp/batscope_gpu_runs.XXXXXX)
    step train_gpu.json 150 python3 -m batscope.training.cli train mnist-multi --epochs 1 \
        --seeds 0 --backend gpu --dtype float32 --val 0 --data-dir "$MNIST" --out "$RUNS"
    rm -rf "$RUNS"
else
    echo "train_gpu: no MNIST files in $MNIST, the end-to-end training step skipped"
fi

rm -rf "$SHIM"
echo "gpu_check: status $status, logs in $LOG"
exit "$status"
