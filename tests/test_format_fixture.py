"""Data dirs written by older builds still open and read the same: the committed format
fixtures (``tests/fixtures/``: ``v1_store`` made once by ``make_v1_store.py`` with format
version 1, ``v2_store`` made once by ``make_v2_store.py`` with format version 2,
``v3_store`` made once by ``make_v3_store.py`` with format version 3) against the values
written down when each was made. Every test that applies to several runs for each.

A format change needs a version bump, a reader for the old version and a new fixture;
changing how a fixture is read fails these tests. A fixture is only ever opened through a
copy: opening writes a LOCK file and may rewrite ``index.ckpt``.
"""

from __future__ import annotations

import itertools
import json
import shutil
import struct
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import eventpak as ep
import pytest

FIXTURES = Path(__file__).resolve().parent / "fixtures"
# docs/format.md: a seal record of ``segments/seals`` (format version 2).
SEAL = struct.Struct("<4sIQQQ")


@dataclass(frozen=True)
class Fixture:
    """One committed data dir and what ``v<N>_expected.json`` says it holds."""

    name: str
    version: int
    expected: dict[str, Any]

    @property
    def store(self) -> Path:
        return FIXTURES / f"{self.name}_store"

    @property
    def events(self) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = self.expected["events"]
        return events

    @property
    def visible(self) -> list[dict[str, Any]]:
        return [e for e in self.events if e["visible"]]

    @property
    def hidden(self) -> list[dict[str, Any]]:
        return [e for e in self.events if not e["visible"]]


def _load(version: int) -> Fixture:
    name = f"v{version}"
    expected = json.loads((FIXTURES / f"{name}_expected.json").read_text(encoding="utf-8"))
    return Fixture(name, version, expected)


ALL = {f.name: f for f in (_load(1), _load(2), _load(3))}
V1, V3 = ALL["v1"], ALL["v3"]
# The regions the fixtures' cursor checkpoints were saved with.
CHECKPOINT_REGIONS = {
    "fixture-eu": ep.Region.scope("eu"),
    "fixture-accounts": ep.Region.entity("acct").with_kind("deposit"),
    "fixture-vip": ep.Region.all().with_tags(["vip"]),
    "fixture-union": ep.Region.any_of(
        [ep.Region.all().with_tags(["order:1"]), ep.Region.entity("acct:bob").with_kind("deposit")]
    ),
}


class Balance(ep.Projection):
    """The projection whose state the v1 fixture's cache holds (see ``make_v1_store.py``)."""

    name = "fixture-balance"
    kinds = ("deposit", "withdraw")

    def initial(self) -> int:
        return 0

    def apply(self, state: int, event: ep.Event) -> int:
        sign = 1 if event.kind == "deposit" else -1
        return state + sign * int(event.payload["amount"])


@pytest.fixture(params=sorted(ALL))
def made(request: pytest.FixtureRequest) -> Fixture:
    """Each committed fixture in turn."""
    return ALL[request.param]


@pytest.fixture
def store_copy(tmp_path: Path, made: Fixture) -> Path:
    copy = tmp_path / made.store.name
    shutil.copytree(made.store, copy)
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
    # Version 1 had no payload versions: every one of its events reads as version 0.
    version = want.get("payload_version", 0)
    assert (event.payload_version, event.stored_payload_version) == (version, version), where
    # Versions 1 and 2 had no tags: every one of their events reads with none.
    assert event.tags == tuple(want.get("tags", ())), where


