"""The publisher's mark (the stream sequence of the newest event JetStream acknowledged):
streams that lost messages with nothing left in them to compare with, a stream made again
under a running publisher, and an emptied stream whose predecessor the origin compacted away
(real nats-server -js on loopback, tests/nats_support.py)."""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import eventpak as ep
import eventpak.nats
import pytest
from eventpak.nats._mark import event_before_last, mark_path
from nats.js.api import StreamConfig
from nats_support import (  # noqa: F401 (the nats_server fixture)
    NatsServer,
    jsm_call,
    nats_server_fixture,
    stream_messages,
)
from test_nats_publisher import assert_stream_is, wait_until
from test_nats_publisher_stream import append, checkpoint

ALL = ep.Region.all()


def publishing(store: ep.Store, urls: list[str], n: int) -> ep.nats.Publisher:
    """A publisher of ``store``, once it published ``n`` events appended now."""
    pub = ep.nats.Publisher(store, ALL, servers=urls, ack_timeout=1.0)
    append(store, n)
    head = store.head()
    wait_until(lambda: pub.position == head)
    return pub


def purge(urls: list[str]) -> None:
    jsm_call(urls, lambda jsm: jsm.purge_stream("EVENTS"))


def held(urls: list[str]) -> list[int]:
    return [int(m.headers["Eventpak-global_sequence"]) for m in stream_messages(urls, "EVENTS")]


def emptied_then_rolled_back(
    nats_server: NatsServer,
    tmp_path: Path,
    store: ep.Store,
    restart_publisher: bool,
    published: Callable[[], object] = lambda: None,
) -> ep.nats.Publisher:
    """Ten events published (then ``published()`` runs) and purged; the server's store
    copied; ten more published and acknowledged; the server's store put back to the copy (as
    a power loss before its fsync would): the stream is empty again, at the sequence it had
    before the ten. Returns the publisher (a new one when ``restart_publisher``: it knows of
    the ten from its saved mark)."""
    store_dir, snapshot = nats_server.node.store_dir, tmp_path / "snapshot"
    pub = ep.nats.Publisher(store, ALL, servers=nats_server.urls, stream="EVENTS", ack_timeout=1.0)
    append(store, 10)
    wait_until(lambda: pub.position == 9)
    published()
    purge(nats_server.urls)
    nats_server.stop()
    shutil.copytree(store_dir, snapshot)
    nats_server.start()
    append(store, 10)
    wait_until(lambda: pub.position == 19)
    assert held(nats_server.urls) == list(range(10, 20))
    if restart_publisher:
        pub.stop_and_join()
    nats_server.kill()
    shutil.rmtree(store_dir)
    shutil.copytree(snapshot, store_dir)
    nats_server.start()
    assert held(nats_server.urls) == []
    if restart_publisher:
        pub = ep.nats.Publisher(store, ALL, servers=nats_server.urls, stream="EVENTS", ack_timeout=1.0)
    return pub


@pytest.mark.parametrize("restart_publisher", [False, True], ids=["running", "restarted"])
def test_an_emptied_stream_that_lost_acknowledged_messages_gets_them_again(
    nats_server: NatsServer, tmp_path: Path, restart_publisher: bool
) -> None:
    # Nothing is left in the stream to skip by: its last sequence, below the mark, tells that
    # 10..19 were lost (not removed by a purge), so they are sent again before 20.
    with ep.Store.open(tmp_path / "origin") as store:
        pub = emptied_then_rolled_back(nats_server, tmp_path, store, restart_publisher)
        append(store, 1)
        wait_until(lambda: pub.position == 20)
        pub.stop_and_join()
        assert_stream_is(nats_server.urls, "EVENTS", store.query(ALL)[10:])
        # The first one sent again names event 9 for the replicas: the server has no last
        # message to check it against.
        first = stream_messages(nats_server.urls, "EVENTS")[0]
        assert first.headers["Eventpak-follows"] == str(store.query(ALL)[9].event_id)
        assert "Nats-Expected-Last-Msg-Id" not in first.headers


