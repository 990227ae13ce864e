"""(c) durable batches of ``--batch-size``: ``append_batch`` with ``sync="always"`` vs sqlite3
``executemany`` in one transaction (FULL) and lmdb ``cursor.putmulti`` in one txn (``sync=True``)."""

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

    def lmdb_(d: Path) -> Sample:
        env = lmdb.open_env(d, sync=True)
        calls, secs = timed_calls(lmdb.putmulti_step(env, idx), budget, cap)
        env.close()
        return Sample(calls * size, secs, {"batches": calls})

    peers = [
        Peer("eventpak", "eventpak", f'append_batch({size}), sync="always"', eventpak_),
        Peer("sqlite", "sqlite3", f"WAL, synchronous=FULL, executemany({size}) in one txn", sqlite_),
    ]
    if lmdb.AVAILABLE:
        peers.append(
            Peer("lmdb", "lmdb", f"sync=True, cursor.putmulti({size}, append=True) in one txn", lmdb_)
        )
    b.run_case("c", f"durable batches of {size}", peers)
    b.rows += [
        Row("c", "eventpak"),
        Row(
            "c",
            "sqlite",
            ratio=("eventpak", "sqlite", "eventpak / sqlite3"),
            aim=">= 5",
            check=lambda v, r: r >= 5,
        ),
    ]
    if lmdb.AVAILABLE:
        b.rows.append(
            Row(
                "c",
                "lmdb",
                ratio=("eventpak", "lmdb", "eventpak / lmdb"),
                aim=">= 0.5",
                check=lambda v, r: r >= 0.5,
            )
        )
