"""eventpak.nats.Publisher against a real nats-server -js on loopback (tests/nats_support.py)."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import eventpak as ep
import eventpak.nats
import nats
import pytest
from nats.js.api import StreamConfig
from nats_support import (  # noqa: F401 (the nats_server and nats_cluster fixtures)
    NatsCluster,
    NatsServer,
    jsm_call,
    nats_cluster_fixture,
    nats_server_fixture,
    stream_leader,
    stream_messages,
)

HERE = Path(__file__).parent


def wait_until(cond: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        time.sleep(0.01)


def assert_stream_is(urls: list[str], stream: str, events: list[ep.Event]) -> None:
    """The stream holds exactly ``events``, once each, in order, with their fields and bytes."""
    msgs = stream_messages(urls, stream)
    got = [int(m.headers["Eventpak-global_sequence"]) for m in msgs]
    want = [e.global_sequence for e in events]
    assert got == want
    for m, e in zip(msgs, events, strict=True):
        h = m.headers
        assert h["Nats-Msg-Id"] == h["Eventpak-event_id"] == str(e.event_id)
        assert h["Eventpak-hash"] == e.hash.hex() and h["Eventpak-prev_hash"] == e.prev_hash.hex()
        assert int(h["Eventpak-entity_sequence"]) == e.entity_sequence
        assert tuple(json.loads(h[f"Eventpak-{n}"]) for n in ("entity", "scope", "kind")) == (
            e.entity,
            e.scope,
            e.kind,
        )
        assert int(h["Eventpak-timestamp_us"]) == e.timestamp_us
        assert m.data == e.payload_bytes


def published_all(
    pub: ep.nats.Publisher, urls: list[str], events: list[ep.Event], timeout: float = 30
) -> None:
    """Waits until ``pub`` checkpointed the last of ``events``, stops it, and checks that the
    stream holds exactly ``events``."""
    wait_until(lambda: pub.position == events[-1].global_sequence, timeout=timeout)
    pub.stop_and_join()
    assert_stream_is(urls, "EVENTS", events)


def appender(store: ep.Store, stop: threading.Event, scope: str = "s") -> threading.Thread:
    def run() -> None:
        n = 0
        while not stop.is_set():
            store.append(ep.Coordinate(f"e{n % 5}", scope), "k", {"n": n})
            n += 1
            if n % 10 == 0:  # a few thousand events a second: enough to be mid-run at any kill
                time.sleep(0.005)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def test_every_event_of_the_region_once_in_order(nats_server: NatsServer, tmp_path: Path) -> None:
    store = ep.Store.open(tmp_path / "data")
    try:
        for i in range(300):
            store.append(
                ep.Coordinate(f"e{i % 3}", "in" if i % 3 else "out"), "k", {"i": i}, tags=[f"t{i % 2}"]
            )
        region = ep.Region.scope("in")
        pub = ep.nats.Publisher(store, region, servers=nats_server.urls, stream="EVENTS", window=16)
        for i in range(300, 600):
            store.append(ep.Coordinate(f"e{i % 3}", "in" if i % 3 else "out"), "k", {"i": i})
        events = store.query(region)
        published_all(pub, nats_server.urls, events)
        assert pub.published == len(events)
        msg = stream_messages(nats_server.urls, "EVENTS")[0]
        assert msg.headers["Eventpak-tags"] == '["t1"]'
        # A new publisher on the same checkpoint sends only what follows.
        pub = ep.nats.Publisher(store, region, servers=nats_server.urls, stream="EVENTS")
        store.append(ep.Coordinate("e1", "in"), "k", {})
        wait_until(lambda: pub.published == 1)
        pub.stop_and_join()
        assert pub.published == 1
        events = store.query(region)
        assert_stream_is(nats_server.urls, "EVENTS", events)
    finally:
        store.close()


def test_publisher_sigkilled_repeatedly_loses_nothing(nats_server: NatsServer, tmp_path: Path) -> None:
    data = tmp_path / "data"
    rng = random.Random(7)
    urls = ",".join(nats_server.urls)
    for _ in range(24):
        child = subprocess.Popen(
            [sys.executable, str(HERE / "nats_kill_publisher.py"), str(data), urls, "EVENTS"],
            stdout=subprocess.PIPE,
        )
        assert child.stdout is not None
        assert child.stdout.readline() == b"ready\n"
        time.sleep(rng.uniform(0.0, 0.25))
        child.kill()
        child.wait()
    store = ep.Store.open(data)
    try:
        pub = ep.nats.Publisher(store, ep.Region.all(), servers=nats_server.urls, stream="EVENTS")
        events = store.query(ep.Region.all())
        published_all(pub, nats_server.urls, events)
    finally:
        store.close()


def test_server_restarted_mid_run(nats_server: NatsServer, tmp_path: Path) -> None:
    store = ep.Store.open(tmp_path / "data")
    stop = threading.Event()
    try:
        pub = ep.nats.Publisher(
            store, ep.Region.all(), servers=nats_server.urls, stream="EVENTS", ack_timeout=1.0
        )
        writer = appender(store, stop)
        for _ in range(3):
            before = pub.published
            wait_until(lambda before=before: pub.published > before + 200)  # publishing (again)
            nats_server.kill()
            time.sleep(0.3)
            nats_server.start()
        stop.set()
        writer.join()
        events = store.query(ep.Region.all())
        published_all(pub, nats_server.urls, events)
        assert pub.published == len(events)
    finally:
        stop.set()
        store.close()


def test_backpressure_while_the_server_is_down(nats_server: NatsServer, tmp_path: Path) -> None:
    store = ep.Store.open(tmp_path / "data")
    try:
        pub = ep.nats.Publisher(
            store, ep.Region.all(), servers=nats_server.urls, stream="EVENTS", window=100, ack_timeout=0.5
        )
        store.append(ep.Coordinate("e", "s"), "k", {})
        wait_until(lambda: pub.published == 1)
        nats_server.stop()
        published = pub.published
        in_flight: list[int] = []
        for i in range(5_000):  # appends go on
            store.append(ep.Coordinate(f"e{i % 9}", "s"), "k", {"i": i, "pad": "x" * 200})
            if i % 100 == 0:
                in_flight.append(len(pub._link.waiting))
        time.sleep(1.5)
        in_flight.append(len(pub._link.waiting))
        assert pub.published == published
        assert max(in_flight) <= 100  # the window, not the backlog
        assert pub.position == 0
        nats_server.start()
        events = store.query(ep.Region.all())
        published_all(pub, nats_server.urls, events)
    finally:
        store.close()


def test_an_unacknowledged_batch_is_logged_saying_what_and_where(
    nats_server: NatsServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="eventpak")
    store = ep.Store.open(tmp_path / "data")
    try:
        pub = ep.nats.Publisher(
            store, ep.Region.all(), servers=nats_server.urls, stream="EVENTS", ack_timeout=0.5
        )
        store.append(ep.Coordinate("e", "s"), "k", {})
        wait_until(lambda: pub.published == 1)
        nats_server.stop()
        store.append(ep.Coordinate("e", "s"), "k", {})  # sequence 1: never acknowledged

        def timeouts() -> list[BaseException]:
            return [
                r.exc_info[1]
                for r in caplog.records
                if r.exc_info and isinstance(r.exc_info[1], TimeoutError)
            ]

        def unacknowledged() -> list[str]:
            return [str(exc) for exc in timeouts() if "acknowledged no publish" in str(exc)]

        wait_until(lambda: bool(unacknowledged()))
        assert all(str(exc) for exc in timeouts())  # no bare TimeoutError()
        said = unacknowledged()[0]
        assert "NATS stream EVENTS" in said and "events 1-1" in said and "ack_timeout=0.5 s" in said, said
        nats_server.start()
        published_all(pub, nats_server.urls, store.query(ep.Region.all()))
    finally:
        store.close()


def test_cluster_node_killed_mid_run_with_an_r3_stream(nats_cluster: NatsCluster, tmp_path: Path) -> None:
    store = ep.Store.open(tmp_path / "data")
    stop = threading.Event()
    try:
        pub = ep.nats.Publisher(
            store, ep.Region.all(), servers=nats_cluster.urls, stream="EVENTS", replicas=3, ack_timeout=2.0
        )
        writer = appender(store, stop)
        wait_until(lambda: pub.published > 200)
        leader = int(stream_leader(nats_cluster.urls, "EVENTS")[1:]) - 1
        nats_cluster.nodes[leader].kill()  # the stream's leader: its raft group elects another
        published = pub.published
        wait_until(lambda: pub.published > published + 500, timeout=60)
        nats_cluster.restart(leader)
        stop.set()
        writer.join()
        events = store.query(ep.Region.all())
        published_all(pub, nats_cluster.urls, events, timeout=60)
    finally:
        stop.set()
        store.close()


def test_the_server_behaviour_the_publisher_relies_on(nats_server: NatsServer) -> None:
    """A duplicate Nats-Msg-Id is answered as a duplicate before Nats-Expected-Last-Msg-Id is
    looked at; a message that does not follow the stream's last one is refused."""

    async def run() -> list[dict[str, object]]:
        nc = await nats.connect(servers=nats_server.urls)
        try:
            await nc.jetstream().add_stream(StreamConfig(name="S", subjects=["S.x"]))
            answers = []
            for mid, expected in [("A", None), ("B", "A"), ("A", "Z"), ("C", "A"), ("C", "B")]:
                headers = {"Nats-Msg-Id": mid}
                if expected is not None:
                    headers["Nats-Expected-Last-Msg-Id"] = expected
                answers.append(json.loads((await nc.request("S.x", b"", headers=headers, timeout=5)).data))
            return answers
        finally:
            await nc.close()

    a = asyncio.run(run())
    assert [x.get("seq") for x in a[:3]] == [1, 2, 1] and a[2]["duplicate"] is True
    assert a[3]["error"]["err_code"] == 10070  # type: ignore[index]
    assert a[4]["seq"] == 3


