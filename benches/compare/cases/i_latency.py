"""(i) append-to-handler latency with an idle worker: per round, ``--latency-appends`` single
``store.append`` calls (``sync="batch"``) on a fresh store, each waited for before the next, with
``batch_size=1`` and ``batch_size=64``; the reference is a bare Python thread hand-off (the main
thread sets a ``threading.Event`` that another thread waits on)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import eventpak as ep

from benches._workload import KIND, POOL_MASK
from benches.compare.harness import (
    COORDS,
    LATENCY_WAIT_S,
    PAYLOADS,
    WARMUP_CALLS,
    WORKER_TIMEOUT_S,
    Bench,
    Peer,
    Row,
    Sample,
    latency_rows,
    latency_sample,
    perf,
)
from benches.compare.peers import eventpak


def worker_latency(m: int, batch_size: int) -> Callable[[Path], Sample]:
    """One round: m appends, each timed from just before ``append`` to the handler's clock."""
    clock = time.perf_counter_ns
    region = ep.Region.all()

    def run(d: Path) -> Sample:
        store = eventpak.open_store(d)  # sync="batch", the default
        received: dict[int, int] = {}
        arrived = threading.Event()
        cont = ep.CursorWorkerAction.CONTINUE

        def handler(batch: list[Any], store_: Any, witness: Any) -> ep.CursorWorkerAction:
            t = clock()
            for e in batch:
                received[e.global_sequence] = t
            arrived.set()
            return cont

        handle = store.cursor_worker(region, handler, ep.CursorWorkerConfig(batch_size=batch_size))
        append, wait, clear = store.append, arrived.wait, arrived.clear
        lat: list[int] = []
        try:
            t_start = perf()
            for i in range(-WARMUP_CALLS, m):
                j = i & POOL_MASK
                clear()
                t0 = clock()
                receipt = append(COORDS[j], KIND, PAYLOADS[j])
                # The worker sets ``arrived`` from its handler and, holding the GIL, is back in
                # its native wait (GIL released) before this thread runs again: it is idle at
                # the next append.
                if not wait(LATENCY_WAIT_S):
                    raise RuntimeError(f"append {i} did not reach the handler in {LATENCY_WAIT_S} s")
                if i >= 0:
                    lat.append(received.pop(receipt.global_sequence) - t0)
                else:
                    t_start = perf()
            secs = perf() - t_start
        finally:
            handle.stop_and_join(WORKER_TIMEOUT_S)
            store.close()
        return latency_sample(lat, secs)

    return run


def handoff_latency(m: int) -> Callable[[Path], Sample]:
    """The reference: the same loop with a plain thread woken by a ``threading.Event``."""
    clock = time.perf_counter_ns

    def run(d: Path) -> Sample:
        go, back = threading.Event(), threading.Event()
        stamp, stop = [0], [False]

        def thread() -> None:
            while True:
                go.wait()
                go.clear()
                if stop[0]:
                    return
                stamp[0] = clock()
                back.set()

        th = threading.Thread(target=thread, daemon=True)
        th.start()
        lat: list[int] = []
        t_start = perf()
        for i in range(-WARMUP_CALLS, m):
            back.clear()
            t0 = clock()
            go.set()
            if not back.wait(LATENCY_WAIT_S):
                raise RuntimeError("the hand-off thread did not answer")
            if i >= 0:
                lat.append(stamp[0] - t0)
            else:
                t_start = perf()
        secs = perf() - t_start
        stop[0] = True
        go.set()
        th.join()
        return latency_sample(lat, secs)

    return run


def run(b: Bench) -> None:
    m = b.args.latency_appends
    peers = [
        Peer(
            "bs1", "eventpak", 'cursor_worker(batch_size=1), append with sync="batch"', worker_latency(m, 1)
        ),
        Peer(
            "bs64",
            "eventpak",
            'cursor_worker(batch_size=64), append with sync="batch"',
            worker_latency(m, 64),
        ),
        Peer(
            "handoff",
            "Python threads",
            "reference without eventpak: main sets a threading.Event a thread waits on",
            handoff_latency(m),
        ),
    ]
    b.run_case("i", f"append-to-handler latency with an idle worker, {m:,} single appends", peers)
    for key in ("bs1", "bs64"):
        b.rows += latency_rows("i", key, 100.0, 1000.0)
    b.rows += [
        Row(
            "i",
            "handoff",
            unit="us",
            metric="p50_us",
            note="p50",
            ratio=("bs1", "handoff", "eventpak / this"),
        ),
        Row(
            "i",
            "handoff",
            unit="us",
            metric="p99_us",
            note="p99",
            ratio=("bs1", "handoff", "eventpak / this"),
        ),
    ]
