"""Run the benchmarks named on the command line, or all of them: `python -m benchmarks [speed] [train_cpu] [measure_agreement] [sparse_labels]`.

Each writes its tables to benchmarks/results/. The GPU benchmark is separate: `bash benchmarks/gpu.sh`.
"""

import importlib
import sys

BENCHMARKS: list[str] = ["speed", "train_cpu", "measure_agreement", "sparse_labels"]

if __name__ == "__main__":
    names = sys.argv[1:] or BENCHMARKS
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown:
        sys.exit(f"unknown benchmarks {unknown}; choose from {BENCHMARKS}")
    for name in names:
        importlib.import_module(f"benchmarks.{name}").main([])
