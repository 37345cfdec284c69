#!/usr/bin/env bash
# Create .venv/ in the repository root and install clipflow with every package pinned.
# Idempotent: rerunning on an existing .venv only installs what changed.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade "pip>=24"
.venv/bin/python -m pip install --quiet -c envs/constraints.txt -e ".[dev]"
# LibAUC's GCLoss is the reference the SogCLR test compares with. Its wheel declares torch_geometric,
# ogb, medmnist, opencv, ... for other modules; `libauc.losses` needs none of them.
.venv/bin/python -m pip install --quiet --no-deps "libauc==2.0.1"
# Arms clipflow's torchvision hook in every interpreter of the venv (see lib/clipflow/_torchvision_ops.py),
# so third-party entry points (clip_benchmark, open_clip_train) import torchvision too.
site=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "import clipflow._torchvision_ops as h; h.install()" > "$site/clipflow_torchvision_ops.pth"
.venv/bin/python -c "import open_clip, faiss, img2dataset, snakemake; print('clipflow environment ready:', open_clip.__version__)"
