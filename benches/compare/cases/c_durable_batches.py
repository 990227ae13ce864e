"""(c) durable batches of ``--batch-size``: ``append_batch`` with ``sync="always"`` (given the
payload dicts) vs lmdb ``cursor.putmulti`` in one txn (``sync=True``) given payloads packed before
the timed loop, sqlite3 ``executemany`` in one transaction (FULL), and, for reference, lmdb
``putmulti`` packing every payload with ``msgpack.packb`` inside the loop."""

from __future__ import annotations

from pathlib import Path

from benches._workload import POOL_MASK
from benches.compare.harness import Bench, Peer, Row, Sample, timed_calls
from benches.compare.peers import eventpak, lmdb, sqlite


def run(b: Bench) -> None:
    a = b.args
    budget, cap, size = a.durable_seconds, a.durable_max_ops, a.batch_size
    idx = [j & POOL_MASK for j in range(size)]

    def eventpak_(d: Path) -> Sample:
        store = eventpak.open_store(d, sync="always", max_batch_events=max(size, 4096))
        step = eventpak.batch_step(store, idx)
        calls, secs = timed_calls(step, budget, cap)
        durable = step(0)[-1].durable
        store.close()
        return Sample(calls * size, secs, {"batches": calls, "last_receipt_durable": durable})

    def sqlite_(d: Path) -> Sample:
        conn = sqlite.open_db(d / "db.sqlite", "FULL")
        calls, secs = timed_calls(sqlite.batch_step(conn, idx), budget, cap)
        conn.close()
        return Sample(calls * size, secs, {"batches": calls})

    def lmdb_(prepacked: bool) -> Peer:
        make_step = lmdb.putmulti_prepacked_step if prepacked else lmdb.putmulti_step

        def run(d: Path) -> Sample:
            env = lmdb.open_env(d, sync=True)
            calls, secs = timed_calls(make_step(env, idx), budget, cap)
            env.close()
            return Sample(calls * size, secs, {"batches": calls})

        if prepacked:
            config = (
                f"sync=True, cursor.putmulti({size}, append=True) in one txn, payloads packed before the loop"
            )
            return Peer("lmdb-prepacked", "lmdb", config, run)
        config = f"sync=True, cursor.putmulti({size}, append=True) in one txn, msgpack.packb in the loop"
        return Peer("lmdb", "lmdb", config, run)

    peers = [
        Peer("eventpak", "eventpak", f'append_batch({size}) of payload dicts, sync="always"', eventpak_),
        Peer("sqlite", "sqlite3", f"WAL, synchronous=FULL, executemany({size}) in one txn", sqlite_),
    ]
    if lmdb.AVAILABLE:
        peers += [lmdb_(prepacked=True), lmdb_(prepacked=False)]
    b.run_case("c", f"durable batches of {size}", peers)
    b.rows += [
        Row("c", "eventpak"),
        Row(
            "c",
            "sqlite",
            ratio=("eventpak", "sqlite", "eventpak / sqlite3"),
            aim=">= 3",
            check=lambda v, r: r >= 3,
        ),
    ]
    if lmdb.AVAILABLE:
        b.rows += [
            Row(
                "c",
                "lmdb-prepacked",
                ratio=("eventpak", "lmdb-prepacked", "eventpak / lmdb (pre-packed)"),
                aim=">= 1.0",
                check=lambda v, r: r >= 1.0,
            ),
            Row("c", "lmdb", ratio=("eventpak", "lmdb", "eventpak / lmdb (packing)")),
        ]
