"""Input validation: coordinates, kinds, payloads, sizes and store options; nothing is written."""

from __future__ import annotations

from pathlib import Path

import eventpak as ep
import msgpack
import pytest

R = ep.Region

BAD_PARTS = {
    "empty": "",
    "too-long": "x" * 1025,
    "too-long-utf8": "é" * 513,  # 1026 bytes
    "nul": "a\x00b",
    "ctrl-01": "a\x01b",
    "ctrl-1f": "a\x1fb",
    "del-7f": "a\x7fb",
    "tab": "a\tb",
    "newline": "a\nb",
    "slash": "a/b",
    "dotdot": "a..b",
    "only-dotdot": "..",
    "pipe": "a|b",
    "equals": "a=b",
}
GOOD_PARTS = ["x" * 1024, "é" * 512, "a.b", ".", "acct:1", "a-b_c", "ünïcödé", "a*b", "a,b", "a%b"]


@pytest.fixture
def seeded(open_store, data_dir):
    """A store holding three events; returns (store, snapshot) where snapshot() reads the log."""
    store = open_store(max_event_bytes=1024)
    for i in range(3):
        store.append(("seed", "s"), "k", i)

    def snapshot(s=None):
        s = s or store
        return [(e.event_id, e.global_sequence, e.hash, e.payload) for e in s.query(R.all())]

    return store, snapshot


def _assert_untouched(open_store, store, snapshot, before):
    assert store.stats()["events"] == 3
    assert snapshot() == before
    store.close()
    reopened = open_store()
    assert reopened.stats()["events"] == 3
    assert snapshot(reopened) == before
    # the clock and sequence were not consumed either
    receipt = reopened.append(("seed", "s"), "k", 3)
    assert (receipt.global_sequence, receipt.entity_sequence) == (3, 3)


# --- coordinates ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", BAD_PARTS.values(), ids=BAD_PARTS.keys())
def test_reads_by_entity_name_reject_invalid_entities(open_store, seeded, bad):
    """An entity no append could name is a mistake, not an empty answer."""
    store, snapshot = seeded
    before = snapshot()

    class Count(ep.Projection[int]):
        name = "count"

        def initial(self) -> int:
            return 0

        def apply(self, state: int, event: ep.Event) -> int:
            return state + 1

    with pytest.raises(ep.InvalidCoordinate):
        store.next_sequence(bad)
    with pytest.raises(ep.InvalidCoordinate):
        store.project(bad, Count())
    _assert_untouched(open_store, store, snapshot, before)


@pytest.mark.parametrize("bad", BAD_PARTS.values(), ids=BAD_PARTS.keys())
def test_coordinate_rejects_invalid_entity(bad):
    with pytest.raises(ep.InvalidCoordinate) as info:
        ep.Coordinate(bad, "scope")
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, ep.EventpakError)


@pytest.mark.parametrize("bad", BAD_PARTS.values(), ids=BAD_PARTS.keys())
def test_coordinate_rejects_invalid_scope(bad):
    with pytest.raises(ep.InvalidCoordinate):
        ep.Coordinate("entity", bad)


@pytest.mark.parametrize("good", GOOD_PARTS)
def test_coordinate_accepts_valid_parts(good):
    c = ep.Coordinate(good, good)
    assert c.entity == good
    assert c.scope == good


@pytest.mark.parametrize("bad", BAD_PARTS.values(), ids=BAD_PARTS.keys())
@pytest.mark.parametrize("part", ["entity", "scope"])
def test_append_with_invalid_tuple_coordinate_writes_nothing(open_store, seeded, bad, part):
    store, snapshot = seeded
    before = snapshot()
    coord = (bad, "scope") if part == "entity" else ("entity", bad)
    with pytest.raises(ep.InvalidCoordinate):
        store.append(coord, "k", 1)
    with pytest.raises(ep.InvalidCoordinate):
        store.append_batch([(coord, "k", 1)])
    with pytest.raises(ep.InvalidCoordinate):
        store.append_batch([ep.AppendRequest(coord, "k", 1)])
    _assert_untouched(open_store, store, snapshot, before)


@pytest.mark.parametrize("good", GOOD_PARTS)
def test_append_accepts_valid_parts(open_store, good):
    store = open_store()
    receipt = store.append((good, good), "k", 1)
    event = store.get(receipt.event_id)
    assert event.coordinate == ep.Coordinate(good, good)
    store.close()
    assert open_store().get(receipt.event_id).entity == good


