"""One ``eventsourcing`` application workload on three of the library's persistence modules:
``eventpak.eventsourcing``, the library's SQLite module (a file database, WAL) and its POPO
module (plain Python objects in memory: the ceiling of what any persistence module can reach
under the same application code).

    .venv/bin/python -m benches.eventsourcing_app            # full run, ~3 min on 2 cores
    .venv/bin/python -m benches.eventsourcing_app --quick    # smoke run, ~10 s

Lines (see benches/README.md, "eventsourcing application"):

  (1) durable writes, one thread: --aggregates-durable aggregates are created and saved, then
      each gets --events-per-aggregate increments, each saved: one event per ``app.save``. Every
      save is durable when it returns: eventpak ``EVENTPAK_SYNC=always``, SQLite in its default
      ``synchronous=FULL`` (an fsync of the WAL per commit); POPO keeps nothing.
  (2) the same from --threads threads sharing the application, each saving its own aggregates.
  (3) writes without fsync (eventpak ``EVENTPAK_SYNC=never``, SQLite ``synchronous=OFF``), one
      thread, --aggregates aggregates: what the persistence costs in CPU.
  (4) reads: ``app.repository.get(id)`` of every aggregate of (3), rebuilt from its events
      (warm page cache, no snapshots).
  (5) the notification log of (3): ``select_notifications`` in pages of 500, in order.
  (6) the recorders alone, without the library's domain layer: ``insert_events`` of one stored
      event per call (no fsync, as in (3)), then ``select_events`` of each originator.

Every line runs --rounds interleaved rounds (the systems' order rotates each round, each run on a
fresh directory); the table shows the median of the rounds and their range, and each ratio is the
median of the per-round ratios. Every run checks what it wrote and read back.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib.metadata
import json
import os
import platform
import shutil
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import eventpak as ep
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import InfrastructureFactory, StoredEvent
from eventsourcing.sqlite import SQLiteFactory
from eventsourcing.utils import Environment, EnvType

RESULTS_DIR = Path(__file__).resolve().parent / "results"
SYSTEMS = ("eventpak", "sqlite", "popo")
PAGE = 500
TOPIC = "benches.eventsourcing_app:Counter.Created"


class Counter(Aggregate):
    """The aggregate of the workload: created with a name, then incremented."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.count = 0

    @event("Incremented")
    def increment(self, by: int) -> None:
        self.count += by


class Counters(Application[UUID]):
    """The application of the workload. ``factory_class`` overrides PERSISTENCE_MODULE (for
    SQLite without fsync, which the library's settings cannot ask for)."""

    factory_class: type[InfrastructureFactory[Any]] | None = None

    def construct_factory(self, env: Environment) -> InfrastructureFactory[Any]:
        if self.factory_class is not None:
            return self.factory_class(env)
        return super().construct_factory(env)


class SQLiteUnsyncedFactory(SQLiteFactory):
    """The library's SQLite module with ``PRAGMA synchronous=OFF`` on every connection."""

    def __init__(self, env: Environment | EnvType | None) -> None:
        super().__init__(env)
        pool = self.datastore.pool
        create = pool._create_connection

        def create_unsynced() -> Any:
            conn = create()
            conn._sqlite_conn.execute("PRAGMA synchronous=OFF")
            return conn

        pool._create_connection = create_unsynced  # type: ignore[method-assign]


class CountersOnUnsyncedSQLite(Counters):
    name = "Counters"
    factory_class = SQLiteUnsyncedFactory


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def app_for(system: str, root: Path, durable: bool) -> Counters:
    if system == "eventpak":
        env = {
            "PERSISTENCE_MODULE": "eventpak.eventsourcing",
            "EVENTPAK_DATA_DIR": str(root / "eventpak"),
            "EVENTPAK_SYNC": "always" if durable else "never",
        }
        return Counters(env=env)
    if system == "sqlite":
        env = {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(root / "events.sqlite")}
        return Counters(env=env) if durable else CountersOnUnsyncedSQLite(env=env)
    return Counters(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})


