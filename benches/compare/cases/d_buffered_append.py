"""(d) one append per call, not individually durable: eventpak ``sync="batch"`` (the default; and
``sync="never"`` for reference) vs sqlite3 ``synchronous=OFF`` (COMMIT every 1000) and lmdb
``sync=False`` (one put per txn), ``--write-events`` per run."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from benches.compare.harness import Bench, Peer, Row, Sample
from benches.compare.peers import eventpak, lmdb, sqlite


def run(b: Bench) -> None:
    n = b.args.write_events

    def eventpak_(sync: str) -> Callable[[Path], Sample]:
        def run(d: Path) -> Sample:
            store = eventpak.open_store(d, sync=sync)
            secs = eventpak.append_loop(store, n)
            stats = store.stats()
            store.close()
            return Sample(n, secs, {"durable_events_at_end": stats.get("durable_events")})

        return run

    def sqlite_(d: Path) -> Sample:
        conn = sqlite.open_db(d / "db.sqlite", "OFF")
        secs = sqlite.insert_loop(conn, n)
        conn.close()
        return Sample(n, secs)

    def lmdb_(d: Path) -> Sample:
        env = lmdb.open_env(d, sync=False, map_size=lmdb.map_size_for(n))
        secs = lmdb.put_loop(env, n)
        env.close()
        return Sample(n, secs)

    peers = [
        Peer("eventpak", "eventpak", 'sync="batch" (default), 1 append per call', eventpak_("batch")),
        Peer("eventpak-never", "eventpak", 'sync="never", 1 append per call', eventpak_("never")),
        Peer("sqlite", "sqlite3", "WAL, synchronous=OFF, 1 INSERT per call, COMMIT every 1000", sqlite_),
    ]
    if lmdb.AVAILABLE:
        peers.append(Peer("lmdb", "lmdb", "sync=False, 1 put per write txn", lmdb_))
    b.run_case("d", "one append per call, not individually durable", peers)
    b.rows += [
        Row("d", "eventpak", aim=">= 300,000 ev/s", check=lambda v, r: v >= 300_000),
        Row("d", "eventpak-never", ratio=("eventpak", "eventpak-never", 'sync="batch" / sync="never"')),
        Row("d", "sqlite", ratio=("eventpak", "sqlite", "eventpak / sqlite3")),
    ]
    if lmdb.AVAILABLE:
        b.rows.append(Row("d", "lmdb", ratio=("eventpak", "lmdb", "eventpak / lmdb")))
