"""(b) (a) from ``--threads`` threads sharing one store (group commit: concurrent appenders share an
fsync), against eventpak from one thread re-measured in the same rounds, sqlite3 from as many
threads with one connection each, and raw ``write``+``fdatasync`` from as many threads on one fd."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from benches.compare.harness import Bench, Peer, Row, Sample, timed_calls, timed_threads
from benches.compare.peers import eventpak, raw, sqlite


def run(b: Bench) -> None:
    a = b.args
    budget, cap, nthreads = a.durable_seconds, a.durable_max_ops, a.threads

    def eventpak_threads(count: int) -> Callable[[Path], Sample]:
        def run(d: Path) -> Sample:
            store = eventpak.open_store(d, sync="always")
            if count == 1:
                calls, secs = timed_calls(eventpak.thread_append_step(store, 0, count), budget, cap)
                per_thread = [calls]
            else:
                steps = [eventpak.thread_append_step(store, t, count) for t in range(count)]
                calls, secs, per_thread = timed_threads(steps, budget, cap)
            stats = store.stats()
            store.close()
            return Sample(
                calls, secs, {"per_thread": per_thread, "durable_events": stats.get("durable_events")}
            )

        return run

    def sqlite_threads(d: Path) -> Sample:
        path = d / "db.sqlite"
        sqlite.open_db(path, "FULL").close()
        conns = [sqlite.open_db(path, "FULL") for _ in range(nthreads)]
        try:
            steps = [sqlite.insert_step(c) for c in conns]
            calls, secs, per_thread = timed_threads(steps, budget, cap)
        finally:
            for c in conns:
                c.close()
        return Sample(calls, secs, {"per_thread": per_thread})

    def raw_threads(d: Path) -> Sample:
        fd = raw.open_log(d)
        step = raw.durable_step(fd)
        try:
            calls, secs, per_thread = timed_threads([step] * nthreads, budget, cap)
        finally:
            os.close(fd)
        return Sample(calls, secs, {"per_thread": per_thread})

    peers = [
        Peer(
            "eventpak-1t", "eventpak", 'sync="always", 1 thread (= case a, re-measured)', eventpak_threads(1)
        ),
        Peer(
            "eventpak-nt",
            "eventpak",
            f'sync="always", {nthreads} threads, one shared store',
            eventpak_threads(nthreads),
        ),
        Peer(
            "sqlite-nt",
            "sqlite3",
            f"WAL, synchronous=FULL, {nthreads} threads x own connection, autocommit INSERT",
            sqlite_threads,
        ),
        Peer(
            "raw-nt",
            "raw os.write + os.fdatasync",
            f"{nthreads} threads, one shared O_APPEND fd",
            raw_threads,
        ),
    ]
    b.run_case("b", f"one durable append per call, {nthreads} threads", peers)
    b.rows += [
        Row("b", "eventpak-1t"),
        Row(
            "b",
            "eventpak-nt",
            ratio=("eventpak-nt", "eventpak-1t", f"{nthreads} threads / 1 thread"),
            aim=">= 5",
            check=lambda v, r: r >= 5,
        ),
        Row(
            "b",
            "sqlite-nt",
            ratio=("eventpak-nt", "sqlite-nt", f"eventpak / sqlite3 ({nthreads} threads each)"),
        ),
        Row("b", "raw-nt", ratio=("eventpak-nt", "raw-nt", f"eventpak / raw ({nthreads} threads each)")),
    ]
