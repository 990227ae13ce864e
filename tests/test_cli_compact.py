"""``eventpak compact DIR``: retention from the command line (docs/lifecycle.md). It needs the
data dir to itself, refuses to run without a rule, and reports what it removed."""

from __future__ import annotations

import json
import os
from pathlib import Path

import eventpak as ep
from cli_helpers import assert_refused, assert_usage_error, run_cli, snapshot

R = ep.Region


def _store(data_dir: Path) -> None:
    with ep.Store.open(data_dir, segment_max_bytes=4096) as store:
        for i in range(120):
            store.append((f"acct-{i % 4}", "s"), "heartbeat" if i % 2 else "deposit", {"i": i})


def test_compact_removes_the_kinds_named_from_the_sealed_segments(data_dir: Path) -> None:
    _store(data_dir)
    with ep.Store.open(data_dir, read_only=True) as store:
        sealed_heartbeats = [e.global_sequence for e in store.query(R.all().with_kind("heartbeat"))]
    done = run_cli("compact", str(data_dir), "--kind", "heartbeat", "--keep-last", "1", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert set(report) == {"removed", "kept", "bytes_freed"}
    assert report["removed"] > 0 and report["bytes_freed"] > 0
    with ep.Store.open(data_dir) as store:
        left = [e.global_sequence for e in store.query(R.all().with_kind("heartbeat"))]
        assert len(sealed_heartbeats) - len(left) == report["removed"]
        assert len(store.query(R.all().with_kind("deposit"))) == 60
        for entity in ("acct-1", "acct-3"):  # the entities with heartbeats keep their newest
            assert store.query(R.entity(entity).with_kind("heartbeat"))
        assert store.verify().ok


def test_compact_without_a_rule_is_a_usage_error_and_changes_nothing(data_dir: Path) -> None:
    _store(data_dir)
    before = snapshot(data_dir)
    assert_usage_error(run_cli("compact", str(data_dir)), "at least one rule")
    assert_usage_error(run_cli("compact", str(data_dir), "--max-age", "nan"), "--max-age")
    assert_usage_error(run_cli("compact", str(data_dir), "--keep-last", "-1"), "--keep-last")
    assert snapshot(data_dir) == before


def test_compact_is_refused_while_another_process_has_the_store(data_dir: Path, tmp_path: Path) -> None:
    _store(data_dir)
    before = snapshot(data_dir / "segments")  # the test's own opens rewrite the index checkpoint
    with ep.Store.open(data_dir, shared=True) as store:
        done = run_cli("compact", str(data_dir), "--kind", "heartbeat")
        assert_refused(
            done, f"compact needs {data_dir} to itself", "processes sharing it", "stop the service"
        )
        assert "shared=True" not in done.stderr  # StoreLocked's advice would not help here
        assert len(store.query(R.all())) == 120
    with ep.Store.open(data_dir):
        done = run_cli("compact", str(data_dir), "--kind", "heartbeat")
        assert_refused(done, f"open in process {os.getpid()}", "stop the service")
    assert snapshot(data_dir / "segments") == before
    missing = tmp_path / "missing"
    assert_refused(run_cli("compact", str(missing), "--kind", "heartbeat"))
    assert not missing.exists()
