"""Compare-and-set on the entity clock (expected_sequence) and idempotency keys."""

from __future__ import annotations

import eventpak as ep
import pytest

R = ep.Region


def _events(store):
    return store.stats()["events"]


# --- expected_sequence -----------------------------------------------------------------------------


def test_expected_sequence_zero_succeeds_for_a_new_entity(store, coord):
    receipt = store.append(coord("acct:1"), "open", {}, expected_sequence=0)
    assert receipt.entity_sequence == 0


def test_expected_sequence_matching_the_next_clock_succeeds(store, coord):
    for i in range(3):
        store.append(coord("acct:1"), "k", i)
    receipt = store.append(coord("acct:1"), "k", 3, expected_sequence=3)
    assert receipt.entity_sequence == 3
    assert receipt.global_sequence == 3


def test_expected_sequence_is_per_entity(store, coord):
    for i in range(3):
        store.append(coord("other"), "k", i)
    receipt = store.append(coord("acct:1"), "k", 0, expected_sequence=0)
    assert receipt.entity_sequence == 0
    assert receipt.global_sequence == 3


def test_expected_sequence_conflict_raises_with_attributes(store, coord):
    store.append(coord("acct:1"), "k", 0)
    store.append(coord("acct:1"), "k", 1)
    with pytest.raises(ep.ConcurrencyConflict) as info:
        store.append(coord("acct:1"), "k", 2, expected_sequence=1)
    err = info.value
    assert isinstance(err, ep.EventpakError)
    assert err.entity == "acct:1"
    assert err.expected == 1
    assert err.actual == 2


def test_expected_sequence_ahead_of_the_clock_conflicts(store, coord):
    with pytest.raises(ep.ConcurrencyConflict) as info:
        store.append(coord("acct:new"), "k", 0, expected_sequence=5)
    assert (info.value.entity, info.value.expected, info.value.actual) == ("acct:new", 5, 0)


def test_expected_sequence_conflict_writes_nothing(store, coord):
    store.append(coord("acct:1"), "k", 0)
    before = [e.event_id for e in store.query(R.all())]
    with pytest.raises(ep.ConcurrencyConflict):
        store.append(coord("acct:1"), "k", 1, expected_sequence=0)
    assert _events(store) == 1
    assert [e.event_id for e in store.query(R.all())] == before
    # the clock did not move: the right expectation still succeeds
    assert store.append(coord("acct:1"), "k", 1, expected_sequence=1).entity_sequence == 1


def test_expected_sequence_counts_the_entity_across_scopes(store):
    store.append(("acct:1", "eu"), "k", 0)
    with pytest.raises(ep.ConcurrencyConflict):
        store.append(("acct:1", "us"), "k", 0, expected_sequence=0)
    assert store.append(("acct:1", "us"), "k", 1, expected_sequence=1).entity_sequence == 1


def test_expected_sequence_survives_reopen(open_store, coord):
    store = open_store()
    store.append(coord("acct:1"), "k", 0)
    store.close()
    store = open_store()
    with pytest.raises(ep.ConcurrencyConflict):
        store.append(coord("acct:1"), "k", 1, expected_sequence=0)
    assert store.append(coord("acct:1"), "k", 1, expected_sequence=1).global_sequence == 1


# --- idempotency keys ------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["order-17", b"order-17", b"\x00\xff binary", "k" * 64, b"k" * 64, "é" * 32])
def test_idempotent_retry_returns_the_original_receipt(store, coord, key):
    original = store.append(coord("acct:1"), "deposit", {"amount": 5}, idempotency_key=key)
    retry = store.append(coord("acct:1"), "deposit", {"amount": 5}, idempotency_key=key)
    assert retry == original
    assert retry.event_id == original.event_id
    assert retry.global_sequence == original.global_sequence
    assert retry.entity_sequence == original.entity_sequence
    assert retry.hash == original.hash
    assert retry.timestamp_us == original.timestamp_us
    assert _events(store) == 1


def test_idempotent_retry_after_other_appends(store, coord):
    original = store.append(coord("acct:1"), "deposit", 1, idempotency_key="k1")
    store.append(coord("acct:1"), "deposit", 2)
    store.append(coord("acct:2"), "deposit", 3)
    retry = store.append(coord("acct:1"), "deposit", 1, idempotency_key="k1")
    assert retry == original
    assert retry.global_sequence == 0
    assert _events(store) == 3


def test_idempotent_retry_after_reopen(open_store, coord):
    store = open_store(sync="always")
    original = store.append(coord("acct:1"), "deposit", {"amount": 5}, idempotency_key="order-17")
    store.append(coord("acct:1"), "deposit", {"amount": 6}, idempotency_key="order-18")
    store.close()

    store = open_store()
    retry = store.append(coord("acct:1"), "deposit", {"amount": 5}, idempotency_key="order-17")
    assert retry == original
    assert _events(store) == 2
    with pytest.raises(ep.IdempotencyConflict):
        store.append(coord("acct:1"), "deposit", {"amount": 99}, idempotency_key="order-17")
    assert _events(store) == 2


def test_idempotent_retry_after_reopen_without_index_checkpoint(open_store, coord):
    store = open_store(enable_index_checkpoint=False)
    original = store.append(coord("acct:1"), "deposit", 5, idempotency_key="order-17")
    store.close()
    store = open_store(enable_index_checkpoint=False)
    assert store.append(coord("acct:1"), "deposit", 5, idempotency_key="order-17") == original
    assert _events(store) == 1


