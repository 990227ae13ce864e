"""The publisher against streams that do not hold what it sent last: a server store rolled
back, an origin restored from a backup, another store's stream, a stream emptied by its limits
(real nats-server -js on loopback, tests/nats_support.py)."""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import eventpak as ep
import eventpak.nats
import pytest
from eventpak.nats._wire import decode
from nats.js.api import StreamConfig
from nats_support import (  # noqa: F401 (the nats_server fixture)
    NatsServer,
    jsm_call,
    nats_server_fixture,
    stream_messages,
)
from test_nats_publisher import assert_stream_is, wait_until

ALL = ep.Region.all()


def append(store: ep.Store, n: int) -> None:
    for _ in range(n):
        store.append((f"order:{store.next_sequence('order:0') % 3}", "shop"), "placed", {})


@contextlib.contextmanager
def caught_up_then(
    nats_server: NatsServer, tmp_path: Path, between: Callable[[list[str]], object]
) -> Iterator[tuple[ep.Store, ep.nats.Publisher, ep.nats.Replica]]:
    """An origin of 10 events, published and replicated; then its publisher stops,
    ``between(urls)`` runs, the server restarts, one more event is appended and a new
    publisher starts: yields the origin, that publisher and the replica (stopped after)."""
    urls = nats_server.urls
    with ep.Store.open(tmp_path / "origin") as origin:
        append(origin, 10)
        pub = ep.nats.Publisher(origin, ALL, servers=urls, stream="EVENTS")
        replica = ep.nats.Replica(tmp_path / "replica", servers=urls, durable="r1")
        try:
            assert replica.wait_for(9, timeout=30)
            pub.stop_and_join()
            between(urls)
            nats_server.stop()
            nats_server.start()
            append(origin, 1)
            yield origin, ep.nats.Publisher(origin, ALL, servers=urls, stream="EVENTS"), replica
        finally:
            replica.stop_and_join()


