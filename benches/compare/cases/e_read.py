"""(e) read the N events of the (load) stores in commit order with payloads decoded, against warm
page caches; also eventpak's query alone (no payload access), the same read in pages of 1000, the
read through a cursor (``poll_batch(1000)``, every payload touched, nothing kept), and, for
reference, msgspec decoding the same stored payload bytes alone (gathered before the rounds).
Every system first runs once unmeasured."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import eventpak as ep

from benches.compare.cases.load import read_stores
from benches.compare.harness import Bench, Peer, Row, Sample, log, perf, timed_count, timed_read
from benches.compare.peers import eventpak, lmdb, msgspec, sqlite

CURSOR_BATCH = 1000


def run(b: Bench) -> None:
    paths, n = read_stores(b), b.args.events
    store = eventpak.reopen(paths["eventpak"])
    conn = sqlite.connect(paths["sqlite"])
    env = lmdb.open_readonly(paths["lmdb"], n) if lmdb.AVAILABLE else None
    region = ep.Region.all()
    chunks: list[list[bytes]] = []
    if msgspec.AVAILABLE:
        t0 = perf()
        chunks = eventpak.stored_payloads(store, region, CURSOR_BATCH)
        log(f"   gathered the {n:,} stored payloads for msgspec in {perf() - t0:.2f} s (not measured)")

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
            "eventpak-cursor",
            "eventpak",
            f"store.cursor(Region.all()).poll_batch({CURSOR_BATCH}) loop touching e.payload, nothing kept",
            timed_count(eventpak.read_cursor(store, region, CURSOR_BATCH), n),
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
    if msgspec.AVAILABLE:
        peers.append(
            Peer(
                "msgspec",
                "msgspec",
                "Decoder().decode of the same stored payload bytes alone, in lists of "
                f"{CURSOR_BATCH} gathered before the rounds, nothing kept (reference)",
                timed_count(msgspec.decode_chunks(chunks), n),
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
        chunks.clear()  # the msgspec peer keeps a reference to the list, not its bytes
    b.rows += [
        Row("e", "eventpak", aim=">= 1,000,000 ev/s", check=lambda v, r: v >= 1_000_000),
        Row("e", "eventpak-nodecode", ratio=("eventpak", "eventpak-nodecode", "with decode / without")),
        Row("e", "eventpak-paged", ratio=("eventpak", "eventpak-paged", "one list / pages of 1000")),
        Row("e", "sqlite", ratio=("eventpak", "sqlite", "eventpak / sqlite3")),
    ]
    if env is not None:
        b.rows.append(Row("e", "lmdb", ratio=("eventpak", "lmdb", "eventpak / lmdb")))
    b.rows += [
        Row("e", "eventpak-cursor", aim=">= 1,500,000 ev/s", check=lambda v, r: v >= 1_500_000),
        Row(
            "e",
            "sqlite",
            ratio=("eventpak-cursor", "sqlite", "cursor / sqlite3"),
            aim=">= 2",
            check=lambda v, r: r >= 2,
        ),
    ]
    if msgspec.AVAILABLE:
        b.rows.append(
            Row(
                "e",
                "msgspec",
                ratio=("eventpak-cursor", "msgspec", "cursor / msgspec decode alone"),
                aim=">= 0.7",
                check=lambda v, r: r >= 0.7,
            )
        )
