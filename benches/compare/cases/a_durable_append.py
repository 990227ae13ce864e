"""(a) one durable append per call, one thread: eventpak ``sync="always"`` vs raw ``os.write`` +
``os.fdatasync``, sqlite3 (WAL, ``synchronous=FULL``, one autocommit INSERT per event) and lmdb
(``sync=True``, one put per write txn). Each run lasts ``--durable-seconds`` or
``--durable-max-ops`` calls, whichever comes first."""

from __future__ import annotations

import os
from pathlib import Path

from benches.compare.harness import Bench, Peer, Row, Sample, timed_calls
from benches.compare.peers import eventpak, lmdb, raw, sqlite


def run(b: Bench) -> None:
    a = b.args
    budget, cap = a.durable_seconds, a.durable_max_ops

    def eventpak_(d: Path) -> Sample:
        store = eventpak.open_store(d, sync="always")
        step = eventpak.append_step(store)
        calls, secs = timed_calls(step, budget, cap)
        durable = step(0).durable
        store.close()
        return Sample(calls, secs, {"last_receipt_durable": durable})

    def raw_(d: Path) -> Sample:
        fd = raw.open_log(d)
        step = raw.durable_step(fd)
        try:
            calls, secs = timed_calls(step, budget, cap)
        finally:
            os.close(fd)
        return Sample(calls, secs)

    def sqlite_(d: Path) -> Sample:
        conn = sqlite.open_db(d / "db.sqlite", "FULL")
        calls, secs = timed_calls(sqlite.insert_step(conn), budget, cap)
        conn.close()
        return Sample(calls, secs)

    def lmdb_(d: Path) -> Sample:
        env = lmdb.open_env(d, sync=True)
        calls, secs = timed_calls(lmdb.put_step(env), budget, cap)
        env.close()
        return Sample(calls, secs)

    peers = [
        Peer("eventpak", "eventpak", 'sync="always", 1 thread', eventpak_),
        Peer("raw", "raw os.write + os.fdatasync", "4-byte length + msgpack per record", raw_),
        Peer("sqlite", "sqlite3", "WAL, synchronous=FULL, 1 INSERT committed per event", sqlite_),
    ]
    if lmdb.AVAILABLE:
        peers.append(Peer("lmdb", "lmdb", "sync=True, 1 put per write txn", lmdb_))
    b.run_case("a", "one durable append per call, one thread", peers)
    b.rows += [
        Row("a", "eventpak"),
        Row(
            "a", "raw", ratio=("eventpak", "raw", "eventpak / raw"), aim=">= 0.9", check=lambda v, r: r >= 0.9
        ),
        Row("a", "sqlite", ratio=("eventpak", "sqlite", "eventpak / sqlite3")),
    ]
    if lmdb.AVAILABLE:
        b.rows.append(Row("a", "lmdb", ratio=("eventpak", "lmdb", "eventpak / lmdb")))
