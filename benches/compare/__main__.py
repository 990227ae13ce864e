"""``python -m benches.compare``: the options, then every selected case in turn, then the report."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import benches.compare
from benches.compare.cases import ALL_CASES, CASES
from benches.compare.harness import RESULTS_DIR, Bench, perf
from benches.compare.peers import lmdb, msgspec
from benches.compare.report import finish_run, machine_info, markdown


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    description = (benches.compare.__doc__ or "").split("\n\n")[0]
    p = argparse.ArgumentParser(prog="python -m benches.compare", description=description)
    p.add_argument(
        "--quick", action="store_true", help="small smoke run (20k events, 0.3 s per durable case)"
    )
    p.add_argument(
        "--events", type=int, help="events for the read/reopen cases (default 1,000,000; quick 20,000)"
    )
    p.add_argument(
        "--write-events", type=int, help="events per run in cases (d) and (l) (default min(events, 200,000))"
    )
    p.add_argument(
        "--durable-seconds", type=float, help="time budget per durable run (default 2.0; quick 0.3)"
    )
    p.add_argument(
        "--durable-max-ops", type=int, help="call cap per durable run (default 20,000; quick 2,000)"
    )
    p.add_argument("--rounds", type=int, help="interleaved rounds per case (default 5; quick 2)")
    p.add_argument("--threads", type=int, default=8, help="threads in case (b) (default 8)")
    p.add_argument(
        "--batch-size", type=int, default=1000, help="batch size in cases (c) and (l) (default 1000)"
    )
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
        if not lmdb.AVAILABLE:
            b.notes.append("lmdb is not installed: its rows are missing")
        if not msgspec.AVAILABLE:
            b.notes.append("msgspec is not installed: its rows are missing")
        for case, run in CASES.items():  # always in CASES order, whatever the order of --cases
            if case in args.cases:
                run(b)
    finish_run(b, argv, machine, started, lambda rows: markdown(b, rows, machine))
    return 0


if __name__ == "__main__":
    sys.exit(main())
