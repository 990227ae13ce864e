"""``python -m benches.scale --quick`` runs to the end and reports its three cases.

A smoke run of the scale bench (benches/scale.py): it checks that the bench works and that its
JSON holds every case with its ratio, never a figure of it (performance is measured by the
benches, not by timed tests)."""

from __future__ import annotations

from pathlib import Path

from bench_support import run_quick_bench


def test_scale_bench_quick_run(tmp_path: Path) -> None:
    doc, stdout = run_quick_bench("benches.scale", tmp_path, timeout=300)
    rows = {(row["case"], row["key"]): row for row in doc["rows"]}
    assert set(rows) == {
        ("entity", "few"),
        ("entity", "many"),
        ("entity", "sqlite3"),
        ("growth", "eventpak"),
        ("reopen", "eventpak"),
    }
    assert all(row["median"] > 0 for row in rows.values())
    labels = {row["ratio_label"] for row in rows.values() if "ratio" in row}
    assert labels == {
        "many entities / few",
        "eventpak / sqlite3",
        "slowest batch / median",
        "first / later appends",
    }
    assert "slowest batch / median" in stdout
