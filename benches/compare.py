"""eventpak side by side with its peers, in one process, on one machine.

    python -m benches.compare                 # full run (N = 1_000_000 for the read/reopen cases)
    python -m benches.compare --quick         # smoke run, well under a minute
    python -m benches.compare --events 200000 --durable-seconds 1 --rounds 5

Cases (see benches/README.md):

  (a) one durable append per call, one thread: eventpak sync="always" vs raw os.write+os.fdatasync,
      sqlite3 (WAL, synchronous=FULL, one INSERT committed per event), lmdb (sync=True, one put per txn)
  (b) (a) from 8 threads sharing one store (group commit), and sqlite3 from 8 connections
  (c) durable batches of 1000: append_batch vs sqlite3 executemany in one txn vs lmdb putmulti
  (d) one append per call with sync="batch" vs sqlite3 synchronous=OFF (commit every 1000) and
      lmdb sync=False (one put per txn)
  (e) reading N events in commit order with payloads decoded
  (f) reopen time of an N-event store with and without the index checkpoint
  (g) a cursor worker delivering the N events to a no-op handler in batches of 1000, vs a plain
      cursor.poll_batch(1000) loop and an lmdb cursor read in batches of 1000
  (h) (g) with a durable checkpoint after every batch (checkpoint_id)
  (i) append-to-handler latency with an idle worker: p50/p99/max over single appends
  (j) cold projection of one 100,000-event entity to a summing fold (store.project with NoCache) vs
      the eventsourcing library (repository.get, SQLite) and sqlite3 (indexed SELECT + msgpack + fold)
  (k) store.project with a NativeCache after one new event (incremental), per call: p50/p99, with a
      pure cache hit and the append itself as reference rows

Every case runs ``--rounds`` times; in each round all systems run one after the other in a rotated
order, and every ratio is the median of the per-round ratios, so slow drifts of a noisy machine hit
both sides of a ratio alike. Durable (fsync-bound) cases run for a time budget per system and round
(``--durable-seconds``) or ``--durable-max-ops`` calls, whichever comes first.

The Markdown table goes to stdout, progress to stderr, everything (every round) to a JSON file.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import gc
import importlib.metadata
import itertools
import json
import math
import os
import platform
import shutil
import sqlite3
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import eventpak as ep
import msgpack

from benches._workload import (
    KIND,
    PAYLOAD_BYTES,
    POOL_MASK,
    SCOPE,
    make_coords,
    make_entities,
    make_payloads,
)

try:
    import lmdb
except ImportError:  # pragma: no cover - lmdb is in requirements-dev.txt
    lmdb = None

try:  # the peer of case (j)
    from eventsourcing.application import Application as EsApplication
    from eventsourcing.domain import Aggregate as EsAggregate
    from eventsourcing.domain import event as es_event
except ImportError:  # pragma: no cover - eventsourcing is in requirements-dev.txt
    EsApplication = None

RESULTS_DIR = Path(__file__).resolve().parent / "results"
WARMUP_CALLS = 20
BULK_CHUNK = 4096
ALL_CASES = "abcdefghijk"
WORKER_BATCH = 1000  # batch size of the deliveries in (g) and (h)
WORKER_TIMEOUT_S = 600.0  # a worker that has not delivered everything by then is reported as an error
LATENCY_WAIT_S = 5.0  # one append that does not reach the handler within this is reported as an error
PROJ_ENTITY = "acct:bench"  # the one entity of (j) and (k)
DEPOSIT, NOTE = "deposit", "note"  # the kinds of (j) and (k): every NOTE_EVERY-th event is a note
NOTE_EVERY = 10
K_AIM_US = 50.0  # aim of (k): p50 of a project() after one new event

SQLITE_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS events ("
    "seq INTEGER PRIMARY KEY, entity TEXT NOT NULL, kind TEXT NOT NULL, payload BLOB NOT NULL)"
)
SQLITE_INSERT = "INSERT INTO events (entity, kind, payload) VALUES (?, ?, ?)"
SQLITE_SELECT = "SELECT seq, entity, kind, payload FROM events ORDER BY seq"

U64 = struct.Struct(">Q")  # lmdb keys: big-endian sequence numbers, so key order = commit order
U32 = struct.Struct("<I")  # raw file records: length prefix + msgpack payload

PAYLOADS = make_payloads()
COORDS = make_coords()
ENTITIES = make_entities()
packb = msgpack.packb
unpackb = msgpack.unpackb
perf = time.perf_counter


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- measurement plumbing


@dataclass
class Sample:
    events: int
    seconds: float
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


@dataclass
class Peer:
    key: str
    system: str
    config: str
    run: Callable[[Path], Sample]


@dataclass
class Row:
    case: str
    key: str
    # "rate" (events/s, higher is better), "seconds" or "us" (microseconds; both lower is better)
    unit: str = "rate"
    ratio: tuple[str, str, str] | None = None  # (numerator key, denominator key, label)
    aim: str = ""
    check: Callable[[float, float | None], bool] | None = None  # (median value, median ratio)
    note: str = ""
    metric: str = ""  # when set, the row's value is ``Sample.extra[metric]`` instead of rate/seconds
    ratio_to: tuple[float, str] | None = None  # (constant, label): ratio = median value / constant

    def value(self, s: Sample) -> float:
        if self.metric:
            return float(s.extra[self.metric])
        return s.seconds if self.unit == "seconds" else s.rate


@dataclass
class Bench:
    args: argparse.Namespace
    root: Path
    samples: dict[str, dict[str, list[Sample]]] = field(default_factory=dict)
    peers: dict[str, dict[str, Peer]] = field(default_factory=dict)
    titles: dict[str, str] = field(default_factory=dict)
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    setup: dict[str, Any] = field(default_factory=dict)  # untimed set-up figures, for the JSON only

    def fresh_dir(self, label: str) -> Path:
        return Path(tempfile.mkdtemp(prefix=f"{label}-", dir=self.root))

    def run_case(
        self, case: str, title: str, peers: list[Peer], rounds: int | None = None, warmup: bool = False
    ) -> None:
        """Run every peer once per round, rotating the order each round.

        With ``warmup``, every peer first runs once unmeasured (the first pass of a read that
        materialises a million objects pays the process's first-touch page faults).
        """
        rounds = self.args.rounds if rounds is None else rounds
        self.titles[case] = title
        self.peers[case] = {p.key: p for p in peers}
        out: dict[str, list[Sample]] = {p.key: [] for p in peers}
        log(f"== ({case}) {title}")
        if warmup:
            for peer in peers:
                d = self.fresh_dir(f"{case}-{peer.key}-warmup")
                try:
                    gc.collect()
                    peer.run(d)
                finally:
                    shutil.rmtree(d, ignore_errors=True)
            log(f"   warm-up pass done ({len(peers)} systems, not measured)")
        for r in range(rounds):
            shift = r % len(peers)
            for peer in peers[shift:] + peers[:shift]:
                d = self.fresh_dir(f"{case}-{peer.key}")
                try:
                    gc.collect()
                    sample = peer.run(d)
                finally:
                    shutil.rmtree(d, ignore_errors=True)
                out[peer.key].append(sample)
                shown = f"{sample.seconds:.3f} s" if sample.events == 0 else f"{sample.rate:,.0f} ev/s"
                if "p50_us" in sample.extra:
                    shown = f"p50 {sample.extra['p50_us']:.1f} us, p99 {sample.extra['p99_us']:.1f} us"
                log(f"   round {r + 1}/{rounds} {peer.key:<22} {sample.events:>9,} ev {shown}")
        self.samples[case] = out


def raw_durable_step(fd: int) -> Callable[[int], None]:
    """One raw durable record: length-prefixed msgpack, ``write``, then ``fdatasync``."""

    def step(n: int) -> None:
        body = packb(PAYLOADS[n & POOL_MASK])
        os.write(fd, U32.pack(len(body)) + body)
        os.fdatasync(fd)

    return step


def timed_calls(step: Callable[[int], object], budget_s: float, max_calls: int) -> tuple[int, float]:
    """Call ``step(n)`` until the time budget or the call cap runs out; returns (calls, seconds)."""
    for n in range(WARMUP_CALLS):
        step(-1 - n)
    t0 = perf()
    end = t0 + budget_s
    n = 0
    while n < max_calls:
        step(n)
        n += 1
        if perf() >= end:
            break
    return n, perf() - t0


def timed_threads(
    steps: list[Callable[[int], object]], budget_s: float, max_calls: int
) -> tuple[int, float, list[int]]:
    """Run one ``timed_calls``-style loop per thread, all released together by a barrier."""
    nthreads = len(steps)
    per_thread = max(1, max_calls // nthreads)
    counts = [0] * nthreads
    errors: list[BaseException] = []
    barrier = threading.Barrier(nthreads + 1)
    deadline = [0.0]

    def worker(t: int) -> None:
        step = steps[t]
        try:
            for n in range(WARMUP_CALLS // 4):
                step(-1 - n)
        except BaseException as exc:
            errors.append(exc)
        barrier.wait()
        if errors:
            return
        try:
            end = deadline[0]
            n = 0
            while n < per_thread:
                step(n)
                n += 1
                if perf() >= end:
                    break
            counts[t] = n
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(t,), daemon=True) for t in range(nthreads)]
    for th in threads:
        th.start()
    t0 = perf()
    deadline[0] = t0 + budget_s
    barrier.wait()
    for th in threads:
        th.join()
    elapsed = perf() - t0
    if errors:
        raise errors[0]
    return sum(counts), elapsed, counts


# --------------------------------------------------------------------------------- system set-up


def ep_open(d: Path, **options: Any) -> ep.Store:
    return ep.Store.open(str(d / "store"), **options)


def sqlite_open(path: Path, synchronous: str) -> sqlite3.Connection:
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=120.0)
    mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    if mode.lower() != "wal":
        raise RuntimeError(f"sqlite3 refused WAL mode (got {mode!r})")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute(SQLITE_SCHEMA)
    return conn


def lmdb_open(d: Path, sync: bool, map_size: int = 1 << 31) -> Any:
    return lmdb.open(str(d / "lmdb"), map_size=map_size, sync=sync, metasync=sync, lock=True)


def lmdb_map_size(events: int) -> int:
    return max(1 << 30, events * (PAYLOAD_BYTES + 128) * 2)


# ------------------------------------------------------------------------------------------ cases


def case_a(b: Bench) -> None:
    a = b.args
    budget, cap = a.durable_seconds, a.durable_max_ops

    def eventpak(d: Path) -> Sample:
        store = ep_open(d, sync="always")
        append = store.append

        def step(n: int) -> object:
            return append(COORDS[n & POOL_MASK], KIND, PAYLOADS[n & POOL_MASK])

        calls, secs = timed_calls(step, budget, cap)
        durable = step(0).durable
        store.close()
        return Sample(calls, secs, {"last_receipt_durable": durable})

    def raw(d: Path) -> Sample:
        fd = os.open(d / "raw.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        step = raw_durable_step(fd)
        try:
            calls, secs = timed_calls(step, budget, cap)
        finally:
            os.close(fd)
        return Sample(calls, secs)

    def sqlite(d: Path) -> Sample:
        conn = sqlite_open(d / "db.sqlite", "FULL")
        execute = conn.execute

        def step(n: int) -> None:  # autocommit: each INSERT is its own committed transaction
            execute(SQLITE_INSERT, (ENTITIES[n & POOL_MASK], KIND, packb(PAYLOADS[n & POOL_MASK])))

        calls, secs = timed_calls(step, budget, cap)
        conn.close()
        return Sample(calls, secs)

    def lmdb_(d: Path) -> Sample:
        env = lmdb_open(d, sync=True)
        begin, keys = env.begin, itertools.count()

        def step(n: int) -> None:
            with begin(write=True) as txn:
                txn.put(U64.pack(next(keys)), packb(PAYLOADS[n & POOL_MASK]), append=True)

        calls, secs = timed_calls(step, budget, cap)
        env.close()
        return Sample(calls, secs)

    peers = [
        Peer("eventpak", "eventpak", 'sync="always", 1 thread', eventpak),
        Peer("raw", "raw os.write + os.fdatasync", "4-byte length + msgpack per record", raw),
        Peer("sqlite", "sqlite3", "WAL, synchronous=FULL, 1 INSERT committed per event", sqlite),
    ]
    if lmdb is not None:
        peers.append(Peer("lmdb", "lmdb", "sync=True, 1 put per write txn", lmdb_))
    b.run_case("a", "one durable append per call, one thread", peers)
    b.rows += [
        Row("a", "eventpak"),
        Row(
            "a", "raw", ratio=("eventpak", "raw", "eventpak / raw"), aim=">= 0.9", check=lambda v, r: r >= 0.9
        ),
        Row("a", "sqlite", ratio=("eventpak", "sqlite", "eventpak / sqlite3")),
    ]
    if lmdb is not None:
        b.rows.append(Row("a", "lmdb", ratio=("eventpak", "lmdb", "eventpak / lmdb")))


def case_b(b: Bench) -> None:
    a = b.args
    budget, cap, nthreads = a.durable_seconds, a.durable_max_ops, a.threads

    def eventpak_threads(count: int) -> Callable[[Path], Sample]:
        def run(d: Path) -> Sample:
            store = ep_open(d, sync="always")
            append = store.append

            def make_step(t: int) -> Callable[[int], object]:
                offset = t * (POOL_MASK + 1) // count

                def step(n: int) -> object:
                    i = (n + offset) & POOL_MASK
                    return append(COORDS[i], KIND, PAYLOADS[i])

                return step

            if count == 1:
                calls, secs = timed_calls(make_step(0), budget, cap)
                per_thread = [calls]
            else:
                calls, secs, per_thread = timed_threads([make_step(t) for t in range(count)], budget, cap)
            stats = store.stats()
            store.close()
            return Sample(
                calls, secs, {"per_thread": per_thread, "durable_events": stats.get("durable_events")}
            )

        return run

    def sqlite_threads(d: Path) -> Sample:
        path = d / "db.sqlite"
        sqlite_open(path, "FULL").close()
        conns = [sqlite_open(path, "FULL") for _ in range(nthreads)]

        def make_step(conn: sqlite3.Connection) -> Callable[[int], None]:
            execute = conn.execute

            def step(n: int) -> None:
                execute(SQLITE_INSERT, (ENTITIES[n & POOL_MASK], KIND, packb(PAYLOADS[n & POOL_MASK])))

            return step

        try:
            calls, secs, per_thread = timed_threads([make_step(c) for c in conns], budget, cap)
        finally:
            for c in conns:
                c.close()
        return Sample(calls, secs, {"per_thread": per_thread})

    def raw_threads(d: Path) -> Sample:
        fd = os.open(d / "raw.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        step = raw_durable_step(fd)
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


def case_c(b: Bench) -> None:
    a = b.args
    budget, cap, size = a.durable_seconds, a.durable_max_ops, a.batch_size
    idx = [j & POOL_MASK for j in range(size)]

    def eventpak(d: Path) -> Sample:
        store = ep_open(d, sync="always", max_batch_events=max(size, 4096))
        append_batch = store.append_batch

        def step(n: int) -> object:
            return append_batch([(COORDS[j], KIND, PAYLOADS[j]) for j in idx])

        calls, secs = timed_calls(step, budget, cap)
        durable = step(0)[-1].durable
        store.close()
        return Sample(calls * size, secs, {"batches": calls, "last_receipt_durable": durable})

    def sqlite(d: Path) -> Sample:
        conn = sqlite_open(d / "db.sqlite", "FULL")
        execute, executemany = conn.execute, conn.executemany

        def step(n: int) -> None:
            execute("BEGIN")
            executemany(SQLITE_INSERT, [(ENTITIES[j], KIND, packb(PAYLOADS[j])) for j in idx])
            execute("COMMIT")

        calls, secs = timed_calls(step, budget, cap)
        conn.close()
        return Sample(calls * size, secs, {"batches": calls})

    def lmdb_(d: Path) -> Sample:
        env = lmdb_open(d, sync=True)
        begin, keys = env.begin, itertools.count()

        def step(n: int) -> None:
            with begin(write=True) as txn:
                txn.cursor().putmulti([(U64.pack(next(keys)), packb(PAYLOADS[j])) for j in idx], append=True)

        calls, secs = timed_calls(step, budget, cap)
        env.close()
        return Sample(calls * size, secs, {"batches": calls})

    peers = [
        Peer("eventpak", "eventpak", f'append_batch({size}), sync="always"', eventpak),
        Peer("sqlite", "sqlite3", f"WAL, synchronous=FULL, executemany({size}) in one txn", sqlite),
    ]
    if lmdb is not None:
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
    if lmdb is not None:
        b.rows.append(
            Row(
                "c",
                "lmdb",
                ratio=("eventpak", "lmdb", "eventpak / lmdb"),
                aim=">= 0.5",
                check=lambda v, r: r >= 0.5,
            )
        )


def case_d(b: Bench) -> None:
    n = b.args.write_events

    def eventpak(sync: str) -> Callable[[Path], Sample]:
        def run(d: Path) -> Sample:
            store = ep_open(d, sync=sync)
            append = store.append
            for i in range(WARMUP_CALLS):
                append(COORDS[i], KIND, PAYLOADS[i])
            t0 = perf()
            for i in range(n):
                append(COORDS[i & POOL_MASK], KIND, PAYLOADS[i & POOL_MASK])
            secs = perf() - t0
            stats = store.stats()
            store.close()
            return Sample(n, secs, {"durable_events_at_end": stats.get("durable_events")})

        return run

    def sqlite(d: Path) -> Sample:
        conn = sqlite_open(d / "db.sqlite", "OFF")
        execute = conn.execute
        t0 = perf()
        execute("BEGIN")
        for i in range(n):
            execute(SQLITE_INSERT, (ENTITIES[i & POOL_MASK], KIND, packb(PAYLOADS[i & POOL_MASK])))
            if i % 1000 == 999:
                execute("COMMIT")
                execute("BEGIN")
        execute("COMMIT")
        secs = perf() - t0
        conn.close()
        return Sample(n, secs)

    def lmdb_(d: Path) -> Sample:
        env = lmdb_open(d, sync=False, map_size=lmdb_map_size(n))
        begin = env.begin
        t0 = perf()
        for i in range(n):
            with begin(write=True) as txn:
                txn.put(U64.pack(i), packb(PAYLOADS[i & POOL_MASK]), append=True)
        secs = perf() - t0
        env.close()
        return Sample(n, secs)

    peers = [
        Peer("eventpak", "eventpak", 'sync="batch" (default), 1 append per call', eventpak("batch")),
        Peer("eventpak-never", "eventpak", 'sync="never", 1 append per call', eventpak("never")),
        Peer("sqlite", "sqlite3", "WAL, synchronous=OFF, 1 INSERT per call, COMMIT every 1000", sqlite),
    ]
    if lmdb is not None:
        peers.append(Peer("lmdb", "lmdb", "sync=False, 1 put per write txn", lmdb_))
    b.run_case("d", "one append per call, not individually durable", peers)
    b.rows += [
        Row("d", "eventpak", aim=">= 300,000 ev/s", check=lambda v, r: v >= 300_000),
        Row("d", "eventpak-never", ratio=("eventpak", "eventpak-never", 'sync="batch" / sync="never"')),
        Row("d", "sqlite", ratio=("eventpak", "sqlite", "eventpak / sqlite3")),
    ]
    if lmdb is not None:
        b.rows.append(Row("d", "lmdb", ratio=("eventpak", "lmdb", "eventpak / lmdb")))


def build_read_stores(b: Bench, n: int) -> dict[str, Path]:
    """Load n events into one store per system (not interleaved; timed once, for information).

    The eventpak store serves (e), (f), (g) and (h), the lmdb one (e) and (g); the sqlite3 one is
    only built when (e) runs.
    """
    users = "/".join(c for c in "efgh" if c in b.args.cases)
    with_sqlite = "e" in b.args.cases
    log(f"== building {n:,}-event stores for ({users})")
    paths: dict[str, Path] = {}
    build: dict[str, Sample] = {}

    d = b.fresh_dir("read-eventpak")
    t0 = perf()
    with ep_open(d, sync="never") as store:
        for start in range(0, n, BULK_CHUNK):
            store.append_batch(
                [
                    (COORDS[i & POOL_MASK], KIND, PAYLOADS[i & POOL_MASK])
                    for i in range(start, min(n, start + BULK_CHUNK))
                ]
            )
        store.sync()
    build["eventpak"] = Sample(n, perf() - t0)
    paths["eventpak"] = d / "store"

    if with_sqlite:
        d = b.fresh_dir("read-sqlite")
        t0 = perf()
        conn = sqlite_open(d / "db.sqlite", "OFF")
        for start in range(0, n, BULK_CHUNK):
            conn.execute("BEGIN")
            conn.executemany(
                SQLITE_INSERT,
                [
                    (ENTITIES[i & POOL_MASK], KIND, packb(PAYLOADS[i & POOL_MASK]))
                    for i in range(start, min(n, start + BULK_CHUNK))
                ],
            )
            conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()
        build["sqlite"] = Sample(n, perf() - t0)
        paths["sqlite"] = d / "db.sqlite"

    if lmdb is not None:
        d = b.fresh_dir("read-lmdb")
        t0 = perf()
        env = lmdb_open(d, sync=False, map_size=lmdb_map_size(n))
        for start in range(0, n, BULK_CHUNK):
            with env.begin(write=True) as txn:
                txn.cursor().putmulti(
                    [
                        (U64.pack(i), packb(PAYLOADS[i & POOL_MASK]))
                        for i in range(start, min(n, start + BULK_CHUNK))
                    ],
                    append=True,
                )
        env.sync(True)
        env.close()
        build["lmdb"] = Sample(n, perf() - t0)
        paths["lmdb"] = d
    for key, s in build.items():
        log(f"   bulk load {key:<10} {s.seconds:.2f} s ({s.rate:,.0f} ev/s)")
    b.samples["load"] = {k: [v] for k, v in build.items()}
    b.titles["load"] = (
        f"bulk load of {n:,} events (set-up of {users}; chunks of {BULK_CHUNK}, not durable, 1 run)"
    )
    b.peers["load"] = {
        "eventpak": Peer(
            "eventpak", "eventpak", f'append_batch({BULK_CHUNK}), sync="never"', lambda d: Sample(0, 0)
        ),
        "sqlite": Peer(
            "sqlite",
            "sqlite3",
            f"WAL, synchronous=OFF, executemany({BULK_CHUNK}) per txn",
            lambda d: Sample(0, 0),
        ),
    }
    b.rows += [
        Row("load", "eventpak"),
        Row("load", "sqlite", ratio=("eventpak", "sqlite", "eventpak / sqlite3")),
    ]
    if lmdb is not None:
        b.peers["load"]["lmdb"] = Peer(
            "lmdb", "lmdb", f"sync=False, putmulti({BULK_CHUNK}) per txn", lambda d: Sample(0, 0)
        )
        b.rows.append(Row("load", "lmdb", ratio=("eventpak", "lmdb", "eventpak / lmdb")))
    return paths


def case_e(b: Bench, paths: dict[str, Path], n: int) -> None:
    store = ep.Store.open(str(paths["eventpak"]))
    conn = sqlite3.connect(str(paths["sqlite"]), check_same_thread=False)
    env = lmdb.open(str(paths["lmdb"] / "lmdb"), map_size=lmdb_map_size(n), readonly=True) if lmdb else None
    region = ep.Region.all()

    def timed(fn: Callable[[], list[Any]]) -> Sample:
        t0 = perf()
        out = fn()
        secs = perf() - t0
        got = len(out)
        del out
        if got != n:
            raise RuntimeError(f"read {got} events, expected {n}")
        return Sample(got, secs)

    def eventpak(d: Path) -> Sample:
        return timed(lambda: [e.payload for e in store.query(region)])

    def eventpak_no_decode(d: Path) -> Sample:
        return timed(lambda: store.query(region))

    def eventpak_paged(d: Path) -> Sample:
        def read() -> list[Any]:
            out: list[Any] = []
            after = None
            while page := store.query(region, after=after, limit=1000):
                out += [e.payload for e in page]
                after = page[-1].global_sequence
            return out

        return timed(read)

    def sqlite(d: Path) -> Sample:
        return timed(lambda: [unpackb(row[3]) for row in conn.execute(SQLITE_SELECT)])

    def lmdb_(d: Path) -> Sample:
        def read() -> list[Any]:
            with env.begin(buffers=True) as txn:
                return [unpackb(v) for v in txn.cursor().iternext(keys=False, values=True)]

        return timed(read)

    peers = [
        Peer("eventpak", "eventpak", "[e.payload for e in store.query(Region.all())]", eventpak),
        Peer(
            "eventpak-nodecode",
            "eventpak",
            "store.query(Region.all()), payloads not touched",
            eventpak_no_decode,
        ),
        Peer(
            "eventpak-paged",
            "eventpak",
            "pages of query(Region.all(), after=last, limit=1000) + e.payload",
            eventpak_paged,
        ),
        Peer("sqlite", "sqlite3", "SELECT seq, entity, kind, payload ORDER BY seq + msgpack.unpackb", sqlite),
    ]
    if env is not None:
        peers.append(Peer("lmdb", "lmdb", "cursor.iternext(values) + msgpack.unpackb (buffers=True)", lmdb_))
    try:
        title = f"read {n:,} events in commit order, payloads decoded (warm page cache)"
        b.run_case("e", title, peers, warmup=True)
    finally:
        store.close()
        conn.close()
        if env is not None:
            env.close()
    b.rows += [
        Row("e", "eventpak", aim=">= 1,000,000 ev/s", check=lambda v, r: v >= 1_000_000),
        Row("e", "eventpak-nodecode", ratio=("eventpak", "eventpak-nodecode", "with decode / without")),
        Row("e", "eventpak-paged", ratio=("eventpak", "eventpak-paged", "one list / pages of 1000")),
        Row("e", "sqlite", ratio=("eventpak", "sqlite", "eventpak / sqlite3")),
    ]
    if env is not None:
        b.rows.append(Row("e", "lmdb", ratio=("eventpak", "lmdb", "eventpak / lmdb")))


def case_f(b: Bench, path: Path, n: int) -> None:
    def reopen(checkpoint: bool) -> Callable[[Path], Sample]:
        def run(d: Path) -> Sample:
            t0 = perf()
            store = ep.Store.open(str(path), enable_index_checkpoint=checkpoint)
            secs = perf() - t0
            stats = store.stats()
            store.close()  # a clean close: the next checkpointed open has a fresh checkpoint
            if stats["events"] != n:
                raise RuntimeError(f"reopened store has {stats['events']} events, expected {n}")
            extra = {k: stats.get(k) for k in ("index_checkpoint", "scanned_events", "segments", "bytes")}
            return Sample(0, secs, extra)

        return run

    peers = [
        Peer(
            "ckpt", "eventpak", "Store.open(enable_index_checkpoint=True) after a clean close", reopen(True)
        ),
        Peer("nockpt", "eventpak", "Store.open(enable_index_checkpoint=False): full scan", reopen(False)),
    ]
    b.run_case("f", f"reopen a {n:,}-event store (warm page cache)", peers, rounds=max(3, b.args.rounds))
    for s in b.samples["f"]["ckpt"]:
        if s.extra.get("index_checkpoint") != "loaded":
            b.notes.append(
                f"(f) a checkpointed reopen reported index_checkpoint={s.extra.get('index_checkpoint')!r}"
            )
    b.rows += [
        Row("f", "ckpt", unit="seconds", aim="< 1 s (for 1M events)", check=lambda v, r: v < 1.0),
        Row("f", "nockpt", unit="seconds", ratio=("nockpt", "ckpt", "without / with checkpoint")),
    ]


def counting_handler(n: int) -> tuple[Callable[..., ep.CursorWorkerAction], threading.Event, list[int]]:
    """The no-op handler of (g)/(h): counts the events it is handed without touching them (so their
    payloads are never decoded) and sets ``done`` once it has seen ``n``."""
    seen = [0]
    done = threading.Event()
    cont = ep.CursorWorkerAction.CONTINUE

    def handler(batch: list[Any], store: Any, witness: Any) -> ep.CursorWorkerAction:
        seen[0] += len(batch)
        if seen[0] >= n:
            done.set()
        return cont

    return handler, done, seen


def deliver_with_worker(store: ep.Store, n: int, config: ep.CursorWorkerConfig) -> Sample:
    """Times a worker over ``Region.all()`` from its start until the handler has seen ``n`` events."""
    handler, done, seen = counting_handler(n)
    t0 = perf()
    handle = store.cursor_worker(ep.Region.all(), handler, config)
    deadline = t0 + WORKER_TIMEOUT_S
    while not done.wait(0.05):  # returns as soon as ``done`` is set; the timeout only polls for death
        if not handle.is_alive() or perf() > deadline:
            break
    secs = perf() - t0
    t1 = perf()
    handle.stop_and_join(WORKER_TIMEOUT_S)  # raises the error that stopped the worker, if any
    stop_secs = perf() - t1
    if seen[0] != n:
        raise RuntimeError(f"the worker delivered {seen[0]:,} events, expected {n:,}")
    return Sample(n, secs, {"batches": -(-n // config.batch_size), "stop_and_join_s": stop_secs})


def case_g(b: Bench, paths: dict[str, Path], n: int) -> None:
    store = ep.Store.open(str(paths["eventpak"]))
    env = None
    if lmdb is not None and "lmdb" in paths:
        env = lmdb.open(str(paths["lmdb"] / "lmdb"), map_size=lmdb_map_size(n), readonly=True)
    region = ep.Region.all()
    size = WORKER_BATCH

    def worker(d: Path) -> Sample:
        return deliver_with_worker(store, n, ep.CursorWorkerConfig(batch_size=size))

    def poll(d: Path) -> Sample:
        handler, _, seen = counting_handler(n)
        t0 = perf()
        poll_batch = store.cursor(region).poll_batch
        while batch := poll_batch(size):
            handler(batch, store, None)
        secs = perf() - t0
        if seen[0] != n:
            raise RuntimeError(f"poll_batch delivered {seen[0]:,} events, expected {n:,}")
        return Sample(n, secs)

    def lmdb_(d: Path) -> Sample:
        handler, _, seen = counting_handler(n)
        t0 = perf()
        with env.begin(buffers=True) as txn:
            items = txn.cursor().iternext(keys=True, values=True)
            while batch := list(itertools.islice(items, size)):
                handler(batch, None, None)
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


def case_h(b: Bench, path: Path, n: int) -> None:
    store = ep.Store.open(str(path))
    size, checkpoint_id = WORKER_BATCH, "bench-h"
    checkpoint_file = Path(store.path) / "cursors" / f"{checkpoint_id}.ckpt"

    def durable(d: Path) -> Sample:
        checkpoint_file.unlink(missing_ok=True)  # every round delivers all n events from the start
        sample = deliver_with_worker(
            store, n, ep.CursorWorkerConfig(batch_size=size, checkpoint_id=checkpoint_id)
        )
        saved = ep.Cursor.load_checkpoint(store.path, checkpoint_id)
        sample.extra["checkpoint_position"] = saved.position if saved is not None else None
        return sample

    def plain(d: Path) -> Sample:
        return deliver_with_worker(store, n, ep.CursorWorkerConfig(batch_size=size))

    peers = [
        Peer(
            "durable",
            "eventpak",
            f'cursor_worker(batch_size={size}, checkpoint_id="{checkpoint_id}"): '
            "checkpoint file written (fsync + rename + dir fsync) after every batch, no-op handler",
            durable,
        ),
        Peer("plain", "eventpak", f"cursor_worker(batch_size={size}), no checkpoint (= case g)", plain),
    ]
    try:
        title = f"(g) with a durable checkpoint after every batch of {size}"
        b.run_case("h", title, peers, warmup=True)
    finally:
        store.close()
    last = n - 1  # global sequences start at 0
    for s in b.samples["h"]["durable"]:
        if s.extra.get("checkpoint_position") != last:
            b.notes.append(
                f"(h) the checkpoint after a round holds position {s.extra.get('checkpoint_position')!r}, "
                f"expected {last}"
            )
            break
    b.rows += [
        Row("h", "durable", aim=">= 500,000 ev/s", check=lambda v, r: v >= 500_000),
        Row("h", "plain", ratio=("durable", "plain", "with checkpoint / without")),
    ]


def percentile(ordered: list[int], q: float) -> int:
    """Nearest-rank percentile of an ascending list."""
    return ordered[max(0, min(len(ordered) - 1, math.ceil(len(ordered) * q / 100) - 1))]


def latency_sample(lat_ns: list[int], seconds: float) -> Sample:
    ordered = sorted(lat_ns)
    extra: dict[str, Any] = {f"p{q:g}_us": percentile(ordered, q) / 1000 for q in (50, 90, 99, 99.9)}
    extra["max_us"] = ordered[-1] / 1000
    extra["mean_us"] = statistics.fmean(ordered) / 1000
    return Sample(len(ordered), seconds, extra)


def case_i(b: Bench) -> None:
    m = b.args.latency_appends
    clock = time.perf_counter_ns
    region = ep.Region.all()

    def eventpak(batch_size: int) -> Callable[[Path], Sample]:
        def run(d: Path) -> Sample:
            store = ep_open(d)  # sync="batch", the default
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

    def handoff(d: Path) -> Sample:
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

    peers = [
        Peer("bs1", "eventpak", 'cursor_worker(batch_size=1), append with sync="batch"', eventpak(1)),
        Peer("bs64", "eventpak", 'cursor_worker(batch_size=64), append with sync="batch"', eventpak(64)),
        Peer(
            "handoff",
            "Python threads",
            "reference without eventpak: main sets a threading.Event a thread waits on",
            handoff,
        ),
    ]
    b.run_case("i", f"append-to-handler latency with an idle worker, {m:,} single appends", peers)
    for key in ("bs1", "bs64"):
        b.rows += [
            Row(
                "i",
                key,
                unit="us",
                metric="p50_us",
                note="p50",
                ratio_to=(100.0, "p50 / aim"),
                aim="<= 100 us",
                check=lambda v, r: v <= 100,
            ),
            Row(
                "i",
                key,
                unit="us",
                metric="p99_us",
                note="p99",
                ratio_to=(1000.0, "p99 / aim"),
                aim="<= 1 ms",
                check=lambda v, r: v <= 1000,
            ),
            Row("i", key, unit="us", metric="max_us", note="max"),
        ]
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


def projection_kind(i: int) -> str:
    """Kind of the i-th event of the (j)/(k) entity: a deposit, except every NOTE_EVERY-th (a note)."""
    return NOTE if i % NOTE_EVERY == NOTE_EVERY - 1 else DEPOSIT


def projection_sum(n: int) -> int:
    """The state every system must reach after the first n events of the (j)/(k) entity."""
    return sum(PAYLOADS[i & POOL_MASK]["amount"] for i in range(n) if projection_kind(i) == DEPOSIT)


class Sum(ep.Projection):
    """The summing projection of (j) and (k)."""

    name = "sum"
    version = 1
    kinds = (DEPOSIT,)
    incremental = True

    def initial(self) -> int:
        return 0

    def apply(self, state: int, event: ep.Event) -> int:
        return state + event.payload["amount"]


if EsApplication is not None:

    class EsAccount(EsAggregate):
        """The eventsourcing peer of (j): created with the first deposit, then one method per kind."""

        def __init__(self, amount: int, currency: str, ref: str, note: str) -> None:
            self.balance = amount

        @es_event("Deposited")
        def deposit(self, amount: int, currency: str, ref: str, note: str) -> None:
            self.balance += amount

        @es_event("Noted")
        def add_note(self, amount: int, currency: str, ref: str, note: str) -> None:
            pass

    class EsBank(EsApplication):
        pass


def es_env(path: Path) -> dict[str, str]:
    """eventsourcing's configuration (its environment variables, given to the Application): SQLite
    in a file, no snapshots, no aggregate cache, so every repository.get replays every event."""
    return {
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "SQLITE_DBNAME": str(path),
        "IS_SNAPSHOTTING_ENABLED": "n",
        "AGGREGATE_CACHE_MAXSIZE": "",
    }


def load_projection_entity(store: ep.Store, n: int) -> None:
    """The n events of the (j)/(k) entity, in batches of BULK_CHUNK, not individually durable."""
    coord = ep.Coordinate(PROJ_ENTITY, SCOPE)
    for start in range(0, n, BULK_CHUNK):
        store.append_batch(
            [
                (coord, projection_kind(i), PAYLOADS[i & POOL_MASK])
                for i in range(start, min(n, start + BULK_CHUNK))
            ]
        )


def build_projection_stores(b: Bench, n: int) -> dict[str, Any]:
    """One store per system holding the n events of the one entity of (j), and nothing else."""
    log(f"== building the {n:,}-event entity of (j)")
    out: dict[str, Any] = {}
    setup: dict[str, float] = {}

    d = b.fresh_dir("proj-eventpak")
    t0 = perf()
    with ep_open(d, sync="never") as store:
        load_projection_entity(store, n)
        store.sync()
    setup["eventpak"] = perf() - t0
    out["eventpak"] = d / "store"

    d = b.fresh_dir("proj-sqlite")
    t0 = perf()
    conn = sqlite_open(d / "db.sqlite", "OFF")
    conn.execute("CREATE INDEX IF NOT EXISTS events_entity ON events (entity)")
    for start in range(0, n, BULK_CHUNK):
        conn.execute("BEGIN")
        conn.executemany(
            SQLITE_INSERT,
            [
                (PROJ_ENTITY, projection_kind(i), packb(PAYLOADS[i & POOL_MASK]))
                for i in range(start, min(n, start + BULK_CHUNK))
            ],
        )
        conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    setup["sqlite"] = perf() - t0
    out["sqlite"] = d / "db.sqlite"

    if EsApplication is not None:
        d = b.fresh_dir("proj-eventsourcing")
        t0 = perf()
        app = EsBank(env=es_env(d / "es.sqlite"))
        account = EsAccount(**PAYLOADS[0])  # event 0 (a deposit) is the aggregate's Created event
        for i in range(1, n):
            payload = PAYLOADS[i & POOL_MASK]
            if projection_kind(i) == DEPOSIT:
                account.deposit(**payload)
            else:
                account.add_note(**payload)
            if i % 1000 == 999:
                app.save(account)
        app.save(account)
        app.close()
        if account.version != n:
            raise RuntimeError(f"the eventsourcing aggregate has version {account.version}, expected {n}")
        setup["eventsourcing"] = perf() - t0
        out["eventsourcing"] = (d / "es.sqlite", account.id)
    for key, secs in setup.items():
        log(f"   load {key:<14} {secs:.2f} s ({n / secs:,.0f} ev/s)")
    b.setup["j"] = {k: {"events": n, "seconds": v} for k, v in setup.items()}
    return out


def case_j(b: Bench, paths: dict[str, Any], n: int) -> None:
    expected = projection_sum(n)
    store = ep.Store.open(str(paths["eventpak"]))  # projection_cache defaults to NoCache: cold every time
    conn = sqlite3.connect(str(paths["sqlite"]), check_same_thread=False)
    app = None
    if "eventsourcing" in paths:
        es_path, es_id = paths["eventsourcing"]
        app = EsBank(env=es_env(es_path))

    def timed(fn: Callable[[], int]) -> Sample:
        t0 = perf()
        state = fn()
        secs = perf() - t0
        if state != expected:
            raise RuntimeError(f"the fold gave {state}, expected {expected}")
        return Sample(n, secs)

    def eventpak(d: Path) -> Sample:
        return timed(lambda: store.project(PROJ_ENTITY, Sum()))

    def eventsourcing(d: Path) -> Sample:
        return timed(lambda: app.repository.get(es_id).balance)

    select = f"SELECT kind, payload FROM events WHERE entity=? AND kind='{DEPOSIT}' ORDER BY seq"

    def sqlite(d: Path) -> Sample:
        def fold() -> int:
            state = 0
            for _kind, payload in conn.execute(select, (PROJ_ENTITY,)):
                state = state + unpackb(payload)["amount"]
            return state

        return timed(fold)

    plan = " ".join(str(r[-1]) for r in conn.execute("EXPLAIN QUERY PLAN " + select, (PROJ_ENTITY,)))
    if "INDEX" not in plan:
        b.notes.append(f"(j) the sqlite3 query does not use the entity index: {plan}")
    peers = [
        Peer(
            "eventpak",
            "eventpak",
            f'store.project("{PROJ_ENTITY}", Sum()), kinds=("{DEPOSIT}",), NoCache (default)',
            eventpak,
        )
    ]
    if app is not None:
        peers.append(
            Peer(
                "eventsourcing",
                "eventsourcing",
                "application.repository.get(id), SQLite file, JSON transcoder (default), "
                "no snapshots, no aggregate cache; every event is applied",
                eventsourcing,
            )
        )
    peers.append(
        Peer(
            "sqlite",
            "sqlite3",
            f"SELECT kind, payload WHERE entity=? AND kind='{DEPOSIT}' ORDER BY seq (index on entity) "
            "+ msgpack.unpackb + inline fold",
            sqlite,
        )
    )
    try:
        title = (
            f"cold projection of one {n:,}-event entity (every {NOTE_EVERY}th a note) to a sum "
            "(warm page cache)"
        )
        b.run_case("j", title, peers, warmup=True)
    finally:
        store.close()
        conn.close()
        if app is not None:
            app.close()
    b.rows.append(Row("j", "eventpak"))
    if app is not None:
        b.rows.append(
            Row(
                "j",
                "eventsourcing",
                ratio=("eventpak", "eventsourcing", "eventpak / eventsourcing"),
                aim=">= 5",
                check=lambda v, r: r >= 5,
            )
        )
    b.rows.append(
        Row(
            "j",
            "sqlite",
            ratio=("eventpak", "sqlite", "eventpak / sqlite3"),
            aim=">= 2",
            check=lambda v, r: r >= 2,
        )
    )


def tmpfs_dir() -> str | None:
    """/dev/shm when it is a tmpfs this process may write (for the reference row of (k))."""
    try:
        with open("/proc/self/mounts") as fh:
            if not any(ln.split()[1:3] == ["/dev/shm", "tmpfs"] for ln in fh):
                return None
    except OSError:
        return None
    return "/dev/shm" if os.access("/dev/shm", os.W_OK) else None


def case_k(b: Bench, n: int, m: int) -> None:
    clock = time.perf_counter_ns
    coord = ep.Coordinate(PROJ_ENTITY, SCOPE)

    def cached(mode: str, cache_parent: str | None = None) -> Callable[[Path], Sample]:
        """One round: an n-event entity, a NativeCache warmed by one cold project(), then m timed
        calls (after WARMUP_CALLS untimed ones) of the ``mode`` loop."""

        def run(d: Path) -> Sample:
            cache_dir = Path(tempfile.mkdtemp(prefix="k-cache-", dir=cache_parent or d))
            store = ep_open(d, projection_cache=ep.NativeCache(str(cache_dir)))
            try:
                load_projection_entity(store, n)
                store.sync()  # no flush of the load pending in the timed loop
                expected = projection_sum(n)
                t0 = perf()
                state = store.project(PROJ_ENTITY, Sum())
                cold = perf() - t0
                if state != expected:
                    raise RuntimeError(f"the cold projection gave {state}, expected {expected}")
                append, project = store.append, store.project
                lat: list[int] = []
                t_start = perf()
                for i in range(-WARMUP_CALLS, m):
                    payload = PAYLOADS[i & POOL_MASK]
                    if mode == "append":
                        t0 = clock()
                        append(coord, DEPOSIT, payload)
                        t1 = clock()
                    else:
                        if mode == "incremental":
                            append(coord, DEPOSIT, payload)
                            expected += payload["amount"]
                        t0 = clock()
                        state = project(PROJ_ENTITY, Sum())
                        t1 = clock()
                        if state != expected:
                            raise RuntimeError(f"project() gave {state}, expected {expected}")
                    if i >= 0:
                        lat.append(t1 - t0)
                    else:
                        t_start = perf()
                secs = perf() - t_start
            finally:
                store.close()
                shutil.rmtree(cache_dir, ignore_errors=True)
            sample = latency_sample(lat, secs)
            sample.extra["cold_project_s"] = cold
            return sample

        return run

    peers = [
        Peer(
            "incremental",
            "eventpak",
            f'append 1 "{DEPOSIT}" (not timed), then store.project("{PROJ_ENTITY}", Sum()) with '
            "NativeCache: cached state + 1 event, re-cached",
            cached("incremental"),
        ),
        Peer(
            "hit",
            "eventpak",
            "store.project() with NativeCache, no new event: pure cache hit (reference)",
            cached("hit"),
        ),
        Peer(
            "append",
            "eventpak",
            f'store.append(coord, "{DEPOSIT}", payload), sync="batch" (reference)',
            cached("append"),
        ),
    ]
    shm = tmpfs_dir()
    if shm is not None:
        peers.insert(
            1,
            Peer(
                "incremental-tmpfs",
                "eventpak",
                f"the incremental loop with the cache dir on tmpfs ({shm}), store still in the temp dir "
                "(reference)",
                cached("incremental", shm),
            ),
        )
    title = (
        f"project() after one new event with a NativeCache (incremental), {m:,} calls on a {n:,}-event entity"
    )
    b.run_case("k", title, peers)
    b.rows += [
        Row(
            "k",
            "incremental",
            unit="us",
            metric="p50_us",
            note="p50",
            ratio_to=(K_AIM_US, "p50 / aim"),
            aim=f"<= {K_AIM_US:g} us",
            check=lambda v, r: v <= K_AIM_US,
        ),
        Row("k", "incremental", unit="us", metric="p99_us", note="p99"),
    ]
    if shm is not None:
        b.rows += [
            Row(
                "k",
                "incremental-tmpfs",
                unit="us",
                metric="p50_us",
                note="p50",
                ratio=("incremental-tmpfs", "incremental", "tmpfs / temp dir"),
            ),
            Row("k", "incremental-tmpfs", unit="us", metric="p99_us", note="p99"),
        ]
    b.rows += [
        Row(
            "k",
            "hit",
            unit="us",
            metric="p50_us",
            note="p50",
            ratio=("incremental", "hit", "after 1 event / pure hit"),
        ),
        Row("k", "hit", unit="us", metric="p99_us", note="p99"),
        Row("k", "append", unit="us", metric="p50_us", note="p50"),
        Row("k", "append", unit="us", metric="p99_us", note="p99"),
    ]


# ---------------------------------------------------------------------------------------- report


def machine_info(root: Path) -> dict[str, Any]:
    real = os.path.realpath(root)
    fs: dict[str, str] = {}
    try:
        best = ""
        with open("/proc/self/mounts") as fh:
            for line in fh:
                dev, mnt, fstype, opts = line.split()[:4]
                mnt = mnt.replace("\\040", " ")
                if (real == mnt or real.startswith(mnt.rstrip("/") + "/")) and len(mnt) >= len(best):
                    best, fs = mnt, {"mount": mnt, "type": fstype, "device": dev, "options": opts}
    except OSError:
        pass
    cpu = ""
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), "")
    except OSError:
        pass
    mem_gib = None
    with contextlib.suppress(ValueError, OSError):
        mem_gib = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    commit = ""
    try:
        here = Path(__file__).resolve().parent.parent
        commit = subprocess.run(
            ["git", "-C", str(here), "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return {
        "nproc": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu_count": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": mem_gib,
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "python_impl": platform.python_implementation(),
        "tmp_dir": real,
        "filesystem": fs,
        "eventpak": getattr(ep, "__version__", "?"),
        "eventpak_git": commit,
        "sqlite": sqlite3.sqlite_version,
        "lmdb": lmdb.version() if lmdb is not None else None,
        "py_lmdb": getattr(lmdb, "__version__", None) if lmdb is not None else None,
        "msgpack": ".".join(map(str, msgpack.version)),
        "eventsourcing": package_version("eventsourcing"),
    }


def package_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def median_ratio(b: Bench, row: Row) -> float | None:
    assert row.ratio is not None
    num, den = row.ratio[0], row.ratio[1]
    xs, ys = b.samples[row.case].get(num), b.samples[row.case].get(den)
    if not xs or not ys:
        return None
    val = row.value
    pairs = [(val(x), val(y)) for x, y in zip(xs, ys, strict=False) if val(y) > 0]
    return statistics.median(x / y for x, y in pairs) if pairs else None


UNIT_LABELS = {"seconds": "s", "us": "us", "rate": "events/s"}


def fmt_value(v: float, unit: str) -> str:
    if unit == "seconds":
        return f"{v:.3f} s" if v >= 1 else f"{v * 1000:.1f} ms"
    if unit == "us":
        return f"{v:,.1f} us" if v < 1000 else f"{v / 1000:,.2f} ms"
    return f"{v:,.0f} ev/s"


def build_rows(b: Bench) -> list[dict[str, Any]]:
    out = []
    for row in b.rows:
        if row.case not in b.samples or row.key not in b.samples[row.case]:
            continue
        samples = b.samples[row.case][row.key]
        vals = [row.value(s) for s in samples]
        med = statistics.median(vals)
        ratio = median_ratio(b, row) if row.ratio else None
        ratio_label = row.ratio[2] if row.ratio else None
        if row.ratio_to is not None:
            ratio, ratio_label = med / row.ratio_to[0], row.ratio_to[1]
        met = None
        if row.check is not None and (ratio is not None or ratio_label is None):
            met = bool(row.check(med, ratio))
        peer = b.peers[row.case][row.key]
        out.append(
            {
                "case": row.case,
                "key": row.key,
                "system": peer.system,
                "config": f"{peer.config}: **{row.note}**" if row.note else peer.config,
                "unit": UNIT_LABELS[row.unit],
                "metric": row.metric or None,
                "median": med,
                "min": min(vals),
                "max": max(vals),
                "rounds": len(vals),
                "events_per_round": int(statistics.median(s.events for s in samples))
                if samples[0].events
                else None,
                "ratio_label": ratio_label,
                "ratio": ratio,
                "aim": row.aim or None,
                "met": met,
            }
        )
    return out


def markdown(b: Bench, rows: list[dict[str, Any]], machine: dict[str, Any]) -> str:
    m = machine
    fs = m["filesystem"]
    a = b.args
    lines = [
        f"Machine: {m['nproc']} CPUs ({m['cpu'] or 'unknown CPU'}), {m['memory_gib']} GiB RAM, "
        f"{m['platform']}",
        f"Python {m['python']}, eventpak {m['eventpak']} ({m['eventpak_git'] or 'no git'}), "
        f"sqlite {m['sqlite']}, lmdb {m['lmdb']}, msgpack {m['msgpack']}, "
        f"eventsourcing {m['eventsourcing']}",
        f"Temp dir: {m['tmp_dir']} on {fs.get('type', '?')} "
        f"({fs.get('device', '?')} mounted at {fs.get('mount', '?')})",
        f"Settings: events={a.events:,}, write_events={a.write_events:,}, durable {a.durable_seconds:g} s or "
        f"{a.durable_max_ops:,} calls per system and round, rounds={a.rounds}, threads={a.threads}, "
        f"batch={a.batch_size}, worker batch={WORKER_BATCH}, latency appends={a.latency_appends:,}, "
        f"payload={PAYLOAD_BYTES} B msgpack, projection events={a.projection_events:,}, "
        f"projection calls={a.projection_calls:,}",
        "",
        "| Case | System | Configuration | Events/round | Result (median) | Range "
        "| Ratio (median of rounds) | Aim | Met |",
        "|---|---|---|---:|---:|---:|---|---|---|",
    ]
    units = {label: unit for unit, label in UNIT_LABELS.items()}
    for r in rows:
        unit = units[r["unit"]]
        rng = f"{fmt_value(r['min'], unit)} .. {fmt_value(r['max'], unit)}" if r["rounds"] > 1 else "1 run"
        ratio = f"{r['ratio_label']} = **{r['ratio']:.2f}**" if r["ratio"] is not None else ""
        met = "" if r["met"] is None else ("yes" if r["met"] else "**no**")
        events = f"{r['events_per_round']:,}" if r["events_per_round"] else ""
        lines.append(
            f"| ({r['case']}) | {r['system']} | {r['config']} | {events} | {fmt_value(r['median'], unit)} | "
            f"{rng} | {ratio} | {r['aim'] or ''} | {met} |"
        )
    lines.append("")
    lines.append("Cases: " + "; ".join(f"({k}) {v}" for k, v in b.titles.items()) + ".")
    for note in b.notes:
        lines.append(f"Note: {note}")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------ main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benches.compare", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--quick", action="store_true", help="small smoke run (20k events, 0.3 s per durable case)"
    )
    p.add_argument(
        "--events", type=int, help="events for the read/reopen cases (default 1,000,000; quick 20,000)"
    )
    p.add_argument(
        "--write-events", type=int, help="events per run in case (d) (default min(events, 200,000))"
    )
    p.add_argument(
        "--durable-seconds", type=float, help="time budget per durable run (default 2.0; quick 0.3)"
    )
    p.add_argument(
        "--durable-max-ops", type=int, help="call cap per durable run (default 20,000; quick 2,000)"
    )
    p.add_argument("--rounds", type=int, help="interleaved rounds per case (default 5; quick 2)")
    p.add_argument("--threads", type=int, default=8, help="threads in case (b) (default 8)")
    p.add_argument("--batch-size", type=int, default=1000, help="batch size in case (c) (default 1000)")
    p.add_argument(
        "--latency-appends",
        type=int,
        help="single appends per round in case (i) (default 10,000; quick 1,000)",
    )
    p.add_argument(
        "--projection-events",
        type=int,
        help="events of the one entity projected in cases (j) and (k) (default 100,000; quick 5,000)",
    )
    p.add_argument(
        "--projection-calls",
        type=int,
        help="timed project()/append calls per system and round in case (k) (default 2,000; quick 200)",
    )
    p.add_argument("--cases", default=ALL_CASES, help=f"which cases to run, e.g. 'ace' (default {ALL_CASES})")
    p.add_argument("--dir", help="parent directory for the temporary stores (default: the system temp dir)")
    p.add_argument("--json", help="where to write the JSON (default benches/results/latest.json, quick.json)")
    a = p.parse_args(argv)
    quick = a.quick
    if a.events is None:
        a.events = 20_000 if quick else 1_000_000
    if a.write_events is None:
        a.write_events = min(a.events, 200_000)
    if a.durable_seconds is None:
        a.durable_seconds = 0.3 if quick else 2.0
    if a.durable_max_ops is None:
        a.durable_max_ops = 2_000 if quick else 20_000
    if a.rounds is None:
        a.rounds = 2 if quick else 5
    if a.json is None:
        a.json = str(RESULTS_DIR / ("quick.json" if quick else "latest.json"))
    if a.latency_appends is None:
        a.latency_appends = 1_000 if quick else 10_000
    if a.projection_events is None:
        a.projection_events = 5_000 if quick else 100_000
    if a.projection_calls is None:
        a.projection_calls = 200 if quick else 2_000
    unknown = set(a.cases) - set(ALL_CASES)
    if unknown:
        p.error(f"unknown cases: {''.join(sorted(unknown))}")
    sizes = (
        a.events,
        a.write_events,
        a.durable_max_ops,
        a.rounds,
        a.threads,
        a.batch_size,
        a.latency_appends,
        a.projection_events,
        a.projection_calls,
    )
    if min(sizes) < 1:
        p.error("sizes must be positive")
    return a


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = perf()
    with tempfile.TemporaryDirectory(prefix="eventpak-bench-", dir=args.dir) as tmp:
        root = Path(tmp)
        machine = machine_info(root)
        b = Bench(args, root)
        if lmdb is None:
            b.notes.append("lmdb is not installed: its rows are missing")
        if "a" in args.cases:
            case_a(b)
        if "b" in args.cases:
            case_b(b)
        if "c" in args.cases:
            case_c(b)
        if "d" in args.cases:
            case_d(b)
        if set(args.cases) & set("efgh"):
            paths = build_read_stores(b, args.events)
            if "e" in args.cases:
                case_e(b, paths, args.events)
            if "f" in args.cases:
                case_f(b, paths["eventpak"], args.events)
            if "g" in args.cases:
                case_g(b, paths, args.events)
            if "h" in args.cases:
                case_h(b, paths["eventpak"], args.events)
        if "i" in args.cases:
            case_i(b)
        if "j" in args.cases:
            if EsApplication is None:
                b.notes.append("eventsourcing is not installed: its (j) row is missing")
            case_j(b, build_projection_stores(b, args.projection_events), args.projection_events)
        if "k" in args.cases:
            case_k(b, args.projection_events, args.projection_calls)
    total = perf() - started
    rows = build_rows(b)
    table = markdown(b, rows, machine)
    print(table)
    print(f"\nTotal wall time {total:.0f} s.")
    doc = {
        "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": [
            Path(sys.executable).name,
            "-m",
            "benches.compare",
            *(argv if argv is not None else sys.argv[1:]),
        ],
        "settings": {k: v for k, v in vars(args).items() if k != "json"},
        "machine": machine,
        "wall_seconds": round(total, 1),
        "rows": rows,
        "cases": {
            case: {
                "title": b.titles.get(case, ""),
                "systems": {
                    key: {
                        "system": b.peers[case][key].system,
                        "config": b.peers[case][key].config,
                        "rounds": [
                            {"events": s.events, "seconds": s.seconds, "events_per_s": s.rate, **s.extra}
                            for s in ss
                        ],
                    }
                    for key, ss in per.items()
                },
            }
            for case, per in b.samples.items()
        },
        "setup": b.setup,
        "notes": b.notes,
        "markdown": table,
    }
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2, default=str) + "\n")
    log(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
