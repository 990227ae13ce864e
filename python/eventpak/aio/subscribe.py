"""``async for event in store.subscribe(region)``: new events as they are committed."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from .._native import Cursor, Event, Region, WorkerLease
from ..errors import CheckpointInUse, StoreClosed
from ..worker import save_at
from .pool import finish_on_pool, wait_out
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
        # Global sequences: the end of what the body was given last (an event, or a batch's
        # last event), of what it finished (all it was given before it asked for more),
        # and of what the checkpoint holds. Events and batches may be mixed: only these say
        # what may be saved, and a save never goes back.
        self._given: int | None = None
        self._finished: int | None = None
        self._saved: int | None = None
        # The fetch in progress: a task of its own, so a caller cancelled while it runs
        # loses nothing (the next call receives what it fetched, the cursor having moved).
        self._fetching: asyncio.Task[list[Event] | None] | None = None
        self._ending: asyncio.Task[None] | None = None
        # True while the fetch waits for a commit, having fetched nothing.
        self._parked = False
        # True once the caller of the fetch under way was cancelled and none has come back:
        # a fetch that then finds nothing ends instead of waiting on for nobody.
        self._abandoned = False
        if checkpoint_id is not None:
            Cursor.validate_checkpoint_id(checkpoint_id)

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Event:
        self._finished = self._given  # asking for more: the body finished what it was given
        if self._next < len(self._buffer):
            event = self._buffer[self._next]
            self._next += 1
        else:
            self._buffer, self._next = await self._fetch(), 1
            event = self._buffer[0]
        self._given = event.global_sequence
        return event

    async def batches(self) -> AsyncIterator[list[Event]]:
        """The same events, one fetched batch at a time."""
        while True:
            self._finished = self._given
            if self._next < len(self._buffer):  # what `async for` left of its batch
                batch, self._buffer, self._next = self._buffer[self._next :], [], 0
            else:
                try:
                    batch = await self._fetch()
                except StopAsyncIteration:
                    return
            self._given = batch[-1].global_sequence
            yield batch

    async def aclose(self) -> None:
        """Ends the subscription: waits for a fetch still in progress (even one whose caller
        was cancelled), saves the checkpoint through the last event the loop body finished,
        then releases the checkpoint's lease. The lease is free when it returns."""
        self._store._check_loop()
        if self._ending is None:
            self._ending = asyncio.ensure_future(self._end())
        # Shielded: a cancelled aclose() returns at once, and the ending still completes.
        await asyncio.shield(self._ending)

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

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
        self._abandoned = False
        task = self._fetching
        if task is None:
            task = self._fetching = asyncio.ensure_future(self._fetch_or_end())
        try:
            batch = await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.cancelled():  # the fetch itself was cancelled (the loop is ending)
                self._fetching = None
                if self._closed and _not_cancelled_itself():
                    raise StopAsyncIteration from None  # aclose() ended it meanwhile
            # The caller was cancelled. A fetch on the pool goes on for the next call; one
            # waiting for a commit has fetched nothing and ends with its caller, so that a
            # subscription then dropped (a client gone) holds no task, and its lease goes.
            self._abandoned = True
            if self._parked:
                self._stop_fetch()
            raise
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
        store, checkpoint_id = self._store, self._checkpoint_id
        if self._ended():  # ended before its first fetch: no lease is taken for it
            self._close()
            return None
        cursor = self._cursor or await self._open()
        finished = self._finished
        if checkpoint_id is not None and finished is not None and not _saved(self._saved, finished):
            # The body finished what it was given (it asked for more): save past it.
            await finish_on_pool(store, _save, cursor, checkpoint_id, finished, keep=self._keep_saved)
        batch = await next_batch(store, cursor, _BATCH, self._ended, self._park)
        if batch is None:
            self._close()
            return None
        return batch

    def _park(self, parked: bool) -> None:
        self._parked = parked
        if parked and self._abandoned:
            self._stop_fetch()

    def _stop_fetch(self) -> None:
        task, self._fetching = self._fetching, None
        if task is not None:
            task.cancel()

    def _keep_saved(self, position: int) -> None:
        self._saved = position

    def _unsaved_at_end(self) -> int | None:
        """Where the ending saves the checkpoint: through what the body finished, if that is
        past what was saved (never back) and the subscription may still write it."""
        finished = self._finished
        if self._cursor is None or self._checkpoint_id is None or self._lease is None or finished is None:
            return None
        if self._store.closed or _saved(self._saved, finished):
            return None
        return finished

    def _save_at_end(self, position: int) -> None:
        assert self._cursor is not None and self._checkpoint_id is not None
        try:
            self._saved = _save(self._cursor, self._checkpoint_id, position)
        except Exception:  # ending goes on: the batch is delivered again next time
            _log_failed_save(self._checkpoint_id)

    def _ended(self) -> bool:
        return self._closed or self._store.closed

    async def _open(self) -> Cursor:
        store = self._store
        checkpoint_id, native = self._checkpoint_id, store.sync_store._native
        if checkpoint_id is not None:  # (a read-only store refused it at subscribe())
            # Kept even by a fetch cancelled meanwhile: the ending releases it, not the GC.
            await finish_on_pool(store, native.take_worker_lease, checkpoint_id, keep=self._keep_lease)
            if self._lease is None:
                raise CheckpointInUse(checkpoint_id, store.sync_store.path)
        cursor = store.sync_store.cursor(self._region, after=self._after)
        if checkpoint_id is not None:
            await finish_on_pool(store, cursor.resume, checkpoint_id)
        self._cursor = cursor
        return cursor

    def _keep_lease(self, lease: WorkerLease | None) -> None:
        self._lease = lease

    async def _end(self) -> None:
        """aclose(): ends the fetch in progress and waits for it (its calls on the pool, a
        checkpoint save or a lease being taken, end first: nothing is written, and no lease
        is taken, once the lease is let go), then saves and releases."""
        self._closed = True
        self._buffer, self._next = [], 0
        try:
            task = self._fetching
            if task is not None:
                task.cancel()
                await wait_out(task)
                if not task.cancelled():
                    task.exception()  # fetched for a caller that gave up (was cancelled)
            position = self._unsaved_at_end()
            if position is not None:
                cursor, checkpoint_id = self._cursor, self._checkpoint_id
                try:
                    await finish_on_pool(
                        self._store, _save, cursor, checkpoint_id, position, keep=self._keep_saved
                    )
                except Exception:  # ending goes on: what it was given comes again
                    _log_failed_save(checkpoint_id)
        finally:
            self._release()

    def _close(self) -> None:
        """Ends the subscription where nothing can be awaited: dropped (``__del__``), or its
        own fetch found the end (the store closed). No fetch is then in progress."""
        first = not self._closed
        self._closed = True
        self._buffer, self._next = [], 0
        if first and self._ending is None:
            position = self._unsaved_at_end()
            if position is not None:
                self._save_at_end(position)
        self._release()

    def _release(self) -> None:
        if self._lease is not None:
            self._lease.release()
            self._lease = None


def _save(cursor: Cursor, checkpoint_id: str, position: int) -> int:
    """Saves the checkpoint through ``position``, leaving the cursor where it is. A function,
    not a method: a pool thread holding it for a moment must not keep the subscription alive
    (a subscription dropped after ``break`` releases its lease at once)."""
    save_at(cursor, checkpoint_id, (position, True), (cursor.position, cursor.started))
    return position


def _saved(saved: int | None, finished: int) -> bool:
    return saved is not None and finished <= saved


def _not_cancelled_itself() -> bool:
    task = asyncio.current_task()
    return task is None or task.cancelling() == 0


def _log_failed_save(checkpoint_id: str | None) -> None:
    logging.getLogger("eventpak").warning(
        "subscription %r: saving its checkpoint at its end failed", checkpoint_id, exc_info=True
    )
