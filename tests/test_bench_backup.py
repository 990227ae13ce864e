"""``python -m benches.backup --quick`` runs to the end and reports every case for every system
(a smoke run: it checks that the bench works, never a figure of it; performance is measured by
the benches, not by timed tests)."""

from __future__ import annotations

from pathlib import Path

from bench_support import run_quick_bench


def test_backup_bench_quick_run(tmp_path: Path) -> None:
    doc, stdout = run_quick_bench("benches.backup", tmp_path, timeout=300)
    rows = {(row["case"], row["key"]): row for row in doc["rows"]}
    assert set(rows) == {
        ("full", "eventpak"),
        ("full", "cp"),
        ("full", "cp_sync"),
        ("incremental", "incremental"),
        ("incremental", "full"),
    }
    for row in rows.values():
        assert row["median"] > 0, row
    assert rows[("full", "eventpak")]["ratio_label"] == "backup / cp -r"
    assert rows[("full", "eventpak")]["ratio"] > 0 and rows[("full", "eventpak")]["aim"] == ">= 0.8"
    assert rows[("full", "cp_sync")]["ratio_label"] == "backup / (cp -r; sync)"
    assert rows[("incremental", "incremental")]["ratio_label"] == "incremental / full"
    assert rows[("incremental", "incremental")]["aim"] == "<= 0.05"
    assert "| (full) |" in stdout and "backup / cp -r" in stdout
    assert list(tmp_path.iterdir()) == [tmp_path / "backup-quick.json"]  # the stores are gone
