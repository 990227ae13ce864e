"""A data dir written by an older build still opens and reads the same: the committed
format-v1 fixture (``tests/fixtures/``, made once by ``make_v1_store.py``) against the
values written down when it was made.

A format change needs a version bump, a reader for the old version and a new fixture;
changing how this fixture is read fails these tests. The fixture is only ever opened
through a copy: opening writes a LOCK file and may rewrite ``index.ckpt``.
"""

from __future__ import annotations

import itertools
import json
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import eventpak as ep
import pytest

FIXTURES = Path(__file__).resolve().parent / "fixtures"
EXPECTED: dict[str, Any] = json.loads((FIXTURES / "v1_expected.json").read_text(encoding="utf-8"))
VISIBLE = [e for e in EXPECTED["events"] if e["visible"]]
HIDDEN = [e for e in EXPECTED["events"] if not e["visible"]]


class Balance(ep.Projection):
    """The projection whose state the fixture's cache holds (see ``make_v1_store.py``)."""

    name = "fixture-balance"
    kinds = ("deposit", "withdraw")

    def initial(self) -> int:
        return 0

    def apply(self, state: int, event: ep.Event) -> int:
        sign = 1 if event.kind == "deposit" else -1
        return state + sign * int(event.payload["amount"])


@pytest.fixture
def store_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "v1_store"
    shutil.copytree(FIXTURES / "v1_store", copy)
    return copy


@pytest.fixture
def cache_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "v1_cache"
    shutil.copytree(FIXTURES / "v1_cache", copy)
    return copy


def _optional_uuid(text: str | None) -> uuid.UUID | None:
    return None if text is None else uuid.UUID(text)


def check_event(event: ep.Event, want: dict[str, Any]) -> None:
    where = f"event {want['global_sequence']}"
    assert event.event_id == uuid.UUID(want["event_id"]), where
    assert event.global_sequence == want["global_sequence"], where
    assert (event.entity, event.scope, event.kind) == (want["entity"], want["scope"], want["kind"]), where
    assert event.coordinate == ep.Coordinate(want["entity"], want["scope"]), where
    assert event.entity_sequence == want["entity_sequence"], where
    assert event.timestamp_us == want["timestamp_us"], where
    assert event.causation_id == _optional_uuid(want["causation_id"]), where
    assert event.correlation_id == uuid.UUID(want["correlation_id"]), where
    assert event.prev_hash.hex() == want["prev_hash"], where
    assert event.hash.hex() == want["hash"] == want["receipt_hash"], where
    assert event.payload_bytes.hex() == want["payload_hex"], where
    assert event.payload == want["payload"], where


def test_the_fixture_is_committed_without_a_lock_file() -> None:
    assert not (FIXTURES / "v1_store" / "LOCK").exists()
    assert EXPECTED["format_version"] == 1


def test_every_event_reads_back_as_written(store_copy: Path) -> None:
    with ep.Store.open(store_copy) as store:
        stats = store.stats()
        assert stats["index_checkpoint"] == "loaded"
        assert stats["scanned_events"] == 0
        for field, value in EXPECTED["stats"].items():
            assert stats[field] == value, field
        events = store.query(ep.Region.all())
        assert [e.global_sequence for e in events] == [e["global_sequence"] for e in VISIBLE]
        for event, want in zip(events, VISIBLE, strict=True):
            check_event(event, want)
            check_event(store.get(uuid.UUID(want["event_id"])), want)
            check_event(store.get(want["event_id"]), want)
        hidden_ids = {uuid.UUID(e["event_id"]) for e in HIDDEN}
        assert hidden_ids and hidden_ids.isdisjoint(e.event_id for e in events)
        for event_id in hidden_ids:
            with pytest.raises(ep.EventNotFound):
                store.get(event_id)


def test_regions_see_the_scopes_and_kinds(store_copy: Path) -> None:
    with ep.Store.open(store_copy) as store:
        for scope in {e["scope"] for e in VISIBLE}:
            got = [e.global_sequence for e in store.query(ep.Region.scope(scope))]
            assert got == [e["global_sequence"] for e in VISIBLE if e["scope"] == scope]
        region = ep.Region.entity("acct").with_kind("deposit")
        deposits = [e for e in VISIBLE if e["entity"].startswith("acct:") and e["kind"] == "deposit"]
        assert [e.global_sequence for e in store.query(region)] == [e["global_sequence"] for e in deposits]


def test_the_idempotency_key_is_still_known(store_copy: Path) -> None:
    (keyed,) = EXPECTED["idempotency"]
    want = EXPECTED["events"][keyed["global_sequence"]]
    assert want["idempotency_key"] == keyed["key"]
    with ep.Store.open(store_copy) as store:
        events_before = store.stats()["events"]
        coord = ep.Coordinate(want["entity"], want["scope"])
        retry = store.append(coord, want["kind"], want["payload"], idempotency_key=keyed["key"])
        assert retry.global_sequence == keyed["global_sequence"]
        assert retry.event_id == uuid.UUID(want["event_id"])
        assert store.stats()["events"] == events_before


def test_every_entity_chain_verifies(store_copy: Path) -> None:
    with ep.Store.open(store_copy) as store:
        for entity in {e["entity"] for e in VISIBLE}:
            chain = [e for e in VISIBLE if e["entity"] == entity]
            assert [e["entity_sequence"] for e in chain] == list(range(len(chain)))
            walked = store.walk_ancestors(chain[-1]["event_id"])
            assert [str(e.event_id) for e in walked] == [e["event_id"] for e in reversed(chain)]
            for newer, older in itertools.pairwise(walked):
                assert newer.prev_hash == older.hash
            assert walked[-1].prev_hash == bytes(32)


