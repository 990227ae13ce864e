"""``bench``: a short built-in benchmark of this machine's disk and this build."""

from __future__ import annotations

import argparse
import contextlib
import functools
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from .. import Coordinate, Region, Store, SyncMode
from ._base import UsageError, count
from ._output import Column, print_json, print_table, terminal_console

__all__ = ["register"]

ENTITIES = 100
BATCH = 100
KIND = "bench.tick"


@dataclass(frozen=True)
class Case:
    """One measured case: ``events`` appended or read in ``seconds``."""

    case: str
    sync: str | None
    events: int
    seconds: float

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else float("inf")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Adds ``bench`` to the command line."""
    bench = sub.add_parser(
        "bench",
        help="measure appends (each sync mode) and reads on this machine",
        description=(
            "Appends events one at a time with sync=always (each append durable before it "
            "returns), sync=batch and sync=never, then in batches of 100, then reads the whole "
            "log with a query and with a cursor, and prints events per second for each. "
            "Without DIR it works in a temporary directory (under $TMPDIR) and removes it; with "
            "DIR (a new or empty directory, to measure the disk it is on) the benchmark's store "
            "is left there. On a terminal, a table; elsewhere one line per case, fields "
            "separated by tabs: case, sync mode, events, seconds, events/s. --json prints one "
            "JSON object per case (case, sync, events, seconds, events_per_second)."
        ),
    )
    bench.add_argument(
        "data_dir",
        nargs="?",
        metavar="DIR",
        help="a new or empty directory to keep the benchmark's store in (default: a temporary one)",
    )
    bench.add_argument(
        "--events",
        type=count(1),
        default=20_000,
        metavar="N",
        help="events per case with sync=batch and sync=never, and per batch case (default: 20,000)",
    )
    bench.add_argument(
        "--durable-events",
        type=count(1),
        default=500,
        metavar="N",
        help="events of the sync=always case: one fsync each (default: 500)",
    )
    bench.add_argument(
        "--payload-bytes",
        type=count(0),
        default=100,
        metavar="N",
        help="size of the text in each event's payload (default: 100)",
    )
    bench.add_argument("--json", action="store_true", help="one JSON object per case")
    bench.set_defaults(run=_bench, parser=bench)


@contextlib.contextmanager
def _bench_dir(given: str | None) -> Iterator[Path]:
    """The directory the benchmark's store lives in: ``given`` (new or empty, kept) or a
    temporary one (removed)."""
    if given is None:
        with tempfile.TemporaryDirectory(prefix="eventpak-bench-") as temporary:
            yield Path(temporary) / "store"
        return
    path = Path(given)
    if path.exists() and not path.is_dir():
        raise UsageError(f"{given} is a file, not a directory")
    if path.is_dir() and any(path.iterdir()):
        raise UsageError(f"{given} is not empty; give a new or empty directory, or no DIR at all")
    yield path


def _timed(case: str, sync: SyncMode | None, events: int, work: Callable[[], object]) -> Case:
    start = time.perf_counter()
    work()
    return Case(case, sync, events, time.perf_counter() - start)


def _run_cases(path: Path, args: argparse.Namespace, done: Callable[[Case], None]) -> None:
    coords = [Coordinate(f"bench:{n}", "bench") for n in range(ENTITIES)]
    pad = "x" * args.payload_bytes

    def appends(store: Store, first: int, n: int) -> None:
        for i in range(first, first + n):
            store.append(coords[i % ENTITIES], KIND, {"i": i, "pad": pad})

    def batches(store: Store, first: int, n: int) -> None:
        for start in range(first, first + n, BATCH):
            end = min(start + BATCH, first + n)
            store.append_batch(
                [(coords[i % ENTITIES], KIND, {"i": i, "pad": pad}) for i in range(start, end)]
            )

    total = 0
    plan: list[tuple[str, SyncMode, int, Callable[[Store, int, int], None]]] = [
        ("append", "always", args.durable_events, appends),
        ("append", "batch", args.events, appends),
        ("append", "never", args.events, appends),
        (f"append_batch of {BATCH}", "batch", args.events, batches),
    ]
    for name, sync, n, work in plan:
        with Store.open(path, sync=sync) as store:
            first = total
            done(_timed(name, sync, n, functools.partial(work, store, first, n)))
            total += n

    def query_all(store: Store) -> None:
        for event in store.query(Region.all()):
            _ = event.payload

    def cursor_all(store: Store) -> None:
        cursor = store.cursor(Region.all())
        while batch := cursor.poll_batch(1000):
            for event in batch:
                _ = event.payload

    with Store.open(path, read_only=True) as store:
        done(_timed("query whole log", None, total, lambda: query_all(store)))
        done(_timed("cursor whole log", None, total, lambda: cursor_all(store)))


def _bench(args: argparse.Namespace) -> int:
    out = sys.stdout
    console = None if args.json else terminal_console(out)
    results: list[Case] = []

    def done(case: Case) -> None:
        results.append(case)
        if args.json:
            print_json(out, {**asdict(case), "events_per_second": round(case.events_per_second, 1)})
            out.flush()
        elif console is None:
            print_table(out, [], [_cells(case)])
            out.flush()

    with _bench_dir(args.data_dir) as path:
        if console is None:
            _run_cases(path, args, done)
        else:
            with console.status("running the benchmark ..."):
                _run_cases(path, args, done)
    if console is not None:
        columns = [Column("case"), Column("sync"), Column("events", numeric=True)]
        columns += [Column("seconds", numeric=True), Column("events/s", numeric=True)]
        where = f"store kept in {args.data_dir}" if args.data_dir else "temporary store, removed"
        print_table(
            out, columns, [_cells(c, pretty=True) for c in results], title=f"eventpak bench ({where})"
        )
    return 0


def _cells(case: Case, *, pretty: bool = False) -> list[str]:
    if pretty:
        rate = f"{case.events_per_second:,.0f}"
        return [case.case, case.sync or "-", f"{case.events:,}", f"{case.seconds:.3f}", rate]
    rate = f"{case.events_per_second:.1f}"
    return [case.case, case.sync or "-", str(case.events), f"{case.seconds:.6f}", rate]
