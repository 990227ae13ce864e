"""Shared mode: several processes on one data dir (``Store.open(path, shared=True)``), side by
side with sqlite3 in WAL mode used from the same processes.

    .venv/bin/python -m benches.shared             # full run
    .venv/bin/python -m benches.shared --quick     # smoke run
    .venv/bin/python -m benches.shared --lines 14  # a subset of the lines below

Lines (see benches/README.md):

  (1)  --processes (4) processes appending single events with sync="always", each to its own
       entities: aggregate events/s against ONE process's single-thread durable rate on an
       exclusive store (case (a) of benches.compare); sqlite3 WAL synchronous=FULL likewise;
       raw os.write + os.fdatasync from one process as the disk's reference
  (2)  the same with sync="batch" against one process alone; sqlite3 WAL synchronous=NORMAL
  (3a) one process, shared=True against exclusive: durable single appends
  (3d) the same, buffered single appends (sync="batch")
  (3e) the same, reading N events with payloads decoded
  (4)  cross-process append-to-handler latency: process A appends one event every
       --latency-interval-ms, process B's cursor_worker (or a pull_batch loop) receives it;
       sqlite3 reference: B polls every --poll-ms; floor reference: a FIFO between A and B
  (5)  memory (VmRSS) per process after opening an N-event store shared by --processes processes

The processes are started once with the "spawn" context (a store is opened in each process,
never inherited) and kept for lines (1)-(4); line (5) starts fresh ones per round so that no
earlier allocation is reused. Each multi-process run is released by a barrier: every process
opens its store (and warms up), reports ready, and the parent releases them all at once; wall
time runs from that release until the last process finishes. Rounds are interleaved and every
ratio is the median of the per-round ratios, as in benches.compare; lines (1) and (2) run more,
shorter rounds (--write-rounds), since their ratios compare runs made one after the other.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import multiprocessing as mp
import multiprocessing.connection
import os
import shutil
import sqlite3
import struct
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import eventpak as ep

from benches._workload import KIND, PAYLOAD_BYTES, POOL_SIZE
from benches.compare.harness import (
    COORDS,
    ENTITIES,
    PAYLOADS,
    RESULTS_DIR,
    WARMUP_CALLS,
    Bench,
    Peer,
    Row,
    Sample,
    latency_rows,
    latency_sample,
    log,
    packb,
    perf,
    timed_read,
    unpackb,
)
from benches.compare.peers import eventpak as ep_peer
from benches.compare.peers import raw as raw_peer
from benches.compare.peers import sqlite as sq_peer
from benches.compare.report import (
    finish_run,
    machine_info,
    machine_lines,
    report_text,
)

ALL_LINES = "12345"
JOB_TIMEOUT_S = 600.0  # a process that has not answered by then fails the run
SQLITE_BUSY_MS = 120_000
mono_ns = time.monotonic_ns  # CLOCK_MONOTONIC: one clock for every process on Linux
mono = time.monotonic


# ------------------------------------------------------------------------------------- the workload


def own_indices(proc: int, procs: int) -> tuple[int, int]:
    """Process ``proc`` of ``procs`` writes only the pool entries ``base .. base + span - 1``,
    so every process has its own entity set (1,024 / procs entities each)."""
    span = POOL_SIZE // procs
    return proc * span, span


def ep_step(store: ep.Store, proc: int, procs: int) -> Callable[[int], Any]:
    append = store.append
    base, span = own_indices(proc, procs)

    def step(n: int) -> Any:
        i = base + n % span
        return append(COORDS[i], KIND, PAYLOADS[i])

    return step


def sqlite_connect(path: str, synchronous: str) -> sqlite3.Connection:
    """An autocommit connection to the WAL database the parent created, with a busy timeout."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=SQLITE_BUSY_MS / 1000)
    conn.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_MS}")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
    if mode.lower() != "wal":
        raise RuntimeError(f"expected a WAL database, found journal_mode={mode!r}")
    return conn


def sqlite_step(conn: sqlite3.Connection, proc: int, procs: int) -> Callable[[int], None]:
    """One INSERT per call; in autocommit mode each is its own committed transaction."""
    execute = conn.execute
    base, span = own_indices(proc, procs)

    def step(n: int) -> None:
        i = base + n % span
        execute(sq_peer.INSERT, (ENTITIES[i], KIND, packb(PAYLOADS[i])))

    return step


def sqlite_create(path: Path) -> None:
    """The database of one run, in WAL mode with its table, before any process opens it."""
    sq_peer.open_db(path, "FULL").close()


def rss() -> dict[str, int]:
    """VmRSS and its parts (anonymous, file-backed, shared memory) of this process, in bytes."""
    out: dict[str, int] = {}
    with open("/proc/self/status") as fh:
        for line in fh:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "RssAnon", "RssFile", "RssShmem"):
                out[key] = int(rest.split()[0]) * 1024
    return out


# ------------------------------------------------------------------------- jobs (run in the processes)
#
# A job is a generator: it sets up (opens its store, warms up) and yields; the process then
# reports ready and waits. When every process of the run is ready the parent sends ``Go`` (the
# barrier), which the job receives from its ``yield`` and runs; its return value goes back.


@dataclass(frozen=True)
class Go:
    t0_ns: int  # CLOCK_MONOTONIC when the parent released the barrier
    deadline: float | None  # CLOCK_MONOTONIC seconds when a budgeted loop must stop


Job = Generator[None, Go, dict[str, Any]]


