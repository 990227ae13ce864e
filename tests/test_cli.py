"""`python -m eventpak demo` and `python -m eventpak stats` run end to end."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import eventpak as ep


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "eventpak", *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_demo_appends_reads_and_reopens(tmp_path: Path) -> None:
    data_dir = tmp_path / "demo"
    done = run_cli("demo", "--data-dir", str(data_dir), "--accounts", "40", "--events", "3000")
    assert done.returncode == 0, done.stderr
    assert "idempotent retry returned the original receipt: True" in done.stdout
    assert "compare-and-set refused a stale write" in done.stdout
    assert "index checkpoint loaded" in done.stdout
    # After the reopen, the projection comes from the NativeCache: nothing is replayed.
    after_reopen = done.stdout.split("project after reopen (served from the cache)")[1]
    assert "(0 events applied)" in after_reopen.splitlines()[1]
    with ep.Store.open(data_dir) as store:
        # 40 account openings, 3000 mixed events, 2 CAS/idempotent appends that were written.
        assert store.stats()["events"] == 40 + 3000 + 2
        assert len(store.query(ep.Region.entity("acct:0").with_kind("account.opened"))) == 1


def test_stats_prints_the_event_count(tmp_path: Path) -> None:
    with ep.Store.open(tmp_path / "d") as store:
        store.append(ep.Coordinate("a", "s"), "k", 1)
    done = run_cli("stats", str(tmp_path / "d"))
    assert done.returncode == 0, done.stderr
    assert "events: 1" in done.stdout