def test_a_replica_at_the_purge_goes_on_through_the_events_sent_again(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    replicas: list[ep.nats.Replica] = []

    def replicate_ten() -> None:  # a replica that read 0..9, stopped before the rest
        replicas.append(ep.nats.Replica(tmp_path / "replica", servers=nats_server.urls, durable="r1"))
        assert replicas[0].wait_for(9, timeout=30)
        replicas[0].stop_and_join()

    with ep.Store.open(tmp_path / "origin") as store:
        pub = emptied_then_rolled_back(nats_server, tmp_path, store, True, replicate_ten)
        append(store, 1)
        replica = ep.nats.Replica(tmp_path / "replica", servers=nats_server.urls, durable="r1")
        try:
            assert replica.wait_for(20, timeout=30) and replica.error is None
            assert [e.event_id for e in replica.store.query(ALL)] == [e.event_id for e in store.query(ALL)]
        finally:
            replica.stop_and_join()
            pub.stop_and_join()


def recreate_stream(urls: list[str]) -> None:
    async def again(jsm: object) -> None:
        await jsm.delete_stream("EVENTS")  # type: ignore[attr-defined]
        await jsm.add_stream(StreamConfig(name="EVENTS", subjects=["EVENTS.events"]))  # type: ignore[attr-defined]

    jsm_call(urls, again)


def test_a_stream_made_again_under_a_running_publisher_gets_the_region_from_the_start(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    # The server answers the next message's expected last id with "wrong last msg ID: ", as a
    # server that forgot its last id would; the stream is new (last sequence 0), so the region
    # goes from its first event, naming no predecessor.
    with ep.Store.open(tmp_path / "origin") as store:
        pub = publishing(store, nats_server.urls, 10)
        recreate_stream(nats_server.urls)
        append(store, 1)
        wait_until(lambda: pub.position == 10)
        pub.stop_and_join()
        assert_stream_is(nats_server.urls, "EVENTS", store.query(ALL))
        assert "Eventpak-follows" not in stream_messages(nats_server.urls, "EVENTS")[0].headers
    fresh = ep.nats.Replica(tmp_path / "fresh", servers=nats_server.urls, durable="fresh")
    try:
        assert fresh.wait_for(10, timeout=30) and fresh.error is None
    finally:
        fresh.stop_and_join()


def test_an_emptied_stream_goes_on_from_the_mark_when_compaction_removed_that_event(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    # The last published event (a "debug" one) is compacted away before the purge: the
    # checkpoint cannot name it any more, the mark still does, and the caught-up replica
    # takes what follows.
    urls = nats_server.urls
    with ep.Store.open(tmp_path / "origin", segment_max_bytes=64 * 1024) as store:
        for i in range(2000):
            store.append((f"sensor:{i % 10}", "plant"), "debug" if i % 2 else "reading", {"pad": "x" * 20})
        pub = ep.nats.Publisher(store, ALL, servers=urls, stream="EVENTS", ack_timeout=1.0)
        replica = ep.nats.Replica(tmp_path / "replica", servers=urls, durable="r1")
        try:
            assert replica.wait_for(1999, timeout=60)
            wait_until(lambda: pub.position == 1999)
            pub.stop_and_join()
            for i in range(300):
                store.append((f"sensor:{i % 10}", "plant"), "reading", {"pad": "z" * 20})
            store.compact(ep.Retention(predicate=lambda e: e.kind == "debug" and e.global_sequence <= 1999))
            with pytest.raises(ep.EventNotFound):
                store.get(replica.store.query(ALL)[-1].event_id)
            purge(urls)
            pub = ep.nats.Publisher(store, ALL, servers=urls, stream="EVENTS", ack_timeout=1.0)
            head = store.head()
            assert head is not None
            assert replica.wait_for(head, timeout=60) and replica.error is None
            assert held(urls) == [e.global_sequence for e in store.query(ALL, after=1999)]
        finally:
            replica.stop_and_join()
            pub.stop_and_join()


def test_a_damaged_mark_is_ignored_and_replaced(
    nats_server: NatsServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with ep.Store.open(tmp_path / "origin") as store:
        pub = ep.nats.Publisher(store, ALL, servers=nats_server.urls, stream="EVENTS")
        append(store, 5)
        wait_until(lambda: pub.position == 4)
        pub.stop_and_join()
        path = mark_path(store, "nats-out")
        saved = json.loads(path.read_text())
        assert saved == {
            "stream": "EVENTS", "stream_seq": 5, "global_sequence": 4,
            "event_id": str(store.query(ALL)[4].event_id),
        }  # fmt: skip
        for damaged in (
            '{"stream": "EVENTS", "stream_se',
            json.dumps({**saved, "global_sequence": 2**64}),
            json.dumps({**saved, "stream_seq": 0}),
            json.dumps({**saved, "event_id": "not an id"}),
        ):
            path.write_text(damaged)
            caplog.clear()
            with caplog.at_level(logging.WARNING, logger="eventpak.nats"):
                pub = ep.nats.Publisher(store, ALL, servers=nats_server.urls, stream="EVENTS")
            assert "mark is unreadable" in caplog.text
            pub.stop_and_join()
        pub = ep.nats.Publisher(store, ALL, servers=nats_server.urls, stream="EVENTS")
        append(store, 1)
        wait_until(lambda: pub.position == 5)
        pub.stop_and_join()
        assert json.loads(path.read_text())["stream_seq"] == 6
        assert_stream_is(nats_server.urls, "EVENTS", store.query(ALL))


def entity_is(name: str) -> Callable[[int], str]:
    return lambda i: name if i % 3 == 0 else "other"


def test_the_event_a_count_before_another_is_found_in_a_sparse_region(tmp_path: Path) -> None:
    with ep.Store.open(tmp_path / "store") as store:
        for i in range(1000):
            store.append((entity_is("a:1")(i), "s"), "k", {})
        region = ep.Region.entity("a:1")
        ours = [e.global_sequence for e in store.query(region)]  # 0, 3, 6, ... 999
        assert ours[-1] == 999
        for count in (0, 1, 5, 100, len(ours) - 1):
            at = event_before_last(store, region, 999, count)
            assert at is not None and at[0] == ours[-1 - count]
            assert at[1] == str(store.query(region, after=at[0] - 1 if at[0] else None, limit=1)[0].event_id)
        assert event_before_last(store, region, 999, len(ours)) is None
        assert event_before_last(store, region, 600, 0) == (600, str(store.query(ALL)[600].event_id))


@pytest.mark.parametrize(
    ("checkpoint_id", "error"),
    [("", ep.InvalidCheckpointId), ("../escape", ep.InvalidCheckpointId), (5, TypeError)],
)
def test_a_bad_checkpoint_id_is_refused_before_the_stream_is_made(
    nats_server: NatsServer, tmp_path: Path, checkpoint_id: Any, error: type[Exception]
) -> None:
    # It names the publisher's checkpoint and its mark file: nothing is read, made or sent.
    with ep.Store.open(tmp_path / "origin") as store:
        with pytest.raises(error):
            ep.nats.Publisher(store, ALL, servers=nats_server.urls, checkpoint_id=checkpoint_id)
        assert store.checkpoints() == []
        assert not (tmp_path / "origin" / "nats").exists()
    assert jsm_call(nats_server.urls, lambda jsm: jsm.streams_info()) == []


def test_a_mark_naming_an_event_the_store_does_not_hold_is_refused(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    # The origin came back without its newest events (restored from an older backup) while
    # its mark survived, and the stream was emptied meanwhile: the mark cannot stand for the
    # stream's end, or new events at the mark's sequences would be counted sent unsent.
    urls = nats_server.urls
    with ep.Store.open(tmp_path / "origin") as store:
        pub = publishing(store, urls, 10)
        store.backup(tmp_path / "older")
        append(store, 10)
        wait_until(lambda: pub.position == 19)
        pub.stop_and_join()
        shutil.copy(mark_path(store, "nats-out"), tmp_path / "older" / "nats" / "nats-out.mark")
    purge(urls)
    with ep.Store.open(tmp_path / "older") as older:
        append(older, 15)
        with pytest.raises(ep.ReplicationRefused, match="at global sequence 19, and this store holds event"):
            ep.nats.Publisher(older, ALL, servers=urls)
        assert checkpoint(older) == 9
    assert held(urls) == []


def test_a_read_only_store_is_refused_before_the_stream_is_made(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    with ep.Store.open(tmp_path / "origin") as store:
        append(store, 1)
    with ep.Store.open(tmp_path / "origin", read_only=True) as read_only, pytest.raises(ep.ReadOnlyStore):
        ep.nats.Publisher(read_only, ALL, servers=nats_server.urls)
    assert jsm_call(nats_server.urls, lambda jsm: jsm.streams_info()) == []


def test_a_stream_made_again_after_the_publisher_read_it_empty_gets_the_region(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    # The publisher reads the purged stream when it starts, and its next event is to name its
    # predecessor; the stream is made again before that event comes. The event carries the
    # last sequence the publisher read, so the new stream refuses it and is read again.
    urls = nats_server.urls
    with ep.Store.open(tmp_path / "origin") as store:
        publishing(store, urls, 10).stop_and_join()
        purge(urls)
        pub = ep.nats.Publisher(store, ALL, servers=urls, ack_timeout=1.0)
        recreate_stream(urls)
        append(store, 1)
        wait_until(lambda: pub.position == 10)
        pub.stop_and_join()
        assert_stream_is(urls, "EVENTS", store.query(ALL))
        first = stream_messages(urls, "EVENTS")[0].headers
        assert "Eventpak-follows" not in first and first["Nats-Expected-Last-Sequence"] == "0"
