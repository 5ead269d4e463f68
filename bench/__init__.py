"""`make bench` (run.py) and the benchmarks of one part each (bench_*.py)."""