def causal_answers(made: Fixture) -> dict[int, dict[str, list[int]]]:
    """What ``causes``, ``effects``, ``descendants`` and ``correlated`` (of the event's
    correlation id) answer for each visible event, worked out from the listed fields."""
    events, visible = made.events, made.visible
    seq_of = {e["event_id"]: e["global_sequence"] for e in visible}

    def effects(seq: int) -> list[int]:
        event_id = events[seq]["event_id"]
        return [e["global_sequence"] for e in visible if e["causation_id"] == event_id]

    answers = {}
    for e in visible:
        seq = e["global_sequence"]
        causes, at = [seq], e
        while (cause := seq_of.get(at["causation_id"])) is not None and cause < at["global_sequence"]:
            causes.append(cause)
            at = events[cause]
        descendants, level = [], [seq]
        while level:
            level = [effect for cause in level for effect in effects(cause)]
            descendants.extend(level)
        correlated = [v["global_sequence"] for v in visible if v["correlation_id"] == e["correlation_id"]]
        answers[seq] = {"causes": causes, "effects": effects(seq), "descendants": descendants}
        answers[seq]["correlated"] = correlated
    return answers


def test_the_fixture_is_committed_without_a_lock_file(made: Fixture) -> None:
    assert not (made.store / "LOCK").exists()
    assert made.expected["format_version"] == made.version


def test_every_event_reads_back_as_written(made: Fixture, store_copy: Path) -> None:
    with ep.Store.open(store_copy) as store:
        stats = store.stats()
        assert stats["index_checkpoint"] == "loaded"
        assert stats["scanned_events"] == 0
        for field, value in made.expected["stats"].items():
            assert stats[field] == value, field
        events = store.query(ep.Region.all())
        assert [e.global_sequence for e in events] == [e["global_sequence"] for e in made.visible]
        for event, want in zip(events, made.visible, strict=True):
            check_event(event, want)
            check_event(store.get(uuid.UUID(want["event_id"])), want)
            check_event(store.get(want["event_id"]), want)
        hidden_ids = {uuid.UUID(e["event_id"]) for e in made.hidden}
        assert hidden_ids and hidden_ids.isdisjoint(e.event_id for e in events)
        for event_id in hidden_ids:
            with pytest.raises(ep.EventNotFound):
                store.get(event_id)


def test_each_fixture_holds_its_payload_versions(made: Fixture) -> None:
    versions = {e.get("payload_version", 0) for e in made.events}
    batched = {e.get("payload_version", 0) for e in made.visible if e["batch_len"] > 1}
    if made.version == 1:
        assert versions == batched == {0}
    elif made.version == 2:
        assert versions == batched == {0, 1, 2}
    else:
        assert versions == {0, 1, 2}


def test_regions_see_the_scopes_and_kinds(made: Fixture, store_copy: Path) -> None:
    with ep.Store.open(store_copy) as store:
        for scope in {e["scope"] for e in made.visible}:
            got = [e.global_sequence for e in store.query(ep.Region.scope(scope))]
            assert got == [e["global_sequence"] for e in made.visible if e["scope"] == scope]
        region = ep.Region.entity("acct").with_kind("deposit")
        deposits = [e for e in made.visible if e["entity"].startswith("acct:") and e["kind"] == "deposit"]
        assert [e.global_sequence for e in store.query(region)] == [e["global_sequence"] for e in deposits]


def test_the_idempotency_key_is_still_known(made: Fixture, store_copy: Path) -> None:
    (keyed,) = made.expected["idempotency"]
    want = made.events[keyed["global_sequence"]]
    assert want["idempotency_key"] == keyed["key"]
    with ep.Store.open(store_copy) as store:
        events_before = store.stats()["events"]
        coord = ep.Coordinate(want["entity"], want["scope"])
        tags = want.get("tags", ())  # a retry is the same content: tags included
        retry = store.append(coord, want["kind"], want["payload"], idempotency_key=keyed["key"], tags=tags)
        assert retry.global_sequence == keyed["global_sequence"]
        assert retry.event_id == uuid.UUID(want["event_id"])
        assert store.stats()["events"] == events_before


def test_every_entity_chain_verifies(made: Fixture, store_copy: Path) -> None:
    with ep.Store.open(store_copy) as store:
        for entity in {e["entity"] for e in made.visible}:
            chain = [e for e in made.visible if e["entity"] == entity]
            assert [e["entity_sequence"] for e in chain] == list(range(len(chain)))
            walked = store.walk_ancestors(chain[-1]["event_id"])
            assert [str(e.event_id) for e in walked] == [e["event_id"] for e in reversed(chain)]
            for newer, older in itertools.pairwise(walked):
                assert newer.prev_hash == older.hash
            assert walked[-1].prev_hash == bytes(32)


