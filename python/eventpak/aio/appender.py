"""Appends from many tasks, written by one thread with one durability wait per round.

Each ``await store.append(...)`` queues its request and awaits a future. A single drain job
on the store's executor takes everything queued, appends each request as its own event in
one engine call (``_append_each``: one failing leaves the others alone), waits once for the
durability the sync mode promises, and resolves the futures on the loop. While it waits for
an fsync, new requests queue up for the next round: with ``sync="always"`` one fsync covers
every task that appended meanwhile, and the loop never waits for the disk.

Cancelling a queued append before the drain takes it means it is never written; once taken,
it is written and its result dropped. Either way the store stays whole, and an idempotency
key on the retry says whether the first attempt was written.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import Executor

from .._native import AppendReceipt, AppendRequest, NativeStore

__all__ = ["Appender"]

# Requests per engine call: bounds how long the first task of a round waits behind others.
_ROUND_MAX = 1024

_Pending = tuple[AppendRequest, "asyncio.Future[AppendReceipt]"]


class Appender:
    """The append queue of one async store."""

    def __init__(self, native: NativeStore, loop: asyncio.AbstractEventLoop, executor: Executor) -> None:
        self._native = native
        self._loop = loop
        self._executor = executor
        self._lock = threading.Lock()
        self._queue: list[_Pending] = []
        self._draining = False

    async def append(self, request: AppendRequest) -> AppendReceipt:
        """Queues ``request`` for the next round and waits for its receipt (or error)."""
        future: asyncio.Future[AppendReceipt] = self._loop.create_future()
        with self._lock:
            self._queue.append((request, future))
            start = not self._draining
            self._draining = True
        if start:
            self._executor.submit(self._drain)
        return await future

    def _drain(self) -> None:
        """Runs on the executor: rounds until the queue is empty."""
        while True:
            with self._lock:
                taken, self._queue = self._queue[:_ROUND_MAX], self._queue[_ROUND_MAX:]
                if not taken:
                    self._draining = False
                    return
            live = [(request, future) for request, future in taken if not future.cancelled()]
            try:
                outcomes: list[object] = self._native._append_each([request for request, _ in live])
            except BaseException as exc:  # the call itself failed (closed store, exit): all of them
                outcomes = [exc] * len(live)
            try:
                self._loop.call_soon_threadsafe(_settle, [future for _, future in live], outcomes)
            except RuntimeError:  # the loop is closed: nobody is left to hand the outcomes to
                with self._lock:
                    self._queue.clear()
                    self._draining = False
                return


def _settle(futures: list[asyncio.Future[AppendReceipt]], outcomes: list[object]) -> None:
    for future, outcome in zip(futures, outcomes, strict=True):
        if future.cancelled():
            continue
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)  # type: ignore[arg-type]
