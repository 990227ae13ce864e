"""asyncio: ``eventpak.aio`` side by side with the sync API driven from an event loop, on the
default asyncio loop and on uvloop, in one run.

    .venv/bin/python -m benches.aio              # full run, ~4 min on 2 cores
    .venv/bin/python -m benches.aio --quick      # smoke run, < 30 s
    .venv/bin/python -m benches.aio --lines 3    # a subset of the lines below

Lines (see benches/README.md, "asyncio"):

  (1) --tasks (100) asyncio tasks each appending single events with sync="always" in a loop
      for a time budget (``await store.append``): aggregate events/s, against case (b) of
      benches.compare measured in the same rounds (--threads (8) threads appending to one sync
      store, sync="always") and against the same tasks calling the sync ``Store.append``
      through ``asyncio.to_thread``
  (2) ``async for event in store.subscribe(Region.all())`` with a no-op body over a
      bulk-loaded store of --events (1,000,000) events, and ``async for batch in
      sub.batches()``: events/s delivered, against a loop of ``await asyncio.to_thread(
      cursor.pull_batch, 1024, 0.0)`` handing each batch to the same no-op body
  (3) append-to-async-handler latency: a thread appends one event every
      --latency-interval-ms (1 ms) to the store (sync="batch") and stamps
      ``perf_counter_ns()`` when its append returns; an async worker (``store.worker``), or
      an ``async for`` over ``store.subscribe``, stamps it first thing in the handler; p50,
      p99, p99.9, max. Peer: the sync ``Store.cursor_worker`` (a thread) handing each batch to
      the loop with ``loop.call_soon_threadsafe``. References: a bare thread-to-loop hand-off
      (``call_soon_threadsafe`` on the same schedule, no store: the machine's floor), and the
      worker with the appends made by a task on the same loop (``await store.append``), timed
      from the call

Every line runs each system on the default loop and on uvloop (when it is installed), each
run on a fresh loop (``asyncio.Runner``) and a fresh store. Rounds are interleaved and each
ratio is the median of the per-round ratios, as in benches.compare, whose harness and report
this reuses.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import eventpak as ep

from benches._workload import KIND, PAYLOAD_BYTES, POOL_MASK, POOL_SIZE
from benches.compare.harness import (
    COORDS,
    LATENCY_WAIT_S,
    PAYLOADS,
    RESULTS_DIR,
    WARMUP_CALLS,
    WORKER_TIMEOUT_S,
    Bench,
    Peer,
    Row,
    Sample,
    latency_sample,
    log,
    perf,
    timed_threads,
)
from benches.compare.peers import eventpak as ep_peer
from benches.compare.report import (
    build_rows,
    json_document,
    machine_info,
    machine_lines,
    report_text,
    write_run,
)

try:
    import uvloop
except ImportError:  # its rows are left out, with a note
    uvloop = None

T = TypeVar("T")

ALL_LINES = "123"
ALL_LOOPS = ("asyncio", "uvloop")
LOOP_NAMES = {"asyncio": "default loop", "uvloop": "uvloop"}
REGION = ep.Region.all()
TASK_WARMUP = WARMUP_CALLS // 4  # untimed appends per task before the start, as timed_threads does per thread
LATENCY_BATCH = 64  # batch_size of every worker of line (3) (CursorWorkerConfig's default)
clock = time.perf_counter_ns


def run_on(loop: str, make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Runs ``make()`` on a fresh event loop of kind ``loop`` ("asyncio" or "uvloop")."""
    factory = uvloop.new_event_loop if loop == "uvloop" and uvloop is not None else None
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(make())


# ----------------------------------------------------------------------------- (1) durable appends


Append = Callable[[ep.Coordinate, str, dict[str, Any]], Awaitable[ep.AppendReceipt]]


