"""The replica side of the engine through the binding, without a server: a data dir made a
replica applies another store's events verbatim (``_apply_replicated``), refuses whatever
does not continue its log with ``ep.ReplicationRefused``, takes no ordinary writes
(``ep.ReadOnlyStore``) and refuses malformed input with a typed error, writing nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import eventpak as ep
import pytest


def as_tuple(e: ep.Event) -> tuple[Any, ...]:
    """What ``_apply_replicated`` takes for ``e`` (the fields a replica keeps)."""
    cause = e.causation_id.bytes if e.causation_id is not None else None
    return (
        e.event_id.bytes, e.global_sequence, e.entity, e.scope, e.kind, e.entity_sequence,
        e.timestamp_us, cause, e.correlation_id.bytes, e.prev_hash, e.hash,
        e.stored_payload_version, e.payload_bytes, list(e.tags),
    )  # fmt: skip


@pytest.fixture(name="origin")
def origin_fixture(tmp_path: Path) -> ep.Store:
    store = ep.Store.open(tmp_path / "origin")
    first = None
    for i in range(30):
        receipt = store.append(
            ep.Coordinate(f"acct:{i % 3}", "bank"), "deposit", {"n": i},
            tags=["vip"] if i % 4 == 0 else None, caused_by=first,
        )  # fmt: skip
        first = first or receipt.event_id
    return store


def replica_of(path: Path) -> ep.Store:
    store = ep.Store.open(path)
    store._native._become_replica("EVENTS")
    return store


def test_applied_events_read_back_with_the_origins_fields_and_verify(
    origin: ep.Store, tmp_path: Path
) -> None:
    wanted = [e for e in origin.query(ep.Region.all()) if e.entity != "acct:1"]
    replica = replica_of(tmp_path / "replica")
    apply = replica._native._apply_replicated
    assert apply(origin.store_id, [as_tuple(e) for e in wanted]) == (len(wanted), 0)
    assert apply(origin.store_id, [as_tuple(e) for e in wanted[-3:]]) == (0, 3)
    assert replica._native._replica_origin() == ("EVENTS", origin.store_id)
    replica.close()
    with ep.Store.open(tmp_path / "replica") as reopened:
        assert [as_tuple(e) for e in reopened.query(ep.Region.all())] == [as_tuple(e) for e in wanted]
        region = ep.Region.entity("acct:2")
        assert [as_tuple(e) for e in reopened.query(region)] == [as_tuple(e) for e in origin.query(region)]
        assert reopened.head() == wanted[-1].global_sequence
        assert reopened.verify().ok
        assert reopened.get(wanted[4].event_id).global_sequence == wanted[4].global_sequence


def test_a_refused_event_stops_the_call_with_its_sequence_and_reason(
    origin: ep.Store, tmp_path: Path
) -> None:
    events = origin.query(ep.Region.all())
    replica = replica_of(tmp_path / "replica")
    forged = list(as_tuple(events[3]))
    forged[12] = b"\xa6forged"
    with pytest.raises(ep.ReplicationRefused) as refused:
        replica._native._apply_replicated(origin.store_id, [*map(as_tuple, events[:3]), tuple(forged)])
    assert refused.value.global_sequence == 3 and "hash" in refused.value.reason
    assert replica.head() == 2  # the events before the refused one are applied
    with pytest.raises(ep.ReplicationRefused) as other_origin:
        replica._native._apply_replicated(b"\x01" * 16, [as_tuple(events[3])])
    assert "store" in other_origin.value.reason and replica.head() == 2
    assert replica.verify().ok


def test_a_replica_refuses_ordinary_writes_in_every_open(origin: ep.Store, tmp_path: Path) -> None:
    replica_of(tmp_path / "replica").close()
    with ep.Store.open(tmp_path / "replica") as store:
        with pytest.raises(ep.ReadOnlyStore) as refused:
            store.append(ep.Coordinate("a", "s"), "k", {})
        assert refused.value.reason is not None and "replica" in str(refused.value)
        with pytest.raises(ep.ReadOnlyStore):
            store.append_batch([(ep.Coordinate("a", "s"), "k", {})])
        with pytest.raises(ep.ReadOnlyStore), store.fence():
            pass
        with pytest.raises(ep.ReplicationRefused):
            store._native._become_replica("OTHER")
        assert store.head() is None
    with pytest.raises(ep.InvalidConfig):
        origin._native._become_replica("EVENTS")


@pytest.mark.parametrize(
    ("field", "value"),
    [(0, b"short"), (9, "not bytes"), (1, -1), (7, b"\x00" * 3)],
    ids=["event_id", "prev_hash", "global_sequence", "causation_id"],
)
def test_malformed_input_is_a_typed_error_and_writes_nothing(
    origin: ep.Store, tmp_path: Path, field: int, value: Any
) -> None:
    replica = replica_of(tmp_path / "replica")
    good = [as_tuple(e) for e in origin.query(ep.Region.all(), limit=3)]
    bad = list(good[2])
    bad[field] = value
    with pytest.raises((ep.InvalidArgument, TypeError)) as refused:
        replica._native._apply_replicated(origin.store_id, [*good[:2], tuple(bad)])
    assert not isinstance(refused.value, OverflowError)
    assert replica.head() is None  # conversion fails before anything is applied
    with pytest.raises(ep.InvalidArgument):
        replica._native._apply_replicated(origin.store_id, [good[0][:5]])
    with pytest.raises(ep.InvalidArgument):
        replica._native._apply_replicated(b"short", good)
    assert replica.head() is None and replica._native._replica_origin() == ("EVENTS", None)