# --- kinds -------------------------------------------------------------------------------------------

BAD_KINDS = {
    "empty": "",
    "too-long": "k" * 256,
    "nul": "a\x00b",
    "ctrl-01": "a\x01b",
    "ctrl-1f": "a\x1fb",
    "del-7f": "a\x7fb",
    "slash": "a/b",
    "dotdot": "a..b",
    "pipe": "a|b",
    "equals": "a=b",
    "reserved": "eventpak.x",
    "reserved-bare-prefix": "eventpak.",
}
GOOD_KINDS = ["k" * 255, "deposit", "acct.opened", "eventpak", "eventpakx", "my.eventpak.x", "é"]


@pytest.mark.parametrize("bad", BAD_KINDS.values(), ids=BAD_KINDS.keys())
def test_invalid_kind_raises_and_writes_nothing(open_store, seeded, bad):
    store, snapshot = seeded
    before = snapshot()
    with pytest.raises(ep.InvalidKind) as info:
        store.append(("e", "s"), bad, 1)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, ep.EventpakError)
    with pytest.raises(ep.InvalidKind):
        store.append_batch([(("e", "s"), "ok", 1), (("e", "s"), bad, 2)])
    _assert_untouched(open_store, store, snapshot, before)


@pytest.mark.parametrize("good", GOOD_KINDS)
def test_valid_kinds_are_accepted(store, good):
    receipt = store.append(("e", "s"), good, 1)
    assert store.get(receipt.event_id).kind == good


# --- payloads -------------------------------------------------------------------------------------------


class Custom:
    pass


BAD_PAYLOADS = {
    "object": object(),
    "custom-class": Custom(),
    "set": {1, 2},
    "frozenset": frozenset({1}),
    "complex": 1j,
    "int-key": {1: "a"},
    "tuple-key": {(1, 2): "a"},
    "none-key": {None: 1},
    "int-too-big": 2**64,
    "int-too-small": -(2**63) - 1,
    "nested-object": {"a": [1, {"b": object()}]},
    "nested-set": [[{1}]],
}


@pytest.mark.parametrize("bad", BAD_PAYLOADS.values(), ids=BAD_PAYLOADS.keys())
def test_unserializable_payload_raises_and_writes_nothing(open_store, seeded, bad):
    store, snapshot = seeded
    before = snapshot()
    with pytest.raises(ep.PayloadNotSerializable) as info:
        store.append(("e", "s"), "k", bad)
    assert isinstance(info.value, TypeError)
    assert isinstance(info.value, ep.EventpakError)
    with pytest.raises(TypeError):
        store.append_batch([(("e", "s"), "k", 1), (("e", "s"), "k", bad)])
    _assert_untouched(open_store, store, snapshot, before)


# --- sizes ----------------------------------------------------------------------------------------------


def _event_size(entity, scope, kind, payload, key=b""):
    return 24 + 139 + len(entity) + len(scope) + len(kind) + len(key) + len(msgpack.packb(payload))


def test_event_too_large_raises_and_writes_nothing(open_store, seeded):
    store, snapshot = seeded
    before = snapshot()
    with pytest.raises(ep.EventTooLarge) as info:
        store.append(("e", "s"), "k", "x" * 2000)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, ep.EventpakError)
    _assert_untouched(open_store, store, snapshot, before)


@pytest.mark.parametrize("key", [None, "idem-key"])
def test_max_event_bytes_bounds_the_encoded_frame_size(open_store, key):
    limit = 1024
    store = open_store(max_event_bytes=limit)
    key_bytes = (key or "").encode()
    without_payload = _event_size("ent", "sc", "kind", "", key_bytes) - len(msgpack.packb(""))
    fits = "x" * (limit - without_payload - 3)  # msgpack str16: 3-byte header + the characters
    assert _event_size("ent", "sc", "kind", fits, key_bytes) == limit
    store.append(("ent", "sc"), "kind", fits, idempotency_key=key)
    with pytest.raises(ep.EventTooLarge):
        store.append(("ent", "sc"), "kind", fits + "x", idempotency_key=None if key is None else key + "2")
    assert store.stats()["events"] == 1


# --- store options -------------------------------------------------------------------------------------

