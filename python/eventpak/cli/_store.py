"""``demo``, ``stats``, ``verify`` and ``backup``: a store as a whole."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any

from ..demo import run_demo
from ..errors import CorruptSegment
from ..verify import VerifyProblem, VerifyReport
from ._base import UsageError, count, is_data_dir, open_for_reading
from ._output import Column, print_json, print_table, progress_bar, size
from ._signals import signals_held

__all__ = ["register"]

DEFAULT_DEMO_DIR = "./eventpak-demo-data"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Adds ``demo``, ``stats``, ``verify`` and ``backup`` to the command line."""
    demo = sub.add_parser(
        "demo",
        help="append, query, project and reopen a demo store",
        description=(
            "Opens accounts, appends deposits and withdrawals one by one and in batches, shows "
            "compare-and-set, an idempotent retry, queries and a cached projection, then reopens "
            "the store. Running it again on the same directory appends more."
        ),
    )
    demo.add_argument(
        "dir",
        nargs="?",
        metavar="DIR",
        help="where the store lives (the same as --data-dir)",
    )
    demo.add_argument(
        "--data-dir",
        metavar="DIR",
        help=(
            f"where the store lives (default: {DEFAULT_DEMO_DIR}); a new or empty directory, "
            "or an eventpak data dir"
        ),
    )
    demo.add_argument(
        "--accounts",
        type=count(1),
        default=2_000,
        metavar="N",
        help="accounts to open, at least 1 (default: 2,000)",
    )
    demo.add_argument(
        "--events",
        type=count(1),
        default=200_000,
        metavar="N",
        help=(
            "deposits and withdrawals to append, spread round-robin over the accounts "
            "(default: 200,000); must be at least --accounts, so that every account gets one "
            "(a smaller value is refused, not adjusted)"
        ),
    )
    demo.set_defaults(run=_demo, parser=demo)

    stats = sub.add_parser(
        "stats",
        help="print the statistics of a data dir",
        description=(
            "Opens DIR read-only (as a shared reader: beside running processes that share it) "
            "and prints its statistics: a table on a terminal, 'name: value' lines otherwise. "
            "DIR must be an eventpak data dir: nothing in it is changed (a shared opener adds "
            "only its lock files, LOCK and shared/, when they are missing). The store's own "
            "figures (events, segments, bytes, durable events) are shared by every process; the "
            "counters of an open (sync mode, appends, fsyncs) are this command's own, not those "
            "of the processes writing to DIR."
        ),
    )
    stats.add_argument("data_dir", metavar="DIR", help="an eventpak data dir")
    stats.add_argument("--json", action="store_true", help="print the statistics as one JSON object")
    stats.set_defaults(run=_stats, parser=stats)

    verify = sub.add_parser(
        "verify",
        help="check every byte of a data dir",
        description=(
            "Opens DIR read-only (as a shared reader) and re-reads every segment: frame "
            "checksums, event hashes, hash-chain links and entity clocks, seal records, the "
            "index against the log, hidden.ranges and every cursor checkpoint. Draws a progress "
            "bar on a terminal (stderr), prints each problem; exit status 1 when there is any. "
            "Runs while other processes go on appending (up to the head it saw at its start)."
        ),
    )
    verify.add_argument("data_dir", metavar="DIR", help="an eventpak data dir")
    verify.add_argument(
        "--json",
        action="store_true",
        help=(
            "print the report as one JSON object: ok, events, segments, bytes, problems "
            "(each with path, offset, sequence and reason) and problems_not_listed"
        ),
    )
    verify.set_defaults(run=_verify, parser=verify)

    backup = sub.add_parser(
        "backup",
        help="copy a data dir into a backup, beside running writers",
        description=(
            "Opens DIR read-only (as a shared reader: beside running processes that share it) "
            "and copies it into DEST, consistent as of one global sequence. DEST must not "
            "exist, be empty, or hold an earlier backup of this store, which is then brought "
            "up to date copying only new and changed files. The backup opens as a store. "
            "Draws a progress bar on a terminal (stderr)."
        ),
    )
    backup.add_argument("data_dir", metavar="DIR", help="an eventpak data dir")
    backup.add_argument("dest", metavar="DEST", help="where the backup goes")
    backup.add_argument(
        "--json",
        action="store_true",
        help="print the report as one JSON object: through, events, bytes_copied, incremental",
    )
    backup.set_defaults(run=_backup, parser=backup)


