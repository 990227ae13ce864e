"""``python -m benches.encryption --quick`` runs to the end and reports every case.

A smoke run of the encryption bench: it checks that the bench works and that its JSON holds
every case with its ratio, never a figure of it (performance is measured by the bench, not by
timed tests)."""

from __future__ import annotations

from pathlib import Path

from bench_support import run_quick_bench


def test_encryption_bench_quick_run(tmp_path: Path) -> None:
    doc, stdout = run_quick_bench("benches.encryption", tmp_path, timeout=300)
    rows = {(row["case"], row["key"]): row for row in doc["rows"]}
    for case in ("single", "batch", "read"):
        assert rows[(case, "clear")]["median"] > 0
        encrypted = rows[(case, "encrypted")]
        assert encrypted["median"] > 0 and encrypted["ratio_label"] == "encrypted / clear"
        assert encrypted["ratio"] > 0 and f"({case})" in stdout
