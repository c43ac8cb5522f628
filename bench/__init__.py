"""Benchmarks; run them as modules from the repository root (``python -m bench.<name>``).
Results and the commands that produced them are in ``BENCHMARKS.md``."""
