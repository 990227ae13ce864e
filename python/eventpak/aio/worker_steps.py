"""Small steps of async workers: starting one, telling a cancellation of the worker from a
handler's own ``CancelledError``, and knowing which store's worker a task is."""

from __future__ import annotations

import asyncio
from contextvars import ContextVar
from typing import TYPE_CHECKING

from .._native import Region
from ..worker_config import CursorWorkerConfig, check_worker_args
from ..worker_start import take_checkpoint_lease

if TYPE_CHECKING:
    from .store import AsyncStore
    from .worker import AsyncHandler, AsyncWorkerHandle

__all__ = ["cancelled_from_outside", "start_async_worker", "worker_of"]

# The store whose worker the current task is (or was started by: tasks a handler starts
# inherit it). While that store closes, it still serves these tasks, so the batch in a
# handler is finished, its checkpoint saved and its dead letters parked.
worker_of: ContextVar[object | None] = ContextVar("eventpak_aio_worker_of", default=None)


def cancelled_from_outside(exc: BaseException) -> bool:
    """A cancellation of the worker's own task (close, cancel) ends it; a CancelledError a
    handler raised by itself is its failure, like any other exception."""
    task = asyncio.current_task()
    return isinstance(exc, asyncio.CancelledError) and task is not None and task.cancelling() > 0


def start_async_worker(
    store: AsyncStore, region: Region, handler: AsyncHandler, config: CursorWorkerConfig | None
) -> AsyncWorkerHandle:
    """Creates and starts an async worker; a ``checkpoint_id`` takes its lease first (as
    ``Store.cursor_worker`` does: ``ep.CheckpointInUse`` unless ``standby=True``)."""
    config = check_worker_args(region, handler, config)
    # Non-blocking: the lease is a lock file taken without waiting.
    lease = take_checkpoint_lease(store.sync_store._native, config, store.path)
    from .worker import AsyncWorkerHandle  # the handle's module imports this one

    return AsyncWorkerHandle(store, region, handler, config, lease)
