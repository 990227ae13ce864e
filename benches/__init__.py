"""Benchmarks for eventpak: pytest-benchmark hot paths and a side-by-side peer comparison.

Run ``python -m benches.compare`` (see ``benches/README.md``).
"""
