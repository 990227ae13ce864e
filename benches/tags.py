"""Tags and append conditions: what a condition costs a durable append, and how fast one tag's
events are read out of a large store.

    .venv/bin/python -m benches.tags            # 1,000,000 events, 5 interleaved rounds, ~2 min
    .venv/bin/python -m benches.tags --quick    # 50,000 events, 2 rounds, < 15 s

(a) Durable single appends (``sync="always"``) of tagged events, each with
    ``condition=AppendCondition(<two tags>, after=<the last position>)`` against the same
    appends without a condition. Both stores hold the same tagged history first, so the
    condition's tags have postings to look through. Target >= 0.9.
(b) The same, in batches of 100 events with one condition per batch. Target >= 0.8.
(c) ``query(Region.all().with_tags([tag]))`` of one tag carried by 10% of the events of a store
    of N events (default 1,000,000), in events per second. Target >= 1,000,000 events/s.

(a) and (b) alternate the two sides call by call (which goes first alternates too) for a time
budget per round, timing each call, so both sides meet the same disk and the same neighbours;
a round's ratio is the conditional rate over the plain rate, and the result is the median of
the rounds' ratios.
"""

from __future__ import annotations

import argparse
import gc
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import eventpak as ep

from benches._workload import KIND, POOL_MASK, SCOPE, make_entities, make_payloads

TARGETS = {"a": 0.9, "b": 0.8, "c": 1_000_000.0}
COURSES, STUDENTS = 100, 1000  # the tag pools of the history and of the timed appends


def tags_of(i: int) -> tuple[str, str]:
    return (f"course:c{i % COURSES}", f"student:s{i % STUDENTS}")


def event(i: int, entities: list[str], payloads: list[dict[str, Any]]) -> ep.AppendRequest:
    """Event ``i`` of the shared workload, with the tags of ``tags_of(i)``."""
    return ep.AppendRequest((entities[i & POOL_MASK], SCOPE), KIND, payloads[i & POOL_MASK], tags=tags_of(i))


def history(store: ep.Store, n: int) -> None:
    """``n`` tagged events, in batches of 1,000 (not timed)."""
    entities, payloads = make_entities(), make_payloads()
    for start in range(0, n, 1000):
        store.append_batch([event(i, entities, payloads) for i in range(start, min(n, start + 1000))])


def appender(store: ep.Store, batch: int, conditional: bool) -> Callable[[int], int]:
    """A step that appends ``batch`` tagged events (one call), with or without a condition
    over the two tags of its first event after the last position; returns the events written."""
    entities, payloads = make_entities(), make_payloads()
    position = store.head()
    counter = 0

    def step(_: int) -> int:
        nonlocal position, counter
        first = counter
        counter += batch
        items = [event(i, entities, payloads) for i in range(first, first + batch)]
        condition = None
        if conditional:
            region = ep.Region.all().with_tags(list(tags_of(first)))
            condition = ep.AppendCondition(region, after=position)
        receipts = store.append_batch(items, condition=condition)
        position = receipts[-1].global_sequence
        return batch

    return step


def paired_rates(steps: dict[str, Callable[[int], int]], seconds: float, max_calls: int) -> dict[str, float]:
    """Events per second of each step, called alternately (the first of each pair alternates)
    for ``seconds`` or ``max_calls`` pairs, each call timed on its own."""
    names = list(steps)
    spent = dict.fromkeys(names, 0.0)
    done = dict.fromkeys(names, 0)
    gc.collect()
    deadline = time.perf_counter() + seconds
    calls = 0
    while time.perf_counter() < deadline and calls < max_calls:
        for name in names if calls % 2 == 0 else reversed(names):
            start = time.perf_counter()
            done[name] += steps[name](calls)
            spent[name] += time.perf_counter() - start
        calls += 1
    return {name: done[name] / spent[name] for name in names}