def budget_loop(step: Callable[[int], Any], go: Go, cap: int) -> tuple[int, int, int, Any]:
    """Calls ``step(n)`` until the deadline or ``cap`` calls; (calls, start ns, end ns, last result)."""
    start = mono_ns()
    end_at = go.deadline if go.deadline is not None else float("inf")
    n, last = 0, None
    while n < cap:
        last = step(n)
        n += 1
        if mono() >= end_at:
            break
    return n, start, mono_ns(), last


def job_ep_append(path: str, shared: bool, sync: str, proc: int, procs: int, cap: int) -> Job:
    store = ep.Store.open(path, shared=shared, sync=sync)
    try:
        step = ep_step(store, proc, procs)
        for n in range(WARMUP_CALLS):
            step(-1 - n)
        fsyncs0 = store.stats()["fsyncs"]
        go = yield
        calls, start, end, receipt = budget_loop(step, go, cap)
        fsyncs = store.stats()["fsyncs"] - fsyncs0
        return {
            "calls": calls,
            "start_ns": start,
            "end_ns": end,
            "fsyncs": fsyncs,
            "last_durable": bool(receipt.durable) if receipt is not None else None,
        }
    finally:
        store.close()


def job_sqlite_insert(path: str, synchronous: str, proc: int, procs: int, cap: int) -> Job:
    conn = sqlite_connect(path, synchronous)
    try:
        step = sqlite_step(conn, proc, procs)
        for n in range(WARMUP_CALLS):
            step(-1 - n)
        go = yield
        calls, start, end, _ = budget_loop(step, go, cap)
        return {"calls": calls, "start_ns": start, "end_ns": end}
    finally:
        conn.close()


def job_raw_append(dir: str, cap: int) -> Job:
    """The disk's own rate: ``os.write`` + ``os.fdatasync`` of one record per call (compare's raw peer)."""
    fd = raw_peer.open_log(Path(dir))
    try:
        step = raw_peer.durable_step(fd)
        for n in range(WARMUP_CALLS):
            step(-1 - n)
        go = yield
        calls, start, end, _ = budget_loop(step, go, cap)
        return {"calls": calls, "start_ns": start, "end_ns": end}
    finally:
        os.close(fd)


def paced(go: Go, i: int, warmup: int, interval_s: float) -> None:
    """Sleeps until the ``i``-th send time of a fixed schedule (one every ``interval_s``)."""
    wait = go.t0_ns / 1e9 + (i + warmup + 1) * interval_s - mono()
    if wait > 0:
        time.sleep(wait)


LATENCY_PAYLOAD = {k: v for k, v in PAYLOADS[0].items() if k != "note"}


def job_ep_sender(path: str, m: int, warmup: int, interval_s: float) -> Job:
    """Process A of line (4): appends one event per interval (sync="batch", the default), its
    CLOCK_MONOTONIC send time and index in the payload."""
    store = ep.Store.open(path, shared=True)
    try:
        append, coord = store.append, COORDS[0]
        go = yield
        for i in range(-warmup, m):
            paced(go, i, warmup, interval_s)
            payload = dict(LATENCY_PAYLOAD)
            payload["t"] = t = mono_ns()
            payload["i"] = i
            append(coord, KIND, payload)
        return {"sent": m + warmup, "t_last_ns": t}
    finally:
        store.close()


def latency_result(lat: list[int], got: int, total: int) -> dict[str, Any]:
    if got < total:
        raise RuntimeError(f"received {got:,} of {total:,} events before the timeout")
    return {"lat_ns": lat}


def job_ep_worker(path: str, m: int, warmup: int, batch_size: int, timeout_s: float) -> Job:
    """Process B of line (4): a cursor_worker whose handler takes CLOCK_MONOTONIC first, then
    reads each event's send time from its payload."""
    store = ep.Store.open(path, shared=True)
    try:
        total = m + warmup
        lat: list[int] = []
        got = [0]
        done = threading.Event()
        cont = ep.CursorWorkerAction.CONTINUE

        def handler(batch: list[Any], store_: Any, witness: Any) -> ep.CursorWorkerAction:
            t = mono_ns()
            for e in batch:
                p = e.payload
                if p["i"] >= 0:
                    lat.append(t - p["t"])
            got[0] += len(batch)
            if got[0] >= total:
                done.set()
            return cont

        config = ep.CursorWorkerConfig(batch_size=batch_size)
        handle = store.cursor_worker(ep.Region.all(), handler, config)
        try:
            yield
            done.wait(timeout_s)
        finally:
            handle.stop_and_join(60.0)
        return latency_result(lat, got[0], total)
    finally:
        store.close()


def job_ep_pull(path: str, m: int, warmup: int, batch_size: int, timeout_s: float) -> Job:
    """Process B of line (4), without a worker: a blocking ``cursor.pull_batch`` loop."""
    store = ep.Store.open(path, shared=True)
    try:
        total = m + warmup
        lat: list[int] = []
        got = 0
        pull = store.cursor(ep.Region.all()).pull_batch
        go = yield
        end_at = go.t0_ns / 1e9 + timeout_s
        while got < total and mono() < end_at:
            batch = pull(batch_size, 1.0)
            t = mono_ns()
            for e in batch:
                p = e.payload
                if p["i"] >= 0:
                    lat.append(t - p["t"])
            got += len(batch)
        return latency_result(lat, got, total)
    finally:
        store.close()


