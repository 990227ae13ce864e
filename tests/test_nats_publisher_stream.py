"""The publisher against streams that do not hold what it sent last: a server store rolled
back, an origin restored from a backup, another store's stream, a stream emptied by its limits
(real nats-server -js on loopback, tests/nats_support.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import eventpak as ep
import eventpak.nats
from nats_support import (  # noqa: F401 (the nats_server fixture)
    NatsServer,
    nats_server_fixture,
)
from test_nats_publisher import assert_stream_is, wait_until

ALL = ep.Region.all()


def append(store: ep.Store, n: int) -> None:
    for _ in range(n):
        store.append((f"order:{store.next_sequence('order:0') % 3}", "shop"), "placed", {})


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
