"""Run every benchmark module listed in BENCHMARKS (later issues add them)."""

import importlib
import sys

BENCHMARKS: list[str] = ["train_cpu"]

if __name__ == "__main__":
    if not BENCHMARKS:
        print("no benchmarks yet", file=sys.stderr)
    for name in BENCHMARKS:
        importlib.import_module(f"benchmarks.{name}").main()
