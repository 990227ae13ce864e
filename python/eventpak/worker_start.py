"""Starting and stopping a store's supervised workers (``Store.cursor_worker`` and
``Store.close``); the workers themselves are :mod:`eventpak.worker`."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from ._native import NativeStore, Region, WorkerLease
from ._timeouts import wait_seconds
from .errors import CheckpointInUse, ReadOnlyStore
from .worker import CursorWorkerHandle
from .worker_config import CursorWorkerConfig, Handler, check_worker_args

if TYPE_CHECKING:
    from .store import Store

__all__ = ["start_worker", "stop_workers", "take_checkpoint_lease"]

log = logging.getLogger("eventpak.worker")


def start_worker(
    store: Store, region: Region, handler: Handler, config: CursorWorkerConfig | None
) -> CursorWorkerHandle:
    """Creates and starts a worker (see ``Store.cursor_worker``). A worker with a
    ``checkpoint_id`` first takes that checkpoint's lease: at most one live worker per
    checkpoint across every process of the data dir. When another holds it, this raises
    ``ep.CheckpointInUse``, or with ``standby=True`` starts a worker that waits for it."""
    config = check_worker_args(region, handler, config)
    lease = take_checkpoint_lease(store._native, config, store.path)
    handle = CursorWorkerHandle(store, region, handler, config, lease)
    handle.start()
    return handle


def take_checkpoint_lease(native: NativeStore, config: CursorWorkerConfig, path: str) -> WorkerLease | None:
    """The lease of ``config.checkpoint_id``, taken without waiting (``None`` without a
    checkpoint, or for a standby whose checkpoint is held); raises ``ep.CheckpointInUse``
    when another worker holds it and ``standby`` is off, and ``ep.ReadOnlyStore`` on a
    read-only store, where the worker could never save its checkpoint (it would fail at its
    first batch instead, seen only at ``join()``)."""
    if config.checkpoint_id is None:
        return None
    if native.read_only:
        raise ReadOnlyStore(path, "starting a durable worker")  # it saves a checkpoint per batch
    lease = native.take_worker_lease(config.checkpoint_id)
    if lease is None and not config.standby:
        raise CheckpointInUse(config.checkpoint_id, path)
    return lease


def stop_workers(workers: Iterable[CursorWorkerHandle], timeout: float | None) -> None:
    """Stops ``workers`` and waits for each to finish, without raising their errors (those
    belong to their ``join()``). With a ``timeout`` (seconds, for all of them together), a
    worker still in its handler then is abandoned and logged: its next store call raises
    ``ep.StoreClosed``."""
    timeout = wait_seconds(timeout)
    workers = list(workers)
    for worker in workers:
        worker.stop()
    deadline = None if timeout is None else time.monotonic() + timeout
    for worker in workers:
        if not worker._finish(deadline):
            log.warning("worker %s did not stop within %s s; abandoning it", worker.name, timeout)