def test_a_stream_that_lost_acknowledged_messages_gets_them_again(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    # The server's store goes back to a copy taken at event 19 (restored, or a power loss
    # before its fsync) after the publisher checkpointed event 29: the stream is the truth, so
    # 20..29 are sent again before 30, not 30 chained onto 19.
    store_dir, snapshot = nats_server.node.store_dir, tmp_path / "snapshot"
    store = ep.Store.open(tmp_path / "origin")
    try:
        pub = ep.nats.Publisher(store, ALL, servers=nats_server.urls, stream="EVENTS", ack_timeout=1.0)
        append(store, 20)
        wait_until(lambda: pub.position == 19)
        nats_server.stop()
        shutil.copytree(store_dir, snapshot)
        nats_server.start()
        append(store, 10)
        wait_until(lambda: pub.position == 29)
        nats_server.kill()
        shutil.rmtree(store_dir)
        shutil.copytree(snapshot, store_dir)
        nats_server.start()
        append(store, 10)
        wait_until(lambda: pub.position == 39)
        pub.stop_and_join()
        assert_stream_is(nats_server.urls, "EVENTS", store.query(ALL))
    finally:
        store.close()


def checkpoint(store: ep.Store) -> int | None:
    saved = ep.Cursor.load_checkpoint(store.path, "nats-out")
    return None if saved is None else saved.position


def published_twenty_then_restored(nats_server: NatsServer, tmp_path: Path) -> tuple[list[ep.Event], Path]:
    """An origin that published twenty events after a backup taken at its tenth; the events
    the stream holds, and the backup (the restored origin's data dir)."""
    with ep.Store.open(tmp_path / "origin") as origin:
        pub = ep.nats.Publisher(origin, ALL, servers=nats_server.urls, stream="EVENTS")
        append(origin, 10)
        wait_until(lambda: pub.position == 9)
        origin.backup(tmp_path / "restored")
        append(origin, 10)
        wait_until(lambda: pub.position == 19)
        pub.stop_and_join()
        return origin.query(ALL), tmp_path / "restored"


def test_an_origin_restored_from_an_older_backup_is_refused_at_once(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    # The restored store's new events reuse sequences 10..24, which the stream holds as other
    # events: neither skipped as published nor chained onto events the store does not have.
    published, restored = published_twenty_then_restored(nats_server, tmp_path)
    with ep.Store.open(restored) as store:
        append(store, 15)
        with pytest.raises(ep.ReplicationRefused, match="publisher stops") as refused:
            ep.nats.Publisher(store, ALL, servers=nats_server.urls, stream="EVENTS")
        theirs, ours = str(published[19].event_id), str(store.query(ALL)[19].event_id)
        assert f"is event {theirs} at global sequence 19, and this store holds event {ours} there" in str(
            refused.value
        )
        assert checkpoint(store) == 9
    assert_stream_is(nats_server.urls, "EVENTS", published)


def test_an_origin_restored_from_an_older_backup_stops_its_publisher_once_connected(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    published, restored = published_twenty_then_restored(nats_server, tmp_path)
    nats_server.stop()
    with ep.Store.open(restored) as store:
        append(store, 5)  # through 14, short of the stream's 19
        pub = ep.nats.Publisher(store, ALL, servers=nats_server.urls, stream="EVENTS", ack_timeout=0.5)
        assert pub.is_alive() and pub.error is None
        nats_server.start()
        wait_until(lambda: not pub.is_alive())
        assert isinstance(pub.error, ep.ReplicationRefused)
        assert "global sequence 19, and this store ends at global sequence 14" in str(pub.error)
        with pytest.raises(ep.ReplicationRefused) as refused:
            pub.stop_and_join()
        assert refused.value is pub.error
        assert pub.published == 0 and checkpoint(store) == 9
    assert_stream_is(nats_server.urls, "EVENTS", published)


def test_a_stream_ending_at_an_event_compaction_removed_is_still_this_stores(tmp_path: Path) -> None:
    # Compacting events already published is allowed: a stream whose last message is one of
    # them has nothing to compare it with, and is not refused; a visible event that differs is.
    from eventpak.nats._tail import check_ours

    with ep.Store.open(tmp_path / "origin", segment_max_bytes=64 * 1024) as store:
        for i in range(2000):
            store.append((f"sensor:{i % 10}", "plant"), "debug" if i % 2 else "reading", {"pad": "x" * 20})
        events = store.query(ALL)
        store.compact(ep.Retention(predicate=lambda e: e.kind == "debug"))
        removed = next(e for e in events if e.kind == "debug")
        with pytest.raises(ep.EventNotFound):
            store.get(removed.event_id)
        check_ours(store, "EVENTS", removed.global_sequence, str(removed.event_id))
        check_ours(store, "EVENTS", events[-1].global_sequence, str(events[-1].event_id))
        with pytest.raises(ep.ReplicationRefused, match="this store holds event"):
            check_ours(store, "EVENTS", events[0].global_sequence, str(removed.event_id))


def test_a_second_store_publishing_to_a_stream_is_refused(nats_server: NatsServer, tmp_path: Path) -> None:
    with ep.Store.open(tmp_path / "a") as a, ep.Store.open(tmp_path / "b") as b:
        append(a, 20)
        append(b, 25)  # holds sequences past the stream's last: only its store id tells
        pub = ep.nats.Publisher(a, ALL, servers=nats_server.urls, stream="EVENTS")
        wait_until(lambda: pub.position == 19)
        pub.stop_and_join()
        with pytest.raises(ep.ReplicationRefused) as refused:
            ep.nats.Publisher(b, ALL, servers=nats_server.urls, stream="EVENTS")
        assert f"holds the events of store {a.store_id.hex()}, not of this store {b.store_id.hex()}" in str(
            refused.value
        )
        assert checkpoint(b) is None
        assert_stream_is(nats_server.urls, "EVENTS", a.query(ALL))


def test_a_stream_its_limits_emptied_goes_on_for_a_caught_up_replica_only(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    # Every message gone (max_age, max_msgs or a purge) and the server restarted, so it knows
    # no last message id: the next event names its predecessor for the replicas, and what the
    # stream removed is not sent again.
    urls = nats_server.urls
    purge = lambda urls: jsm_call(urls, lambda jsm: jsm.purge_stream("EVENTS"))  # noqa: E731
    with caught_up_then(nats_server, tmp_path, purge) as (origin, pub, replica):
        assert replica.wait_for(10, timeout=30) and replica.error is None
        assert [e.event_id for e in replica.store.query(ALL)] == [e.event_id for e in origin.query(ALL)]
        wait_until(lambda: pub.position == 10)
        pub.stop_and_join()
        before, last = origin.query(ALL)[-2:]
        assert [m.headers["Nats-Msg-Id"] for m in stream_messages(urls, "EVENTS")] == [str(last.event_id)]
        raw = jsm_call(urls, lambda jsm: jsm.get_msg("EVENTS", 11))  # as a catch-up reads it
        assert decode(raw.headers, raw.data).follows == str(before.event_id)
    # A replica that lacks event 9 still meets a gap.
    fresh = ep.nats.Replica(tmp_path / "fresh", servers=urls, durable="r2")
    with pytest.raises(ep.ReplicationRefused, match="a message is missing"):
        fresh.wait_for(10, timeout=30)
    with pytest.raises(ep.ReplicationRefused):
        fresh.stop_and_join()


def test_a_deleted_last_message_is_sent_again_and_the_stream_goes_on(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    # The stream's last message (event 9) deleted by an operator, and the server restarted:
    # the publisher reads the newest message left (event 8), sends event 9 again naming it,
    # and goes on; a replica that held event 9 takes what follows.
    urls = nats_server.urls
    delete_last = lambda urls: jsm_call(urls, lambda jsm: jsm.delete_msg("EVENTS", 10))  # noqa: E731
    with caught_up_then(nats_server, tmp_path, delete_last) as (origin, pub, replica):
        wait_until(lambda: pub.position == 10)
        pub.stop_and_join()
        events = origin.query(ALL)
        assert_stream_is(urls, "EVENTS", events)
        raw = jsm_call(urls, lambda jsm: jsm.get_msg("EVENTS", 11))
        assert decode(raw.headers, raw.data).follows == str(events[8].event_id)
        assert replica.wait_for(10, timeout=30) and replica.error is None
        assert [e.event_id for e in replica.store.query(ALL)] == [e.event_id for e in events]


def test_a_stream_that_does_not_capture_the_publishers_subject_is_refused(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    urls = nats_server.urls
    jsm_call(urls, lambda jsm: jsm.add_stream(StreamConfig(name="ORDERS", subjects=["orders.>"])))
    with ep.Store.open(tmp_path / "origin") as store:
        append(store, 3)
        with pytest.raises(ep.InvalidConfig, match=r"stream ORDERS does not capture subject ORDERS\.events"):
            ep.nats.Publisher(store, ALL, servers=urls, stream="ORDERS")
        assert checkpoint(store) is None
        pub = ep.nats.Publisher(store, ALL, servers=urls, stream="ORDERS", subject="orders.placed")
        wait_until(lambda: pub.position == 2)
        pub.stop_and_join()
        assert_stream_is(urls, "ORDERS", store.query(ALL))


def test_a_server_restarted_after_its_duplicate_window_takes_the_next_event(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    # The server keeps the stream's last message id in memory and, restarted, learns it again
    # only from messages within its duplicate window: past it, it refuses every
    # Nats-Expected-Last-Msg-Id. The publisher then names the predecessor for the replicas.
    urls = nats_server.urls
    cfg = StreamConfig(name="EVENTS", subjects=["EVENTS.events"], duplicate_window=0.2)
    jsm_call(urls, lambda jsm: jsm.add_stream(cfg))
    past_window = lambda urls: time.sleep(0.5)  # noqa: E731 (nothing to wait on but the time)
    with caught_up_then(nats_server, tmp_path, past_window) as (origin, pub, replica):
        wait_until(lambda: pub.position == 10)
        pub.stop_and_join()
        assert_stream_is(urls, "EVENTS", origin.query(ALL))
        assert replica.wait_for(10, timeout=30) and replica.error is None


def test_a_publisher_of_another_region_of_the_store_is_refused(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    # Each would skip its own events up to the other's last message as already sent.
    urls = nats_server.urls
    with ep.Store.open(tmp_path / "origin") as store:
        orders = ep.nats.Publisher(store, ep.Region.entity("order"), servers=urls, checkpoint_id="orders")
        for i in range(5):
            store.append((f"order:{i}", "s"), "placed", {})
            store.append((f"user:{i}", "s"), "joined", {})
        wait_until(lambda: orders.position == 8)
        orders.stop_and_join()
        with pytest.raises(ep.ReplicationRefused, match="not in this publisher's region"):
            ep.nats.Publisher(store, ep.Region.entity("user"), servers=urls, checkpoint_id="users")
        assert checkpoint(store) is None and ep.Cursor.load_checkpoint(store.path, "users") is None
        assert_stream_is(urls, "EVENTS", store.query(ep.Region.entity("order")))


def test_two_publishers_of_one_store_sending_at_once_leave_nothing_counted_unsent(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    urls = nats_server.urls
    regions = {"orders": ep.Region.entity("order"), "users": ep.Region.entity("user")}
    with ep.Store.open(tmp_path / "origin") as store:
        pubs = {
            name: ep.nats.Publisher(store, r, servers=urls, checkpoint_id=name) for name, r in regions.items()
        }
        try:
            for i in range(20):
                store.append((f"order:{i}", "s"), "placed", {})
                store.append((f"user:{i}", "s"), "joined", {})
            # Each message names its predecessor: the second one to send after the other
            # meets a stream that does not follow it, reads its last message, and stops.
            wait_until(lambda: any(p.error is not None for p in pubs.values()))
        finally:
            for pub in pubs.values():
                with contextlib.suppress(ep.ReplicationRefused):
                    pub.stop_and_join()
        held = {m.headers["Eventpak-event_id"] for m in stream_messages(urls, "EVENTS")}
        for name, region in regions.items():
            saved = ep.Cursor.load_checkpoint(store.path, name)
            through = -1 if saved is None or not saved.started else saved.position
            sent = [str(e.event_id) for e in store.query(region) if e.global_sequence <= through]
            assert set(sent) <= held, f"{name} checkpointed events the stream does not hold"
        assert any(isinstance(p.error, ep.ReplicationRefused) for p in pubs.values())
