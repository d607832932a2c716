#!/usr/bin/env bash
# CS-UNet from scratch with the paper's and the fast recipe on NASA's seven tasks on one CUDA GPU (bf16 autocast,
# 512 crops, batch 8; no torch.compile, whose compiling would not pay in runs this short): 14 runs of 15 seconds
# of training each, about 8 minutes in all with each best checkpoint's test (estimated; not yet run on a GPU).
# Writes benchmarks/results/train_gpu.md/.json/.png.
#   CSUNET_DATA=/path/to/micronet_benchmark bash benchmarks/gpu_recipes.sh
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -x .venv/bin/python ]; then PYTHON=${PYTHON:-.venv/bin/python}; else PYTHON=${PYTHON:-python3}; fi
export PYTHONPATH="$PWD/src:$PWD${PYTHONPATH:+:$PYTHONPATH}"
"$PYTHON" -c "import torch, sys; torch.cuda.is_available() or sys.exit('gpu_recipes.sh: no CUDA GPU is visible to torch')"
exec timeout 470 "$PYTHON" -m benchmarks.train_cpu --gpu --minutes 0.25 --models cs_unet --recipes paper,fast \
    --tasks super-1,super-2,super-3,super-4,ebc-1,ebc-2,ebc-3 --out /tmp/csunet-gpu-runs
