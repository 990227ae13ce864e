"""Fetching a cursor's next batch from the loop: through the pool, or at the tail inline.

A pull that may read history goes through the store's pool: old frames may have to be
faulted in from disk. A pull right after a commit signal reads what was just committed:
index entries in memory and frames written moments ago, in the page cache. That one runs on
the loop itself, which saves the thread hop that would dominate the commit-to-handler
latency. If it comes back full, the reader may be behind again, and its next pull goes
through the pool.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from .._native import Cursor, Event
from .pool import finish_on_pool

if TYPE_CHECKING:
    from .store import AsyncStore

__all__ = ["next_batch"]


async def next_batch(
    store: AsyncStore,
    cursor: Cursor,
    size: int,
    stopped: Callable[[], bool],
    parked: Callable[[bool], None] = lambda _: None,
) -> list[Event] | None:
    """The cursor's next non-empty batch of at most ``size`` events, waiting for commits as
    long as it takes; ``None`` once ``stopped()`` says so (checked before each wait).
    ``parked(True)`` and ``parked(False)`` frame each wait for a commit: cancelling the pull
    there loses nothing (the cursor has not moved since its last empty pull)."""
    watch = store._watch()
    at_tail = False
    while not stopped():
        seen = watch.generation()
        if at_tail:
            batch = cursor.poll_batch(size)
        else:
            # Finished even if the caller is cancelled: what it ends next (a checkpoint saved
            # from this cursor, a lease let go) must not overlap the pull.
            batch = await finish_on_pool(store, cursor.pull_batch, size, 0.0)
        if batch:
            return batch
        if stopped():  # a stop during the pull found no waiter to wake
            break
        parked(True)
        try:
            await watch.wait(seen)
        finally:
            parked(False)
        at_tail = True
    return None