def write_aggregates(app: Counters, n: int, k: int) -> list[UUID]:
    """Creates ``n`` aggregates, each saved, then ``k`` increments each, each saved."""
    ids = []
    for i in range(n):
        counter = Counter(name=f"counter-{i}")
        app.save(counter)
        for j in range(k):
            counter.increment(by=j + 1)
            app.save(counter)
        ids.append(counter.id)
    return ids


def check_notifications(app: Counters, expected: int) -> None:
    got = app.recorder.max_notification_id()
    if got != expected:
        raise AssertionError(f"{type(app.factory).__name__}: max notification id {got}, expected {expected}")


@dataclass
class Run:
    seconds: float
    count: int  # what the rate counts (saves, aggregates, notifications, calls)

    @property
    def rate(self) -> float:
        return self.count / self.seconds


@dataclass
class Line:
    key: str
    title: str
    unit: str
    runs: dict[str, list[Run]] = field(default_factory=lambda: {s: [] for s in SYSTEMS})


def timed(fn: Callable[[], int]) -> Run:
    gc.collect()
    start = time.perf_counter()
    count = fn()
    return Run(time.perf_counter() - start, count)


def durable_writes(system: str, root: Path, a: argparse.Namespace) -> Run:
    app = app_for(system, root, durable=True)
    saves = a.aggregates_durable * (1 + a.events_per_aggregate)

    def writes() -> int:
        write_aggregates(app, a.aggregates_durable, a.events_per_aggregate)
        return saves

    try:
        run = timed(writes)
        check_notifications(app, saves)
        return run
    finally:
        app.close()


