"""append_batch: ordered receipts, AppendRequest options, atomic all-or-nothing."""

from __future__ import annotations

import uuid

import eventpak as ep
import msgpack
import pytest

R = ep.Region
ZERO_HASH = bytes(32)


def _events(store):
    return store.stats()["events"]


def test_batch_of_tuples_returns_receipts_in_order(store, coord):
    store.append(coord("pre"), "k", None)
    receipts = store.append_batch([(coord("a"), "k", i) for i in range(5)])
    assert len(receipts) == 5
    assert all(isinstance(r, ep.AppendReceipt) for r in receipts)
    assert [r.global_sequence for r in receipts] == [1, 2, 3, 4, 5]
    assert [r.entity_sequence for r in receipts] == [0, 1, 2, 3, 4]
    events = store.query(R.entity("a"))
    assert [e.payload for e in events] == list(range(5))
    assert [e.event_id for e in events] == [r.event_id for r in receipts]
    assert [e.hash for e in events] == [r.hash for r in receipts]
    assert [e.timestamp_us for e in events] == [r.timestamp_us for r in receipts]


def test_batch_accepts_tuple_coordinates_and_any_iterable(store):
    receipts = store.append_batch((("a", "s"), "k", i) for i in range(3))
    assert [r.global_sequence for r in receipts] == [0, 1, 2]
    assert [e.coordinate for e in store.query(R.all())] == [ep.Coordinate("a", "s")] * 3


def test_empty_batch_returns_empty_list(store):
    assert store.append_batch([]) == []
    assert _events(store) == 0


def test_batch_of_append_requests_round_trips_options(store):
    cause = uuid.uuid4()
    corr = uuid.uuid4()
    request = ep.AppendRequest(
        ("a", "s"),
        "deposit",
        {"amount": 1},
        idempotency_key="key-1",
        expected_sequence=0,
        causation_id=cause,
        correlation_id=corr,
    )
    assert request.kind == "deposit"
    assert request.payload == {"amount": 1}
    assert request.idempotency_key == "key-1"
    assert request.expected_sequence == 0
    assert request.causation_id == cause
    assert request.correlation_id == corr

    (receipt,) = store.append_batch([request])
    event = store.get(receipt.event_id)
    assert event.coordinate == ep.Coordinate("a", "s")
    assert event.kind == "deposit"
    assert event.payload == {"amount": 1}
    assert event.payload_bytes == msgpack.packb({"amount": 1})
    assert event.causation_id == cause
    assert event.correlation_id == corr


def test_batch_request_defaults(store):
    (receipt,) = store.append_batch([ep.AppendRequest(("a", "s"), "k", 1)])
    event = store.get(receipt.event_id)
    assert event.causation_id is None
    assert event.correlation_id == event.event_id


def test_batch_mixes_tuples_and_requests(store):
    receipts = store.append_batch([(("a", "s"), "k", 0), ep.AppendRequest(("a", "s"), "k", 1)])
    assert [r.entity_sequence for r in receipts] == [0, 1]


def test_batch_is_durable_under_sync_always(open_store):
    store = open_store(sync="always")
    receipts = store.append_batch([(("a", "s"), "k", i) for i in range(3)])
    assert all(r.durable for r in receipts)


def test_batch_spanning_entities_chains_each_entity(store):
    first_a = store.append(("a", "s"), "k", "a0")
    receipts = store.append_batch(
        [
            (("b", "s"), "k", "b0"),
            (("a", "s"), "k", "a1"),
            (("b", "s"), "k", "b1"),
            (("a", "t"), "k", "a2"),
            (("c", "s"), "k", "c0"),
        ]
    )
    assert [r.entity_sequence for r in receipts] == [0, 1, 1, 2, 0]
    assert [r.global_sequence for r in receipts] == [1, 2, 3, 4, 5]
    events = {e.payload: e for e in store.query(R.all())}
    assert events["a0"].hash == first_a.hash
    assert events["b0"].prev_hash == ZERO_HASH
    assert events["a1"].prev_hash == events["a0"].hash
    assert events["b1"].prev_hash == events["b0"].hash
    assert events["a2"].prev_hash == events["a1"].hash
    assert events["c0"].prev_hash == ZERO_HASH
    chain = store.walk_ancestors(events["a2"].event_id)
    assert [e.payload for e in chain] == ["a2", "a1", "a0"]


