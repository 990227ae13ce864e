"""eventpak.nats.Replica against a real nats-server -js on loopback (tests/nats_support.py): an
origin store publishes a region with ep.nats.Publisher, a replica applies the stream to its own
read-only store, and both stores are compared field by field."""

from __future__ import annotations

import asyncio
import json
import os
import queue
import random
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import eventpak as ep
import eventpak.nats
import nats
import pytest
from eventpak.nats._wire import EXPECTED_LAST, MSG_ID, BadMessage, decode, event_headers
from nats_support import (  # noqa: F401 (the nats_server and nats_cluster fixtures)
    NatsCluster,
    NatsServer,
    free_port,
    jsm_call,
    nats_cluster_fixture,
    nats_server_fixture,
    stream_leader,
)

HERE = Path(__file__).parent
ALL = ep.Region.all()


def wait_until(cond: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        time.sleep(0.01)


def fields(e: ep.Event) -> tuple[Any, ...]:
    """Everything a replica must keep of an event, payload bytes as stored."""
    return (
        e.event_id, e.global_sequence, e.entity, e.scope, e.kind, e.entity_sequence, e.timestamp_us,
        e.causation_id, e.correlation_id, e.prev_hash, e.hash, e.stored_payload_version,
        e.payload_bytes, e.tags,
    )  # fmt: skip


def delivered(store: ep.Store, region: ep.Region) -> list[tuple[Any, ...]]:
    """What a cursor over ``region`` delivers from the start, as field tuples."""
    cursor = store.cursor(region)
    out: list[tuple[Any, ...]] = []
    while batch := cursor.poll_batch(1000):
        out += [fields(e) for e in batch]
    return out


def assert_same(origin: ep.Store, replica: ep.Store, region: ep.Region, *regions: ep.Region) -> None:
    """The replica holds exactly ``region``'s events of the origin, verbatim, and cursors over
    ``region`` and each narrower region deliver the same on both."""
    assert [fields(e) for e in replica.query(ALL)] == [fields(e) for e in origin.query(region)]
    for r in (region, *regions):
        want = delivered(origin, r)
        assert delivered(replica, r) == want and want
    report = replica.verify()
    assert report.ok, report.problems


def fill(store: ep.Store, n: int, start: int = 0) -> None:
    """Events on a few entities and scopes, some caused by an earlier one, tagged, versioned."""
    previous: ep.AppendReceipt | None = None
    for i in range(start, start + n):
        previous = store.append(
            (f"acct:{i % 5}", "in" if i % 5 < 3 else "out"),
            "deposited" if i % 2 else "opened",
            {"i": i, "pad": "x" * (i % 40)},
            caused_by=previous if i % 4 == 1 else None,
            tags=[f"t{i % 3}"] if i % 3 else None,
            payload_version=i % 3,
        )


def appender(store: ep.Store, stop: threading.Event) -> threading.Thread:
    def run() -> None:
        n = 0
        while not stop.is_set():
            store.append((f"e{n % 5}", "s"), "k", {"n": n})
            n += 1
            if n % 10 == 0:  # a few thousand events a second
                time.sleep(0.005)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def publish_raw(urls: list[str], headers: dict[str, str], payload: bytes) -> dict[str, Any]:
    """Publishes one message by hand onto the stream's subject; the server's answer."""

    async def send() -> dict[str, Any]:
        nc = await nats.connect(servers=urls)
        try:
            answer = await nc.request("EVENTS.events", payload, headers=headers, timeout=5)
            return dict(json.loads(answer.data))
        finally:
            await nc.close()

    return asyncio.run(send())


def test_every_event_arrives_verbatim(nats_server: NatsServer, tmp_path: Path) -> None:
    origin = ep.Store.open(tmp_path / "origin")
    try:
        fill(origin, 300)
        pub = ep.nats.Publisher(origin, ALL, servers=nats_server.urls, stream="EVENTS")
        replica = ep.nats.Replica(tmp_path / "replica", servers=nats_server.urls, durable="r1")
        fill(origin, 200, start=300)  # while the replica follows
        head = origin.head()
        assert head is not None
        assert replica.wait_for(head, timeout=30)
        assert replica.store.head() == head and replica.applied == 500
        narrower = [ep.Region.entity("acct:1", exact=True), ALL.with_tags(["t1"]), ep.Region.scope("out")]
        assert_same(origin, replica.store, ALL, *narrower)
        stored = replica.store.query(ALL)
        assert {e.causation_id is not None for e in stored} == {True, False}
        assert {e.stored_payload_version for e in stored} == {0, 1, 2}
        assert {e.tags for e in stored} == {(), ("t1",), ("t2",)}
        last = origin.query(ALL)[-1]
        assert fields(replica.store.get(last.event_id)) == fields(last)
        assert replica.store.get(last.event_id).payload == last.payload
        assert replica.error is None and replica.is_alive()
        replica.stop_and_join()
        assert not replica.is_alive() and replica.store.closed
        pub.stop_and_join()
    finally:
        origin.close()


def test_a_region_holding_whole_entities_keeps_the_origin_sequences(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    origin = ep.Store.open(tmp_path / "origin")
    try:
        fill(origin, 100)
        with pytest.raises(RuntimeError), origin.fence() as f:  # a cancelled fence: a hole
            f.append(("acct:0", "in"), "opened", {})
            raise RuntimeError("cancel")
        fill(origin, 100, start=100)
        region = ep.Region.scope("in")  # acct:0..2, whole entities
        pub = ep.nats.Publisher(origin, region, servers=nats_server.urls, stream="EVENTS")
        replica = ep.nats.Replica(tmp_path / "replica", servers=nats_server.urls, durable="r1")
        wanted = origin.query(region)
        assert replica.wait_for(wanted[-1].global_sequence, timeout=30)
        sequences = [e.global_sequence for e in replica.store.query(ALL)]
        assert sequences == [e.global_sequence for e in wanted]
        assert sequences[-1] - sequences[0] + 1 > len(sequences)  # the origin's numbers, with gaps
        assert replica.store.head() == wanted[-1].global_sequence
        assert_same(origin, replica.store, region, ep.Region.entity("acct:2", exact=True))
        outside = origin.query(ep.Region.scope("out"))[0]
        assert outside.global_sequence < wanted[-1].global_sequence
        assert replica.wait_for(outside.global_sequence, timeout=0)  # past it: counts as applied
        with pytest.raises(ep.EventNotFound):
            replica.store.get(outside.event_id)
        after = replica.store.cursor(region, after=outside.global_sequence).poll_batch(1000)
        assert [fields(e) for e in after] == [
            fields(e) for e in wanted if e.global_sequence > outside.global_sequence
        ]
        replica.stop_and_join()
        pub.stop_and_join()
    finally:
        origin.close()


def test_a_region_that_splits_an_entity_is_refused(nats_server: NatsServer, tmp_path: Path) -> None:
    origin = ep.Store.open(tmp_path / "origin")
    try:
        fill(origin, 20)
        region = ALL.with_clock_range(1, 1_000)  # every entity but its first event
        pub = ep.nats.Publisher(origin, region, servers=nats_server.urls, stream="EVENTS")
        replica = ep.nats.Replica(tmp_path / "replica", servers=nats_server.urls, durable="r1")
        first = origin.query(region)[0]
        with pytest.raises(ep.ReplicationRefused) as refused:
            replica.wait_for(first.global_sequence, timeout=30)
        assert refused.value.global_sequence == first.global_sequence
        assert replica.store.head() is None
        with pytest.raises(ep.ReplicationRefused):
            replica.stop_and_join()
        pub.stop_and_join()
    finally:
        origin.close()


def test_a_replica_starts_and_stops_while_the_server_is_down(nats_server: NatsServer, tmp_path: Path) -> None:
    origin = ep.Store.open(tmp_path / "origin")
    try:
        fill(origin, 10)
        nats_server.stop()
        replica = ep.nats.Replica(tmp_path / "replica", servers=nats_server.urls, durable="r1")
        assert not replica.wait_for(0, timeout=0.5) and replica.is_alive()
        nats_server.start()
        pub = ep.nats.Publisher(origin, ALL, servers=nats_server.urls, stream="EVENTS")
        assert replica.wait_for(9, timeout=30)
        pub.stop_and_join()
        nats_server.stop()
        started = time.monotonic()
        replica.stop_and_join(timeout=10)
        assert time.monotonic() - started < 5 and replica.error is None
        assert not replica.wait_for(10, timeout=5)  # stopped: answers at once
        assert time.monotonic() - started < 5
    finally:
        origin.close()


def test_a_replica_stopped_at_once_while_nothing_listens_stops(tmp_path: Path) -> None:
    # The stop's cancellation lands in the first connect attempt, which the NATS client can
    # take for a refused connection and retry for ever: the stop must end it anyway.
    servers = [f"nats://127.0.0.1:{free_port()}"]
    for i in range(12):
        replica = ep.nats.Replica(tmp_path / f"replica{i}", servers=servers, durable="r1")
        replica.stop_and_join(timeout=10)
        assert not replica.is_alive() and replica.error is None


def test_replica_sigkilled_repeatedly_holds_every_event_once(nats_server: NatsServer, tmp_path: Path) -> None:
    origin = ep.Store.open(tmp_path / "origin")
    stop = threading.Event()
    rng = random.Random(11)
    urls = ",".join(nats_server.urls)
    data = tmp_path / "replica"
    try:
        pub = ep.nats.Publisher(origin, ALL, servers=nats_server.urls, stream="EVENTS", window=64)
        writer = appender(origin, stop)
        for _ in range(8):
            child = subprocess.Popen(
                [sys.executable, str(HERE / "nats_kill_replica.py"), str(data), urls, "EVENTS", "r1"],
                stdout=subprocess.PIPE,
            )
            assert child.stdout is not None
            assert child.stdout.readline() == b"ready\n"
            assert int(child.stdout.readline()) >= 0  # applying
            time.sleep(rng.uniform(0.0, 0.3))
            child.kill()
            child.wait()
        stop.set()
        writer.join()
        head = origin.head()
        assert head is not None
        wait_until(lambda: pub.position == head)
        replica = ep.nats.Replica(data, servers=nats_server.urls, durable="r1")
        assert replica.wait_for(head, timeout=60)
        assert replica.applied < head  # the killed replicas had applied most of it
        assert_same(origin, replica.store, ALL, ep.Region.entity("e3", exact=True))
        replica.stop_and_join()
        pub.stop_and_join()
    finally:
        stop.set()
        origin.close()


def caught_up_exactly(origin: ep.Store, replica: ep.nats.Replica) -> None:
    """The replica reaches the origin's head having applied every event once, and holds
    them as the origin does."""
    head = origin.head()
    assert head is not None
    assert replica.wait_for(head, timeout=60)
    assert replica.applied == len(origin.query(ALL))
    assert_same(origin, replica.store, ALL)


def test_server_restarted_mid_run(nats_server: NatsServer, tmp_path: Path) -> None:
    origin = ep.Store.open(tmp_path / "origin")
    stop = threading.Event()
    try:
        pub = ep.nats.Publisher(origin, ALL, servers=nats_server.urls, stream="EVENTS", ack_timeout=1.0)
        replica = ep.nats.Replica(tmp_path / "replica", servers=nats_server.urls, durable="r1")
        writer = appender(origin, stop)
        for _ in range(3):
            before = replica.applied
            wait_until(lambda before=before: replica.applied > before + 200)  # applying (again)
            nats_server.kill()
            time.sleep(0.3)
            nats_server.start()
        stop.set()
        writer.join()
        caught_up_exactly(origin, replica)
        replica.stop_and_join()
        pub.stop_and_join()
    finally:
        stop.set()
        origin.close()


def test_cluster_leader_killed_mid_run_with_an_r3_stream(nats_cluster: NatsCluster, tmp_path: Path) -> None:
    origin = ep.Store.open(tmp_path / "origin")
    stop = threading.Event()
    urls = nats_cluster.urls
    try:
        pub = ep.nats.Publisher(origin, ALL, servers=urls, stream="EVENTS", replicas=3, ack_timeout=2.0)
        writer = appender(origin, stop)
        wait_until(lambda: pub.published > 200)
        replica = ep.nats.Replica(tmp_path / "replica", servers=urls, durable="r1")
        wait_until(lambda: replica.applied > 200)
        leader = int(stream_leader(urls, "EVENTS")[1:]) - 1
        nats_cluster.nodes[leader].kill()
        applied = replica.applied
        wait_until(lambda: replica.applied > applied + 500, timeout=60)
        nats_cluster.restart(leader)
        stop.set()
        writer.join()
        caught_up_exactly(origin, replica)
        replica.stop_and_join()
        pub.stop_and_join()
    finally:
        stop.set()
        origin.close()


class Followed:
    """An origin of ten published events and a replica that holds them; the publisher stopped,
    so a test can put messages on the stream by hand."""

    def __init__(self, server: NatsServer, tmp_path: Path) -> None:
        self.urls = server.urls
        self.origin = ep.Store.open(tmp_path / "origin")
        self.data = tmp_path / "replica"
        fill(self.origin, 10)
        self.publish_pending()
        self.replica = ep.nats.Replica(self.data, servers=self.urls, durable="r1")
        self.events = self.origin.query(ALL)
        assert self.replica.wait_for(self.events[-1].global_sequence, timeout=30)

    def publish_pending(self) -> None:
        pub = ep.nats.Publisher(self.origin, ALL, servers=self.urls, stream="EVENTS")
        wait_until(lambda: pub.position == self.origin.head())
        pub.stop_and_join()

    def headers(self, event: ep.Event, follows: str | None) -> dict[str, str]:
        h = event_headers(event, self.origin.store_id)
        if follows is not None:
            h[EXPECTED_LAST] = follows
        return h

    def assert_refused_and_untouched(self, global_sequence: int, applied: int = 10) -> None:
        """The replica stopped on a refusal of ``global_sequence``, everything after it is not
        applied, and the store holds exactly the ten events, intact."""
        head = self.events[-1].global_sequence
        with pytest.raises(ep.ReplicationRefused) as refused:
            self.replica.wait_for(head + 1_000, timeout=30)
        assert refused.value.global_sequence == global_sequence
        assert self.replica.error is refused.value and not self.replica.is_alive()
        assert self.replica.store.head() == head and self.replica.applied == applied
        with pytest.raises(ep.ReplicationRefused):
            self.replica.stop_and_join()
        with ep.Store.open(self.data) as store:
            assert [fields(e) for e in store.query(ALL)] == [fields(e) for e in self.events]
            assert store.verify().ok


@pytest.fixture(name="followed")
def followed_fixture(nats_server: NatsServer, tmp_path: Path) -> Any:
    f = Followed(nats_server, tmp_path)
    try:
        yield f
    finally:
        if f.replica.is_alive():
            f.replica.stop_and_join()
        f.origin.close()


def test_a_message_with_a_wrong_hash_is_refused(followed: Followed) -> None:
    f = followed
    f.origin.append(("acct:1", "in"), "deposited", {"i": 10})
    event = f.origin.query(ALL)[-1]
    forged = f.headers(event, follows=str(f.events[-1].event_id))
    forged["Eventpak-hash"] = bytes(32).hex()
    forged[MSG_ID] = str(uuid.uuid4())  # so that the genuine event may follow it on the stream
    assert "error" not in publish_raw(f.urls, forged, event.payload_bytes)
    genuine = f.headers(event, follows=forged[MSG_ID])
    assert "error" not in publish_raw(f.urls, genuine, event.payload_bytes)
    f.assert_refused_and_untouched(event.global_sequence)


def test_a_message_behind_the_replica_is_refused(followed: Followed) -> None:
    f = followed
    old = f.events[4]
    forged = f.headers(old, follows=str(f.events[-1].event_id))
    forged[MSG_ID] = forged["Eventpak-event_id"] = str(uuid.uuid4())  # a new event, an old sequence
    assert "error" not in publish_raw(f.urls, forged, old.payload_bytes)
    f.origin.append(("acct:1", "in"), "deposited", {"i": 10})
    event = f.origin.query(ALL)[-1]  # a valid event after it (a publisher refuses that stream)
    assert "error" not in publish_raw(f.urls, f.headers(event, follows=forged[MSG_ID]), event.payload_bytes)
    f.assert_refused_and_untouched(old.global_sequence)


def test_a_lost_message_is_refused(followed: Followed) -> None:
    f = followed
    f.replica.stop_and_join()
    fill(f.origin, 3, start=10)
    f.publish_pending()
    jsm_call(f.urls, lambda jsm: jsm.delete_msg("EVENTS", 11))  # the stream lost event 10
    f.replica = ep.nats.Replica(f.data, servers=f.urls, durable="r1")
    f.assert_refused_and_untouched(11, applied=0)


def test_a_message_that_does_not_name_its_predecessor_is_refused(followed: Followed) -> None:
    f = followed
    f.origin.append(("acct:1", "in"), "deposited", {"i": 10})
    event = f.origin.query(ALL)[-1]
    assert "error" not in publish_raw(f.urls, f.headers(event, follows=None), event.payload_bytes)
    f.assert_refused_and_untouched(event.global_sequence)


def test_an_identical_replayed_message_is_acknowledged_and_changes_nothing(followed: Followed) -> None:
    f = followed
    replayed = f.headers(f.events[4], follows=None)
    del replayed[MSG_ID]  # past the server's duplicate check
    answer = publish_raw(f.urls, replayed, f.events[4].payload_bytes)

    def acked() -> bool:
        info = jsm_call(f.urls, lambda jsm: jsm.consumer_info("EVENTS", "r1"))
        return bool(info.ack_floor.stream_seq == answer["seq"])

    wait_until(acked)
    assert f.replica.is_alive() and f.replica.error is None and f.replica.applied == 10
    assert [fields(e) for e in f.replica.store.query(ALL)] == [fields(e) for e in f.events]
    f.replica.stop_and_join()


def test_a_replica_takes_no_writes_and_one_origin(nats_server: NatsServer, tmp_path: Path) -> None:
    f = Followed(nats_server, tmp_path)
    try:
        store = f.replica.store
        with pytest.raises(ep.ReadOnlyStore):
            store.append(("acct:1", "in"), "deposited", {})
        with pytest.raises(ep.ReadOnlyStore):
            store.append_batch([(("acct:1", "in"), "deposited", {})])
        with pytest.raises(ep.ReadOnlyStore):
            store.append_batch([], tracking=ep.Tracking("input", 1))
        with pytest.raises(ep.ReadOnlyStore), store.fence() as fence:
            fence.append(("acct:1", "in"), "deposited", {})
        cursor = store.cursor(ALL)  # reading and cursor checkpoints work
        assert len(cursor.poll_batch(4)) == 4
        cursor.commit("reader")
        assert store.reset_checkpoint("reader")
        f.replica.stop_and_join()
        with ep.Store.open(f.data) as reopened:  # a plain open knows it is a replica
            with pytest.raises(ep.ReadOnlyStore):
                reopened.append(("acct:1", "in"), "deposited", {})
            with pytest.raises(ep.ReadOnlyStore), reopened.fence() as fence:
                fence.append(("acct:1", "in"), "deposited", {})
            assert reopened._native._replica_origin() == ("EVENTS", f.origin.store_id)
            f.origin.append(("acct:1", "in"), "deposited", {"i": 10})
            following = replicated(f.origin.query(ALL)[-1])
            with pytest.raises(ep.ReplicationRefused):  # the core too refuses another origin
                reopened._native._apply_replicated(uuid.uuid4().bytes, [following])
            assert reopened._native._apply_replicated(f.origin.store_id, [following]) == (1, 0)
        with pytest.raises(ep.ReplicationRefused):  # a replica of another stream
            ep.nats.Replica(f.data, servers=f.urls, stream="OTHER", durable="r1")
        with pytest.raises(ep.InvalidConfig):  # a store holding events cannot become a replica
            f.origin._native._become_replica("EVENTS")
        f.origin.close()
        with pytest.raises(ep.InvalidConfig):
            ep.nats.Replica(tmp_path / "origin", servers=f.urls, durable="r1")
        with ep.Store.open(tmp_path / "origin") as origin:  # untouched, and the dir free again
            assert origin._native._replica_origin() is None
            origin.append(("acct:1", "in"), "deposited", {})

        # The stream recreated by another origin's publisher: the replica refuses its events.
        jsm_call(f.urls, lambda jsm: jsm.delete_stream("EVENTS"))
        with ep.Store.open(tmp_path / "origin3") as other:
            fill(other, 5)
            pub = ep.nats.Publisher(other, ALL, servers=f.urls, stream="EVENTS")
            wait_until(lambda: pub.position == other.head())
            pub.stop_and_join()
        f.replica = ep.nats.Replica(f.data, servers=f.urls, durable="r1")
        with pytest.raises(ep.ReplicationRefused, match="origin"):
            f.replica.wait_for(10_000, timeout=30)
        with pytest.raises(ep.ReplicationRefused):
            f.replica.stop_and_join()
    finally:
        if f.replica.is_alive():
            f.replica.stop_and_join()
        f.origin.close()


def test_a_replica_dir_restored_from_a_backup_or_wiped_catches_up(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    f = Followed(nats_server, tmp_path)
    backup = tmp_path / "backup"
    try:
        f.replica.stop_and_join()
        shutil.copytree(f.data, backup)  # ten events
        f.replica = ep.nats.Replica(f.data, servers=f.urls, durable="r1")
        fill(f.origin, 10, start=10)
        f.publish_pending()
        assert f.replica.wait_for(19, timeout=30)
        f.replica.stop_and_join()
        # The consumer acknowledged twenty events; the restored replica holds ten.
        shutil.rmtree(f.data)
        shutil.copytree(backup, f.data)
        f.replica = ep.nats.Replica(f.data, servers=f.urls, durable="r1")
        assert f.replica.wait_for(19, timeout=30) and f.replica.applied == 10
        assert_same(f.origin, f.replica.store, ALL)
        f.replica.stop_and_join()
        shutil.rmtree(f.data)  # and from nothing
        f.replica = ep.nats.Replica(f.data, servers=f.urls, durable="r1")
        assert f.replica.wait_for(19, timeout=30) and f.replica.applied == 20
        assert_same(f.origin, f.replica.store, ALL)
    finally:
        if f.replica.is_alive():
            f.replica.stop_and_join()
        f.origin.close()


def test_a_durable_name_nats_would_refuse_is_refused_at_once(tmp_path: Path) -> None:
    with pytest.raises(ep.InvalidConfig, match="durable"):
        ep.nats.Replica(tmp_path / "r", servers=["nats://127.0.0.1:1"], durable="a.b")
    assert not (tmp_path / "r").exists()


def replicated(e: ep.Event) -> tuple[Any, ...]:
    """``e`` as the tuple ``_apply_replicated`` takes."""
    return (
        e.event_id.bytes, e.global_sequence, e.entity, e.scope, e.kind, e.entity_sequence,
        e.timestamp_us, e.causation_id.bytes if e.causation_id else None, e.correlation_id.bytes,
        e.prev_hash, e.hash, e.stored_payload_version, e.payload_bytes, list(e.tags),
    )  # fmt: skip


def test_a_shared_replica_is_followed_by_a_reader_process(nats_server: NatsServer, tmp_path: Path) -> None:
    origin = ep.Store.open(tmp_path / "origin")
    data = tmp_path / "replica"
    try:
        pub = ep.nats.Publisher(origin, ALL, servers=nats_server.urls, stream="EVENTS")
        replica = ep.nats.Replica(data, servers=nats_server.urls, durable="r1", shared=True)
        fill(origin, 25)
        assert replica.wait_for(24, timeout=30)
        # A reader in another process: lists what the replica holds, then follows it.
        tail = subprocess.Popen(
            [sys.executable, "-m", "eventpak", "tail", "-f", "-n", "1000", "--json", str(data)],
            stdout=subprocess.PIPE,
        )
        lines: queue.Queue[bytes] = queue.Queue()
        assert tail.stdout is not None
        stdout = tail.stdout
        threading.Thread(target=lambda: [lines.put(line) for line in stdout], daemon=True).start()
        try:
            seen = [json.loads(lines.get(timeout=30)) for _ in range(25)]
            fill(origin, 25, start=25)  # applied while the reader follows
            seen += [json.loads(lines.get(timeout=30)) for _ in range(25)]
        finally:
            tail.kill()
            tail.wait()
        assert [(r["global_sequence"], r["event_id"], r["hash"]) for r in seen] == [
            (e.global_sequence, str(e.event_id), e.hash.hex()) for e in origin.query(ALL)
        ]
        replica.stop_and_join()
        pub.stop_and_join()
    finally:
        origin.close()


def test_the_message_format_round_trips_every_field(tmp_path: Path) -> None:
    with ep.Store.open(tmp_path / "origin") as origin:
        fill(origin, 8)
        for e in origin.query(ALL):
            wire = decode(event_headers(e, origin.store_id), e.payload_bytes)
            assert wire.fields == replicated(e) and wire.origin == origin.store_id
            assert (wire.event_id, wire.global_sequence, wire.follows) == (
                str(e.event_id),
                e.global_sequence,
                None,
            )
        headers = event_headers(e, origin.store_id)
        del headers["Eventpak-hash"]
        with pytest.raises(BadMessage, match="Eventpak-hash"):
            decode(headers, e.payload_bytes)


# Valid names NATS headers would not carry as they are: padded (nats-py strips header values)
# and non-ASCII (the stream-message API returns those as email.header.Header objects).
ODD_NAMES = [
    ("  pad ", " scope ", " kind  ", ["  t ", "x"]),
    ("ünï cödé", "日本 語", "kïnd ✓", ["ü", " 日本 "]),
    (' q"uo\\te ', "  s  ", "é ", []),
]


def fill_odd(store: ep.Store, rounds: int) -> None:
    for r in range(rounds):
        for entity, scope, kind, tags in ODD_NAMES:
            store.append((entity, scope), kind, {"r": r, "ü": "é"}, tags=tags or None)


def test_padded_and_non_ascii_names_and_tags_arrive_verbatim(nats_server: NatsServer, tmp_path: Path) -> None:
    origin = ep.Store.open(tmp_path / "origin")
    data = tmp_path / "replica"
    try:
        fill_odd(origin, 4)
        pub = ep.nats.Publisher(origin, ALL, servers=nats_server.urls, stream="EVENTS")
        replica = ep.nats.Replica(data, servers=nats_server.urls, durable="r1")
        fill_odd(origin, 4)  # while the replica follows
        head = origin.head()
        assert head is not None
        assert replica.wait_for(head, timeout=30) and replica.error is None
        assert_same(origin, replica.store, ALL, ep.Region.entity("  pad ", exact=True))
        assert {e.entity for e in replica.store.query(ALL)} == {"  pad ", "ünï cödé", ' q"uo\\te '}
        replica.stop_and_join()
        # A wiped replica dir under the same durable reads the stream itself (the catch-up path).
        shutil.rmtree(data)
        replica = ep.nats.Replica(data, servers=nats_server.urls, durable="r1")
        assert replica.wait_for(head, timeout=30) and replica.error is None
        assert replica.applied == head + 1
        assert_same(origin, replica.store, ALL, ALL.with_tags([" 日本 "]))
        replica.stop_and_join()
        pub.stop_and_join()
    finally:
        origin.close()


def test_malformed_headers_are_bad_messages(tmp_path: Path) -> None:
    from email.header import Header

    with ep.Store.open(tmp_path / "origin") as origin:
        e = origin.append(("  pad ", "s"), "k", {})
        event = origin.get(e.event_id)
        good = event_headers(event, origin.store_id)
        assert decode(good, event.payload_bytes).fields == replicated(event)
        for key, value, says in [
            ("Eventpak-entity", "  pad ", "JSON string"),  # a bare name: the old format
            ("Eventpak-entity", Header("ü", "utf-8"), "not ASCII"),
            ("Eventpak-tags", '["a", 1]', "JSON list of strings"),
            ("Eventpak-kind", '"\\ud800"', "JSON string"),  # a lone surrogate
            ("Eventpak-global_sequence", "-1", "not a number"),
            ("Eventpak-event_id", "nope", "not a UUID"),
            ("Eventpak-store_id", "00", "16 bytes of hex"),
        ]:
            with pytest.raises(BadMessage, match=f"{key}.*{says}|{key} is {says}"):
                decode({**good, key: value}, event.payload_bytes)
        with pytest.raises(BadMessage, match="Eventpak-tags is missing"):
            decode(None, b"")


@pytest.mark.parametrize("batch", [0, -1, 1.5, True, 2**64])
def test_a_bad_batch_is_refused_at_once_and_makes_no_store(tmp_path: Path, batch: Any) -> None:
    with pytest.raises(ep.InvalidConfig, match="batch"):
        ep.nats.Replica(tmp_path / "r", servers=["nats://127.0.0.1:1"], batch=batch)
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("existing", [False, True], ids=["new dir", "empty dir"])
@pytest.mark.parametrize(
    ("options", "says"),
    [
        ({"encryption_key": ep.generate_encryption_key()}, "encrypted store cannot be a replica"),
        ({"encryption_key": b"short"}, "encryption_key"),
        ({"sync": "sometimes"}, "sync"),
        ({"no_such_option": 1}, "no_such_option"),
    ],
    ids=["encryption key", "bad key", "bad sync", "unknown option"],
)
def test_store_options_no_replica_can_have_are_refused_before_the_dir_is_touched(
    tmp_path: Path, options: dict[str, Any], says: str, existing: bool
) -> None:
    data_dir = tmp_path / "r"
    if existing:
        data_dir.mkdir()
    with pytest.raises(ep.InvalidConfig, match=says):
        ep.nats.Replica(data_dir, servers=["nats://127.0.0.1:1"], **options)
    assert (sorted(os.listdir(data_dir)) == []) if existing else not data_dir.exists()
    replica = ep.nats.Replica(data_dir, servers=["nats://127.0.0.1:1"])  # the dir is still free to use
    replica.stop_and_join()


def test_wait_for_refuses_a_sequence_no_event_can_have(tmp_path: Path) -> None:
    # No server is needed: the replica keeps reconnecting while the arguments are checked.
    replica = ep.nats.Replica(tmp_path / "r", servers=["nats://127.0.0.1:1"])
    try:
        for bad in (-1, 2**64, 1.5, True, "3"):
            with pytest.raises(ep.InvalidArgument, match="global_sequence"):
                replica.wait_for(bad)  # type: ignore[arg-type]
        with pytest.raises(ep.InvalidArgument, match="timeout"):
            replica.wait_for(0, timeout="1")  # type: ignore[arg-type]
        assert replica.wait_for(0, timeout=0) is False  # nothing applied: answered at once
        assert replica.is_alive()
    finally:
        replica.stop_and_join()