def test_the_cancelled_fence_is_a_gap_and_the_committed_one_is_visible(store_copy: Path) -> None:
    (hidden,) = EXPECTED["hidden_ranges"]
    assert [e["global_sequence"] for e in HIDDEN] == list(range(*hidden))
    start, end = EXPECTED["committed_fence"]
    assert end - start == 2 and all(EXPECTED["events"][seq]["visible"] for seq in range(start, end))
    with ep.Store.open(store_copy) as store:
        cursor = store.cursor(ep.Region.all()).with_gap_config(ep.CursorGapConfig.enabled(16))
        delivered: list[ep.Event] = []
        while batch := cursor.poll_batch(7):
            delivered.extend(batch)
        assert [e.global_sequence for e in delivered] == [e["global_sequence"] for e in VISIBLE]
        gaps = [
            {
                "expected_sequence": g.expected_sequence,
                "delivered_sequence": g.delivered_sequence,
                "cancelled_ranges": [list(r) for r in g.cancelled_ranges],
            }
            for g in cursor.take_gaps()
        ]
        assert gaps == EXPECTED["gaps"]
        assert gaps[0]["cancelled_ranges"] == EXPECTED["hidden_ranges"]


def test_cursor_checkpoints_load_with_their_region_identity(store_copy: Path) -> None:
    regions = {
        "fixture-eu": ep.Region.scope("eu"),
        "fixture-accounts": ep.Region.entity("acct").with_kind("deposit"),
    }
    assert {c["id"] for c in EXPECTED["cursor_checkpoints"]} == set(regions)
    for want in EXPECTED["cursor_checkpoints"]:
        loaded = ep.Cursor.load_checkpoint(store_copy, want["id"])
        expected = ep.CursorCheckpoint(
            want["position"], want["started"], want["process_boot_ns"], want["region_identity"]
        )
        assert loaded == expected
        assert loaded is not None and loaded.region_identity == regions[want["id"]].checkpoint_identity
    with ep.Store.open(store_copy) as store:
        for want in EXPECTED["cursor_checkpoints"]:
            cursor = store.cursor(regions[want["id"]])
            cursor.seek(want["position"], want["started"])
            rest = [e.global_sequence for e in cursor.poll_batch(1000)]
            region = regions[want["id"]]
            matching = [
                e["global_sequence"]
                for e in VISIBLE
                if region.matches(ep.Coordinate(e["entity"], e["scope"]), e["kind"], e["entity_sequence"])
            ]
            assert rest == [seq for seq in matching if seq > want["position"]]


def test_the_projection_cache_entry_is_served(
    store_copy: Path, cache_copy: Path, dir_bytes: Callable[[Path], dict[str, bytes]]
) -> None:
    want = EXPECTED["cache"]
    found = ep.NativeCache(cache_copy).get(bytes.fromhex(want["key_hex"]))
    assert found is not None
    value, meta = found
    assert value.hex() == want["value_hex"]
    assert meta == ep.CacheMeta(want["watermark"], want["cached_at_us"])
    assert Balance().decode(value) == want["state"]
    before = dir_bytes(cache_copy)
    assert list(before) == [want["file"]]
    with ep.Store.open(store_copy, projection_cache=ep.NativeCache(cache_copy)) as store:
        assert store.project(want["target"], Balance()) == want["state"]
    # Cache keys now start with the store's identity, which the fixture's entry predates:
    # that entry is a miss (never another store's state), the state is replayed and cached
    # under the new key, and the old file is left as it was.
    after = dir_bytes(cache_copy)
    assert after[want["file"]] == before[want["file"]]
    assert len(after) == 2


def test_a_full_scan_reads_the_same_events(store_copy: Path, tmp_path: Path) -> None:
    with ep.Store.open(store_copy, read_only=True) as store:
        fast = store.query(ep.Region.all())
    scanned_copy = tmp_path / "scanned"
    shutil.copytree(FIXTURES / "v1_store", scanned_copy)
    with ep.Store.open(scanned_copy, enable_index_checkpoint=False) as store:
        stats = store.stats()
        assert stats["index_checkpoint"] == "disabled"
        assert stats["scanned_events"] == len(EXPECTED["events"])
        slow = store.query(ep.Region.all())
    assert slow == fast
    for event, want in zip(slow, VISIBLE, strict=True):
        check_event(event, want)


def test_a_read_only_open_changes_nothing(
    store_copy: Path, dir_bytes: Callable[[Path], dict[str, bytes]]
) -> None:
    before = dir_bytes(store_copy)
    with ep.Store.open(store_copy, read_only=True) as store:
        assert store.stats()["index_checkpoint"] == "loaded"
        for event, want in zip(store.query(ep.Region.all()), VISIBLE, strict=True):
            check_event(event, want)
        with pytest.raises(ep.EventpakError):
            store.append(ep.Coordinate("acct:alice", "eu"), "deposit", {"amount": 1})
    assert dir_bytes(store_copy) == before


def test_the_fixture_segments_are_where_the_json_says(store_copy: Path) -> None:
    names = sorted(p.name for p in (store_copy / "segments").iterdir())
    assert names == [s["file"] for s in EXPECTED["segments"]]
    assert len(names) >= 2
    for segment in EXPECTED["segments"]:
        assert (store_copy / "segments" / segment["file"]).stat().st_size == segment["length"]
    assert (store_copy / "hidden.ranges").is_file() and (store_copy / "index.ckpt").is_file()
