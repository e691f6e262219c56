#!/usr/bin/env bash
# One chunk of a paper experiment on a GPU, resumable across machines: unpack the run folders
# a previous chunk returned (if any), train with --resume for at most SECONDS, and pack the
# run folders again into one archive to take away. Runs write a checkpoint after every epoch
# (atomically), so a chunk stopped at its time limit resumes from its last finished epoch.
#
#     bash scripts/gpu_train.sh EXPERIMENT SECONDS [ARCHIVE] [train options...]
#     bash scripts/gpu_train.sh mnist-multi 480 runs-mnist-multi.tar.gz --seeds 1 --val 0
#
# ARCHIVE (default runs-EXPERIMENT.tar.gz) travels in parts of at most 15 MiB, ARCHIVE.part00,
# .part01, ... (a device returns files of at most 16 MiB). They are read from the repository
# root, or ARCHIVE's folder when it names one (git ignores them: name them in the device's
# carry), and written to $OUT (or the repository root), with gpu_train.txt beside them: the
# summary and the end of the command's messages. A chunk resumes with the options of the first
# (the run refuses others).
# BACKEND=cpu trains on the CPU instead (to try the script without a GPU).
# Datasets are read from ../shared/datasets/<name> (mnist, fashion-mnist-unofficial-split), or
# from shared/datasets/<name> copied into the checkout (scripts/device_env.sh links them).
set -uo pipefail

if [ $# -lt 2 ]; then
    sed -n '2,18p' "$0" | cut -c3-
    exit 2
fi
EXPERIMENT=$1
SECONDS_LIMIT=$2
shift 2
ARCHIVE=runs-$EXPERIMENT.tar.gz
if [ $# -gt 0 ] && [[ $1 != -* ]]; then
    ARCHIVE=$1
    shift
fi
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
DEST=${OUT:-$ROOT}
export PYTHONUNBUFFERED=1 TQDM_DISABLE=1

source "$ROOT/scripts/device_env.sh"  # shim, wheels, datasets

case $EXPERIMENT in
    fashion) DATA=fashion-mnist-unofficial-split ;;
    mnist-*) DATA=mnist ;;
    *) DATA=$EXPERIMENT ;;
esac
DATA_DIR=../shared/datasets/$DATA

RUNS=$(mktemp -d /tmp/batscope_runs.XXXXXX)
if ls "$ARCHIVE".part* >/dev/null 2>&1; then
    cat "$ARCHIVE".part* | tar -xzf - -C "$RUNS" || exit 1
    RESUME=--resume
else
    RESUME=
fi

LOG=$(mktemp /tmp/batscope_gpu_train.XXXXXX)
START=$(date +%s)
timeout --signal=KILL "$SECONDS_LIMIT" python3 -m batscope.training.cli train "$EXPERIMENT" \
    --backend "${BACKEND:-gpu}" --dtype float32 --data-dir "$DATA_DIR" --out "$RUNS/runs" \
    $RESUME "$@" >"$LOG" 2>&1
status=$?
{
    echo -n "gpu_train: $EXPERIMENT, $(($(date +%s) - START)) s, status $status"
    [ "$status" -eq 137 ] && echo -n " (stopped at the time limit: resume with the same options)"
    echo
    tail -n 40 "$LOG"
    find "$RUNS/runs" -name metrics.csv -exec sh -c 'echo "== $1"; tail -n 4 "$1"' _ {} \;
} | tee "$DEST/gpu_train.txt"
PACKED=$DEST/$(basename "$ARCHIVE")
rm -f "$PACKED".part*
tar -czf - -C "$RUNS" runs | split -b 15M -d - "$PACKED.part" && ls -l "$PACKED".part*
rm -rf "$RUNS" "$SHIM" "$LOG"
[ "$status" -eq 0 ] || [ "$status" -eq 137 ]
