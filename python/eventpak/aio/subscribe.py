"""``async for event in store.subscribe(region)``: new events as they are committed."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from .._native import Cursor, Event, Region, WorkerLease
from ..errors import CheckpointInUse, StoreClosed
from .pull import next_batch

if TYPE_CHECKING:
    from .store import AsyncStore

__all__ = ["Subscription"]

# Events fetched per engine call: the loop sees one executor round trip per batch.
_BATCH = 1024


class Subscription:
    """The events of a region in commit order, from ``after`` (or a durable checkpoint),
    then every event committed later, for as long as it is iterated.

    Iterate it with ``async for`` (events) or ``async for batch in sub.batches()`` (lists,
    as fetched). With a ``checkpoint_id`` it resumes from that checkpoint and saves it after
    each batch the loop body has finished, and when it ends (``aclose()``, ``async with``,
    or the subscription dropped after a ``break``) through the last event the body finished:
    the one before the event it was on (at-least-once: the event in progress when the loop
    is left, or the batch in progress with ``batches()``, is delivered again next time).
    Like a worker, it holds the checkpoint's lease while it runs (``ep.CheckpointInUse`` if
    another holds it) and releases it when it ends; a ``break`` ends it once nothing refers
    to it any more (keep it in a variable, and call ``aclose()`` or use ``async with``, to end
    it at once). The store closing ends it too.
    """

    def __init__(
        self, store: AsyncStore, region: Region, after: int | None, checkpoint_id: str | None
    ) -> None:
        # Every attribute is set before anything can raise: `__del__` ends what was begun.
        self._closed = False
        self._lease: WorkerLease | None = None
        self._store = store
        self._region = region
        self._after = after
        self._checkpoint_id = checkpoint_id
        self._cursor: Cursor | None = None
        self._buffer: list[Event] = []
        self._next = 0
        self._uncommitted = False
        # The fetch in progress: a task of its own, so a caller cancelled while it runs
        # loses nothing (the next call receives what it fetched, the cursor having moved).
        self._fetching: asyncio.Task[list[Event] | None] | None = None
        if checkpoint_id is not None:
            Cursor.validate_checkpoint_id(checkpoint_id)

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Event:
        if self._next < len(self._buffer):
            event = self._buffer[self._next]
            self._next += 1
            return event
        self._buffer = await self._fetch()
        self._next = 1
        return self._buffer[0]

    async def batches(self) -> AsyncIterator[list[Event]]:
        """The same events, one fetched batch at a time."""
        if self._next < len(self._buffer):
            rest, self._buffer = self._buffer[self._next :], []
            yield rest
        while True:
            try:
                batch = await self._fetch()
            except StopAsyncIteration:
                return
            yield batch

    async def aclose(self) -> None:
        """Ends the subscription: saves its checkpoint through the last event the loop body
        finished, then releases the checkpoint's lease."""
        self._close()

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._close()

    def __del__(self) -> None:
        # A loop left with `break` drops the subscription: its lease goes with it.
        self._close()

    @property
    def position(self) -> int | None:
        """The global sequence of the last event fetched; ``None`` before any."""
        cursor = self._cursor
        return cursor.position if cursor is not None and cursor.started else None

    async def _fetch(self) -> list[Event]:
        """The next non-empty batch, waiting for commits as long as it takes."""
        task = self._fetching
        if task is None:
            task = self._fetching = asyncio.ensure_future(self._fetch_or_end())
        try:
            batch = await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.cancelled():  # the fetch itself was cancelled (the loop is ending)
                self._fetching = None
            raise  # the caller was cancelled: the fetch goes on for the next call
        except BaseException:
            self._fetching = None
            raise
        self._fetching = None
        if batch is None:
            raise StopAsyncIteration
        return batch

    async def _fetch_or_end(self) -> list[Event] | None:
        try:
            return await self._fetch_or_raise()
        except StoreClosed:
            if not self._store.closed:
                raise
            self._close()  # the store closed under it: the iteration ends
            return None

    async def _fetch_or_raise(self) -> list[Event] | None:
        store = self._store
        cursor = self._cursor or await self._open()
        if self._uncommitted and self._checkpoint_id is not None:
            # The body finished the previous batch (it asked for more): save past it.
            await store._offload(cursor.commit, self._checkpoint_id)
            self._uncommitted = False
        batch = await next_batch(store, cursor, _BATCH, self._ended)
        if batch is None:
            self._close()
            return None
        self._uncommitted = True
        return batch

    def _save_finished(self) -> None:
        """Saves the checkpoint through the last event the body finished (the one before the
        event it was given last), when that is past what was saved."""
        cursor, finished, checkpoint_id = self._cursor, self._next - 2, self._checkpoint_id
        if cursor is None or checkpoint_id is None or self._lease is None or self._store.closed:
            return
        if not self._uncommitted or finished < 0:
            return
        position = self._buffer[finished].global_sequence
        try:
            cursor.seek(position, True)
            cursor.commit(checkpoint_id)
        except Exception:  # ending goes on: the batch is delivered again next time
            logging.getLogger("eventpak").warning(
                "subscription %r: saving its checkpoint at its end failed", self._checkpoint_id, exc_info=True
            )

    def _ended(self) -> bool:
        return self._closed or self._store.closed

    async def _open(self) -> Cursor:
        store = self._store
        if self._checkpoint_id is not None and not store.sync_store._native.read_only:
            lease = await store._offload(store.sync_store._native.take_worker_lease, self._checkpoint_id)
            if lease is None:
                raise CheckpointInUse(self._checkpoint_id, store.sync_store.path)
            self._lease = lease
        cursor = store.sync_store.cursor(self._region, after=self._after)
        if self._checkpoint_id is not None:
            await store._offload(cursor.resume, self._checkpoint_id)
        self._cursor = cursor
        return cursor

    def _close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._save_finished()
        self._buffer, self._next = [], 0
        if self._lease is not None:
            self._lease.release()
            self._lease = None
