"""Benchmarks: `make bench` runs them and writes tables to benchmarks/results/."""