def test_expected_sequence_inside_a_batch_counts_earlier_items(store):
    receipts = store.append_batch(
        [
            ep.AppendRequest(("a", "s"), "k", 0, expected_sequence=0),
            ep.AppendRequest(("a", "s"), "k", 1, expected_sequence=1),
        ]
    )
    assert [r.entity_sequence for r in receipts] == [0, 1]


def test_cas_conflict_inside_a_batch_writes_nothing(store):
    store.append(("a", "s"), "k", "pre")
    with pytest.raises(ep.ConcurrencyConflict) as info:
        store.append_batch(
            [
                (("b", "s"), "k", "b0"),
                ep.AppendRequest(("a", "s"), "k", "bad", expected_sequence=0),
                (("c", "s"), "k", "c0"),
            ]
        )
    assert (info.value.entity, info.value.expected, info.value.actual) == ("a", 0, 1)
    assert _events(store) == 1
    assert [e.payload for e in store.query(R.all())] == ["pre"]
    # nothing of the batch consumed a sequence or a clock
    receipt = store.append(("b", "s"), "k", "b0")
    assert (receipt.global_sequence, receipt.entity_sequence) == (1, 0)


def test_batch_with_an_oversized_item_raises_event_too_large_and_writes_nothing(open_store):
    store = open_store(max_event_bytes=1024)
    store.append(("a", "s"), "k", "pre")
    with pytest.raises(ep.EventTooLarge) as info:
        store.append_batch(
            [
                (("a", "s"), "k", "small"),
                (("a", "s"), "k", "x" * 2000),
                (("a", "s"), "k", "small again"),
            ]
        )
    assert isinstance(info.value, ValueError)
    assert _events(store) == 1
    assert [e.payload for e in store.query(R.all())] == ["pre"]


@pytest.mark.parametrize(
    "bad_payload",
    [object(), {1, 2}, {1: "int key"}, {"ok": [object()]}],
    ids=["object", "set", "int-key-dict", "nested-object"],
)
def test_batch_with_an_unserializable_payload_writes_nothing(store, bad_payload):
    store.append(("a", "s"), "k", "pre")
    with pytest.raises(ep.PayloadNotSerializable) as info:
        store.append_batch([(("a", "s"), "k", "fine"), (("b", "s"), "k", bad_payload)])
    assert isinstance(info.value, TypeError)
    assert _events(store) == 1
    assert [e.payload for e in store.query(R.all())] == ["pre"]


def test_batch_with_an_invalid_coordinate_writes_nothing(store):
    with pytest.raises(ep.InvalidCoordinate):
        store.append_batch([(("a", "s"), "k", 1), (("a/b", "s"), "k", 2)])
    assert _events(store) == 0


def test_batch_with_an_invalid_kind_writes_nothing(store):
    with pytest.raises(ep.InvalidKind):
        store.append_batch([(("a", "s"), "k", 1), (("a", "s"), "eventpak.internal", 2)])
    assert _events(store) == 0


def test_batch_with_too_many_events_raises_batch_too_large(open_store):
    store = open_store(max_batch_events=3)
    assert len(store.append_batch([(("a", "s"), "k", i) for i in range(3)])) == 3
    with pytest.raises(ep.BatchTooLarge) as info:
        store.append_batch([(("a", "s"), "k", i) for i in range(4)])
    assert isinstance(info.value, ValueError)
    assert _events(store) == 3


def test_batch_with_too_many_bytes_raises_batch_too_large(open_store):
    store = open_store(max_batch_bytes=4096)
    item = (("a", "s"), "k", "x" * 1000)
    assert len(store.append_batch([item, item])) == 2
    with pytest.raises(ep.BatchTooLarge):
        store.append_batch([item] * 10)
    assert _events(store) == 2
    # each of those events alone is fine
    store.append(*item)
    assert _events(store) == 3


def test_failed_batch_leaves_sequence_and_chains_intact(open_store):
    store = open_store(max_event_bytes=1024)
    first = store.append(("a", "s"), "k", 0)
    with pytest.raises(ep.EventTooLarge):
        store.append_batch([(("a", "s"), "k", 1), (("a", "s"), "k", "x" * 2000)])
    receipt = store.append(("a", "s"), "k", 1)
    assert (receipt.global_sequence, receipt.entity_sequence) == (1, 1)
    assert store.get(receipt.event_id).prev_hash == first.hash


def test_batch_survives_reopen(open_store, event_key):
    store = open_store()
    store.append_batch([((f"e{i % 2}", "s"), "k", i) for i in range(6)])
    before = [event_key(e) for e in store.query(R.all())]
    store.close()
    assert [event_key(e) for e in open_store().query(R.all())] == before