def durable_ratio(
    root: Path, batch: int, rounds: int, seconds: float, history_n: int
) -> tuple[float, float, float]:
    """(median ratio, median plain rate, median conditional rate) of durable appends."""
    stores = {}
    for name in ("plain", "conditional"):
        store = ep.Store.open(root / f"{name}-{batch}", sync="always")
        history(store, history_n)
        stores[name] = store
    steps = {name: appender(store, batch, name == "conditional") for name, store in stores.items()}
    rates: dict[str, list[float]] = {"plain": [], "conditional": []}
    try:
        paired_rates(steps, seconds / 4, 10_000)  # warm-up, unmeasured
        for round_no in range(rounds):
            measured = paired_rates(steps, seconds, 50_000)
            for name, rate in measured.items():
                rates[name].append(rate)
            print(
                f"  batch {batch} round {round_no + 1}: plain {measured['plain']:,.0f} events/s, "
                f"conditional {measured['conditional']:,.0f} events/s",
                file=sys.stderr,
            )
    finally:
        for store in stores.values():
            store.close()
    ratio = statistics.median(c / p for c, p in zip(rates["conditional"], rates["plain"], strict=True))
    return ratio, statistics.median(rates["plain"]), statistics.median(rates["conditional"])


def tag_read_rate(root: Path, n: int, rounds: int) -> tuple[float, int]:
    """(median events/s, events read) of a query of one tag carried by 10% of ``n`` events."""
    path = root / "read"
    entities, payloads = make_entities(), make_payloads()
    with ep.Store.open(path, sync="never") as store:
        for start in range(0, n, 1000):
            store.append_batch(
                [
                    ep.AppendRequest(
                        (entities[i & POOL_MASK], SCOPE),
                        KIND,
                        payloads[i & POOL_MASK],
                        tags=("hot", f"n:{i}") if i % 10 == 0 else (f"n:{i}",),
                    )
                    for i in range(start, min(n, start + 1000))
                ]
            )
    rates = []
    region = ep.Region.all().with_tags(["hot"])
    with ep.Store.open(path) as store:
        store.query(region)  # warm the page cache, unmeasured
        for _ in range(rounds):
            gc.collect()
            start = time.perf_counter()
            events = store.query(region)
            rates.append(len(events) / (time.perf_counter() - start))
            read = len(events)
            del events
    return statistics.median(rates), read


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benches.tags", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="smoke run: 50,000 events, 2 rounds, short budgets")
    p.add_argument("--events", type=int, default=None, help="events of the store read in (c) (1,000,000)")
    p.add_argument("--rounds", type=int, default=None, help="interleaved rounds (5)")
    p.add_argument("--seconds", type=float, default=None, help="time budget of one durable run (2.0)")
    p.add_argument("--cases", default="abc", help="run a subset, e.g. --cases c")
    p.add_argument("--dir", type=Path, default=None, help="where the temporary stores go")
    args = p.parse_args(argv)
    events = args.events or (50_000 if args.quick else 1_000_000)
    rounds = args.rounds or (2 if args.quick else 5)
    seconds = args.seconds or (0.3 if args.quick else 2.0)
    history_n = 10_000 if args.quick else 100_000
    root = Path(tempfile.mkdtemp(prefix="eventpak-tags-", dir=args.dir))
    rows = []
    try:
        for case, batch in (("a", 1), ("b", 100)):
            if case in args.cases:
                ratio, plain, conditional = durable_ratio(root, batch, rounds, seconds, history_n)
                label = "single appends" if batch == 1 else f"batches of {batch}"
                rows.append(
                    (
                        f"({case}) durable {label}, conditional / plain",
                        f"{ratio:.2f} ({conditional:,.0f} / {plain:,.0f} events/s)",
                        f">= {TARGETS[case]}",
                        ratio >= TARGETS[case],
                    )
                )
        if "c" in args.cases:
            read_rate, read = tag_read_rate(root, events, rounds)
            rows.append(
                (
                    f"(c) one tag's {read:,} events out of {events:,}",
                    f"{read_rate:,.0f} events/s",
                    f">= {TARGETS['c']:,.0f} events/s",
                    read_rate >= TARGETS["c"],
                )
            )
    finally:
        shutil.rmtree(root)
    print(
        f"events: {events:,}, rounds: {rounds}, durable budget: {seconds} s per run, history: {history_n:,}"
    )
    print("| Case | Result | Target | Met |")
    print("|---|---|---|---|")
    for name, result, target, met in rows:
        print(f"| {name} | {result} | {target} | {'yes' if met else 'no'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
