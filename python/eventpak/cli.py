"""Command line: ``eventpak demo``, ``eventpak stats DIR``, ``eventpak verify DIR`` and
``eventpak --version``.

Run it as ``python -m eventpak`` or, once installed, as the ``eventpak`` console script.
Exit status: 0 on success, 1 when the store refuses (not a data dir, locked, damaged, an
operating-system error), 2 for a usage error. Neither prints a Python traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

from . import EventpakError, Store, StoreLocked, __version__
from .demo import DemoFailed, run_demo

__all__ = ["main"]

DEFAULT_DEMO_DIR = "./eventpak-demo-data"


class _Refused(Exception):
    """A command cannot do what was asked; the message is printed as ``eventpak: <message>``."""


def _is_data_dir(path: Path) -> bool:
    """Whether ``path`` looks like an eventpak data dir (it has a ``segments/`` folder)."""
    return (path / "segments").is_dir()


def _check_data_dir(data_dir: str) -> None:
    """Refuses a path that is not a data dir, before opening it touches anything."""
    path = Path(data_dir)
    if not path.exists():
        raise _Refused(f"{data_dir}: no such directory")
    if not path.is_dir():
        raise _Refused(f"{data_dir} is not a directory")
    if not _is_data_dir(path):
        raise _Refused(f"{data_dir} is not an eventpak data dir (it has no segments/ folder)")


class _ProgressBar:
    """``[#####.....]  42%  1.2 of 2.9 GB`` on a terminal, redrawn in place; nothing elsewhere."""

    WIDTH = 30

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.shown = out.isatty()

    def __call__(self, done: int, total: int) -> None:
        if not self.shown or total <= 0:
            return
        filled = self.WIDTH * done // total
        bar = "#" * filled + "." * (self.WIDTH - filled)
        line = f"\r[{bar}] {100 * done // total:>3}%  {done / 1e6:,.1f} of {total / 1e6:,.1f} MB"
        self.out.write(line)
        self.out.flush()

    def finish(self) -> None:
        if self.shown:
            self.out.write("\n")


def _open_for_reading(data_dir: str) -> Store:
    """Opens read-only; a data dir that running processes share is joined as a shared reader."""
    try:
        return Store.open(data_dir, read_only=True)
    except StoreLocked as exc:
        if exc.mode != "shared":
            raise
        return Store.open(data_dir, read_only=True, shared=True)


def _verify(data_dir: str) -> int:
    """Runs the full check read-only; exit status 0 when nothing is wrong, 1 otherwise."""
    _check_data_dir(data_dir)
    with _open_for_reading(data_dir) as store:
        bar = _ProgressBar(sys.stderr)
        try:
            report = store.verify(progress=bar)
        finally:
            bar.finish()
    print(f"{report.events:,} events, {report.segments} segment(s), {report.bytes / 1e6:,.1f} MB checked")
    for problem in report.problems:
        print(f"  problem: {problem}")
    if report.problems_not_listed:
        print(f"  ... and {report.problems_not_listed:,} more problems")
    if report.ok:
        print("ok: no problem found")
        return 0
    print(f"damaged: {len(report.problems) + report.problems_not_listed:,} problem(s)")
    return 1


def _stats(data_dir: str) -> None:
    _check_data_dir(data_dir)
    with _open_for_reading(data_dir) as store:
        for key, value in store.stats().items():
            print(f"{key:>20}: {value}")


def _count(minimum: int) -> Callable[[str], int]:
    """An argparse type: a whole number of at least ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    parse.__name__ = "count"  # argparse names the type in some messages
    return parse


def _parser(prog: str) -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    """The command line's parser and its ``demo`` subparser."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="eventpak: an embedded, durable, append-only event log.",
        epilog="Exit status: 0 on success, 1 when the store refuses, 2 for a usage error.",
    )
    parser.add_argument("--version", action="version", version=f"eventpak {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
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
        "--data-dir",
        default=DEFAULT_DEMO_DIR,
        metavar="DIR",
        help=(
            f"where the store lives (default: {DEFAULT_DEMO_DIR}); a new or empty directory, "
            "or an eventpak data dir"
        ),
    )
    demo.add_argument(
        "--accounts",
        type=_count(1),
        default=2_000,
        metavar="N",
        help="accounts to open, at least 1 (default: 2,000)",
    )
    demo.add_argument(
        "--events",
        type=_count(1),
        default=200_000,
        metavar="N",
        help=(
            "deposits and withdrawals to append, spread round-robin over the accounts "
            "(default: 200,000); must be at least --accounts, so that every account gets one "
            "(a smaller value is refused, not adjusted)"
        ),
    )
    stats = sub.add_parser(
        "stats",
        help="print the statistics of a data dir",
        description=(
            "Opens DIR read-only and prints its statistics. DIR must be an eventpak data dir: "
            "nothing is created or changed."
        ),
    )
    stats.add_argument("data_dir", metavar="DIR", help="an eventpak data dir")
    verify = sub.add_parser(
        "verify",
        help="check every byte of a data dir",
        description=(
            "Opens DIR read-only and re-reads every segment: frame checksums, event hashes, "
            "hash-chain links and entity clocks, seal records, the index against the log, "
            "hidden.ranges and every cursor checkpoint. Prints each problem; exit status 1 "
            "when there is any. Nothing is created or changed."
        ),
    )
    verify.add_argument("data_dir", metavar="DIR", help="an eventpak data dir")
    return parser, demo


def _check_demo_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.events < args.accounts:
        parser.error(
            f"--events ({args.events:,}) must be at least --accounts ({args.accounts:,}), "
            "so that every account gets an event"
        )
    path = Path(args.data_dir)
    if path.exists() and not path.is_dir():
        parser.error(f"--data-dir {args.data_dir} is a file, not a directory")
    if path.is_dir() and not _is_data_dir(path) and any(path.iterdir()):
        parser.error(
            f"--data-dir {args.data_dir} holds files but no eventpak store; "
            "give a new or empty directory, or an eventpak data dir"
        )


def _flush_stdout() -> None:
    """Flushes what was printed so far, so it comes before the error message."""
    with contextlib.suppress(OSError):
        sys.stdout.flush()


def main(argv: Sequence[str] | None = None, *, prog: str = "eventpak") -> int:
    """Runs the command line; returns the exit status. ``prog`` names it in usage messages."""
    parser, demo_parser = _parser(prog)
    args = parser.parse_args(argv)  # usage errors exit with status 2
    try:
        if args.command == "demo":
            _check_demo_args(demo_parser, args)
            run_demo(args.data_dir, args.accounts, args.events)
        elif args.command == "verify":
            return _verify(args.data_dir)
        else:
            _stats(args.data_dir)
    except BrokenPipeError:
        # stdout went away (``| head``): stop quietly, and keep Python's exit-time flush quiet.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except (_Refused, DemoFailed, EventpakError, OSError) as exc:
        _flush_stdout()
        message = " ".join(str(exc).split()) or type(exc).__name__
        print(f"eventpak: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        _flush_stdout()
        print("eventpak: interrupted", file=sys.stderr)
        return 130
    return 0