@pytest.mark.parametrize("from_checkpoint", [True, False], ids=["checkpoint", "full-scan"])
def test_the_causal_graph_is_served_as_listed(made: Fixture, store_copy: Path, from_checkpoint: bool) -> None:
    answers = causal_answers(made)
    if made.version == 2:
        # The version-2 fixture lists the answers; they follow from the event fields. It
        # has a hidden effect of a visible cause, which no answer includes.
        for e in made.visible:
            listed = {k: e[k] for k in ("causes", "effects", "descendants", "correlated")}
            assert listed == answers[e["global_sequence"]], e["global_sequence"]
        visible_ids = {e["event_id"] for e in made.visible}
        assert any(e["causation_id"] in visible_ids for e in made.hidden)
    with ep.Store.open(store_copy, enable_index_checkpoint=from_checkpoint) as store:
        expected_source = "loaded" if from_checkpoint else "disabled"
        assert store.stats()["index_checkpoint"] == expected_source
        for e in made.visible:
            seq, event_id = e["global_sequence"], e["event_id"]
            served = {
                "causes": [c.global_sequence for c in store.causes(event_id)],
                "effects": [c.global_sequence for c in store.effects(event_id)],
                "descendants": [c.global_sequence for c in store.descendants(event_id)],
                "correlated": [c.global_sequence for c in store.correlated(e["correlation_id"])],
            }
            assert served == answers[seq], seq
            assert [c.global_sequence for c in store.descendants(event_id, max_depth=1)] == answers[seq][
                "effects"
            ]


def test_verify_finds_nothing_wrong(made: Fixture, store_copy: Path) -> None:
    with ep.Store.open(store_copy) as store:
        report = store.verify()
    assert report.ok, report.problems
    assert (report.events, report.segments) == (len(made.events), len(made.expected["segments"]))
    assert report.bytes == sum(s["length"] for s in made.expected["segments"])


# The version-3 fixture lists its fences by their tags instead (test_tags_are_served_as_listed).
@pytest.mark.parametrize("made", ["v1", "v2"], indirect=True)
def test_the_cancelled_fence_is_a_gap_and_the_committed_one_is_visible(
    made: Fixture, store_copy: Path
) -> None:
    (hidden,) = made.expected["hidden_ranges"]
    assert [e["global_sequence"] for e in made.hidden] == list(range(*hidden))
    start, end = made.expected["committed_fence"]
    assert end - start == 2 and all(made.events[seq]["visible"] for seq in range(start, end))
    with ep.Store.open(store_copy) as store:
        cursor = store.cursor(ep.Region.all()).with_gap_config(ep.CursorGapConfig.enabled(16))
        delivered: list[ep.Event] = []
        while batch := cursor.poll_batch(7):
            delivered.extend(batch)
        assert [e.global_sequence for e in delivered] == [e["global_sequence"] for e in made.visible]
        gaps = [
            {
                "expected_sequence": g.expected_sequence,
                "delivered_sequence": g.delivered_sequence,
                "cancelled_ranges": [list(r) for r in g.cancelled_ranges],
            }
            for g in cursor.take_gaps()
        ]
        assert gaps == made.expected["gaps"]
        assert gaps[0]["cancelled_ranges"] == made.expected["hidden_ranges"]


