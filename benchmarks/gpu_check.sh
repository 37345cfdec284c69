#!/usr/bin/env bash
# GPU checks of issue 18, in one run on a CUDA machine (not yet run on a GPU):
#   1. the CUDA-marked tests (pytest -m gpu);
#   2. HELIP mining at 1M and 3M pairs with the ivf index scoring its lists on the GPU
#      (use_gpu defaults to on when torch sees CUDA), recall@10 on 1000 anchors searched exactly;
#   3. training throughput, clipflow's trainer vs open_clip_train, --device cuda.
# Results go to benchmarks/results/{gpu_check.tests.log,mining_speed.gpu.*,train_speed.gpu.*}.
#
#   bash benchmarks/gpu_check.sh              # run everything
#   bash benchmarks/gpu_check.sh --dry-run    # print the commands only (works without a GPU)
#
# PYTHON (default .venv/bin/python) and THREADS (default: all cores) can be overridden.
set -euo pipefail
cd "$(dirname "$0")/.."

dry_run=0
if [[ ${1:-} == --dry-run ]]; then
    dry_run=1
elif [[ $# -gt 0 ]]; then
    echo "usage: $0 [--dry-run]" >&2
    exit 2
fi
python=${PYTHON:-.venv/bin/python}
threads=${THREADS:-$(nproc)}
results=benchmarks/results
export PYTHONPATH="$PWD/lib${PYTHONPATH:+:$PYTHONPATH}"

run() {
    echo "+ $*"
    if [[ $dry_run == 0 ]]; then
        "$@"
    fi
}

run "$python" -c "import torch; assert torch.cuda.is_available(), 'torch sees no CUDA device'; \
print('GPU:', torch.cuda.get_device_name(0))"
run bash -c "set -o pipefail; '$python' -m pytest -p no:xdist -o addopts='-ra --strict-markers' \
-m gpu tests -q 2>&1 | tee $results/gpu_check.tests.log"
run "$python" benchmarks/mining_speed.py --sizes 1000000 3000000 --methods ivf \
    --threads "$threads" --recall-sample 1000 --out "$results/mining_speed.gpu"
run "$python" benchmarks/train_speed.py --device cuda --threads "$threads" \
    --out "$results/train_speed.gpu"
