"""Backups, compaction and encryption used together: each keeps the others' promises (a backup
of a compacted or encrypted store, compaction of an encrypted one, forgetting after both)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import eventpak as ep
import pytest

R = ep.Region
SMALL = {"segment_max_bytes": 4096, "sync": "never"}
MARKER = "lifecycle-marker-91b3"


def fill(store: ep.Store, n: int, start: int = 0) -> None:
    """``n`` events over entities u0..u4, kinds alternating tick and keep."""
    for i in range(start, start + n):
        kind = "tick" if i % 2 == 0 else "keep"
        store.append((f"u{i % 5}", "s"), kind, {"i": i, "text": MARKER})


def contents(store: ep.Store) -> dict[int, tuple[Any, ...]]:
    """Every visible event with the fields a copy or a compaction must keep, payload included."""
    return {
        e.global_sequence: (e.event_id, e.entity, e.kind, e.entity_sequence, e.hash, e.prev_hash, e.payload)
        for e in store.query(R.all())
    }


def gaps(store: ep.Store) -> list[tuple[int, int]]:
    """The compacted ranges a gap-observing cursor reports over the whole log."""
    cursor = store.cursor(R.all()).with_gap_config(ep.CursorGapConfig.enabled(1000))
    found: list[tuple[int, int]] = []
    while batch := cursor.poll_batch(1000):
        del batch
    for gap in cursor.take_gaps():
        found.extend(gap.compacted_ranges)
    return found


def files_holding(directory: Path, needle: bytes) -> list[Path]:
    return [p for p in directory.rglob("*") if p.is_file() and needle in p.read_bytes()]


def test_a_backup_of_a_compacted_store_holds_what_it_holds_and_a_later_compaction_reaches_the_copy(
    open_store, tmp_path: Path
) -> None:
    store = open_store(**SMALL)
    fill(store, 200)
    store.compact(ep.Retention(kinds=["tick"]))
    dest = tmp_path / "backup"
    store.backup(dest)
    with ep.Store.open(dest, read_only=True) as copy:
        assert contents(copy) == contents(store)
        assert copy.verify().ok
    # A second compaction rewrites segments the first backup already holds: the incremental
    # backup must copy them again, not keep the older files because their names match.
    store.compact(ep.Retention(predicate=lambda e: e.entity == "u1"))
    report = store.backup(dest)
    assert report.incremental
    with ep.Store.open(dest, read_only=True) as copy:
        assert contents(copy) == contents(store)
        assert not any(v[1] == "u1" for s, v in contents(copy).items() if s < report.through - 30)
        assert copy.verify().ok


def test_an_encrypted_store_backs_up_sealed_and_its_copy_opens_only_with_the_key(
    open_store, tmp_path: Path
) -> None:
    key = ep.generate_encryption_key()
    store = open_store(encryption_key=key, **SMALL)
    fill(store, 120)
    dest = tmp_path / "backup"
    store.backup(dest)
    assert not files_holding(dest, MARKER.encode())
    for options in ({}, {"encryption_key": ep.generate_encryption_key()}):
        with pytest.raises(ep.InvalidConfig):
            ep.Store.open(dest, read_only=True, **options)
    with ep.Store.open(dest, read_only=True, encryption_key=key) as copy:
        assert contents(copy) == contents(store)
        assert copy.verify().ok


def test_forgetting_reaches_a_later_incremental_backup_but_not_the_earlier_copy(
    open_store, tmp_path: Path
) -> None:
    key = ep.generate_encryption_key()
    store = open_store(encryption_key=key, **SMALL)
    fill(store, 100)
    earlier, later = tmp_path / "earlier", tmp_path / "later"
    store.backup(earlier)
    store.backup(later)
    store.forget_entity("u2")
    store.backup(later)
    with ep.Store.open(later, read_only=True, encryption_key=key) as copy:
        u2 = [e for e in copy.query(R.all()) if e.entity == "u2"]
        assert u2
        for event in u2:
            with pytest.raises(ep.PayloadForgotten):
                _ = event.payload
        assert all(e.payload["text"] == MARKER for e in copy.query(R.all()) if e.entity != "u2")
        assert copy.verify().ok
    # What forgetting does not reach (docs/lifecycle.md): a copy made before it.
    with ep.Store.open(earlier, read_only=True, encryption_key=key) as copy:
        assert all(e.payload["text"] == MARKER for e in copy.query(R.all()) if e.entity == "u2")


def test_compaction_of_an_encrypted_store_keeps_sealed_payloads_and_then_forgets(
    open_store, data_dir: Path
) -> None:
    key = ep.generate_encryption_key()
    store = open_store(encryption_key=key, **SMALL)
    fill(store, 200)
    before = contents(store)
    report = store.compact(ep.Retention(kinds=["tick"]))
    assert report.removed > 0
    after = contents(store)
    assert set(after) < set(before) and all(before[s] == v for s, v in after.items())
    store.forget_entity("u3")
    fill(store, 10, start=200)
    store.close()
    assert not files_holding(data_dir, MARKER.encode())
    reopened = open_store(encryption_key=key)
    assert reopened.verify().ok
    assert gaps(reopened)
    for event in reopened.query(R.all()):
        if event.entity == "u3" and event.global_sequence < 200:
            with pytest.raises(ep.PayloadForgotten):
                _ = event.payload
        else:
            assert event.payload["text"] == MARKER