async def tasks_appending(
    append: Append, ntasks: int, budget: float, cap: int
) -> tuple[int, float, list[int]]:
    """``ntasks`` tasks, each ``await append(...)`` in a loop after TASK_WARMUP untimed calls,
    all released together; each stops at the deadline or after ``cap // ntasks`` calls.
    Returns (calls, seconds from the release until the last task finished, calls per task)."""
    per_task = max(1, cap // ntasks)
    counts = [0] * ntasks
    ready, go = asyncio.Event(), asyncio.Event()
    warmed = [0]
    end = [0.0]

    async def task(t: int) -> ep.AppendReceipt | None:
        offset = t * POOL_SIZE // ntasks  # each task from its own pool offset, as case (b)'s threads
        for n in range(TASK_WARMUP):
            i = (offset - 1 - n) & POOL_MASK
            await append(COORDS[i], KIND, PAYLOADS[i])
        warmed[0] += 1
        if warmed[0] == ntasks:
            ready.set()
        await go.wait()
        n, receipt, deadline = 0, None, end[0]
        while n < per_task:
            i = (n + offset) & POOL_MASK
            receipt = await append(COORDS[i], KIND, PAYLOADS[i])
            n += 1
            if perf() >= deadline:
                break
        counts[t] = n
        return receipt

    running = [asyncio.create_task(task(t)) for t in range(ntasks)]
    await ready.wait()
    t0 = perf()
    end[0] = t0 + budget
    go.set()
    receipts = await asyncio.gather(*running)
    secs = perf() - t0
    if not all(r is not None and r.durable for r in receipts):
        raise RuntimeError('a sync="always" append returned a receipt that is not durable')
    return sum(counts), secs, counts


def aio_appends(loop: str, ntasks: int, budget: float, cap: int) -> Callable[[Path], Sample]:
    """(1): ``await store.append`` of ``eventpak.aio`` from ``ntasks`` tasks."""

    async def main(d: Path) -> Sample:
        async with ep.aio.open(str(d / "store"), sync="always") as store:
            fsyncs0 = (await store.stats())["fsyncs"]
            calls, secs, counts = await tasks_appending(store.append, ntasks, budget, cap)
            fsyncs = (await store.stats())["fsyncs"] - fsyncs0
        return Sample(
            calls, secs, {"per_task": counts, "fsyncs": fsyncs, "per_fsync": calls / max(fsyncs, 1)}
        )

    return lambda d: run_on(loop, lambda: main(d))


def to_thread_appends(loop: str, ntasks: int, budget: float, cap: int) -> Callable[[Path], Sample]:
    """(1) peer: the sync ``Store.append`` called through ``asyncio.to_thread`` by the same tasks
    (the loop's default executor: min(32, CPUs + 4) threads)."""

    async def main(d: Path) -> Sample:
        store = ep_peer.open_store(d, sync="always")
        try:
            sync_append = store.append

            async def append(coord: ep.Coordinate, kind: str, payload: dict[str, Any]) -> ep.AppendReceipt:
                return await asyncio.to_thread(sync_append, coord, kind, payload)

            fsyncs0 = store.stats()["fsyncs"]
            calls, secs, counts = await tasks_appending(append, ntasks, budget, cap)
            fsyncs = store.stats()["fsyncs"] - fsyncs0
        finally:
            store.close()
        return Sample(
            calls, secs, {"per_task": counts, "fsyncs": fsyncs, "per_fsync": calls / max(fsyncs, 1)}
        )

    return lambda d: run_on(loop, lambda: main(d))


def thread_appends(nthreads: int, budget: float, cap: int) -> Callable[[Path], Sample]:
    """(1) peer: case (b) of benches.compare, ``nthreads`` threads on one sync store."""

    def run(d: Path) -> Sample:
        store = ep_peer.open_store(d, sync="always")
        try:
            steps = [ep_peer.thread_append_step(store, t, nthreads) for t in range(nthreads)]
            fsyncs0 = store.stats()["fsyncs"]
            calls, secs, counts = timed_threads(steps, budget, cap)
            fsyncs = store.stats()["fsyncs"] - fsyncs0
        finally:
            store.close()
        return Sample(
            calls, secs, {"per_thread": counts, "fsyncs": fsyncs, "per_fsync": calls / max(fsyncs, 1)}
        )

    return run


def line_1(b: Bench) -> None:
    a = b.args
    budget, cap, ntasks, nthreads = a.durable_seconds, a.durable_max_ops, a.tasks, a.threads
    peers = [
        Peer(
            "threads",
            "eventpak",
            f'sync="always", {nthreads} threads, Store.append on one store (= case b of benches.compare)',
            thread_appends(nthreads, budget, cap),
        )
    ]
    for loop in b.shared["loops"]:
        peers.append(
            Peer(
                f"aio-{loop}",
                "eventpak.aio",
                f'sync="always", {ntasks} tasks, await store.append; {LOOP_NAMES[loop]}',
                aio_appends(loop, ntasks, budget, cap),
            )
        )
        peers.append(
            Peer(
                f"to_thread-{loop}",
                "eventpak + asyncio.to_thread",
                f'sync="always", {ntasks} tasks, await asyncio.to_thread(Store.append, ...); '
                f"{LOOP_NAMES[loop]}",
                to_thread_appends(loop, ntasks, budget, cap),
            )
        )
    b.run_case("1", f"durable single appends: {ntasks} tasks against {nthreads} threads", peers)
    b.rows.append(Row("1", "threads"))
    for loop in b.shared["loops"]:
        b.rows += [
            Row(
                "1",
                f"aio-{loop}",
                ratio=(f"aio-{loop}", "threads", f"{ntasks} tasks / {nthreads} threads"),
                aim=">= 0.8",
                check=lambda v, r: r is not None and r >= 0.8,
            ),
            Row(
                "1",
                f"to_thread-{loop}",
                ratio=(f"aio-{loop}", f"to_thread-{loop}", "eventpak.aio / to_thread"),
            ),
        ]
    b.rows.append(Row("1", "threads", unit="count", metric="per_fsync", note="events per fsync"))
    b.rows += [
        Row("1", key, unit="count", metric="per_fsync", note="events per fsync")
        for loop in b.shared["loops"]
        for key in (f"aio-{loop}", f"to_thread-{loop}")
    ]


# ------------------------------------------------------------------------------ (2) subscriptions


def event_store(b: Bench, n: int) -> Path:
    """The bulk-loaded n-event store of line (2), made once, closed (with its index checkpoint)."""
    if "events_store" not in b.shared:
        path = b.root / "events-store"
        t0 = perf()
        store = ep.Store.open(str(path), sync="never")
        ep_peer.bulk_load(store, n)
        store.close()
        b.setup["load_seconds"] = perf() - t0
        log(f"   loaded {n:,} events in {b.setup['load_seconds']:.1f} s")
        b.shared["events_store"] = path
    path: Path = b.shared["events_store"]
    return path


def subscribe_events(loop: str, path: Path, n: int) -> Callable[[Path], Sample]:
    """(2): ``async for event in store.subscribe(Region.all())``, a no-op body, until n events."""

    async def main() -> Sample:
        async with ep.aio.open(str(path)) as store:
            seen = 0
            t0 = perf()
            async with store.subscribe(REGION) as sub:
                async for _event in sub:
                    seen += 1
                    if seen == n:
                        break
            secs = perf() - t0
        return Sample(seen, secs)

    return lambda _d: run_on(loop, main)


def subscribe_batches(loop: str, path: Path, n: int) -> Callable[[Path], Sample]:
    """(2): ``async for batch in sub.batches()``, the same no-op body for each event."""

    async def main() -> Sample:
        async with ep.aio.open(str(path)) as store:
            seen = 0
            t0 = perf()
            async with store.subscribe(REGION) as sub:
                async for batch in sub.batches():
                    for _event in batch:
                        pass
                    seen += len(batch)
                    if seen >= n:
                        break
            secs = perf() - t0
        return Sample(seen, secs)

    return lambda _d: run_on(loop, main)


def to_thread_pulls(loop: str, path: Path, n: int) -> Callable[[Path], Sample]:
    """(2) peer: a sync cursor pulled through ``asyncio.to_thread`` in batches of 1024 (the
    subscription's batch), the same no-op body for each event."""

    async def main() -> Sample:
        with ep.Store.open(str(path)) as store:
            seen = 0
            t0 = perf()
            pull = store.cursor(REGION).pull_batch
            while seen < n:
                batch = await asyncio.to_thread(pull, 1024, 0.0)
                if not batch:
                    raise RuntimeError(f"the cursor ran dry after {seen:,} of {n:,} events")
                for _event in batch:
                    pass
                seen += len(batch)
            secs = perf() - t0
        return Sample(seen, secs)

    return lambda _d: run_on(loop, main)


def line_2(b: Bench) -> None:
    n = b.args.events
    path = event_store(b, n)
    peers = []
    for loop in b.shared["loops"]:
        peers += [
            Peer(
                f"events-{loop}",
                "eventpak.aio",
                f"async for event in store.subscribe(Region.all()), no-op body; {LOOP_NAMES[loop]}",
                subscribe_events(loop, path, n),
            ),
            Peer(
                f"batches-{loop}",
                "eventpak.aio",
                f"async for batch in sub.batches(), no-op body per event; {LOOP_NAMES[loop]}",
                subscribe_batches(loop, path, n),
            ),
            Peer(
                f"pull-{loop}",
                "eventpak + asyncio.to_thread",
                f"await asyncio.to_thread(cursor.pull_batch, 1024, 0.0) in a loop, no-op body per event; "
                f"{LOOP_NAMES[loop]}",
                to_thread_pulls(loop, path, n),
            ),
        ]
    b.run_case("2", f"deliver {n:,} stored events to a no-op loop body", peers, warmup=True)
    for loop in b.shared["loops"]:
        pull = f"pull-{loop}"
        b.rows += [
            Row(
                "2",
                f"events-{loop}",
                ratio=(f"events-{loop}", pull, "async for event / to_thread loop"),
                aim=">= 1,000,000 ev/s",
                check=lambda v, r: v >= 1_000_000,
            ),
            Row("2", f"batches-{loop}", ratio=(f"batches-{loop}", pull, "batches() / to_thread loop")),
            Row("2", pull),
        ]


# ------------------------------------------------------------------------------------- (3) latency


class Receiver:
    """What the handler side of a latency run sees: the clock of the first sight of each global
    sequence, and an event set once ``total`` events were seen (every method runs on the loop)."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.seen: dict[int, int] = {}
        self.done = asyncio.Event()

    def batch(self, batch: list[ep.Event]) -> None:
        t = clock()
        for event in batch:
            self.seen.setdefault(event.global_sequence, t)
        if len(self.seen) >= self.total:
            self.done.set()


def appends_on_schedule(
    store: ep.Store, m: int, interval_s: float, stamps: dict[int, tuple[int, int]]
) -> Callable[[], None]:
    """A thread's job: WARMUP_CALLS + m sync appends, one every ``interval_s`` on a fixed
    schedule, each stamped just before the call and just after it returned (timed ones only)."""
    append = store.append

    def job() -> None:
        start = perf()
        for k in range(WARMUP_CALLS + m):
            delay = start + k * interval_s - perf()
            if delay > 0:
                time.sleep(delay)
            j = k & POOL_MASK
            called = clock()
            receipt = append(COORDS[j], KIND, PAYLOADS[j])
            returned = clock()
            if k >= WARMUP_CALLS:
                stamps[receipt.global_sequence] = (called, returned)

    return job


async def task_appends_on_schedule(
    store: ep.aio.AsyncStore, m: int, interval_s: float, stamps: dict[int, tuple[int, int]]
) -> None:
    """The same schedule from a task on the loop, with ``await store.append``."""
    start = perf()
    for k in range(WARMUP_CALLS + m):
        delay = start + k * interval_s - perf()
        if delay > 0:
            await asyncio.sleep(delay)
        j = k & POOL_MASK
        called = clock()
        receipt = await store.append(COORDS[j], KIND, PAYLOADS[j])
        returned = clock()
        if k >= WARMUP_CALLS:
            stamps[receipt.global_sequence] = (called, returned)


def latency(loop: str, receiver: str, appender: str, m: int, interval_s: float) -> Callable[[Path], Sample]:
    """(3): one round of ``m`` timed appends (after WARMUP_CALLS untimed ones) received by
    ``receiver`` ("worker", "subscribe" or "bridge"), made by ``appender`` ("thread" or "task")."""

    async def main(d: Path) -> Sample:
        total = WARMUP_CALLS + m
        got = Receiver(total)
        stamps: dict[int, tuple[int, int]] = {}
        async with ep.aio.open(str(d / "store")) as store:  # sync="batch", the default
            config = ep.CursorWorkerConfig(batch_size=LATENCY_BATCH)
            stop: Callable[[], Awaitable[None]]
            if receiver == "worker":

                async def handler(batch: list[ep.Event], _store: Any, _witness: Any) -> None:
                    got.batch(batch)

                worker = store.worker(REGION, handler, config)
                stop = worker.stop_and_join
            elif receiver == "subscribe":

                async def consume() -> None:
                    async with store.subscribe(REGION) as sub:
                        async for event in sub:
                            got.batch([event])
                            if got.done.is_set():
                                return

                consuming = asyncio.create_task(consume())

                async def stop() -> None:
                    await consuming

            else:  # "bridge": a sync worker thread hands each batch to the loop
                loop_ = asyncio.get_running_loop()
                call_soon = loop_.call_soon_threadsafe

                def bridge(batch: list[ep.Event], _store: Any, _witness: Any) -> None:
                    call_soon(got.batch, batch)

                sync_worker = store.sync_store.cursor_worker(REGION, bridge, config)

                async def stop() -> None:
                    await asyncio.to_thread(sync_worker.stop_and_join, WORKER_TIMEOUT_S)

            t0 = perf()
            if appender == "thread":
                job = appends_on_schedule(store.sync_store, m, interval_s, stamps)
                thread = threading.Thread(target=job, name="appender", daemon=True)
                thread.start()
                await asyncio.wait_for(got.done.wait(), total * interval_s + LATENCY_WAIT_S)
                await asyncio.to_thread(thread.join)
            else:
                await task_appends_on_schedule(store, m, interval_s, stamps)
                await asyncio.wait_for(got.done.wait(), LATENCY_WAIT_S)
            secs = perf() - t0
            await asyncio.wait_for(stop(), WORKER_TIMEOUT_S)
        origin = 1 if appender == "thread" else 0  # from the return (thread) or the call (task)
        lat = [got.seen[seq] - stamp[origin] for seq, stamp in stamps.items()]
        sample = latency_sample(lat, secs)
        sample.extra["before_return"] = sum(1 for x in lat if x < 0)
        sample.extra["append_p50_us"] = latency_sample([r - c for c, r in stamps.values()], secs).extra[
            "p50_us"
        ]
        return sample

    return lambda d: run_on(loop, lambda: main(d))


def wakeup_floor(loop: str, m: int, interval_s: float) -> Callable[[Path], Sample]:
    """(3) reference without eventpak: a thread, on the same schedule, stamps the clock and
    hands the loop a callback with ``loop.call_soon_threadsafe``; the callback stamps it again
    (the machine's thread-to-loop wake-up, which every delivery to the loop pays at least once)."""

    async def main() -> Sample:
        total = WARMUP_CALLS + m
        got = Receiver(total)
        sent: dict[int, int] = {}
        call_soon = asyncio.get_running_loop().call_soon_threadsafe

        def arrive(k: int) -> None:
            got.seen[k] = clock()
            if len(got.seen) >= total:
                got.done.set()

        def job() -> None:
            start = perf()
            for k in range(total):
                delay = start + k * interval_s - perf()
                if delay > 0:
                    time.sleep(delay)
                sent[k] = clock()
                call_soon(arrive, k)

        t0 = perf()
        thread = threading.Thread(target=job, name="sender", daemon=True)
        thread.start()
        await asyncio.wait_for(got.done.wait(), total * interval_s + LATENCY_WAIT_S)
        await asyncio.to_thread(thread.join)
        secs = perf() - t0
        return latency_sample([got.seen[k] - sent[k] for k in range(WARMUP_CALLS, total)], secs)

    return lambda _d: run_on(loop, main)


def latency_rows(key: str, aims: bool, ratio_to: str | None = None) -> list[Row]:
    """p50, p99, p99.9 and max of a latency peer: against the aims, or as a ratio to another peer."""
    rows = []
    for metric, note, aim_us in (
        ("p50_us", "p50", 150.0),
        ("p99_us", "p99", 1000.0),
        ("p99.9_us", "p99.9", None),
    ):
        row = Row("3", key, unit="us", metric=metric, note=note)
        if aims and aim_us is not None:
            row.ratio_to = (aim_us, f"{note} / aim")
            row.aim = f"<= {aim_us:g} us" if aim_us < 1000 else f"<= {aim_us / 1000:g} ms"
            row.check = lambda v, r, limit=aim_us: v <= limit
        elif ratio_to is not None:
            row.ratio = (ratio_to, key, "aio worker / this")
        rows.append(row)
    rows.append(Row("3", key, unit="us", metric="max_us", note="max"))
    return rows


def line_3(b: Bench) -> None:
    a = b.args
    m, interval = a.latency_appends, a.latency_interval_ms / 1000
    every = f"1 append every {a.latency_interval_ms:g} ms"
    batch = f"batch_size={LATENCY_BATCH}"
    peers = []
    for loop in b.shared["loops"]:
        name = LOOP_NAMES[loop]
        peers += [
            Peer(
                f"worker-{loop}",
                "eventpak.aio",
                f"store.worker({batch}), appends from a thread; {name}",
                latency(loop, "worker", "thread", m, interval),
            ),
            Peer(
                f"subscribe-{loop}",
                "eventpak.aio",
                f"async for event in store.subscribe(), appends from a thread; {name}",
                latency(loop, "subscribe", "thread", m, interval),
            ),
            Peer(
                f"bridge-{loop}",
                "eventpak sync worker",
                f"Store.cursor_worker({batch}) thread + loop.call_soon_threadsafe, "
                f"appends from a thread; {name}",
                latency(loop, "bridge", "thread", m, interval),
            ),
            Peer(
                f"floor-{loop}",
                "asyncio",
                f"reference without eventpak: a thread hands the loop a callback with "
                f"call_soon_threadsafe, {every}; {name}",
                wakeup_floor(loop, m, interval),
            ),
            Peer(
                f"task-{loop}",
                "eventpak.aio",
                f"store.worker({batch}), appends from a task on the loop, from the call (reference); {name}",
                latency(loop, "worker", "task", m, interval),
            ),
        ]
    b.run_case("3", f"append-to-async-handler latency, {m:,} appends, {every}", peers)
    for loop in b.shared["loops"]:
        b.rows += latency_rows(f"worker-{loop}", aims=True)
        b.rows += latency_rows(f"subscribe-{loop}", aims=True)
        b.rows += latency_rows(f"bridge-{loop}", aims=False, ratio_to=f"worker-{loop}")
        floor = latency_rows(f"floor-{loop}", aims=False, ratio_to=f"worker-{loop}")
        b.rows += [r for r in floor if r.note != "p99.9"]
        b.rows += [r for r in latency_rows(f"task-{loop}", aims=False) if r.note in ("p50", "p99")]


LINES: dict[str, Callable[[Bench], None]] = {"1": line_1, "2": line_2, "3": line_3}


# --------------------------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    description = (__doc__ or "").split("\n\n")[0]
    p = argparse.ArgumentParser(prog="python -m benches.aio", description=description)
    p.add_argument("--quick", action="store_true", help="small smoke run (< 30 s)")
    p.add_argument("--rounds", type=int, help="interleaved rounds per line (default 5; quick 2)")
    p.add_argument("--tasks", type=int, default=100, help="appending tasks of line (1) (default 100)")
    p.add_argument(
        "--threads", type=int, default=8, help="appending threads of line (1)'s case (b) (default 8)"
    )
    p.add_argument(
        "--durable-seconds", type=float, help="time budget of one run of line (1) (default 2.0; quick 0.3)"
    )
    p.add_argument(
        "--durable-max-ops",
        type=int,
        help="call cap of one run of line (1), split between its tasks or threads "
        "(default 400,000; quick 40,000)",
    )
    p.add_argument(
        "--events", type=int, help="events delivered in line (2) (default 1,000,000; quick 20,000)"
    )
    p.add_argument(
        "--latency-appends", type=int, help="timed appends per round in line (3) (default 3,000; quick 200)"
    )
    p.add_argument(
        "--latency-interval-ms",
        type=float,
        default=1.0,
        help="time between two appends of line (3) (default 1 ms)",
    )
    p.add_argument("--lines", default=ALL_LINES, help=f"which lines to run, e.g. '13' (default {ALL_LINES})")
    p.add_argument(
        "--loops",
        default=",".join(ALL_LOOPS),
        help="event loops, comma-separated (default asyncio,uvloop; uvloop is left out when not installed)",
    )
    p.add_argument("--dir", help="parent directory for the temporary stores (default: the system temp dir)")
    p.add_argument(
        "--json", help="where to write the JSON (default benches/results/aio.json; quick aio-quick.json)"
    )
    a = p.parse_args(argv)
    q = a.quick
    defaults = {
        "rounds": (5, 2),
        "durable_seconds": (2.0, 0.3),
        "durable_max_ops": (400_000, 40_000),
        "events": (1_000_000, 20_000),
        "latency_appends": (3_000, 200),
    }
    for name, (full, quick) in defaults.items():
        if getattr(a, name) is None:
            setattr(a, name, quick if q else full)
    if a.json is None:
        a.json = str(RESULTS_DIR / ("aio-quick.json" if q else "aio.json"))
    unknown = set(a.lines) - set(ALL_LINES)
    if unknown:
        p.error(f"unknown lines: {''.join(sorted(unknown))}")
    a.loops = [name.strip() for name in a.loops.split(",") if name.strip()]
    if not a.loops or set(a.loops) - set(ALL_LOOPS):
        p.error(f"--loops takes names among {', '.join(ALL_LOOPS)}")
    sizes = [a.rounds, a.tasks, a.threads, a.durable_max_ops, a.events, a.latency_appends]
    if min(sizes) < 1 or min(a.durable_seconds, a.latency_interval_ms) <= 0:
        p.error("sizes and times must be positive")
    return a


def markdown(b: Bench, rows: list[dict[str, Any]], machine: dict[str, Any]) -> str:
    a = b.args
    loops = ", ".join(f"{loop} {b.shared['loop_versions'][loop]}" for loop in b.shared["loops"])
    lines = [
        *machine_lines(machine),
        f"Loops: {loops}",
        f"Settings: rounds={a.rounds}, tasks={a.tasks}, threads={a.threads}, "
        f"durable {a.durable_seconds:g} s or "
        f"{a.durable_max_ops:,} calls per run, events={a.events:,}, latency appends={a.latency_appends:,} "
        f"every {a.latency_interval_ms:g} ms after {WARMUP_CALLS} untimed, payload={PAYLOAD_BYTES} B msgpack",
    ]
    return report_text(lines, b, rows)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = perf()
    with tempfile.TemporaryDirectory(prefix="eventpak-aio-bench-", dir=args.dir) as tmp:
        root = Path(tmp)
        machine = machine_info(root)
        b = Bench(args, root)
        loops = list(args.loops)
        if "uvloop" in loops and uvloop is None:
            loops.remove("uvloop")
            b.notes.append("uvloop is not installed: its rows are missing")
        b.shared["loops"] = loops
        b.shared["loop_versions"] = {
            "asyncio": f"(Python {sys.version.split()[0]})",
            "uvloop": getattr(uvloop, "__version__", "?"),
        }
        for line, run in LINES.items():
            if line in args.lines:
                run(b)
    total = perf() - started
    rows = build_rows(b)
    table = markdown(b, rows, machine)
    doc = json_document(b, args, argv, machine, rows, table, total, module="benches.aio")
    doc["machine"]["loops"] = {loop: b.shared["loop_versions"][loop] for loop in b.shared["loops"]}
    write_run(table, total, doc, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