def job_sqlite_sender(path: str, m: int, warmup: int, interval_s: float) -> Job:
    """Process A of the sqlite3 reference of line (4): one autocommit INSERT per interval
    (synchronous=NORMAL: committed, not fsynced), the send time in the msgpack payload."""
    conn = sqlite_connect(path, "NORMAL")
    try:
        execute, entity = conn.execute, ENTITIES[0]
        go = yield
        for i in range(-warmup, m):
            paced(go, i, warmup, interval_s)
            payload = dict(LATENCY_PAYLOAD)
            payload["t"] = mono_ns()
            payload["i"] = i
            execute(sq_peer.INSERT, (entity, KIND, packb(payload)))
        return {"sent": m + warmup}
    finally:
        conn.close()


def job_sqlite_poller(path: str, m: int, warmup: int, poll_s: float, timeout_s: float) -> Job:
    """Process B of the sqlite3 reference: SELECT the rows after the last one seen; when there
    are none, sleep ``poll_s`` and ask again (sqlite has no cross-process change notification)."""
    conn = sqlite_connect(path, "NORMAL")
    try:
        total = m + warmup
        lat: list[int] = []
        got, last = 0, 0
        select = "SELECT seq, payload FROM events WHERE seq > ? ORDER BY seq"
        execute, sleep = conn.execute, time.sleep
        go = yield
        end_at = go.t0_ns / 1e9 + timeout_s
        while got < total and mono() < end_at:
            rows = execute(select, (last,)).fetchall()
            if not rows:
                sleep(poll_s)
                continue
            t = mono_ns()
            for _seq, blob in rows:
                p = unpackb(blob)
                if p["i"] >= 0:
                    lat.append(t - p["t"])
            got += len(rows)
            last = rows[-1][0]
        return latency_result(lat, got, total)
    finally:
        conn.close()


FRAME = struct.Struct("<qi")


def job_fifo_sender(path: str, m: int, warmup: int, interval_s: float) -> Job:
    """The floor reference of line (4): A writes its send time into a FIFO B blocks on."""
    fd = os.open(path, os.O_RDWR)
    try:
        write, pack = os.write, FRAME.pack
        go = yield
        for i in range(-warmup, m):
            paced(go, i, warmup, interval_s)
            write(fd, pack(mono_ns(), i))
        return {"sent": m + warmup}
    finally:
        os.close(fd)


def job_fifo_receiver(path: str, m: int, warmup: int, timeout_s: float) -> Job:
    fd = os.open(path, os.O_RDWR)
    try:
        total = m + warmup
        lat: list[int] = []
        read, unpack, size = os.read, FRAME.unpack, FRAME.size
        yield
        buf = b""
        got = 0
        while got < total:
            chunk = read(fd, size * 64)
            t = mono_ns()
            buf += chunk
            while len(buf) >= size:
                sent, i = unpack(buf[:size])
                buf = buf[size:]
                got += 1
                if i >= 0:
                    lat.append(t - sent)
        return latency_result(lat, got, total)
    finally:
        os.close(fd)


def job_memory(path: str, shared: bool, events: int) -> Job:
    """Line (5): VmRSS before and after opening the store; ``Go`` comes once every process of
    the run has it open, and the figures are read again then."""
    before = rss()
    t0 = perf()
    store = ep.Store.open(path, shared=shared)
    open_s = perf() - t0
    try:
        after = rss()
        head = store.head()
        if head != events - 1:
            raise RuntimeError(f"the store's head is {head}, expected {events - 1}")
        yield
        together = rss()
        return {"before": before, "after": after, "together": together, "open_s": open_s}
    finally:
        store.close()


JOBS: dict[str, Callable[..., Job]] = {
    "ep_append": job_ep_append,
    "sqlite_insert": job_sqlite_insert,
    "raw_append": job_raw_append,
    "ep_sender": job_ep_sender,
    "ep_worker": job_ep_worker,
    "ep_pull": job_ep_pull,
    "sqlite_sender": job_sqlite_sender,
    "sqlite_poller": job_sqlite_poller,
    "fifo_sender": job_fifo_sender,
    "fifo_receiver": job_fifo_receiver,
    "memory": job_memory,
}


def serve(conn: multiprocessing.connection.Connection) -> None:
    """The loop of one process: run the jobs the parent sends, one at a time."""
    while True:
        msg = conn.recv()
        if msg[0] == "stop":
            return
        _, name, kwargs = msg
        gc.collect()
        try:
            job = JOBS[name](**kwargs)
            next(job)
        except BaseException:
            conn.send(("error", traceback.format_exc()))
            continue
        conn.send(("ready", None))
        msg = conn.recv()
        if msg[0] == "abort":
            job.close()
            conn.send(("aborted", None))
            continue
        try:
            job.send(msg[1])
        except StopIteration as stop:
            conn.send(("done", stop.value))
        except BaseException:
            conn.send(("error", traceback.format_exc()))
        else:
            conn.send(("error", f"job {name} yielded twice"))


# ------------------------------------------------------------------------------ processes (parent)


