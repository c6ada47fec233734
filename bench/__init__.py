"""Benchmarks of OTV: `make bench` (bench/run.sh, `python -m bench`) and the in-process micro benchmarks."""
