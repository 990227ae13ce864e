"""Append, get and walk_ancestors: every field of an event round-trips."""

from __future__ import annotations

import itertools
import uuid

import eventpak as ep
import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ZERO_HASH = bytes(32)


def test_every_event_field_round_trips(store, coord):
    cause = uuid.uuid4()
    corr = uuid.uuid4()
    c = coord("acct:1", "eu")
    receipt = store.append(c, "deposit", {"amount": 100}, causation_id=cause, correlation_id=corr)

    event = store.get(receipt.event_id)
    assert isinstance(event, ep.Event)
    assert isinstance(event.event_id, uuid.UUID)
    assert event.event_id.version == 7
    assert event.event_id == receipt.event_id
    assert event.global_sequence == 0
    assert event.coordinate == c
    assert isinstance(event.coordinate, ep.Coordinate)
    assert event.entity == "acct:1"
    assert event.scope == "eu"
    assert event.kind == "deposit"
    assert event.entity_sequence == 0
    assert isinstance(event.timestamp_us, int)
    assert event.timestamp_us > 0
    assert event.causation_id == cause
    assert event.correlation_id == corr
    assert event.prev_hash == ZERO_HASH
    assert isinstance(event.hash, bytes)
    assert len(event.hash) == 32
    assert event.hash != ZERO_HASH
    assert event.payload == {"amount": 100}
    assert event.payload_bytes == msgpack.packb({"amount": 100})


def test_coordinate_accepts_tuple_form(store, coord):
    receipt = store.append(("acct:1", "eu"), "deposit", 1)
    assert store.get(receipt.event_id).coordinate == coord("acct:1", "eu")


def test_event_ids_are_uuid7_and_increase_with_global_sequence(store, coord):
    receipts = [store.append(coord(f"e{i % 3}"), "k", i) for i in range(50)]
    ids = [r.event_id for r in receipts]
    assert all(isinstance(i, uuid.UUID) and i.version == 7 for i in ids)
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)
    events = store.query(ep.Region.all())
    assert [e.event_id for e in events] == ids


def test_global_sequence_is_dense_from_zero(store, coord):
    receipts = [store.append(coord(f"e{i % 4}"), "k", i) for i in range(40)]
    assert [r.global_sequence for r in receipts] == list(range(40))
    assert [e.global_sequence for e in store.query(ep.Region.all())] == list(range(40))


def test_entity_sequence_counts_per_entity_from_zero(store, coord):
    order = ["a", "b", "a", "c", "a", "b", "c", "c", "a"]
    receipts = [store.append(coord(e), "k", None) for e in order]
    expected = []
    seen: dict[str, int] = {}
    for e in order:
        expected.append(seen.get(e, 0))
        seen[e] = seen.get(e, 0) + 1
    assert [r.entity_sequence for r in receipts] == expected
    assert [e.entity_sequence for e in store.query(ep.Region.all())] == expected


def test_entity_sequence_is_per_entity_not_per_coordinate(store):
    store.append(("acct:1", "eu"), "k", 1)
    receipt = store.append(("acct:1", "us"), "k", 2)
    assert receipt.entity_sequence == 1


def test_timestamps_are_non_decreasing(store, coord):
    receipts = [store.append(coord(f"e{i % 2}"), "k", i) for i in range(100)]
    stamps = [r.timestamp_us for r in receipts]
    assert stamps == sorted(stamps)
    assert [e.timestamp_us for e in store.query(ep.Region.all())] == stamps


def test_causation_id_defaults_to_none(store, coord):
    receipt = store.append(coord("a"), "k", 1)
    assert store.get(receipt.event_id).causation_id is None


def test_causation_id_round_trips(store, coord):
    first = store.append(coord("a"), "k", 1)
    second = store.append(coord("a"), "k", 2, causation_id=first.event_id)
    assert store.get(second.event_id).causation_id == first.event_id


def test_correlation_id_defaults_to_own_event_id(store, coord):
    receipt = store.append(coord("a"), "k", 1)
    event = store.get(receipt.event_id)
    assert event.correlation_id == event.event_id == receipt.event_id


def test_correlation_id_round_trips(store, coord):
    corr = uuid.uuid4()
    receipt = store.append(coord("a"), "k", 1, correlation_id=corr)
    event = store.get(receipt.event_id)
    assert event.correlation_id == corr
    assert isinstance(event.correlation_id, uuid.UUID)


def test_prev_hash_chains_each_entity(store, coord):
    order = ["a", "b", "a", "a", "b", "c", "a"]
    for i, e in enumerate(order):
        store.append(coord(e), "k", i)
    last_hash: dict[str, bytes] = {}
    for event in store.query(ep.Region.all()):
        assert len(event.hash) == 32
        assert len(event.prev_hash) == 32
        assert event.prev_hash == last_hash.get(event.entity, ZERO_HASH)
        last_hash[event.entity] = event.hash
    hashes = [e.hash for e in store.query(ep.Region.all())]
    assert len(set(hashes)) == len(hashes)


def test_hash_differs_for_same_payload_at_different_positions(store, coord):
    first = store.append(coord("a"), "k", {"same": True})
    second = store.append(coord("a"), "k", {"same": True})
    other_entity = store.append(coord("b"), "k", {"same": True})
    other_kind = store.append(coord("c"), "k2", {"same": True})
    assert len({first.hash, second.hash, other_entity.hash, other_kind.hash}) == 4


PAYLOADS = [
    None,
    True,
    False,
    0,
    1,
    -1,
    127,
    -33,
    2**32,
    2**64 - 1,
    -(2**63),
    1.5,
    -0.25,
    1e300,
    "",
    "hello",
    "unicode: héllo wörld ✓ 日本 🎉",
    b"",
    b"\x00\x01\xff raw",
    [],
    [1, "two", 3.0, None, b"four"],
    {},
    {"a": 1, "b": [1, 2, {"c": None}], "d": {"e": {"f": b"x", "g": "é"}}},
]


