#!/usr/bin/env bash
# CS-UNet on one CUDA GPU: training-step throughput (fp32, bf16 AMP, + torch.compile), inference images/s at 512,
# and `predict` end to end on folders of 512^2 and 2048^2 micrographs (bf16), each case in its own process.
# About 5 minutes on an H100 and at most 8 (a case that hangs is cut off and reported). Writes
# benchmarks/results/gpu_<card>.md and .json, or into the folder given as the first argument.
#   bash benchmarks/gpu.sh [RESULTS_FOLDER]
# Needs torch with CUDA, timm and segmentation_models_pytorch (csunet's own code is taken from src/).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -x .venv/bin/python ]; then PYTHON=${PYTHON:-.venv/bin/python}; else PYTHON=${PYTHON:-python3}; fi
export PYTHONPATH="$PWD/src:$PWD${PYTHONPATH:+:$PYTHONPATH}"
"$PYTHON" -c "import torch, sys; torch.cuda.is_available() or sys.exit('gpu.sh: no CUDA GPU is visible to torch')"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
exec timeout 470 "$PYTHON" -m benchmarks.speed --device cuda --compile --case-timeout 200 \
    --results "${1:-benchmarks/results}"