class Procs:
    """Processes started with the "spawn" context, each running :func:`serve`."""

    def __init__(self, count: int) -> None:
        ctx = mp.get_context("spawn")
        self.conns: list[multiprocessing.connection.Connection] = []
        self.procs: list[Any] = []
        for i in range(count):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=serve, args=(child,), name=f"benches.shared-{i}", daemon=True)
            proc.start()
            child.close()
            self.conns.append(parent)
            self.procs.append(proc)

    def _recv(self, i: int) -> tuple[str, Any]:
        conn = self.conns[i]
        if not conn.poll(JOB_TIMEOUT_S):
            raise RuntimeError(f"process {i} did not answer in {JOB_TIMEOUT_S:.0f} s")
        msg: tuple[str, Any] = conn.recv()
        return msg

    def run(
        self, jobs: list[tuple[str, dict[str, Any]]], budget_s: float | None = None
    ) -> tuple[int, list[Any]]:
        """Runs job i in process i: all set up, then all released together (the barrier).
        Returns the release time (CLOCK_MONOTONIC ns) and the jobs' results."""
        used = range(len(jobs))
        for i, (name, kwargs) in zip(used, jobs, strict=True):
            self.conns[i].send(("job", name, kwargs))
        answers = [self._recv(i) for i in used]
        errors = [(i, a[1]) for i, a in zip(used, answers, strict=True) if a[0] != "ready"]
        if errors:
            for i, a in zip(used, answers, strict=True):
                if a[0] == "ready":
                    self.conns[i].send(("abort", None))
                    self._recv(i)
            raise RuntimeError("set-up failed:\n" + "\n".join(f"process {i}: {e}" for i, e in errors))
        t0 = mono_ns()
        go = Go(t0, None if budget_s is None else t0 / 1e9 + budget_s)
        for i in used:
            self.conns[i].send(("go", go))
        done = [self._recv(i) for i in used]
        errors = [(i, a[1]) for i, a in zip(used, done, strict=True) if a[0] != "done"]
        if errors:
            raise RuntimeError("run failed:\n" + "\n".join(f"process {i}: {e}" for i, e in errors))
        return t0, [a[1] for a in done]

    def close(self) -> None:
        for conn in self.conns:
            with contextlib.suppress(OSError):
                conn.send(("stop",))
        for proc in self.procs:
            proc.join(10)
            if proc.is_alive():
                proc.terminate()
                proc.join()


def procs_of(b: Bench) -> Procs:
    if "procs" not in b.shared:
        n = max(b.args.processes, 2)
        t0 = perf()
        b.shared["procs"] = Procs(n)
        log(f"   started {n} processes (spawn) in {perf() - t0:.2f} s")
    procs: Procs = b.shared["procs"]
    return procs


def aggregate(t0: int, results: list[dict[str, Any]], extra: dict[str, Any] | None = None) -> Sample:
    """Events of every process over the wall time from the barrier to the last one's end."""
    calls = sum(r["calls"] for r in results)
    seconds = (max(r["end_ns"] for r in results) - t0) / 1e9
    out = {"per_process": [r["calls"] for r in results], **(extra or {})}
    return Sample(calls, seconds, out)


def check_store(path: Path, expected: int) -> None:
    """After a run: the store holds every event appended, in one dense order."""
    with ep.Store.open(str(path)) as store:
        stats = store.stats()
        head = store.head()
    if stats["events"] != expected or head != expected - 1:
        raise RuntimeError(f"the store holds {stats['events']:,} events (head {head}), expected {expected:,}")


def check_sqlite(path: Path, expected: int) -> None:
    conn = sqlite3.connect(str(path))
    try:
        count, top = conn.execute("SELECT count(*), max(seq) FROM events").fetchone()
    finally:
        conn.close()
    if count != expected or top != expected:
        raise RuntimeError(f"the database holds {count:,} rows (max seq {top}), expected {expected:,}")


# --------------------------------------------------------------------------------- lines (1) and (2)


