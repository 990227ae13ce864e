"""``python -m benches.eventsourcing_app --quick`` runs to the end and reports every line for
every system (a smoke run: it checks that the bench works, never a figure of it; performance is
measured by the benches, not by timed tests)."""

from __future__ import annotations

from pathlib import Path

import pytest
from bench_support import run_quick_bench

pytest.importorskip("eventsourcing")


def test_eventsourcing_app_bench_quick_run(tmp_path: Path) -> None:
    doc, stdout = run_quick_bench("benches.eventsourcing_app", tmp_path, timeout=300)
    assert [row["line"] for row in doc["rows"]] == ["1", "2", "3", "4", "5", "6i", "6s"]
    for row in doc["rows"]:
        for system in ("eventpak", "sqlite", "popo"):
            assert row["median"][system] > 0, row
        assert row["ratio_to_sqlite"] > 0 and row["ratio_to_popo"] > 0, row
    assert doc["machine"]["sqlite_synchronous"]["unsynced_lines"] == 0
    assert "| (1) |" in stdout and "eventpak / SQLite" in stdout
    assert list(tmp_path.iterdir()) == [
        tmp_path / "eventsourcing_app-quick.json"
    ]  # the temporary stores are gone
