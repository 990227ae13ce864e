"""(g) a cursor worker delivering the N events of the (load) store to a no-op handler in batches of
1000, timed from the worker's start until the handler has seen all N, against a plain
``cursor.poll_batch(1000)`` loop in the main thread and an lmdb cursor read in lists of 1000 handed
to the same handler. Every system first runs once unmeasured."""

from __future__ import annotations

from pathlib import Path

import eventpak as ep

from benches.compare.cases.load import read_stores
from benches.compare.harness import WORKER_BATCH, Bench, Peer, Row, Sample, perf
from benches.compare.peers import eventpak, lmdb


def run(b: Bench) -> None:
    paths, n = read_stores(b), b.args.events
    store = eventpak.reopen(paths["eventpak"])
    env = None
    if lmdb.AVAILABLE and "lmdb" in paths:
        env = lmdb.open_readonly(paths["lmdb"], n)
    region = ep.Region.all()
    size = WORKER_BATCH

    def worker(d: Path) -> Sample:
        return eventpak.deliver_with_worker(store, n, ep.CursorWorkerConfig(batch_size=size))

    def poll(d: Path) -> Sample:
        handler, _, seen = eventpak.counting_handler(n)
        t0 = perf()
        eventpak.deliver_with_poll(store, region, size, handler)
        secs = perf() - t0
        if seen[0] != n:
            raise RuntimeError(f"poll_batch delivered {seen[0]:,} events, expected {n:,}")
        return Sample(n, secs)

    def lmdb_(d: Path) -> Sample:
        handler, _, seen = eventpak.counting_handler(n)
        t0 = perf()
        lmdb.deliver(env, size, handler)
        secs = perf() - t0
        if seen[0] != n:
            raise RuntimeError(f"lmdb delivered {seen[0]:,} events, expected {n:,}")
        return Sample(n, secs)

    untouched = "no-op handler, payloads not decoded"
    peers = [
        Peer(
            "worker",
            "eventpak",
            f"cursor_worker(Region.all(), batch_size={size}), {untouched}",
            worker,
        ),
        Peer(
            "poll",
            "eventpak",
            f"cursor.poll_batch({size}) loop in the main thread, no worker, same {untouched}",
            poll,
        ),
    ]
    if env is not None:
        peers.append(
            Peer(
                "lmdb",
                "lmdb",
                f"cursor.iternext() in lists of {size} (buffers=True), same handler, values not decoded",
                lmdb_,
            )
        )
    try:
        title = f"deliver {n:,} events to a no-op handler in batches of {size} (warm page cache)"
        b.run_case("g", title, peers, warmup=True)
    finally:
        store.close()
        if env is not None:
            env.close()
    b.rows += [
        Row("g", "worker", aim=">= 1,000,000 ev/s", check=lambda v, r: v >= 1_000_000),
        Row("g", "poll", ratio=("worker", "poll", "worker / poll loop")),
    ]
    if env is not None:
        b.rows.append(Row("g", "lmdb", ratio=("worker", "lmdb", "eventpak worker / lmdb")))
