"""Command line: ``eventpak demo``, ``eventpak stats DIR`` and ``eventpak --version``.

Run it as ``python -m eventpak`` or, once installed, as the ``eventpak`` console script.
Exit status: 0 on success, 1 when the store refuses (not a data dir, locked, damaged, an
operating-system error), 2 for a usage error. Neither prints a Python traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from . import (
    ConcurrencyConflict,
    Coordinate,
    Event,
    EventpakError,
    NativeCache,
    Projection,
    Region,
    Store,
    __version__,
)

__all__ = ["main"]

DEFAULT_DEMO_DIR = "./eventpak-demo-data"
T = TypeVar("T")


class _Refused(Exception):
    """A command cannot do what was asked; the message is printed as ``eventpak: <message>``."""


def _timed(label: str, count: int, work: Callable[[], T]) -> T:
    start = time.perf_counter()
    result = work()
    elapsed = time.perf_counter() - start
    rate = f"{count / elapsed:>12,.0f} events/s" if count else ""
    print(f"  {label:<44} {elapsed * 1000:>9.1f} ms {rate}")
    return result


class Balance(Projection[int]):
    """An account's balance: deposits minus withdrawals."""

    name = "demo.balance"
    version = 1
    kinds = ("deposit", "withdraw")
    incremental = True

    def __init__(self) -> None:
        super().__init__()
        self.applied = 0

    def initial(self) -> int:
        return 0

    def apply(self, state: int, event: Event) -> int:
        self.applied += 1
        amount: int = event.payload["amount"]
        return state + amount if event.kind == "deposit" else state - amount


def _project(store: Store, label: str, entity: str) -> int:
    balance = Balance()
    value = _timed(label, 0, lambda: store.project(entity, balance))
    print(f"    balance of {entity}: {value} ({balance.applied} events applied)")
    return 0 if value is None else int(value)


def _is_data_dir(path: Path) -> bool:
    """Whether ``path`` looks like an eventpak data dir (it has a ``segments/`` folder)."""
    return (path / "segments").is_dir()


def _demo(data_dir: str, accounts: int, events: int) -> None:
    rng = random.Random(7)
    scopes = ("eu", "us")
    coords = [Coordinate(f"acct:{n}", scopes[n % 2]) for n in range(accounts)]

    def item(i: int) -> tuple[Coordinate, str, dict[str, object]]:
        # Event i goes to account i % accounts: with events >= accounts, every account gets one.
        kind = "deposit" if rng.random() < 0.6 else "withdraw"
        payload = {"amount": rng.randint(1, 500), "currency": "EUR", "ref": f"tx-{i}", "note": "demo"}
        return coords[i % accounts], kind, payload

    print(f"eventpak demo in {data_dir}")
    cache_dir = f"{data_dir}/projection-cache"
    with Store.open(data_dir, sync="batch", projection_cache=NativeCache(cache_dir)) as store:
        before = store.stats()["events"]
        if before:
            print(f"  the store already holds {before:,} events; appending more")
        singles = events // 10
        opened = [(c, "account.opened", {"owner": f"owner-{n}"}) for n, c in enumerate(coords)]
        _timed(
            f"open {accounts:,} accounts (one batch each 500)",
            accounts,
            lambda: [store.append_batch(opened[i : i + 500]) for i in range(0, accounts, 500)],
        )
        _timed(
            f"append {singles:,} events one by one",
            singles,
            lambda: [store.append(*item(i)) for i in range(singles)],
        )
        rest = events - singles
        batch = [item(singles + i) for i in range(rest)]
        _timed(
            f"append {rest:,} events in batches of 1,000",
            rest,
            lambda: [store.append_batch(batch[i : i + 1000]) for i in range(0, rest, 1000)],
        )
        _timed("sync (fsync barrier)", 0, store.sync)

        coord = coords[0]
        head = len(store.query(Region.entity(coord.entity)))
        store.append(coord, "deposit", {"amount": 1}, expected_sequence=head)
        try:
            store.append(coord, "deposit", {"amount": 1}, expected_sequence=head)
        except ConcurrencyConflict as conflict:
            print(
                "  compare-and-set refused a stale write: "
                f"expected {conflict.expected}, actual {conflict.actual}"
            )
        first = store.append(coord, "deposit", {"amount": 5}, idempotency_key="demo-payment-1")
        again = store.append(coord, "deposit", {"amount": 5}, idempotency_key="demo-payment-1")
        print(
            f"  idempotent retry returned the original receipt: {first == again} "
            f"(seq {again.global_sequence})"
        )

        sample = coords[min(42, accounts - 1)].entity
        one = _timed("query one account (Region.entity)", 0, lambda: store.query(Region.entity(sample)))
        balance = sum(
            e.payload["amount"] * (1 if e.kind == "deposit" else -1)
            for e in one
            if e.kind != "account.opened"
        )
        print(f"    {sample} has {len(one)} events, balance {balance}")
        eu = _timed(
            "query scope eu, kind deposit", 0, lambda: store.query(Region.scope("eu").with_kind("deposit"))
        )
        print(f"    {len(eu):,} deposits in eu")
        cold = _project(store, "project its balance (cold replay)", sample)
        _project(store, "project it again (cache hit, nothing applied)", sample)
        total = store.stats()["events"]
        every = _timed(
            "read every event, payloads decoded",
            total,
            lambda: [e.payload for e in store.query(Region.all())],
        )
        if len(every) != total:
            raise _Refused(f"read {len(every):,} events back, expected {total:,}")
    reopened = _timed(
        "close, then reopen from the index checkpoint",
        0,
        lambda: Store.open(data_dir, projection_cache=NativeCache(cache_dir)),
    )
    with reopened as store:
        stats = store.stats()
        print(
            f"  reopened: {stats['events']:,} events, {stats['entities']:,} entities, "
            f"{stats['segments']} segment(s), {stats['bytes'] / 1e6:.1f} MB, "
            f"index checkpoint {stats['index_checkpoint']}"
        )
        served = _project(store, "project after reopen (served from the cache)", sample)
        if stats["events"] != total or served != cold:
            raise _Refused(f"the reopened store differs: {stats['events']:,} events, balance {served}")


def _stats(data_dir: str) -> None:
    path = Path(data_dir)
    # Checked before opening, so that a wrong path is reported without touching it.
    if not path.exists():
        raise _Refused(f"{data_dir}: no such directory")
    if not path.is_dir():
        raise _Refused(f"{data_dir} is not a directory")
    if not _is_data_dir(path):
        raise _Refused(f"{data_dir} is not an eventpak data dir (it has no segments/ folder)")
    with Store.open(data_dir, read_only=True) as store:
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
            _demo(args.data_dir, args.accounts, args.events)
        else:
            _stats(args.data_dir)
    except BrokenPipeError:
        # stdout went away (``| head``): stop quietly, and keep Python's exit-time flush quiet.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except (_Refused, EventpakError, OSError) as exc:
        _flush_stdout()
        message = " ".join(str(exc).split()) or type(exc).__name__
        print(f"eventpak: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        _flush_stdout()
        print("eventpak: interrupted", file=sys.stderr)
        return 130
    return 0