def test_cursor_checkpoints_load_with_their_region_identity(made: Fixture, store_copy: Path) -> None:
    regions = {c["id"]: CHECKPOINT_REGIONS[c["id"]] for c in made.expected["cursor_checkpoints"]}
    assert len(regions) == 2
    for want in made.expected["cursor_checkpoints"]:
        loaded = ep.Cursor.load_checkpoint(store_copy, want["id"])
        expected = ep.CursorCheckpoint(
            want["position"], want["started"], want["process_boot_ns"], want["region_identity"]
        )
        assert loaded == expected
        assert loaded is not None and loaded.region_identity == regions[want["id"]].checkpoint_identity
    with ep.Store.open(store_copy) as store:
        for want in made.expected["cursor_checkpoints"]:
            cursor = store.cursor(regions[want["id"]])
            cursor.seek(want["position"], want["started"])
            rest = [e.global_sequence for e in cursor.poll_batch(1000)]
            region = regions[want["id"]]
            coord = lambda e: ep.Coordinate(e["entity"], e["scope"])  # noqa: E731
            matching = [
                e["global_sequence"]
                for e in made.visible
                if region.matches(coord(e), e["kind"], e["entity_sequence"], tags=e.get("tags", []))
            ]
            assert rest == [seq for seq in matching if seq > want["position"]]
            if "lag_events" in want:  # version 3: the lag is listed, and its region read back
                (info,) = [c for c in store.checkpoints() if c.checkpoint_id == want["id"]]
                assert info.lag_events == want["lag_events"] == len(rest)


def test_the_projection_cache_entry_is_served(
    tmp_path: Path, cache_copy: Path, dir_bytes: Callable[[Path], dict[str, bytes]]
) -> None:
    # Only the v1 fixture has a cache: the cache format did not change in versions 2 and 3.
    assert "cache" not in ALL["v2"].expected and "cache" not in V3.expected
    store_copy = tmp_path / "v1_store"
    shutil.copytree(V1.store, store_copy)
    want = V1.expected["cache"]
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


def test_a_full_scan_reads_the_same_events(made: Fixture, store_copy: Path, tmp_path: Path) -> None:
    with ep.Store.open(store_copy, read_only=True) as store:
        fast = store.query(ep.Region.all())
    scanned_copy = tmp_path / "scanned"
    shutil.copytree(made.store, scanned_copy)
    with ep.Store.open(scanned_copy, enable_index_checkpoint=False) as store:
        stats = store.stats()
        assert stats["index_checkpoint"] == "disabled"
        assert stats["scanned_events"] == len(made.events)
        slow = store.query(ep.Region.all())
    assert slow == fast
    for event, want in zip(slow, made.visible, strict=True):
        check_event(event, want)


def test_a_read_only_open_changes_nothing(
    made: Fixture, store_copy: Path, dir_bytes: Callable[[Path], dict[str, bytes]]
) -> None:
    before = dir_bytes(store_copy)
    with ep.Store.open(store_copy, read_only=True) as store:
        assert store.stats()["index_checkpoint"] == "loaded"
        for event, want in zip(store.query(ep.Region.all()), made.visible, strict=True):
            check_event(event, want)
        with pytest.raises(ep.EventpakError):
            store.append(ep.Coordinate("acct:alice", "eu"), "deposit", {"amount": 1})
    assert dir_bytes(store_copy) == before


def test_the_fixture_segments_are_where_the_json_says(made: Fixture, store_copy: Path) -> None:
    segments = made.expected["segments"]
    # From version 2 on, the seal records are in the segments folder too.
    seals = ["seals"] if made.version >= 2 else []
    names = sorted(p.name for p in (store_copy / "segments").iterdir())
    assert names == sorted([s["file"] for s in segments] + seals)
    assert len(segments) >= (2 if made.version == 1 else 3)
    for segment in segments:
        assert (store_copy / "segments" / segment["file"]).stat().st_size == segment["length"]
    assert (store_copy / "hidden.ranges").is_file() and (store_copy / "index.ckpt").is_file()


