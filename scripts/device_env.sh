# Sourced by scripts/gpu_check.sh and scripts/gpu_train.sh, with ROOT set to the repository root
# and the current folder there: batscope importable without an install, the wheels carried in
# .whl/ installed without an index, and the datasets copied into the checkout's shared/ seen
# where tests and benchmarks look for them (../shared/datasets). Sets SHIM (remove it at the
# end) and PYTHONPATH.

# batscope.* maps onto the top-level folders (pyproject); a symlink shim needs no install.
SHIM=$(mktemp -d /tmp/batscope_shim.XXXXXX)
mkdir -p "$SHIM/batscope"
for pkg in engine datasets training widgets app; do ln -s "$ROOT/$pkg" "$SHIM/batscope/$pkg"; done
export PYTHONPATH="$SHIM${PYTHONPATH:+:$PYTHONPATH}"

if ls .whl/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl && export PYTHONPATH="$PYTHONPATH:/tmp/site"
fi
for data in shared/datasets/*/; do
    name=$(basename "$data")
    if [ -d "$data" ] && [ ! -e "../shared/datasets/$name" ]; then
        mkdir -p ../shared/datasets
        ln -s "$ROOT/shared/datasets/$name" "../shared/datasets/$name"
    fi
done