def _demo(args: argparse.Namespace) -> int:
    if args.dir is not None and args.data_dir is not None and args.dir != args.data_dir:
        raise UsageError("give the directory once: DIR or --data-dir, not both")
    data_dir = args.dir or args.data_dir or DEFAULT_DEMO_DIR
    if args.events < args.accounts:
        raise UsageError(
            f"--events ({args.events:,}) must be at least --accounts ({args.accounts:,}), "
            "so that every account gets an event"
        )
    path = Path(data_dir)
    if path.exists() and not path.is_dir():
        raise UsageError(f"--data-dir {data_dir} is a file, not a directory")
    if path.is_dir() and not is_data_dir(path) and any(path.iterdir()):
        raise UsageError(
            f"--data-dir {data_dir} holds files but no eventpak store; "
            "give a new or empty directory, or an eventpak data dir"
        )
    run_demo(data_dir, args.accounts, args.events)
    return 0


def _stats(args: argparse.Namespace) -> int:
    with open_for_reading(args.data_dir) as store:
        stats: dict[str, Any] = dict(store.stats())
    if args.json:
        print_json(sys.stdout, stats)
        return 0
    rows = [[key, str(value)] for key, value in stats.items()]
    if sys.stdout.isatty():
        title = f"{args.data_dir} (the counters of an open are this command's read-only open's)"
        print_table(sys.stdout, [Column("statistic"), Column("value", wide=True)], rows, title=title)
    else:
        for key, value in rows:
            print(f"{key:>20}: {value}")
    return 0


def _verify(args: argparse.Namespace) -> int:
    """Runs the full check; exit status 0 when nothing is wrong, 1 otherwise. A log damaged
    where open checks it refuses to open: that refusal is the report's one problem."""
    try:
        opened = open_for_reading(args.data_dir)
    except CorruptSegment as exc:
        problem = VerifyProblem(exc.path, exc.offset, None, f"{exc.reason} (the store refuses to open)")
        return _print_verify(args, VerifyReport(0, 0, 0, (problem,)))
    with opened as store, progress_bar(sys.stderr, "verify") as progress:
        report = store.verify(progress=progress)
    return _print_verify(args, report)


def _print_verify(args: argparse.Namespace, report: VerifyReport) -> int:
    if args.json:
        problems = [
            {"path": p.path, "offset": p.offset, "sequence": p.sequence, "reason": p.reason}
            for p in report.problems
        ]
        record = {
            "ok": report.ok,
            "events": report.events,
            "segments": report.segments,
            "bytes": report.bytes,
            "problems": problems,
            "problems_not_listed": report.problems_not_listed,
        }
        print_json(sys.stdout, record)
        return 0 if report.ok else 1
    print(f"{report.events:,} events, {report.segments} segment(s), {size(report.bytes)} checked")
    for problem in report.problems:
        print(f"  problem: {problem}")
    if report.problems_not_listed:
        print(f"  ... and {report.problems_not_listed:,} more problems")
    if report.ok:
        print("ok: no problem found")
        return 0
    print(f"damaged: {len(report.problems) + report.problems_not_listed:,} problem(s)")
    return 1


def _backup(args: argparse.Namespace) -> int:
    """Backs DIR up into DEST; exit status 1 when DEST is refused."""
    # Held to the end: a backup past its last progress call is complete (or about to be).
    with signals_held("the backup") as held:
        with open_for_reading(args.data_dir) as store, progress_bar(sys.stderr, "backup") as bar:
            report = store.backup(args.dest, progress=held.progress(bar))
        if args.json:
            print_json(sys.stdout, dataclasses.asdict(report))
            return 0
        through = "no event" if report.through is None else f"through sequence {report.through:,}"
        kind = "incremental" if report.incremental else "full"
        print(
            f"{kind} backup of {report.events:,} events ({through}) into {args.dest}: "
            f"{size(report.bytes_copied)} copied"
        )
    return 0