def test_the_seal_records_are_where_the_json_says(made: Fixture, store_copy: Path) -> None:
    segments = made.expected["segments"]
    if made.version == 1:
        # Version 1 had no seal records.
        assert all("seal" not in s for s in segments)
        assert not (store_copy / "segments" / "seals").exists()
        return
    data = (store_copy / "segments" / "seals").read_bytes()
    records = [SEAL.unpack_from(data, at) for at in range(0, len(data), SEAL.size)]
    assert len(data) == SEAL.size * len(records) == SEAL.size * (len(segments) - 1)
    for (magic, _crc, segment_id, length, next_sequence), segment, following in zip(
        records, segments, segments[1:], strict=False
    ):
        assert (magic, segment_id) == (b"SEAL", segment["segment_id"])
        assert segment["seal"] == {"length": length, "next_sequence": next_sequence}
        assert (length, next_sequence) == (segment["length"], following["base_sequence"])
    assert segments[-1]["seal"] is None


@pytest.mark.parametrize("from_checkpoint", [True, False], ids=["checkpoint", "full-scan"])
def test_tags_are_served_as_listed(tmp_path: Path, from_checkpoint: bool) -> None:
    """Version 3: every tag's events (visible only: the cancelled fence's tags are never
    posted), from the index checkpoint and by a full scan."""
    copy = tmp_path / "v3"
    shutil.copytree(V3.store, copy)
    postings = V3.expected["index_checkpoint"]["tags"]
    assert postings["cancelled"] == [] and any(e["tags"] for e in V3.hidden)
    with ep.Store.open(copy, enable_index_checkpoint=from_checkpoint) as store:
        assert store.stats()["index_checkpoint"] == ("loaded" if from_checkpoint else "disabled")
        for tag, seqs in postings.items():
            assert [e.global_sequence for e in store.query(ep.Region.all().with_tags([tag]))] == seqs, tag
            assert seqs == [e["global_sequence"] for e in V3.visible if tag in e["tags"]], tag
        both = ep.Region.all().with_tags(["customer:alice", "order:1"])
        assert [e.global_sequence for e in store.query(both)] == sorted(
            set(postings["customer:alice"]) & set(postings["order:1"])
        )


@pytest.mark.parametrize("from_checkpoint", [True, False], ids=["checkpoint", "full-scan"])
def test_tracking_records_are_where_the_json_says(tmp_path: Path, from_checkpoint: bool) -> None:
    """Version 3: the tracking records (the last frame of their batch, alone in one, the
    last frame of a sealed segment and of the log) and the positions they leave."""
    copy = tmp_path / "v3"
    shutil.copytree(V3.store, copy)
    records = V3.expected["tracking"]
    assert all(r["batch_index"] == r["batch_len"] - 1 for r in records)
    assert any(r["batch_len"] == 1 for r in records) and any(r["batch_len"] > 1 for r in records)
    ends = {(r["segment_id"], r["offset"] + r["frame_len"]) for r in records}
    segments = V3.expected["segments"]
    assert (segments[-1]["segment_id"], segments[-1]["length"]) in ends
    assert any((s["segment_id"], s["length"]) in ends for s in segments[:-1])
    for r in records:
        data = (copy / "segments" / f"{r['segment_id']:020d}.seg").read_bytes()
        frame = data[r["offset"] : r["offset"] + r["frame_len"]]
        body_len, _crc, seq, index, length = struct.unpack_from("<IIQII", frame)
        assert (body_len + 24, seq, index, length) == (
            r["frame_len"],
            r["global_sequence"],
            r["batch_index"],
            r["batch_len"],
        )
        zeros, position, stamp, flags, name_len = struct.unpack_from("<16sQQBB", frame, 24)
        assert (zeros, position, stamp, flags) == (bytes(16), r["position"], r["timestamp_us"], 16)
        assert frame[24 + 34 :].decode() == r["name"] and name_len == len(r["name"])
    with ep.Store.open(copy, enable_index_checkpoint=from_checkpoint) as store:
        for name, position in V3.expected["tracking_positions"].items():
            assert store.tracking_position(name) == position
            with pytest.raises(ep.TrackingConflict):
                store.append_batch([], tracking=ep.Tracking(name, position))
        assert store.verify().ok
        store.append_batch([], tracking=ep.Tracking("billing", 1000))
        assert store.tracking_position("billing") == 1000