def threaded_writes(system: str, root: Path, a: argparse.Namespace) -> Run:
    app = app_for(system, root, durable=True)
    per_thread = max(1, a.aggregates_durable // a.threads)
    errors: list[BaseException] = []
    barrier = threading.Barrier(a.threads + 1)

    def work() -> None:
        barrier.wait()
        try:
            write_aggregates(app, per_thread, a.events_per_aggregate)
        except BaseException as exc:  # reported after the join
            errors.append(exc)

    try:
        threads = [threading.Thread(target=work) for _ in range(a.threads)]
        for t in threads:
            t.start()
        gc.collect()
        barrier.wait()
        start = time.perf_counter()
        for t in threads:
            t.join()
        seconds = time.perf_counter() - start
        if errors:
            raise errors[0]
        saves = a.threads * per_thread * (1 + a.events_per_aggregate)
        check_notifications(app, saves)
        return Run(seconds, saves)
    finally:
        app.close()


def unsynced_lines(system: str, root: Path, a: argparse.Namespace) -> tuple[Run, Run, Run]:
    """Lines (3), (4) and (5) on one application."""
    app = app_for(system, root, durable=False)
    try:
        n, k = a.aggregates, a.events_per_aggregate
        ids: list[UUID] = []

        def writes() -> int:
            ids.extend(write_aggregates(app, n, k))
            return n * (1 + k)

        w = timed(writes)
        check_notifications(app, n * (1 + k))
        expected = k * (k + 1) // 2

        def reads() -> int:
            for aggregate_id in ids:
                counter: Counter = app.repository.get(aggregate_id)
                if counter.count != expected:
                    raise AssertionError(f"{system}: count {counter.count}, expected {expected}")
            return len(ids)

        reads()  # first touch of the pages (and of the library's caches), not measured
        r = timed(reads)

        def notifications() -> int:
            last, seen = 0, 0
            while True:
                page = app.recorder.select_notifications(start=last, limit=PAGE, inclusive_of_start=False)
                if not page:
                    break
                if page[0].id <= last:
                    raise AssertionError(f"{system}: notification ids out of order")
                seen += len(page)
                last = page[-1].id
            if seen != n * (1 + k):
                raise AssertionError(f"{system}: {seen} notifications, expected {n * (1 + k)}")
            return seen

        nt = timed(notifications)
        return w, r, nt
    finally:
        app.close()


def recorder_lines(system: str, root: Path, a: argparse.Namespace) -> tuple[Run, Run]:
    """Line (6): the application recorder alone."""
    app = app_for(system, root, durable=False)
    try:
        recorder = app.recorder
        ids = [uuid4() for _ in range(a.recorder_calls)]
        state = b'{"timestamp":"2025-01-01T00:00:00+00:00","name":"counter"}'

        def inserts() -> int:
            for originator_id in ids:
                recorder.insert_events([StoredEvent(originator_id, 1, TOPIC, state)])
            return len(ids)

        def selects() -> int:
            for originator_id in ids:
                if len(recorder.select_events(originator_id)) != 1:
                    raise AssertionError(f"{system}: select_events lost an event")
            return len(ids)

        return timed(inserts), timed(selects)
    finally:
        app.close()


def rounds(a: argparse.Namespace, root: Path, lines: dict[str, Line]) -> None:
    for r in range(a.rounds):
        shift = r % len(SYSTEMS)
        order = SYSTEMS[shift:] + SYSTEMS[:shift]
        for system in order:
            parts: list[tuple[str, Run]] = []
            for line_keys, job in (
                (("1",), lambda s, d, a: (durable_writes(s, d, a),)),
                (("2",), lambda s, d, a: (threaded_writes(s, d, a),)),
                (("3", "4", "5"), unsynced_lines),
                (("6i", "6s"), recorder_lines),
            ):
                if not any(key[0] in a.lines for key in line_keys):
                    continue
                d = Path(tempfile.mkdtemp(prefix=f"es-{system}-", dir=root))
                try:
                    runs = job(system, d, a)
                finally:
                    shutil.rmtree(d, ignore_errors=True)
                parts.extend(zip(line_keys, runs, strict=True))
            parts = [(key, run) for key, run in parts if key in lines]
            for key, run in parts:
                lines[key].runs[system].append(run)
            shown = ", ".join(f"({key}) {run.rate:,.0f}/s" for key, run in parts)
            log(f"round {r + 1}/{a.rounds} {system:<9} {shown}")


def median_ratio(line: Line, top: str, bottom: str) -> float | None:
    pairs = zip(line.runs[top], line.runs[bottom], strict=False)
    ratios = [t.rate / b.rate for t, b in pairs if b.rate > 0]
    return statistics.median(ratios) if ratios else None


def shown(rates: list[float]) -> str:
    if not rates:
        return "-"
    med = statistics.median(rates)
    if len(rates) == 1:
        return f"{med:,.0f}"
    return f"{med:,.0f} ({min(rates):,.0f}-{max(rates):,.0f})"


def ratio_text(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def sqlite_synchronous(root: Path) -> dict[str, int]:
    """What ``PRAGMA synchronous`` the SQLite module's connections run with, in WAL mode."""
    path = root / "probe.sqlite"
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        default = conn.execute("PRAGMA synchronous").fetchone()[0]
    finally:
        conn.close()
        path.unlink(missing_ok=True)
    return {"wal_default": int(default), "unsynced_lines": 0}


def machine(root: Path) -> dict[str, Any]:
    fs = ""
    real = os.path.realpath(root)
    with contextlib.suppress(OSError), open("/proc/self/mounts") as fh:
        best = ""
        for row in fh:
            dev, mnt, fstype = row.split()[:3]
            if (real == mnt or real.startswith(mnt.rstrip("/") + "/")) and len(mnt) >= len(best):
                best, fs = mnt, f"{fstype} on {dev} ({mnt})"
    cpu = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as fh:
        cpu = next((row.split(":", 1)[1].strip() for row in fh if row.startswith("model name")), "")
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "eventpak": ep.__version__,
        "eventsourcing": importlib.metadata.version("eventsourcing"),
        "sqlite": sqlite3.sqlite_version,
        "filesystem": fs,
    }


def main(argv: list[str] | None = None) -> int:
    summary = (__doc__ or "").split("\n", 1)[0]
    p = argparse.ArgumentParser(prog="python -m benches.eventsourcing_app", description=summary)
    p.add_argument("--quick", action="store_true", help="small smoke run")
    p.add_argument("--aggregates", type=int, help="aggregates of lines (3)-(5) (2,000; quick 100)")
    p.add_argument("--aggregates-durable", type=int, help="aggregates of lines (1), (2) (200; quick 16)")
    p.add_argument("--events-per-aggregate", type=int, help="increments per aggregate (default 9; quick 4)")
    p.add_argument("--threads", type=int, default=8, help="threads of line (2) (default 8)")
    p.add_argument("--recorder-calls", type=int, help="calls of line (6) (default 20,000; quick 500)")
    p.add_argument("--rounds", type=int, help="interleaved rounds (default 3; quick 1)")
    p.add_argument("--lines", default="123456", help="a subset of the lines, e.g. 345")
    p.add_argument("--dir", help="where the temporary stores go (default: the system temp dir)")
    p.add_argument("--json", help="the JSON's path (benches/results/eventsourcing_app[-quick].json)")
    a = p.parse_args(argv)
    defaults = {
        "aggregates": (2000, 100),
        "aggregates_durable": (200, 16),
        "events_per_aggregate": (9, 4),
        "recorder_calls": (20000, 500),
        "rounds": (3, 1),
    }
    for name, (full, quick) in defaults.items():
        if getattr(a, name) is None:
            setattr(a, name, quick if a.quick else full)
    default_json = RESULTS_DIR / f"eventsourcing_app{'-quick' if a.quick else ''}.json"
    json_path = Path(a.json) if a.json else default_json

    root = Path(tempfile.mkdtemp(prefix="eventpak-es-bench-", dir=a.dir))
    try:
        info = machine(root)
        info["sqlite_synchronous"] = sqlite_synchronous(root)
        n, nd, k, calls = a.aggregates, a.aggregates_durable, a.events_per_aggregate, a.recorder_calls
        lines = {
            line.key: line
            for line in (
                Line("1", f"durable writes, 1 thread: {nd * (1 + k):,} saves of one event", "saves/s"),
                Line("2", f"durable writes, {a.threads} threads: {nd * (1 + k):,} saves", "saves/s"),
                Line("3", f"writes without fsync, 1 thread: {n * (1 + k):,} saves of one event", "saves/s"),
                Line("4", f"reads: repository.get of {n:,} aggregates of {1 + k} events", "aggregates/s"),
                Line("5", f"notification log: {n * (1 + k):,} in pages of {PAGE}", "notifications/s"),
                Line("6i", f"recorder alone: {calls:,} insert_events of one event", "calls/s"),
                Line("6s", f"recorder alone: {calls:,} select_events of one originator", "calls/s"),
            )
            if line.key[0] in a.lines
        }
        log(f"eventsourcing application bench in {root} ({info['filesystem']})")
        rounds(a, root, lines)
    finally:
        shutil.rmtree(root, ignore_errors=True)

    out = [
        "| line | workload | unit | eventpak | SQLite | POPO | eventpak / SQLite | eventpak / POPO |",
        "|---|---|---|---|---|---|---|---|",
    ]
    rows = []
    for line in lines.values():
        rates = {s: [run.rate for run in line.runs[s]] for s in SYSTEMS}
        vs_sqlite, vs_popo = median_ratio(line, "eventpak", "sqlite"), median_ratio(line, "eventpak", "popo")
        out.append(
            f"| ({line.key}) | {line.title} | {line.unit} | {shown(rates['eventpak'])} "
            f"| {shown(rates['sqlite'])} | {shown(rates['popo'])} | {ratio_text(vs_sqlite)} "
            f"| {ratio_text(vs_popo)} |"
        )
        rows.append(
            {
                "line": line.key,
                "title": line.title,
                "unit": line.unit,
                "rates": rates,
                "median": {s: (statistics.median(r) if r else None) for s, r in rates.items()},
                "ratio_to_sqlite": vs_sqlite,
                "ratio_to_popo": vs_popo,
            }
        )
    print(
        f"eventsourcing {info['eventsourcing']} application on eventpak {info['eventpak']}, "
        f"SQLite {info['sqlite']} (WAL, synchronous={info['sqlite_synchronous']['wal_default']} "
        "for durable lines, 0 otherwise) and POPO; "
        f"{info['cpus']} CPUs, {info['filesystem']}, Python {info['python']}; median of {a.rounds} round(s)\n"
    )
    print("\n".join(out))
    json_path.parent.mkdir(parents=True, exist_ok=True)
    settings = {k: getattr(a, k) for k in (*defaults, "threads", "lines", "quick")}
    json_path.write_text(json.dumps({"machine": info, "settings": settings, "rows": rows}, indent=2) + "\n")
    log(f"JSON written to {json_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