def test_idempotent_retry_with_same_expected_sequence_returns_original(store, coord):
    original = store.append(coord("acct:1"), "k", 1, idempotency_key="k1", expected_sequence=0)
    retry = store.append(coord("acct:1"), "k", 1, idempotency_key="k1", expected_sequence=0)
    assert retry == original
    assert _events(store) == 1


@pytest.mark.parametrize(
    "change",
    [
        {"coord": ("acct:2", "main")},
        {"coord": ("acct:1", "other")},
        {"kind": "withdraw"},
        {"payload": {"amount": 6}},
        {"payload": {"amount": 5.0}},
        {"payload": [5]},
    ],
    ids=lambda c: repr(c),
)
def test_same_key_with_different_content_raises_idempotency_conflict(store, change):
    base = {"coord": ("acct:1", "main"), "kind": "deposit", "payload": {"amount": 5}}
    store.append(base["coord"], base["kind"], base["payload"], idempotency_key="order-17")
    changed = {**base, **change}
    with pytest.raises(ep.IdempotencyConflict) as info:
        store.append(changed["coord"], changed["kind"], changed["payload"], idempotency_key="order-17")
    assert isinstance(info.value, ep.EventpakError)
    assert _events(store) == 1


def test_distinct_keys_write_distinct_events(store, coord):
    a = store.append(coord("acct:1"), "deposit", 5, idempotency_key="a")
    b = store.append(coord("acct:1"), "deposit", 5, idempotency_key="b")
    assert a != b
    assert _events(store) == 2


def test_unkeyed_appends_are_never_deduplicated(store, coord):
    store.append(coord("acct:1"), "deposit", 5)
    store.append(coord("acct:1"), "deposit", 5)
    assert _events(store) == 2


def test_receipt_equality_ignores_durable(open_store, coord):
    store = open_store(sync="never")
    original = store.append(coord("acct:1"), "deposit", 5, idempotency_key="k")
    store.sync()
    retry = store.append(coord("acct:1"), "deposit", 5, idempotency_key="k")
    assert retry == original
    assert hash(retry) == hash(original)


@pytest.mark.parametrize("key", ["", b"", "k" * 65, b"k" * 65, "é" * 33])
def test_invalid_idempotency_key_raises(store, coord, key):
    with pytest.raises(ep.InvalidIdempotencyKey) as info:
        store.append(coord("acct:1"), "deposit", 5, idempotency_key=key)
    assert isinstance(info.value, ValueError)
    assert _events(store) == 0


# --- keyed batches ---------------------------------------------------------------------------------


def _req(entity, payload, key=None):
    return ep.AppendRequest((entity, "main"), "deposit", payload, idempotency_key=key)


def test_batch_with_mixed_keyed_and_unkeyed_items_raises(store):
    with pytest.raises(ep.InvalidIdempotencyKey):
        store.append_batch([_req("a", 1, "k1"), _req("a", 2)])
    with pytest.raises(ep.InvalidIdempotencyKey):
        store.append_batch([_req("a", 1), _req("a", 2, "k2")])
    assert _events(store) == 0


def test_keyed_batch_retry_returns_original_receipts(store):
    batch = [_req("a", 1, "k1"), _req("b", 2, "k2"), _req("a", 3, "k3")]
    original = store.append_batch(batch)
    store.append(("c", "main"), "deposit", 4)
    retry = store.append_batch(batch)
    assert retry == original
    assert [r.global_sequence for r in retry] == [0, 1, 2]
    assert _events(store) == 4


def test_keyed_batch_retry_after_reopen(open_store):
    batch = [_req("a", 1, b"k1"), _req("b", 2, b"k2")]
    store = open_store(sync="always")
    original = store.append_batch(batch)
    store.close()
    store = open_store()
    assert store.append_batch(batch) == original
    assert _events(store) == 2


def test_batch_with_partly_committed_keys_raises_and_writes_nothing(store):
    store.append_batch([_req("a", 1, "k1"), _req("a", 2, "k2")])
    with pytest.raises(ep.IdempotencyConflict):
        store.append_batch([_req("a", 1, "k1"), _req("a", 2, "k2"), _req("a", 3, "k3")])
    assert _events(store) == 2
    # k3 was not consumed: it can be used for new content
    assert store.append(("a", "main"), "deposit", 3, idempotency_key="k3").global_sequence == 2


def test_batch_reusing_a_single_append_key_partly_raises(store):
    store.append(("a", "main"), "deposit", 1, idempotency_key="k1")
    with pytest.raises(ep.IdempotencyConflict):
        store.append_batch([_req("a", 1, "k1"), _req("a", 2, "k2")])
    assert _events(store) == 1


def test_batch_key_with_different_content_raises(store):
    store.append_batch([_req("a", 1, "k1"), _req("a", 2, "k2")])
    with pytest.raises(ep.IdempotencyConflict):
        store.append_batch([_req("a", 1, "k1"), _req("a", 999, "k2")])
    assert _events(store) == 2


def test_batch_with_an_invalid_key_raises_and_writes_nothing(store):
    with pytest.raises(ep.InvalidIdempotencyKey):
        store.append_batch([_req("a", 1, "k1"), _req("a", 2, "k" * 65)])
    assert _events(store) == 0
