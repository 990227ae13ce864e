"""The replica against streams whose messages were removed (limits, purges) and origins whose
events were (compaction): real nats-server -js on loopback, tests/nats_support.py."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import eventpak as ep
import eventpak.nats
import nats
import pytest
from nats.js.api import StreamConfig
from nats.js.manager import JetStreamManager
from nats_support import (  # noqa: F401 (the nats_server fixture)
    NatsServer,
    nats_server_fixture,
)
from test_nats_publisher import wait_until

ALL = ep.Region.all()


def test_a_replica_reads_past_removed_messages_in_one_request(
    nats_server: NatsServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 2,000 messages purged before the origin's events, then the oldest 50 of those trimmed
    # away: the new replica reads the stream itself from its start to find the gap, asking for
    # the next message there is, not for each of the 2,050 sequences gone.
    urls = nats_server.urls

    async def fill() -> None:
        nc = await nats.connect(servers=urls)
        try:
            jsm = nc.jsm()
            await jsm.add_stream(StreamConfig(name="EVENTS", subjects=["EVENTS.events"]))
            for _ in range(2000):
                await nc.publish("EVENTS.events", b"filler")
            await nc.flush()
            deadline = time.monotonic() + 30
            while (await jsm.stream_info("EVENTS")).state.last_seq < 2000:  # stored, then purged
                assert time.monotonic() < deadline
                await nc.flush()
            await jsm.purge_stream("EVENTS")
        finally:
            await nc.close()

    asyncio.run(fill())
    gets: list[int] = []
    get_msg = JetStreamManager.get_msg

    async def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
        gets.append(1)
        return await get_msg(self, *args, **kwargs)

    with ep.Store.open(tmp_path / "origin") as origin:
        for i in range(100):
            origin.append((f"e{i % 10}", "s"), "k", {"i": i})
        pub = ep.nats.Publisher(origin, ALL, servers=urls, stream="EVENTS")
        wait_until(lambda: pub.position == 99)
        pub.stop_and_join()

        async def trim() -> None:
            nc = await nats.connect(servers=urls)
            try:
                await nc.jsm().purge_stream("EVENTS", keep=50)
            finally:
                await nc.close()

        asyncio.run(trim())
        monkeypatch.setattr(JetStreamManager, "get_msg", counted)
        replica = ep.nats.Replica(tmp_path / "replica", servers=urls)
        with pytest.raises(ep.ReplicationRefused, match="a message is missing"):
            replica.wait_for(99, timeout=60)
        with pytest.raises(ep.ReplicationRefused):
            replica.stop_and_join()
        assert len(gets) < 10


def test_a_replica_of_an_origin_compacted_before_publishing_says_so(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    # Replication does not carry compaction: the first kept reading of a sensor jumps its
    # clock, and the refusal names compaction beside a lost message and a split entity.
    with ep.Store.open(tmp_path / "origin", segment_max_bytes=64 * 1024) as origin:
        for i in range(2000):
            origin.append((f"sensor:{i % 10}", "plant"), "reading", {"i": i, "celsius": 20 + i % 7})
        origin.compact(ep.Retention(kinds=["reading"], keep_last_per_entity=5))
        first = origin.query(ALL)[0]
        assert first.entity_sequence > 0
        pub = ep.nats.Publisher(origin, ALL, servers=nats_server.urls)
        replica = ep.nats.Replica(tmp_path / "replica", servers=nats_server.urls)
        with pytest.raises(ep.ReplicationRefused, match="compact only events published and replicated") as no:
            replica.wait_for(first.global_sequence, timeout=30)
        assert no.value.global_sequence == first.global_sequence
        assert f"the event has clock {first.entity_sequence}" in str(no.value)
        with pytest.raises(ep.ReplicationRefused):
            replica.stop_and_join()
        pub.stop_and_join()


def test_a_replica_whose_consumer_was_deleted_makes_it_again_and_goes_on(
    nats_server: NatsServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A fetch from a deleted consumer only times out, as on a quiet stream: the replica asks
    # for its consumer now and then, and makes it again (reading from its own head).
    from nats_support import jsm_call

    urls = nats_server.urls
    with ep.Store.open(tmp_path / "origin") as origin:
        pub = ep.nats.Publisher(origin, ALL, servers=urls)
        replica = ep.nats.Replica(tmp_path / "replica", servers=urls, durable="r1")
        try:
            for i in range(10):
                origin.append((f"order:{i % 3}", "shop"), "placed", {})
            assert replica.wait_for(9, timeout=30)
            jsm_call(urls, lambda jsm: jsm.delete_consumer("EVENTS", "r1"))
            for i in range(5):
                origin.append((f"order:{i % 3}", "shop"), "placed", {})
            assert replica.wait_for(14, timeout=60) and replica.error is None
            assert [e.event_id for e in replica.store.query(ALL)] == [e.event_id for e in origin.query(ALL)]
            made_again = jsm_call(urls, lambda jsm: jsm.consumer_info("EVENTS", "r1"))
            assert made_again.ack_floor.stream_seq == 15
            # It starts after the ten messages the replica held, found by bisecting the
            # stream, instead of delivering them all again as no-ops.
            assert made_again.config.opt_start_seq == 11
            assert "consumer r1 of stream EVENTS is gone" in caplog.text
        finally:
            replica.stop_and_join()
            pub.stop_and_join()


def test_a_replica_whose_consumer_acks_ahead_of_its_deliveries_makes_it_again(
    nats_server: NatsServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # The server's store is put back to an older copy while the replica applies a batch; the
    # batch's ack reaches the restored server (nats-py holds it through the reconnect) and
    # moves the consumer's ack floor past what it delivers: it then ignores every later ack
    # and, at max_ack_pending, delivers nothing more, for good.
    import shutil
    import threading

    from eventpak.nats import _follow

    applying, restored = threading.Event(), threading.Event()
    hold = threading.Event()
    plain_ack = _follow.Follower._ack

    async def ack_after_the_restore(self: Any, run: Any) -> None:
        if hold.is_set() and any(msg is not None for _, msg in run):
            hold.clear()
            applying.set()
            await asyncio.to_thread(restored.wait, 60)
        await plain_ack(self, run)

    monkeypatch.setattr(_follow.Follower, "_ack", ack_after_the_restore)
    urls, store_dir, copy = nats_server.urls, nats_server.node.store_dir, tmp_path / "copy"
    with ep.Store.open(tmp_path / "origin") as origin:
        pub = ep.nats.Publisher(origin, ALL, servers=urls)
        replica = ep.nats.Replica(tmp_path / "replica", servers=urls, durable="r1")
        try:
            origin.append_batch([((f"order:{i % 7}", "s"), "placed", {}) for i in range(100)])
            assert replica.wait_for(99, timeout=30)
            nats_server.stop()
            shutil.copytree(store_dir, copy)  # the older copy: consumer at 100
            nats_server.start()
            origin.append_batch([((f"order:{i % 7}", "s"), "placed", {}) for i in range(3000)])
            assert replica.wait_for(3099, timeout=60)
            hold.set()
            origin.append_batch([((f"order:{i % 7}", "s"), "placed", {}) for i in range(300)])
            assert applying.wait(30)
            nats_server.kill()
            shutil.rmtree(store_dir)
            shutil.copytree(copy, store_dir)
            nats_server.start()
            restored.set()
            origin.append_batch([((f"order:{i % 7}", "s"), "placed", {}) for i in range(100)])
            head = origin.head()
            assert head is not None
            assert replica.wait_for(head, timeout=90) and replica.error is None
            assert [e.event_id for e in replica.store.query(ALL)] == [e.event_id for e in origin.query(ALL)]
            assert "delivers nothing while" in caplog.text
        finally:
            restored.set()
            replica.stop_and_join()
            pub.stop_and_join()
