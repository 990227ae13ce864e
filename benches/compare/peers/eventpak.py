"""eventpak: the store, its write paths, reads and deliveries, and the ``Sum`` projection of (j)/(k).

Only the public API of ``eventpak`` is used.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import eventpak as ep

from benches._workload import KIND, POOL_MASK, SCOPE
from benches.compare.harness import (
    BULK_CHUNK,
    COORDS,
    DEPOSIT,
    PAYLOADS,
    PROJ_ENTITY,
    WARMUP_CALLS,
    WORKER_TIMEOUT_S,
    Sample,
    perf,
    projection_kind,
)


def open_store(d: Path, **options: Any) -> ep.Store:
    """A new store in ``d/store``."""
    return ep.Store.open(str(d / "store"), **options)


def reopen(path: Path, **options: Any) -> ep.Store:
    """An existing store at ``path``."""
    return ep.Store.open(str(path), **options)


# ------------------------------------------------------------------------------------------ writes


def append_step(store: ep.Store) -> Callable[[int], Any]:
    """(a): one ``store.append`` per call; returns the receipt."""
    append = store.append

    def step(n: int) -> Any:
        return append(COORDS[n & POOL_MASK], KIND, PAYLOADS[n & POOL_MASK])

    return step


def thread_append_step(store: ep.Store, t: int, count: int) -> Callable[[int], object]:
    """(b): thread ``t`` of ``count`` appending to one shared store, from its own pool offset."""
    append = store.append
    offset = t * (POOL_MASK + 1) // count

    def step(n: int) -> object:
        i = (n + offset) & POOL_MASK
        return append(COORDS[i], KIND, PAYLOADS[i])

    return step


def batch_step(store: ep.Store, idx: list[int]) -> Callable[[int], Any]:
    """(c): one ``append_batch`` of ``len(idx)`` events per call; returns the receipts."""
    append_batch = store.append_batch

    def step(n: int) -> Any:
        return append_batch([(COORDS[j], KIND, PAYLOADS[j]) for j in idx])

    return step


def append_loop(store: ep.Store, n: int) -> float:
    """(d): WARMUP_CALLS untimed appends, then n timed ones; returns the seconds."""
    append = store.append
    for i in range(WARMUP_CALLS):
        append(COORDS[i], KIND, PAYLOADS[i])
    t0 = perf()
    for i in range(n):
        append(COORDS[i & POOL_MASK], KIND, PAYLOADS[i & POOL_MASK])
    return perf() - t0


def bulk_load(store: ep.Store, n: int) -> None:
    """(load): n events in ``append_batch`` chunks of BULK_CHUNK."""
    for start in range(0, n, BULK_CHUNK):
        store.append_batch(
            [
                (COORDS[i & POOL_MASK], KIND, PAYLOADS[i & POOL_MASK])
                for i in range(start, min(n, start + BULK_CHUNK))
            ]
        )


# ------------------------------------------------------------------------------------------- reads


def read_payloads(store: ep.Store, region: ep.Region) -> Callable[[], list[Any]]:
    """(e): one query of the region, every payload decoded."""
    return lambda: [e.payload for e in store.query(region)]


def read_events(store: ep.Store, region: ep.Region) -> Callable[[], list[Any]]:
    """(e): one query of the region, payloads not touched."""
    return lambda: store.query(region)


def read_cursor(store: ep.Store, region: ep.Region, size: int = 1000) -> Callable[[], int]:
    """(e): the region through a cursor, ``poll_batch(size)`` in a loop, touching every
    ``e.payload`` and keeping nothing; returns the count."""

    def read() -> int:
        poll, seen = store.cursor(region).poll_batch, 0
        while batch := poll(size):
            for e in batch:
                e.payload  # noqa: B018 -- the read being measured
            seen += len(batch)
        return seen

    return read


def stored_payloads(store: ep.Store, region: ep.Region, size: int = 1000) -> list[list[bytes]]:
    """(e): the stored payload bytes of the region (``e.payload_bytes``), in lists of ``size``."""
    poll, out = store.cursor(region).poll_batch, []
    while batch := poll(size):
        out.append([e.payload_bytes for e in batch])
    return out


def read_pages(store: ep.Store, region: ep.Region, limit: int = 1000) -> Callable[[], list[Any]]:
    """(e): the region in pages of ``limit`` (``after=``), every payload decoded."""

    def read() -> list[Any]:
        out: list[Any] = []
        after = None
        while page := store.query(region, after=after, limit=limit):
            out += [e.payload for e in page]
            after = page[-1].global_sequence
        return out

    return read


# -------------------------------------------------------------------------------------- deliveries


Handler = Callable[..., ep.CursorWorkerAction]


def counting_handler(n: int) -> tuple[Handler, threading.Event, list[int]]:
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


def deliver_with_poll(store: ep.Store, region: ep.Region, size: int, handler: Handler) -> None:
    """(g): a plain ``cursor.poll_batch(size)`` loop in this thread, each batch handed to ``handler``."""
    poll_batch = store.cursor(region).poll_batch
    while batch := poll_batch(size):
        handler(batch, store, None)


# ------------------------------------------------------------------------------------- projections


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


def load_entity(store: ep.Store, n: int) -> None:
    """The n events of the (j)/(k) entity, in batches of BULK_CHUNK, not individually durable."""
    coord = ep.Coordinate(PROJ_ENTITY, SCOPE)
    for start in range(0, n, BULK_CHUNK):
        store.append_batch(
            [
                (coord, projection_kind(i), PAYLOADS[i & POOL_MASK])
                for i in range(start, min(n, start + BULK_CHUNK))
            ]
        )
