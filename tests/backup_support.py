"""Helpers of the backup tests: what a store holds, read back as plain values, and a tree of
files as bytes (to show that a refused destination is untouched)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import eventpak as ep
from conftest import event_key


def events_of(store: ep.Store) -> list[tuple[Any, ...]]:
    """Every visible event of ``store``, in commit order, as comparable values."""
    return [event_key(e) for e in store.query(ep.Region.all())]


def held_through(origin: ep.Store, through: int | None) -> list[tuple[Any, ...]]:
    """The visible events of ``origin`` up to global sequence ``through``."""
    if through is None:
        return []
    return [key for key in events_of(origin) if key[1] <= through]


def tree(root: Path) -> dict[str, bytes | None]:
    """Every file under ``root`` with its bytes (``None`` for a folder)."""
    if not root.exists():
        return {}
    if root.is_file():
        return {".": root.read_bytes()}
    return {
        str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None) for p in sorted(root.rglob("*"))
    }


def fill(store: ep.Store, n: int, *, start: int = 0, entities: int = 7) -> None:
    """Appends ``n`` small events spread over a few entities."""
    for i in range(start, start + n):
        store.append((f"acct-{i % entities}", "bank"), "deposited", {"i": i, "note": "x" * (i % 50)})


def assert_is_backup_of(origin: ep.Store, dest: Path, report: ep.BackupReport) -> None:
    """``dest`` opens as a store holding exactly the events of ``origin`` up to
    ``report.through`` (ids, hashes and payloads included), and verifies."""
    with ep.Store.open(dest, read_only=True) as copy:
        assert copy.store_id == origin.store_id
        held = events_of(copy)
        assert held == held_through(origin, report.through)
        assert len(held) == report.events
        report_ok = copy.verify()
        assert report_ok.ok, report_ok.problems