BAD_OPTIONS = {
    "sync-unknown": {"sync": "sometimes"},
    "sync-none": {"sync": None},
    "segment-too-small": {"segment_max_bytes": 100},
    "segment-4095": {"segment_max_bytes": 4095},
    "unknown-option": {"fsync": True},
    "negative-segment": {"segment_max_bytes": -1},
    "negative-event-bytes": {"max_event_bytes": -1},
    "negative-batch-events": {"max_batch_events": -5},
    "negative-batch-bytes": {"max_batch_bytes": -5},
    "negative-sync-every": {"sync_every_n_events": -1},
    "negative-interval": {"sync_interval_ms": -1},
    "zero-event-bytes": {"max_event_bytes": 0},
    "str-size": {"max_event_bytes": "1024"},
    "float-size": {"segment_max_bytes": 8192.0},
    "non-bool-flag": {"enable_index_checkpoint": "yes"},
}


@pytest.mark.parametrize("options", BAD_OPTIONS.values(), ids=BAD_OPTIONS.keys())
def test_bad_config_raises_invalid_config_and_touches_nothing(open_store, seeded, data_dir, options):
    store, snapshot = seeded
    before = snapshot()
    store.close()
    with pytest.raises(ep.InvalidConfig) as info:
        ep.Store.open(data_dir, **options)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, ep.EventpakError)
    reopened = open_store()
    assert snapshot(reopened) == before
    assert reopened.append(("seed", "s"), "k", 3).global_sequence == 3


@pytest.mark.parametrize("options", BAD_OPTIONS.values(), ids=BAD_OPTIONS.keys())
def test_bad_config_does_not_create_the_data_dir(tmp_path, options):
    path = tmp_path / "fresh"
    with pytest.raises(ep.InvalidConfig):
        ep.Store.open(path, **options)
    assert not path.exists()


def test_bad_store_config_raises_invalid_config(tmp_path):
    with pytest.raises(ep.InvalidConfig):
        ep.StoreConfig(tmp_path / "data", sync="sometimes")
    with pytest.raises(ep.InvalidConfig):
        ep.StoreConfig(tmp_path / "data", segment_max_bytes=100)


def test_store_config_with_extra_keywords_raises_invalid_config(tmp_path):
    with pytest.raises(ep.InvalidConfig):
        ep.Store.open(ep.StoreConfig(tmp_path / "data"), sync="always")
    assert not (tmp_path / "data").exists()


def test_create_false_refuses_a_folder_that_holds_no_store_and_writes_nothing(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ep.InvalidConfig, match="create=False"):
        ep.Store.open(empty, create=False)
    assert list(empty.iterdir()) == []
    with ep.Store.open(empty):
        pass
    with ep.Store.open(empty, create=False) as store:  # now it holds one
        assert store.stats()["events"] == 0


def test_a_fence_of_a_closed_or_read_only_store_is_refused_when_asked_for(open_store, seeded):
    store, _ = seeded
    store.close()
    with pytest.raises(ep.StoreClosed):
        store.fence()
    with pytest.raises(ep.StoreClosed):
        store.store_id  # noqa: B018 -- the access being tested
    reader = open_store(read_only=True)
    with pytest.raises(ep.ReadOnlyStore):
        reader.fence()


def test_minimum_segment_size_is_accepted(open_store):
    store = open_store(segment_max_bytes=4096)
    store.append(("e", "s"), "k", 1)
    assert store.stats()["events"] == 1


def test_read_only_store_refuses_appends(open_store, seeded):
    store, snapshot = seeded
    before = snapshot()
    store.close()
    ro = open_store(read_only=True)
    assert snapshot(ro) == before
    files_before = _dir_bytes(Path(ro.path))
    with pytest.raises(ep.ReadOnlyStore, match="appending is refused"):
        ro.append(("seed", "s"), "k", 3)
    with pytest.raises(ep.ReadOnlyStore):
        ro.append_batch([(("seed", "s"), "k", 3)])
    with pytest.raises(ep.ReadOnlyStore), ro.fence() as fence:
        fence.append(("seed", "s"), "k", 3)
    cursor = ro.cursor(ep.Region.all())
    assert len(cursor.poll_batch(10)) == 3
    with pytest.raises(ep.ReadOnlyStore, match="saving a cursor checkpoint"):
        cursor.commit("reader")
    with pytest.raises(ep.ReadOnlyStore, match="starting a durable worker is refused"):
        ro.cursor_worker(ep.Region.all(), lambda *_: None, ep.CursorWorkerConfig(checkpoint_id="reader"))
    assert ro.stats()["events"] == 3
    assert _dir_bytes(Path(ro.path)) == files_before


def _dir_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}
