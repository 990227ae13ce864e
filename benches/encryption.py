"""What encryption at rest costs: the same work on a clear store and on one opened with
``encryption_key``, side by side in one run.

Cases (each round runs both stores, fresh directories on the same file system, the order
rotating from round to round; a ratio is the median of the rounds' encrypted / clear):

- ``single``: durable (``sync="always"``) single appends, aim >= 0.95x;
- ``batch``: durable batches of 1,000 events, aim >= 0.7x;
- ``read``: reading every event through a cursor and decoding its payload, aim >= 0.7x.

Every entity of the workload's pool gets its data key before the timing starts (its first
append fsyncs the key file once; that is a one-off per entity, not a per-event cost).

    .venv/bin/python -m benches.encryption                # about a minute
    .venv/bin/python -m benches.encryption --quick             # a smoke run of a few seconds
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import eventpak as ep

from benches._workload import KIND, POOL_MASK, SCOPE, make_entities, make_payloads
from benches.compare.harness import RESULTS_DIR, Bench, Peer, Row, Sample, perf
from benches.compare.report import (
    finish_run,
    machine_info,
    machine_lines,
    report_text,
)

BATCH = 1000
COORDS = [ep.Coordinate(e, SCOPE) for e in make_entities()]
PAYLOADS = make_payloads()
ITEMS = [(COORDS[j & POOL_MASK], KIND, PAYLOADS[j & POOL_MASK]) for j in range(BATCH)]
KEY = ep.generate_encryption_key()
MODES = {"clear": None, "encrypted": KEY}
AIMS = {"single": 0.95, "batch": 0.7, "read": 0.7}


def _open(path: Path, key: bytes | None, sync: str = "always") -> ep.Store:
    store = ep.Store.open(path, sync=sync, encryption_key=key)
    store.append_batch([(c, KIND, PAYLOADS[0]) for c in COORDS])  # every entity's key, untimed
    return store


def single_run(key: bytes | None, n: int) -> Callable[[Path], Sample]:
    def run(d: Path) -> Sample:
        with _open(d / "s", key) as store:
            append = store.append
            t0 = perf()
            for i in range(n):
                append(COORDS[i & POOL_MASK], KIND, PAYLOADS[i & POOL_MASK])
            return Sample(n, perf() - t0)

    return run


def batch_run(key: bytes | None, batches: int) -> Callable[[Path], Sample]:
    def run(d: Path) -> Sample:
        with _open(d / "s", key) as store:
            t0 = perf()
            for _ in range(batches):
                store.append_batch(ITEMS)
            return Sample(batches * BATCH, perf() - t0)

    return run


def read_run(key: bytes | None, events: int) -> Callable[[Path], Sample]:
    def run(d: Path) -> Sample:
        with _open(d / "s", key, sync="never") as store:
            for _ in range(events // BATCH):
                store.append_batch(ITEMS)
            total = store.stats()["visible_events"]
            cursor = store.cursor(ep.Region.all())
            t0 = perf()
            got = 0
            while batch := cursor.poll_batch(BATCH):
                for event in batch:
                    event.payload  # noqa: B018 - the decode is what is measured
                got += len(batch)
            secs = perf() - t0
            if got != total:
                raise RuntimeError(f"read {got} events, expected {total}")
            return Sample(got, secs)

    return run


def case(b: Bench, name: str, title: str, make: Callable[[bytes | None], Callable[[Path], Sample]]) -> None:
    peers = [
        Peer(mode, "eventpak", f"encryption_key={'None' if k is None else '32 bytes'}", make(k))
        for mode, k in MODES.items()
    ]
    b.run_case(name, title, peers)
    b.rows.append(Row(name, "clear"))
    aim = AIMS[name]
    row = Row(name, "encrypted", ratio=("encrypted", "clear", "encrypted / clear"), aim=f">= {aim}")
    row.check = lambda v, r: r is not None and r >= aim
    b.rows.append(row)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m benches.encryption", description=(__doc__ or "").split("\n\n")[0]
    )
    p.add_argument("--quick", action="store_true", help="small smoke run (a few seconds)")
    p.add_argument("--rounds", type=int, help="rounds per case (default 5; quick 1)")
    p.add_argument(
        "--singles", type=int, help="durable single appends per store and round (default 2,000; quick 50)"
    )
    p.add_argument(
        "--batches", type=int, help="durable batches of 1,000 per store and round (default 20; quick 2)"
    )
    p.add_argument(
        "--events", type=int, help="events read per store and round (default 200,000; quick 5,000)"
    )
    p.add_argument("--dir", help="parent directory of the temporary stores (default: the system temp dir)")
    p.add_argument("--json", help="where to write the JSON (default benches/results/encryption.json)")
    a = p.parse_args(argv)
    defaults = {"rounds": (5, 1), "singles": (2000, 50), "batches": (20, 2), "events": (200_000, 5000)}
    for name, (full, quick) in defaults.items():
        if getattr(a, name) is None:
            setattr(a, name, quick if a.quick else full)
    if a.json is None:
        a.json = str(RESULTS_DIR / ("encryption-quick.json" if a.quick else "encryption.json"))
    if min(a.rounds, a.singles, a.batches, a.events) < 1:
        p.error("sizes must be positive")
    return a


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = perf()
    with tempfile.TemporaryDirectory(prefix="eventpak-encryption-bench-", dir=args.dir) as tmp:
        root = Path(tmp)
        machine: dict[str, Any] = machine_info(root)
        b = Bench(args, root)
        case(b, "single", "durable single appends", lambda k: single_run(k, args.singles))
        case(b, "batch", "durable batches of 1,000", lambda k: batch_run(k, args.batches))
        case(b, "read", "read and decode every event through a cursor", lambda k: read_run(k, args.events))
    head = [
        *machine_lines(machine),
        f"Settings: rounds={args.rounds}, singles={args.singles:,}, batches={args.batches} x {BATCH:,}, "
        f"read events={args.events:,}; every entity keyed before timing",
    ]
    finish_run(
        b,
        argv,
        machine,
        started,
        lambda rows: report_text(head, b, rows, label="Cases"),
        module="benches.encryption",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
