"""(e) read the N events of the (load) stores in commit order with payloads decoded, against warm
page caches; also eventpak's query alone (no payload access) and the same read in pages of 1000.
Every system first runs once unmeasured."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import eventpak as ep

from benches.compare.cases.load import read_stores
from benches.compare.harness import Bench, Peer, Row, Sample, timed_read
from benches.compare.peers import eventpak, lmdb, sqlite


def run(b: Bench) -> None:
    paths, n = read_stores(b), b.args.events
    store = eventpak.reopen(paths["eventpak"])
    conn = sqlite.connect(paths["sqlite"])
    env = lmdb.open_readonly(paths["lmdb"], n) if lmdb.AVAILABLE else None
    region = ep.Region.all()

    def timed(read: Callable[[], list[Any]]) -> Callable[[Path], Sample]:
        return timed_read(read, n)

    peers = [
        Peer(
            "eventpak",
            "eventpak",
            "[e.payload for e in store.query(Region.all())]",
            timed(eventpak.read_payloads(store, region)),
        ),
        Peer(
            "eventpak-nodecode",
            "eventpak",
            "store.query(Region.all()), payloads not touched",
            timed(eventpak.read_events(store, region)),
        ),
        Peer(
            "eventpak-paged",
            "eventpak",
            "pages of query(Region.all(), after=last, limit=1000) + e.payload",
            timed(eventpak.read_pages(store, region, 1000)),
        ),
        Peer(
            "sqlite",
            "sqlite3",
            "SELECT seq, entity, kind, payload ORDER BY seq + msgpack.unpackb",
            timed(sqlite.read_payloads(conn)),
        ),
    ]
    if env is not None:
        peers.append(
            Peer(
                "lmdb",
                "lmdb",
                "cursor.iternext(values) + msgpack.unpackb (buffers=True)",
                timed(lmdb.read_payloads(env)),
            )
        )
    try:
        title = f"read {n:,} events in commit order, payloads decoded (warm page cache)"
        b.run_case("e", title, peers, warmup=True)
    finally:
        store.close()
        conn.close()
        if env is not None:
            env.close()
    b.rows += [
        Row("e", "eventpak", aim=">= 1,000,000 ev/s", check=lambda v, r: v >= 1_000_000),
        Row("e", "eventpak-nodecode", ratio=("eventpak", "eventpak-nodecode", "with decode / without")),
        Row("e", "eventpak-paged", ratio=("eventpak", "eventpak-paged", "one list / pages of 1000")),
        Row("e", "sqlite", ratio=("eventpak", "sqlite", "eventpak / sqlite3")),
    ]
    if env is not None:
        b.rows.append(Row("e", "lmdb", ratio=("eventpak", "lmdb", "eventpak / lmdb")))