def test_a_checkpoint_behind_the_stream_duplicates_nothing_after_the_dedupe_window(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    async def create() -> None:
        nc = await nats.connect(servers=nats_server.urls)
        try:
            cfg = StreamConfig(name="EVENTS", subjects=["EVENTS.events"], duplicate_window=0.2)
            await nc.jetstream().add_stream(cfg)
        finally:
            await nc.close()

    asyncio.run(create())
    store = ep.Store.open(tmp_path / "data")
    try:
        for i in range(100):
            store.append(ep.Coordinate(f"e{i % 4}", "s"), "k", {"i": i})
        pub = ep.nats.Publisher(store, ep.Region.all(), servers=nats_server.urls, stream="EVENTS")
        wait_until(lambda: pub.position == 99)
        pub.stop_and_join()
        assert store.reset_checkpoint("nats-out")  # as if killed before any checkpoint
        time.sleep(0.5)  # past the duplicate window: the server would store the events again
        store.append(ep.Coordinate("e0", "s"), "k", {})
        pub = ep.nats.Publisher(store, ep.Region.all(), servers=nats_server.urls, stream="EVENTS")
        wait_until(lambda: pub.position == 100)
        pub.stop_and_join()
        assert_stream_is(nats_server.urls, "EVENTS", store.query(ep.Region.all()))
    finally:
        store.close()


def test_stop_while_the_server_is_down_and_start_before_it_is_up(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    store = ep.Store.open(tmp_path / "data")
    try:
        nats_server.stop()
        # Starts although the server is unreachable; publishes once it is up.
        pub = ep.nats.Publisher(
            store, ep.Region.all(), servers=nats_server.urls, stream="EVENTS", ack_timeout=0.5
        )
        store.append(ep.Coordinate("e", "s"), "k", {})
        time.sleep(0.5)
        assert pub.published == 0 and pub.is_alive()
        nats_server.start()
        wait_until(lambda: pub.position == 0)
        nats_server.stop()
        store.append(ep.Coordinate("e", "s"), "k", {})
        time.sleep(0.3)
        started = time.monotonic()
        pub.stop_and_join(timeout=10)
        assert time.monotonic() - started < 5  # bounded by the ack and connect timeouts
        assert pub.position == 0
    finally:
        store.close()


def test_a_stream_holding_foreign_messages_is_not_published_to(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    async def foreign() -> None:
        nc = await nats.connect(servers=nats_server.urls)
        try:
            js = nc.jetstream()
            await js.add_stream(StreamConfig(name="EVENTS", subjects=["EVENTS.events"]))
            await js.publish("EVENTS.events", b"not an event")
        finally:
            await nc.close()

    asyncio.run(foreign())
    store = ep.Store.open(tmp_path / "data")
    try:
        store.append(ep.Coordinate("e", "s"), "k", {})
        pub = ep.nats.Publisher(store, ep.Region.all(), servers=nats_server.urls, stream="EVENTS")
        wait_until(lambda: pub._worker.last_error is not None)
        assert "not sent by an eventpak publisher" in str(pub._worker.last_error)
        assert pub.published == 0 and pub.position is None
        pub.stop_and_join()
        assert len(stream_messages(nats_server.urls, "EVENTS")) == 1
    finally:
        store.close()


def test_a_refused_message_mid_group_fails_the_group_and_the_retry_sends_the_rest_once(
    nats_server: NatsServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Only the last message of a group asks for an ack. The server refuses message 150 (too
    # big for the stream), so every later one fails its expected-last check, the group's ack
    # is an error, and each retry resumes after the stream's last message.
    limited = StreamConfig(name="EVENTS", subjects=["EVENTS.events"], max_msg_size=4096)
    jsm_call(nats_server.urls, lambda jsm: jsm.add_stream(limited))
    store = ep.Store.open(tmp_path / "data")
    try:
        for i in range(300):
            store.append(
                ep.Coordinate(f"e{i % 3}", "s"), "k", {"i": i, "big": "x" * (8000 if i == 150 else 1)}
            )
        events = store.query(ep.Region.all())
        with caplog.at_level(logging.DEBUG, logger="eventpak"):
            pub = ep.nats.Publisher(store, ep.Region.all(), servers=nats_server.urls, stream="EVENTS")
            wait_until(lambda: "wrong last msg ID" in caplog.text)
        time.sleep(0.5)  # retries meanwhile: none gets past message 150
        assert len(stream_messages(nats_server.urls, "EVENTS")) == 150
        assert pub.published in (128, 150) and pub.position is None  # 150 once a retry read the tail
        unlimited = StreamConfig(name="EVENTS", subjects=["EVENTS.events"], max_msg_size=-1)
        jsm_call(nats_server.urls, lambda jsm: jsm.update_stream(unlimited))
        published_all(pub, nats_server.urls, events)
        assert pub.published == 300
    finally:
        store.close()


def test_the_wire_bytes_are_what_nats_py_would_send() -> None:
    # The publisher writes its own HPUB commands through nats-py's private _send_command:
    # this pins those internals and holds the native bytes to nats-py's own encoding of the
    # readable headers (eventpak.nats._wire.event_headers).
    import inspect

    from eventpak.nats._link import NATS_INTERNALS
    from eventpak.nats._wire import EXPECTED_LAST, event_headers, nats_publish_commands
    from nats.aio.client import Client

    assert list(inspect.signature(Client._send_command).parameters) == ["self", "cmd", "priority"]
    assert all(hasattr(Client(), name) for name in NATS_INTERNALS)

    async def nats_py_bytes(events: list[ep.Event], store_id: bytes, reply: str) -> bytes:
        client, sent = Client(), []

        async def capture(cmd: bytes, priority: bool = False) -> None:
            sent.append(cmd)

        client._send_command = capture  # type: ignore[method-assign]
        client._flush_queue = None
        prev = None
        for n, e in enumerate(events):
            headers = event_headers(e, store_id)
            if prev is not None:
                headers[EXPECTED_LAST] = prev
            to = reply if n == len(events) - 1 else ""
            await client._send_publish("EVENTS.events", to, e.payload_bytes, len(e.payload_bytes), headers)
            prev = str(e.event_id)
        # nats-py writes "HPUB subject  n m" (two spaces) without a reply; the server takes both.
        return b"".join(sent).replace(b"HPUB EVENTS.events  ", b"HPUB EVENTS.events ")

    with ep.Store.open(Path(tempfile.mkdtemp()) / "d") as store:
        cause = store.append(ep.Coordinate("  pad ", "日本"), "kïnd ✓", {"a": 1}, tags=[" t ", "ü"])
        store.append(ep.Coordinate('q"\\', "s"), "k\u00e9", b"\x00raw", caused_by=cause, payload_version=3)
        for i in range(10):
            store.append(ep.Coordinate(f"e{i}", "s"), "k", {"i": i})
        events = store.query(ep.Region.all())
        data, n = nats_publish_commands(
            events, store.store_id, "EVENTS.events", None, "_INBOX.x.1", 1 << 30, 1 << 20
        )
        assert n == len(events)
        assert data == asyncio.run(nats_py_bytes(events, store.store_id, "_INBOX.x.1"))
        # A byte budget cuts the batch after the message that reaches it, which gets the reply.
        data, n = nats_publish_commands(
            events, store.store_id, "EVENTS.events", None, "_INBOX.x.1", 1500, 1 << 20
        )
        assert 1 <= n < len(events)
        assert data == asyncio.run(nats_py_bytes(events[:n], store.store_id, "_INBOX.x.1"))
        # A message over the server's max_payload ends the run before it (the one before gets
        # the reply), and a run starting with it is refused, naming it.
        big = store.append(ep.Coordinate("e0", "s"), "big", b"\x00" * 4096)
        store.append(ep.Coordinate("e1", "s"), "k", {})
        events = store.query(ep.Region.all())
        at = events.index(next(e for e in events if e.global_sequence == big.global_sequence))
        data, n = nats_publish_commands(
            events, store.store_id, "EVENTS.events", None, "_INBOX.x.1", 1 << 30, 4096
        )
        assert n == at
        assert data == asyncio.run(nats_py_bytes(events[:at], store.store_id, "_INBOX.x.1"))
        with pytest.raises(
            ValueError,
            match=rf"event {big.global_sequence} is a NATS message of \d+ bytes, over the server's "
            r"max_payload of 4096",
        ):
            nats_publish_commands(
                events[at:], store.store_id, "EVENTS.events", None, "_INBOX.x.1", 1 << 30, 4096
            )


def test_an_event_over_the_servers_max_payload_stops_the_stream_before_it_and_says_why(
    nats_server: NatsServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="eventpak.worker")
    store = ep.Store.open(tmp_path / "data")
    try:
        for i in range(3):
            store.append(ep.Coordinate("e", "s"), "k", {"i": i})
        big = store.append(ep.Coordinate("e", "s"), "big", b"\x00" * (1 << 20))  # over 1 MiB with headers
        store.append(ep.Coordinate("e", "s"), "k", {"i": 4})
        events = store.query(ep.Region.all())
        pub = ep.nats.Publisher(
            store, ep.Region.all(), servers=nats_server.urls, stream="EVENTS", ack_timeout=1.0
        )

        def said_why() -> bool:
            errors = [r.exc_info[1] for r in caplog.records if r.exc_info and r.exc_info[1] is not None]
            return any(f"event {big.global_sequence} is a NATS message" in str(e) for e in errors)

        wait_until(said_why)
        assert pub.is_alive() and pub.position is None  # the batch holding it is not checkpointed
        pub.stop_and_join()
        # Everything before it is in the stream, nothing from it on; the server was never
        # made to drop the connection.
        assert_stream_is(nats_server.urls, "EVENTS", events[:3])
        assert "maximum payload" not in (tmp_path / "nats" / "n1.log").read_text()
    finally:
        store.close()


@pytest.mark.parametrize(
    ("argument", "value"),
    [
        ("window", 0),
        ("window", -1),
        ("window_bytes", 0),
        ("window_bytes", 2**64),
        ("replicas", -1),
        ("replicas", 1.0),
        ("ack_timeout", -1.0),
        ("ack_timeout", 0),
        ("ack_timeout", float("inf")),
        ("ack_timeout", "5"),
    ],
)
def test_bad_publisher_arguments_are_refused_naming_them(tmp_path: Path, argument: str, value: Any) -> None:
    with ep.Store.open(tmp_path / "origin") as store:
        store.append(("a", "s"), "k", 1)
        with pytest.raises(ep.InvalidConfig, match=argument):
            ep.nats.Publisher(store, ep.Region.all(), servers=["nats://127.0.0.1:1"], **{argument: value})
        assert store.checkpoints() == []  # no worker was started
        assert [e.payload for e in store.query(ep.Region.all())] == [1]