@pytest.mark.parametrize("value", PAYLOADS, ids=repr)
def test_payload_round_trips(store, coord, value):
    receipt = store.append(coord("p"), "k", value)
    event = store.get(receipt.event_id)
    assert event.payload == value
    assert type(event.payload) is type(value)
    assert event.payload_bytes == msgpack.packb(value)
    assert msgpack.unpackb(event.payload_bytes, raw=False) == value


def test_tuple_payload_comes_back_as_list(store, coord):
    value = (1, "a", (2, 3), {"t": (4,)})
    receipt = store.append(coord("p"), "k", value)
    event = store.get(receipt.event_id)
    assert event.payload == [1, "a", [2, 3], {"t": [4]}]
    assert type(event.payload) is list
    assert event.payload_bytes == msgpack.packb(value)


def test_payload_is_the_same_after_reopen(open_store, coord, data_dir):
    store = open_store()
    ids = [store.append(coord("p"), "k", value).event_id for value in PAYLOADS]
    store.close()
    reopened = open_store()
    for event_id, value in zip(ids, PAYLOADS, strict=True):
        event = reopened.get(event_id)
        assert event.payload == value
        assert event.payload_bytes == msgpack.packb(value)


payload_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.binary(max_size=20),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=20,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=payload_values)
def test_any_msgpack_payload_round_trips(store, value):
    receipt = store.append(("p", "s"), "k", value)
    event = store.get(receipt.event_id)
    assert event.payload == value
    assert event.payload_bytes == msgpack.packb(value)


def test_receipt_matches_stored_event(open_store, coord):
    store = open_store(sync="always")
    store.append(coord("a"), "k", 0)
    receipt = store.append(coord("a"), "k", 1)
    assert isinstance(receipt, ep.AppendReceipt)
    event = store.get(receipt.event_id)
    assert receipt.event_id == event.event_id
    assert receipt.global_sequence == event.global_sequence == 1
    assert receipt.entity_sequence == event.entity_sequence == 1
    assert receipt.hash == event.hash
    assert receipt.timestamp_us == event.timestamp_us
    assert receipt.durable is True


def test_get_returns_the_event(store, coord):
    receipts = [store.append(coord("a"), "k", i) for i in range(5)]
    for i, receipt in enumerate(receipts):
        event = store.get(receipt.event_id)
        assert event.global_sequence == i
        assert event.payload == i


def test_get_accepts_a_uuid_string(store, coord):
    receipt = store.append(coord("a"), "k", "x")
    assert store.get(str(receipt.event_id)).event_id == receipt.event_id


def test_get_equal_events_compare_equal(store, coord):
    receipt = store.append(coord("a"), "k", "x")
    assert store.get(receipt.event_id) == store.get(receipt.event_id)
    assert store.get(receipt.event_id) == store.query(ep.Region.all())[0]


def test_get_unknown_id_raises_event_not_found(store, coord):
    store.append(coord("a"), "k", 1)
    with pytest.raises(ep.EventNotFound) as info:
        store.get(uuid.uuid4())
    assert isinstance(info.value, KeyError)
    assert isinstance(info.value, ep.EventpakError)


def test_get_on_empty_store_raises_event_not_found(store):
    with pytest.raises(KeyError):
        store.get(uuid.uuid4())


def test_walk_ancestors_returns_anchor_then_same_entity_newest_first(store, coord):
    order = ["a", "b", "a", "b", "a", "c", "a"]
    receipts = [store.append(coord(e), "k", i) for i, e in enumerate(order)]
    a_receipts = [r for r, e in zip(receipts, order, strict=True) if e == "a"]

    chain = store.walk_ancestors(a_receipts[-1].event_id)
    assert [e.event_id for e in chain] == [r.event_id for r in reversed(a_receipts)]
    assert [e.entity_sequence for e in chain] == [3, 2, 1, 0]
    assert all(e.entity == "a" for e in chain)
    for newer, older in itertools.pairwise(chain):
        assert newer.prev_hash == older.hash
    assert chain[-1].prev_hash == ZERO_HASH


def test_walk_ancestors_from_a_middle_event(store, coord):
    receipts = [store.append(coord("a"), "k", i) for i in range(5)]
    chain = store.walk_ancestors(receipts[2].event_id)
    assert [e.payload for e in chain] == [2, 1, 0]


def test_walk_ancestors_limit_caps_the_count(store, coord):
    receipts = [store.append(coord("a"), "k", i) for i in range(5)]
    anchor = receipts[-1].event_id
    assert [e.payload for e in store.walk_ancestors(anchor, limit=1)] == [4]
    assert [e.payload for e in store.walk_ancestors(anchor, limit=3)] == [4, 3, 2]
    assert [e.payload for e in store.walk_ancestors(anchor, limit=10)] == [4, 3, 2, 1, 0]
    assert [e.payload for e in store.walk_ancestors(anchor, limit=None)] == [4, 3, 2, 1, 0]


def test_walk_ancestors_of_first_event_is_only_the_anchor(store, coord):
    receipt = store.append(coord("a"), "k", 0)
    store.append(coord("a"), "k", 1)
    assert [e.event_id for e in store.walk_ancestors(receipt.event_id)] == [receipt.event_id]


def test_walk_ancestors_unknown_id_raises_event_not_found(store, coord):
    store.append(coord("a"), "k", 0)
    with pytest.raises(ep.EventNotFound):
        store.walk_ancestors(uuid.uuid4())
