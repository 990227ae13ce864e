"""``python -m benches.eventsourcing_app --quick`` runs to the end and reports every line for
every system (a smoke run: it checks that the bench works, never a figure of it; performance is
measured by the benches, not by timed tests)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("eventsourcing")

REPO = Path(__file__).resolve().parents[1]


def test_eventsourcing_app_bench_quick_run(tmp_path: Path) -> None:
    out = tmp_path / "eventsourcing-app-quick.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "benches.eventsourcing_app",
            "--quick",
            *("--dir", str(tmp_path), "--json", str(out)),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,  # a safety net against a hang; the quick run takes a few seconds
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    doc = json.loads(out.read_text())
    assert [row["line"] for row in doc["rows"]] == ["1", "2", "3", "4", "5", "6i", "6s"]
    for row in doc["rows"]:
        for system in ("eventpak", "sqlite", "popo"):
            assert row["median"][system] > 0, row
        assert row["ratio_to_sqlite"] > 0 and row["ratio_to_popo"] > 0, row
    assert doc["machine"]["sqlite_synchronous"]["unsynced_lines"] == 0
    assert "| (1) |" in done.stdout and "eventpak / SQLite" in done.stdout
    assert list(tmp_path.iterdir()) == [out]  # the temporary stores are gone
