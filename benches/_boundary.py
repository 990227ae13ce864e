"""The timing loops of ``benches.codec`` and its lines beyond the codec itself: batch item
conversion, (items) and (items-fresh), and the Event build of a cursor read, (event).

Both of those report a difference measured in the same round: what eventpak does in all, per
item or event, minus what the codec alone does on the same payloads, timed side by side.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from itertools import repeat
from pathlib import Path
from typing import Any

import eventpak as ep
from eventpak import _native

from benches._shapes import order_payloads
from benches.compare.harness import Bench, Peer, Row, Sample, log

BATCH = 1000  # items per _convert_items call, events per poll_batch
POOL = 1024
MASK = POOL - 1
KIND = "placed"
SCOPE = "s"  # a one-character str: CPython keeps one object of it, fresh or not
KIND_PARTS = ("pla", "ced")  # joined per item in (items-fresh): equal to KIND, another object
COORDS = [ep.Coordinate(f"acct-{i:05d}", SCOPE) for i in range(POOL)]
ORDERS = order_payloads(POOL)
REGION = ep.Region.all()
ITEMS_AIM_NS = 150.0
EVENT_AIM_NS = 100.0

# Runs an iterator to its end, keeping nothing.
consume: Callable[[Iterable[Any]], None] = deque(maxlen=0).extend
# What the loops time with (``--clock``): the process's CPU time, which leaves out the time the
# process waits for a core (other work on the machine), or the wall clock.
CLOCKS: dict[str, Callable[[], int]] = {"cpu": time.process_time_ns, "wall": time.perf_counter_ns}
clock = CLOCKS["cpu"]


def use_clock(name: str) -> None:
    """Times every following loop with ``CLOCKS[name]``."""
    global clock
    clock = CLOCKS[name]


# -------------------------------------------------------------------------------------- call loops


def map_ns(fn: Callable[[Any], Any], arg: Any, calls: int) -> int:
    """Nanoseconds of ``calls`` calls of ``fn(arg)``, driven by ``map`` (a few ns per call of loop)."""
    args = repeat(arg, calls)
    t0 = clock()
    consume(map(fn, args))
    return clock() - t0


def calls_for(fn: Callable[[Any], Any], arg: Any, block_s: float) -> int:
    """How many calls of ``fn(arg)`` take about ``block_s`` seconds (measured once, untimed)."""
    n = 100
    while (ns := map_ns(fn, arg, n)) < 2_000_000 and n < 10**8:
        n *= 4
    return max(100, int(n * block_s * 1e9 / max(ns, 1)))


def call_loop(fn: Callable[[Any], Any], arg: Any, calls: int, repeats: int) -> Callable[[Path], Sample]:
    """A peer run: the best of ``repeats`` blocks of ``calls`` calls of ``fn(arg)``."""

    def run(_dir: Path) -> Sample:
        best = min(map_ns(fn, arg, calls) for _ in range(repeats))
        return Sample(calls, best / 1e9, {"ns_per_call": best / calls})

    return run


def best_pair(measure: Callable[[int], tuple[int, int]], repeats: int) -> tuple[int, int]:
    """The best of ``repeats`` of each side of ``measure(repeat_no) -> (ns, ns)``."""
    pairs = [measure(r) for r in range(repeats)]
    return min(p[0] for p in pairs), min(p[1] for p in pairs)


def difference_rows(
    line: str, total: tuple[str, str], alone: tuple[str, str], beyond: tuple[str, str, float]
) -> list[Row]:
    """The rows of a line that reports eventpak's whole work (``total``: metric, note), the codec
    alone on the same payloads (``alone``) and the difference, ``beyond_ns``, against its aim
    (``beyond``: note, ratio label, aim in ns)."""
    note, label, aim_ns = beyond
    return [
        Row(line, "eventpak", unit="ns", metric=total[0], note=total[1]),
        Row(line, "eventpak", unit="ns", metric=alone[0], note=alone[1]),
        Row(
            line,
            "eventpak",
            unit="ns",
            metric="beyond_ns",
            note=note,
            ratio_to=(aim_ns, label),
            aim=f"<= {aim_ns:g} ns",
            check=lambda v, r: v <= aim_ns,
        ),
    ]


# ------------------------------------------------------------------------------- (items) conversion


def make_items(start: int, fresh: bool) -> list[tuple[Any, str, dict[str, Any]]]:
    """One batch of ``(coord, kind, order payload)`` items from pool position ``start``: the
    pre-built coordinates and the one ``KIND`` object, or (``fresh``) a new ``Coordinate`` of a
    new entity str and a new kind str per item, equal in value."""
    idx = [(start + k) & MASK for k in range(BATCH)]
    if fresh:
        return [(ep.Coordinate(f"acct-{j:05d}", SCOPE), "".join(KIND_PARTS), ORDERS[j]) for j in idx]
    return [(COORDS[j], KIND, ORDERS[j]) for j in idx]


def items_run(batches: int, repeats: int, fresh: bool) -> Callable[[Path], Sample]:
    """A peer run: ``batches`` batches, each built untimed, then converted and its payloads
    encoded alone, each timed on its own (which goes first alternates from batch to batch)."""
    convert, encode = _native._convert_items, _native.encode_payload

    def block(r: int) -> tuple[int, int]:
        conv = enc = 0
        for k in range(batches):
            items = make_items((r * batches + k) * BATCH, fresh)
            payloads = [item[2] for item in items]
            for side in (0, 1) if k % 2 == 0 else (1, 0):
                t0 = clock()
                if side == 0:
                    n = convert(items)
                else:
                    consume(map(encode, payloads))
                took = clock() - t0
                if side == 0:
                    conv += took
                    if n != BATCH:
                        raise RuntimeError(f"_convert_items converted {n} items, expected {BATCH}")
                else:
                    enc += took
        return conv, enc

    def run(_dir: Path) -> Sample:
        conv, enc = best_pair(block, repeats)
        items = batches * BATCH
        extra = {"convert_ns": conv / items, "encode_ns": enc / items, "beyond_ns": (conv - enc) / items}
        return Sample(items, conv / 1e9, extra)

    return run


def items_line(b: Bench, fresh: bool) -> None:
    a = b.args
    line = "items-fresh" if fresh else "items"
    if fresh:
        shape = "a new Coordinate of a new entity str and a new kind str per item"
    else:
        shape = f"{POOL:,} pre-built Coordinates, one kind object"
    config = f'_convert_items({BATCH:,} (coord, "{KIND}", order payload) tuples): {shape}'
    peer = Peer("eventpak", "eventpak", config, items_run(a.batches, a.repeats, fresh))
    title = f"append_batch's item conversion of {BATCH:,} items, per item, beyond the payload encode"
    b.run_case(line, title + (" (fresh str objects)" if fresh else ""), [peer])
    b.rows += difference_rows(
        line,
        ("convert_ns", "conversion, per item"),
        ("encode_ns", "encode_payload alone, per item"),
        ("conversion minus encode, per item", "beyond encode / aim", ITEMS_AIM_NS),
    )


# ------------------------------------------------------------------------------------ (event) build


def fill(path: Path, n: int) -> list[list[bytes]]:
    """Stores ``n`` order events (not durable) and returns their stored payload bytes, in
    ``BATCH``-sized lists in commit order."""
    with ep.Store.open(str(path), sync="never") as store:
        for start in range(0, n, BATCH):
            end = min(n, start + BATCH)
            store.append_batch([(COORDS[i & MASK], KIND, ORDERS[i & MASK]) for i in range(start, end)])
        store.sync()
        poll = store.cursor(REGION).poll_batch
        chunks = []
        while batch := poll(BATCH):
            chunks.append([e.payload_bytes for e in batch])
    if sum(map(len, chunks)) != n or _native.decode_payload(chunks[0][0]) != ORDERS[0]:
        raise RuntimeError("the store does not hold the events just appended")
    return chunks


def event_run(store: ep.Store, chunks: list[list[bytes]], repeats: int) -> Callable[[Path], Sample]:
    """A peer run: a cursor read touching every payload, paired batch by batch with the decode
    of the same stored bytes alone, the batch's values kept until it ends as the Events keep
    theirs (which of the two goes first alternates from batch to batch),
    so both sides see the same machine; the best of ``repeats`` reads of each side."""
    decode = _native.decode_payload
    n = sum(map(len, chunks))
    runs = [0]

    def measure(r: int) -> tuple[int, int]:
        poll = store.cursor(REGION).poll_batch
        read_ns = decode_ns = seen = 0
        for k, chunk in enumerate(chunks):
            for side in (0, 1) if (k + r + runs[0]) % 2 == 0 else (1, 0):
                t0 = clock()
                if side == 0:
                    batch = poll(BATCH)
                    for e in batch:
                        e.payload  # noqa: B018 -- the read being measured
                    seen += len(batch)
                    del batch  # the events are freed inside the timed part, as in a plain loop
                    read_ns += clock() - t0
                else:
                    # Kept until the batch ends, as a batch of Events keeps its decoded payloads
                    # (each Event caches its own): both sides then leave the same objects to the
                    # garbage collector, which is the cost of keeping values, not of an Event.
                    kept = list(map(decode, chunk))
                    del kept
                    decode_ns += clock() - t0
        if seen != n or poll(BATCH):
            raise RuntimeError(f"the cursor read {seen:,} events, expected {n:,}")
        return read_ns, decode_ns

    def run(_dir: Path) -> Sample:
        runs[0] += 1
        event, dec = best_pair(measure, repeats)
        extra = {"event_ns": event / n, "decode_ns": dec / n, "beyond_ns": (event - dec) / n}
        return Sample(n, event / 1e9, extra)

    return run


def event_line(b: Bench) -> None:
    a = b.args
    path = b.root / "event-store"
    t0 = time.perf_counter()
    chunks = fill(path, a.events)
    b.setup["event_fill_s"] = time.perf_counter() - t0
    log(f"   stored {a.events:,} order events in {b.setup['event_fill_s']:.2f} s")
    store = ep.Store.open(str(path))
    config = (
        f"{a.events:,} stored order events, store.cursor(Region.all()).poll_batch({BATCH:,}) loop, "
        "e.payload touched, nothing kept"
    )
    try:
        peer = Peer("eventpak", "eventpak", config, event_run(store, chunks, a.repeats))
        b.run_case("event", f"Event build of a cursor read of {a.events:,} events, beyond the decode", [peer])
    finally:
        store.close()
    b.rows += difference_rows(
        "event",
        ("event_ns", "cursor read + e.payload, per event"),
        ("decode_ns", "decode_payload of the same stored bytes alone (kept to the batch's end), per event"),
        ("the Event beyond its decode, per event", "beyond decode / aim", EVENT_AIM_NS),
    )