def ep_appenders(
    b: Bench, procs: int, shared: bool, sync: str, budget: float, cap: int
) -> Callable[[Path], Sample]:
    def run(d: Path) -> Sample:
        path = d / "store"
        jobs = [
            (
                "ep_append",
                {
                    "path": str(path),
                    "shared": shared,
                    "sync": sync,
                    "proc": p,
                    "procs": procs,
                    "cap": max(1, cap // procs),
                },
            )
            for p in range(procs)
        ]
        t0, results = procs_of(b).run(jobs, budget)
        # stats()["fsyncs"]: the fsyncs each process ran itself, during the timed loop.
        fsyncs = sum(r["fsyncs"] for r in results)
        s = aggregate(t0, results, {"fsyncs": fsyncs})
        s.extra["events_per_fsync"] = s.events / fsyncs if fsyncs else 0.0
        if sync == "always":
            s.extra["all_durable"] = all(r["last_durable"] for r in results)
            if not s.extra["all_durable"]:
                raise RuntimeError("a sync='always' receipt came back not durable")
        check_store(path, s.events + procs * WARMUP_CALLS)
        return s

    return run


def sqlite_inserters(
    b: Bench, procs: int, synchronous: str, budget: float, cap: int
) -> Callable[[Path], Sample]:
    def run(d: Path) -> Sample:
        path = d / "db.sqlite"
        sqlite_create(path)
        jobs = [
            (
                "sqlite_insert",
                {
                    "path": str(path),
                    "synchronous": synchronous,
                    "proc": p,
                    "procs": procs,
                    "cap": max(1, cap // procs),
                },
            )
            for p in range(procs)
        ]
        t0, results = procs_of(b).run(jobs, budget)
        s = aggregate(t0, results)
        check_sqlite(path, s.events + procs * WARMUP_CALLS)
        return s

    return run


def raw_appender(b: Bench, cap: int, budget: float) -> Callable[[Path], Sample]:
    def run(d: Path) -> Sample:
        t0, results = procs_of(b).run([("raw_append", {"dir": str(d), "cap": cap})], budget)
        return aggregate(t0, results)

    return run


def line_1(b: Bench) -> None:
    a, n = b.args, b.args.processes
    budget, cap = a.durable_seconds, a.durable_max_ops
    peers = [
        Peer(
            "ep-n",
            "eventpak",
            f'{n} processes, shared=True, sync="always", 1 append per call each',
            ep_appenders(b, n, True, "always", budget, cap),
        ),
        Peer(
            "ep-1",
            "eventpak",
            '1 process, exclusive, sync="always", 1 append per call (case (a))',
            ep_appenders(b, 1, False, "always", budget, cap),
        ),
        Peer(
            "sq-n",
            "sqlite3",
            f"{n} processes, WAL, synchronous=FULL, 1 INSERT committed per event, "
            f"busy_timeout={SQLITE_BUSY_MS // 1000} s",
            sqlite_inserters(b, n, "FULL", budget, cap),
        ),
        Peer(
            "sq-1",
            "sqlite3",
            "1 process, WAL, synchronous=FULL, 1 INSERT committed per event",
            sqlite_inserters(b, 1, "FULL", budget, cap),
        ),
        Peer(
            "raw-1",
            "raw os.write + os.fdatasync",
            "1 process, 4-byte length + msgpack per record (the disk's fsync rate, reference)",
            raw_appender(b, cap, budget),
        ),
    ]
    title = f"durable single appends (fsync per call) from {n} processes against 1"
    b.run_case("1", title, peers, rounds=a.write_rounds)
    b.rows += [
        Row("1", "ep-n", ratio=("ep-n", "ep-1", f"{n} processes / 1"), aim=">= 3", check=lambda v, r: r >= 3),
        Row("1", "ep-1"),
        Row("1", "raw-1", ratio=("ep-1", "raw-1", "eventpak 1 process / raw")),
        Row("1", "sq-n", ratio=("sq-n", "sq-1", f"{n} processes / 1")),
        Row("1", "sq-1"),
        Row("1", "sq-n", ratio=("ep-n", "sq-n", f"eventpak / sqlite3 ({n} processes each)")),
        Row("1", "ep-n", unit="count", metric="events_per_fsync", note="events per fsync"),
    ]


def line_2(b: Bench) -> None:
    a, n = b.args, b.args.processes
    budget, cap = a.batch_seconds, a.write_events
    peers = [
        Peer(
            "ep-n",
            "eventpak",
            f'{n} processes, shared=True, sync="batch", 1 append per call each',
            ep_appenders(b, n, True, "batch", budget, cap),
        ),
        Peer(
            "ep-1",
            "eventpak",
            '1 process, exclusive, sync="batch", 1 append per call',
            ep_appenders(b, 1, False, "batch", budget, cap),
        ),
        Peer(
            "sq-n",
            "sqlite3",
            f"{n} processes, WAL, synchronous=NORMAL, 1 INSERT committed per event, "
            f"busy_timeout={SQLITE_BUSY_MS // 1000} s",
            sqlite_inserters(b, n, "NORMAL", budget, cap),
        ),
        Peer(
            "sq-1",
            "sqlite3",
            "1 process, WAL, synchronous=NORMAL, 1 INSERT committed per event",
            sqlite_inserters(b, 1, "NORMAL", budget, cap),
        ),
    ]
    title = f'buffered single appends (sync="batch") from {n} processes against 1'
    b.run_case("2", title, peers, rounds=a.write_rounds)
    b.rows += [
        Row(
            "2",
            "ep-n",
            ratio=("ep-n", "ep-1", f"{n} processes / 1"),
            aim=">= 0.5",
            check=lambda v, r: r >= 0.5,
        ),
        Row("2", "ep-1"),
        Row("2", "sq-n", ratio=("sq-n", "sq-1", f"{n} processes / 1")),
        Row("2", "sq-1"),
        Row("2", "sq-n", ratio=("ep-n", "sq-n", f"eventpak / sqlite3 ({n} processes each)")),
    ]


# ----------------------------------------------------------------------------------------- line (3)


def alternate(stores: dict[str, ep.Store], chunk: int, budget_s: float, cap: int) -> dict[str, Sample]:
    """Single appends to each store in turn, ``chunk`` at a time, the first store of a turn
    swapping every turn, until ``budget_s`` per store or ``cap`` appends each: both modes
    meet the same disk and CPU at the same moments."""
    modes = list(stores)
    steps = {m: ep_step(stores[m], 0, 1) for m in modes}
    for m in modes:
        for n in range(WARMUP_CALLS):
            steps[m](-1 - n)
    seconds = dict.fromkeys(modes, 0.0)
    counts = dict.fromkeys(modes, 0)
    end_at = perf() + budget_s * len(modes)
    turn = 0
    while counts[modes[0]] < cap and perf() < end_at:
        for m in modes if turn % 2 == 0 else modes[::-1]:
            step, start = steps[m], counts[m]
            t0 = perf()
            for k in range(start, start + chunk):
                step(k)
            seconds[m] += perf() - t0
            counts[m] += chunk
        turn += 1
    return {m: Sample(counts[m], seconds[m]) for m in modes}


def line_3_writes(b: Bench, case: str, sync: str, chunk: int, budget: float, cap: int, title: str) -> None:
    """(3a)/(3d): rounds of :func:`alternate` between a shared and an exclusive store."""
    b.titles[case] = title
    b.peers[case] = {
        "shared": Peer(
            "shared",
            "eventpak",
            f'1 process, shared=True, sync="{sync}", 1 append per call',
            lambda d: Sample(0, 0),
        ),
        "exclusive": Peer(
            "exclusive",
            "eventpak",
            f'1 process, exclusive, sync="{sync}", 1 append per call',
            lambda d: Sample(0, 0),
        ),
    }
    out: dict[str, list[Sample]] = {"shared": [], "exclusive": []}
    log(f"== ({case}) {title}")
    for r in range(b.args.rounds):
        d = b.fresh_dir(f"{case}")
        order = ["shared", "exclusive"] if r % 2 == 0 else ["exclusive", "shared"]
        stores = {m: ep.Store.open(str(d / m), sync=sync, shared=(m == "shared")) for m in order}
        try:
            gc.collect()
            samples = alternate(stores, chunk, budget, cap)
        finally:
            for s in stores.values():
                s.close()
            shutil.rmtree(d, ignore_errors=True)
        for m in out:
            out[m].append(samples[m])
        shown = ", ".join(f"{m} {samples[m].rate:,.0f} ev/s" for m in out)
        log(f"   round {r + 1}/{b.args.rounds} {shown}")
    b.samples[case] = out
    b.rows += [
        Row(
            case,
            "shared",
            ratio=("shared", "exclusive", "shared / exclusive"),
            aim=">= 0.9",
            check=lambda v, r: r >= 0.9,
        ),
        Row(case, "exclusive"),
    ]


def event_store(b: Bench, n: int) -> Path:
    """An n-event store (bulk-loaded, closed with its index checkpoint), built once per size."""
    key = f"store-{n}"
    if key not in b.shared:
        d = b.fresh_dir(f"store-{n}")
        t0 = perf()
        with ep_peer.open_store(d, sync="never") as store:
            ep_peer.bulk_load(store, n)
            store.sync()
        log(f"   built a {n:,}-event store in {perf() - t0:.1f} s")
        b.shared[key] = d / "store"
    path: Path = b.shared[key]
    return path


def line_3_read(b: Bench) -> None:
    n = b.args.read_events
    src = event_store(b, n)
    copy = b.fresh_dir("read-copy") / "store"
    shutil.copytree(src, copy)
    stores = {"shared": ep.Store.open(str(copy), shared=True), "exclusive": ep.Store.open(str(src))}
    region = ep.Region.all()

    def timed(store: ep.Store) -> Callable[[Path], Sample]:
        return timed_read(ep_peer.read_payloads(store, region), n)

    peers = [
        Peer(
            "shared",
            "eventpak",
            "1 process, shared=True: [e.payload for e in store.query(Region.all())]",
            timed(stores["shared"]),
        ),
        Peer(
            "exclusive",
            "eventpak",
            "1 process, exclusive: the same read (a copy of the same store)",
            timed(stores["exclusive"]),
        ),
    ]
    try:
        b.run_case(
            "3e", f"read {n:,} events, payloads decoded, shared=True against exclusive", peers, warmup=True
        )
    finally:
        for s in stores.values():
            s.close()
        shutil.rmtree(copy.parent, ignore_errors=True)
    b.rows += [
        Row(
            "3e",
            "shared",
            ratio=("shared", "exclusive", "shared / exclusive"),
            aim=">= 0.9",
            check=lambda v, r: r >= 0.9,
        ),
        Row("3e", "exclusive"),
    ]


def line_3(b: Bench) -> None:
    a = b.args
    line_3_writes(
        b,
        "3a",
        "always",
        50,
        a.durable_seconds,
        a.durable_max_ops,
        "one process: durable single appends, shared=True against exclusive (alternating chunks of 50)",
    )
    line_3_writes(
        b,
        "3d",
        "batch",
        1000,
        a.batch_seconds,
        a.write_events,
        'one process: buffered single appends (sync="batch"), shared=True against exclusive '
        "(alternating chunks of 1000)",
    )
    line_3_read(b)


# ----------------------------------------------------------------------------------------- line (4)


def latency_pair(b: Bench, kind: str) -> Callable[[Path], Sample]:
    a = b.args
    m, warmup, interval = a.latency_appends, WARMUP_CALLS, a.latency_interval_ms / 1000
    timeout = m * interval * 3 + 60

    def run(d: Path) -> Sample:
        if kind in ("worker", "pull"):
            path = str(d / "store")
            send = ("ep_sender", {"path": path, "m": m, "warmup": warmup, "interval_s": interval})
            name = "ep_worker" if kind == "worker" else "ep_pull"
            recv = (
                name,
                {
                    "path": path,
                    "m": m,
                    "warmup": warmup,
                    "batch_size": 1 if kind == "worker" else 64,
                    "timeout_s": timeout,
                },
            )
        elif kind == "sqlite":
            path = str(d / "db.sqlite")
            sqlite_create(Path(path))
            send = ("sqlite_sender", {"path": path, "m": m, "warmup": warmup, "interval_s": interval})
            recv = (
                "sqlite_poller",
                {"path": path, "m": m, "warmup": warmup, "poll_s": a.poll_ms / 1000, "timeout_s": timeout},
            )
        else:
            path = str(d / "fifo")
            os.mkfifo(path)
            send = ("fifo_sender", {"path": path, "m": m, "warmup": warmup, "interval_s": interval})
            recv = ("fifo_receiver", {"path": path, "m": m, "warmup": warmup, "timeout_s": timeout})
        t0, (_sent, got) = procs_of(b).run([send, recv])
        secs = (mono_ns() - t0) / 1e9
        lat = got["lat_ns"]
        if len(lat) != m:
            raise RuntimeError(f"{len(lat):,} latencies, expected {m:,}")
        if min(lat) < 0:
            raise RuntimeError("a negative latency: CLOCK_MONOTONIC is not shared between the processes")
        return latency_sample(lat, secs)

    return run


def line_4(b: Bench) -> None:
    a = b.args
    every = f"A appends 1 event every {a.latency_interval_ms:g} ms"
    peers = [
        Peer(
            "worker",
            "eventpak",
            f'{every} (shared=True, sync="batch"); B: cursor_worker(batch_size=1) on its own shared store',
            latency_pair(b, "worker"),
        ),
        Peer(
            "pull",
            "eventpak",
            f"{every}; B: cursor.pull_batch(64, timeout=1 s) loop, no worker",
            latency_pair(b, "pull"),
        ),
        Peer(
            "sqlite",
            "sqlite3",
            f"A: 1 INSERT committed every {a.latency_interval_ms:g} ms (WAL, NORMAL); "
            f"B: SELECT rows after the last seen, sleeping {a.poll_ms:g} ms when there are none",
            latency_pair(b, "sqlite"),
        ),
        Peer(
            "fifo",
            "FIFO",
            f"reference without eventpak: A writes its send time to a FIFO every "
            f"{a.latency_interval_ms:g} ms, B blocks in os.read",
            latency_pair(b, "fifo"),
        ),
    ]
    b.run_case("4", f"cross-process append-to-handler latency, {a.latency_appends:,} appends", peers)
    for key in ("worker", "pull"):
        b.rows += latency_rows("4", key, 200.0, 2000.0)
    for key in ("sqlite", "fifo"):
        b.rows += [
            Row(
                "4",
                key,
                unit="us",
                metric="p50_us",
                note="p50",
                ratio=("worker", key, "eventpak worker / this"),
            ),
            Row(
                "4",
                key,
                unit="us",
                metric="p99_us",
                note="p99",
                ratio=("worker", key, "eventpak worker / this"),
            ),
        ]


# ----------------------------------------------------------------------------------------- line (5)


def memory_run(b: Bench, procs: int, shared: bool, n: int) -> Callable[[Path], Sample]:
    src = event_store(b, n)

    def run(d: Path) -> Sample:
        fresh = Procs(procs)  # no allocation of an earlier job to reuse
        try:
            _, results = fresh.run([("memory", {"path": str(src), "shared": shared, "events": n})] * procs)
        finally:
            fresh.close()
        mib = 2**20
        after = [r["together"]["VmRSS"] for r in results]
        growth = [r["after"]["VmRSS"] - r["before"]["VmRSS"] for r in results]
        anon = [r["after"]["RssAnon"] - r["before"]["RssAnon"] for r in results]
        file_ = [r["after"]["RssFile"] - r["before"]["RssFile"] for r in results]
        extra = {
            "rss_mib": max(after) / mib,
            "growth_mib": max(growth) / mib,
            "growth_b_per_event": max(growth) / n,
            "anon_b_per_event": max(anon) / n,
            "file_b_per_event": max(file_) / n,
            "open_s_max": max(r["open_s"] for r in results),
            "per_process": results,
        }
        return Sample(n, extra["open_s_max"], extra)

    return run


def line_5(b: Bench) -> None:
    n, procs = b.args.memory_events, b.args.processes
    event_store(b, n)
    peers = [
        Peer(
            "shared",
            "eventpak",
            f"{procs} processes, each Store.open(shared=True) of the {n:,}-event store",
            memory_run(b, procs, True, n),
        ),
        Peer(
            "exclusive",
            "eventpak",
            "1 process, exclusive Store.open of the same store (reference)",
            memory_run(b, 1, False, n),
        ),
    ]
    b.run_case("5", f"memory per process with a {n:,}-event store open in each", peers)
    ratio = ("shared", "exclusive", "shared / exclusive")
    b.rows += [
        Row("5", "shared", unit="mib", metric="rss_mib", note=f"VmRSS per process, all {procs} open"),
        Row("5", "shared", unit="mib", metric="growth_mib", note="VmRSS growth at open"),
        Row("5", "shared", unit="bytes", metric="growth_b_per_event", note="VmRSS growth per event"),
        Row(
            "5",
            "shared",
            unit="bytes",
            metric="anon_b_per_event",
            note="RssAnon growth per event (the index)",
        ),
        Row("5", "shared", unit="bytes", metric="file_b_per_event", note="RssFile growth per event (mapped)"),
        Row("5", "shared", unit="seconds", metric="open_s_max", note="open time (slowest process)"),
        Row("5", "exclusive", unit="mib", metric="rss_mib", note="VmRSS, store open"),
        Row(
            "5",
            "exclusive",
            unit="bytes",
            metric="growth_b_per_event",
            note="VmRSS growth per event",
            ratio=ratio,
        ),
        Row(
            "5",
            "exclusive",
            unit="bytes",
            metric="anon_b_per_event",
            note="RssAnon growth per event",
            ratio=ratio,
        ),
        Row("5", "exclusive", unit="seconds", metric="open_s_max", note="open time"),
    ]


LINES: dict[str, Callable[[Bench], None]] = {"1": line_1, "2": line_2, "3": line_3, "4": line_4, "5": line_5}


# --------------------------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    description = (__doc__ or "").split("\n\n")[0]
    p = argparse.ArgumentParser(prog="python -m benches.shared", description=description)
    p.add_argument("--quick", action="store_true", help="small smoke run")
    p.add_argument("--processes", type=int, default=4, help="processes of lines (1), (2) and (5) (default 4)")
    p.add_argument("--rounds", type=int, help="interleaved rounds of lines (3)-(5) (default 5; quick 2)")
    p.add_argument(
        "--write-rounds",
        type=int,
        help="interleaved rounds of lines (1) and (2): short runs, many rounds, so a disk whose fsync "
        "latency drifts meets both sides of a ratio alike (default 11; quick 2)",
    )
    p.add_argument(
        "--durable-seconds",
        type=float,
        help='time budget of one sync="always" run in (1), and per store and round in (3a) '
        "(default 1.0; quick 0.3)",
    )
    p.add_argument(
        "--durable-max-ops",
        type=int,
        help="call cap of one such run, split between the processes (default 20,000; quick 2,000)",
    )
    p.add_argument(
        "--batch-seconds",
        type=float,
        help='time budget of one sync="batch" run in (2), and per store and round in (3d) '
        "(default 1.0; quick 0.3)",
    )
    p.add_argument(
        "--write-events",
        type=int,
        help="call cap of one such run, split between the processes (default 200,000; quick 20,000)",
    )
    p.add_argument("--read-events", type=int, help="events read in (3e) (default 1,000,000; quick 20,000)")
    p.add_argument(
        "--latency-appends", type=int, help="timed appends per round in (4) (default 5,000; quick 300)"
    )
    p.add_argument(
        "--latency-interval-ms",
        type=float,
        default=1.0,
        help="time between two appends of (4) (default 1 ms)",
    )
    p.add_argument(
        "--poll-ms",
        type=float,
        default=1.0,
        help="sleep of the sqlite3 poller of (4) when it finds nothing new (default 1 ms)",
    )
    p.add_argument(
        "--memory-events", type=int, help="events of the store of (5) (default 1,000,000; quick 50,000)"
    )
    p.add_argument("--lines", default=ALL_LINES, help=f"which lines to run, e.g. '14' (default {ALL_LINES})")
    p.add_argument("--dir", help="parent directory for the temporary stores (default: the system temp dir)")
    p.add_argument(
        "--json",
        help="where to write the JSON (default benches/results/shared.json; quick shared-quick.json)",
    )
    a = p.parse_args(argv)
    q = a.quick
    defaults = {
        "rounds": (5, 2),
        "write_rounds": (11, 2),
        "durable_seconds": (1.0, 0.3),
        "durable_max_ops": (20_000, 2_000),
        "batch_seconds": (1.0, 0.3),
        "write_events": (200_000, 20_000),
        "read_events": (1_000_000, 20_000),
        "latency_appends": (5_000, 300),
        "memory_events": (1_000_000, 50_000),
    }
    for name, (full, quick) in defaults.items():
        if getattr(a, name) is None:
            setattr(a, name, quick if q else full)
    if a.json is None:
        a.json = str(RESULTS_DIR / ("shared-quick.json" if q else "shared.json"))
    unknown = set(a.lines) - set(ALL_LINES)
    if unknown:
        p.error(f"unknown lines: {''.join(sorted(unknown))}")
    sizes = [
        a.processes,
        a.rounds,
        a.write_rounds,
        a.durable_max_ops,
        a.write_events,
        a.read_events,
        a.latency_appends,
        a.memory_events,
    ]
    if min(sizes) < 1 or min(a.durable_seconds, a.batch_seconds, a.latency_interval_ms, a.poll_ms) <= 0:
        p.error("sizes and times must be positive")
    if a.processes > POOL_SIZE:
        p.error(f"at most {POOL_SIZE} processes (one entity each at least)")
    return a


def markdown(b: Bench, rows: list[dict[str, Any]], machine: dict[str, Any]) -> str:
    a = b.args
    lines = [
        *machine_lines(machine),
        f"Settings: processes={a.processes}, rounds={a.write_rounds} in (1) and (2), {a.rounds} in the "
        f"others, durable {a.durable_seconds:g} s or "
        f"{a.durable_max_ops:,} calls per run, batch {a.batch_seconds:g} s or {a.write_events:,} calls "
        "per run, "
        f"read events={a.read_events:,}, latency appends={a.latency_appends:,} every "
        f"{a.latency_interval_ms:g} ms (sqlite3 poll {a.poll_ms:g} ms), memory events={a.memory_events:,}, "
        f"payload={PAYLOAD_BYTES} B msgpack, {WARMUP_CALLS} untimed calls per process before the barrier",
    ]
    return report_text(lines, b, rows)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = perf()
    with tempfile.TemporaryDirectory(prefix="eventpak-shared-bench-", dir=args.dir) as tmp:
        root = Path(tmp)
        machine = machine_info(root)
        b = Bench(args, root)
        try:
            for line, run in LINES.items():
                if line in args.lines:
                    run(b)
        finally:
            if "procs" in b.shared:
                b.shared["procs"].close()
    finish_run(b, argv, machine, started, lambda rows: markdown(b, rows, machine), module="benches.shared")
    return 0


if __name__ == "__main__":
    sys.exit(main())
