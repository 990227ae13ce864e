"""The async store: the sync ``ep.Store`` driven from an event loop without blocking it."""

from __future__ import annotations

import asyncio
import functools
import os
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import Any, ParamSpec, TypeVar, Unpack

from .._native import (
    AppendCondition,
    AppendReceipt,
    AppendRequest,
    Event,
    NativeFence,
    Region,
    Tracking,
)
from ..backup import BackupReport
from ..config import StoreStats
from ..errors import FenceActive, ReadOnlyStore, StoreClosed
from ..options import BatchItem, CoordinateLike, EventOptions
from ..projection import Freshness, Projection
from ..retention import CompactionReport, Retention
from ..store import Store
from ..verify import Progress, VerifyReport
from .appender import Appender
from .fence import AsyncFence
from .subscribe import Subscription
from .wakeup import CommitWatch
from .worker import AsyncHandler, AsyncWorkerHandle
from .worker_steps import start_async_worker, worker_of

__all__ = ["AsyncStore"]

P = ParamSpec("P")
T = TypeVar("T")
S = TypeVar("S")

_OTHER_LOOP = (
    "this AsyncStore belongs to the event loop that opened it and cannot be used from another "
    "loop; open one store per loop, or use store.sync_store from other threads"
)


WRITE_THREADS = 4  # appends with a condition, batches, compaction: each blocks one


class AsyncStore:
    """An open store for asyncio code. Make it with ``await ep.aio.open(path, **options)``
    or ``async with ep.aio.open(...) as store``.

    Every call that touches the disk runs on the store's own small thread pool, so the
    event loop never waits for it; waiting for new events (``subscribe``, workers) holds no
    thread at all. Semantics, errors and durability are those of the sync :class:`ep.Store`,
    available as :attr:`sync_store`. The store belongs to the loop that opened it.
    """

    def __init__(self, store: Store, loop: asyncio.AbstractEventLoop, executor: ThreadPoolExecutor) -> None:
        self._store = store
        self._native = store._native
        self._loop = loop
        self._executor = executor
        # Writes have threads of their own: a write can wait there for another task's fence
        # (up to `fence_wait_ms`), and reads, the fence holder's among them, must not queue
        # behind it meanwhile (the fence would end only when the waiting writes gave up).
        self._write_executor = ThreadPoolExecutor(WRITE_THREADS, thread_name_prefix="eventpak-aio-write")
        # One thread per fence in use (kept for the next fence once it ends): see
        # `_take_fence_thread`.
        self._fence_threads: list[ThreadPoolExecutor] = []
        self._idle_fence_threads: list[ThreadPoolExecutor] = []
        self._appender = Appender(store._native, loop, self._write_executor)
        self._commits: CommitWatch | None = None
        self._fence_task: asyncio.Task[Any] | None = None
        self._open_fence: AsyncFence | None = None  # the fence `_fence_task` holds
        self._workers: list[AsyncWorkerHandle] = []
        self._closing = False
        self._close_task: asyncio.Future[None] | None = None

    @property
    def sync_store(self) -> Store:
        """The underlying :class:`ep.Store` (for code that runs in threads)."""
        return self._store

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called. While close waits for a worker to finish the
        batch in its handler, that worker's calls are still served; others' are refused."""
        return self._closing or self._store.closed

    @property
    def path(self) -> str:
        """The data dir as given to ``open``."""
        return self._store.path

    async def append(
        self,
        coord: CoordinateLike,
        kind: str,
        payload: Any,
        *,
        condition: AppendCondition | None = None,
        tracking: Tracking | None = None,
        **options: Unpack[EventOptions],
    ) -> AppendReceipt:
        """Appends one event (see ``Store.append``). Appends of concurrent tasks share one
        engine call and one fsync. Cancelling it before it is written means it is not. An
        append with a ``condition`` or ``tracking`` is its own engine call on the pool."""
        self._check_loop()
        if self._in_own_fence():
            raise FenceActive()  # it would wait for its own task's fence
        self._check_open()
        if condition is not None or tracking is not None:
            call = functools.partial(self._native.append, condition=condition, tracking=tracking, **options)
            return await self._offload_write(call, coord, kind, payload)
        return await self._appender.append(AppendRequest(coord, kind, payload, **options))

    async def append_batch(
        self,
        items: Iterable[BatchItem],
        *,
        condition: AppendCondition | None = None,
        tracking: Tracking | None = None,
    ) -> list[AppendReceipt]:
        """Appends items atomically, with an optional ``condition`` and ``tracking`` record
        (see ``Store.append_batch``)."""
        if self._in_own_fence():
            raise FenceActive()
        call = functools.partial(self._native.append_batch, condition=condition, tracking=tracking)
        return await self._offload_write(call, list(items))

    async def tracking_position(self, name: str) -> int | None:
        """The position last recorded for tracking name ``name``, or ``None``."""
        return await self._offload(self._native.tracking_position, name)

    async def get(self, event_id: uuid.UUID | str) -> Event:
        """The event with this id; raises ``ep.EventNotFound``."""
        return await self._offload(self._native.get, event_id)

    async def query(
        self, region: Region, *, after: int | None = None, limit: int | None = None
    ) -> list[Event]:
        """The visible events matching ``region`` in commit order (see ``Store.query``)."""
        return await self._offload(functools.partial(self._native.query, region, after=after, limit=limit))

    async def project(
        self, target: str | Region, projection: Projection[S], *, freshness: Freshness = Freshness.CONSISTENT
    ) -> S | None:
        """The state of ``projection`` over ``target`` (see ``Store.project``)."""
        call = functools.partial(self._store.project, target, projection, freshness=freshness)
        return await self._offload(call)

    async def head(self) -> int | None:
        """The newest visible global sequence; ``None`` while nothing is visible."""
        return await self._offload(self._native.head)

    async def sync(self) -> None:
        """An fsync barrier: every event appended so far (in shared mode, by any process) is
        durable when it returns. A read-only store appends nothing: it returns at once."""
        await self._offload(self._native.sync)

    async def verify(self, *, progress: Progress | None = None) -> VerifyReport:
        """The full integrity check (see ``Store.verify``); ``progress`` runs on a pool thread."""
        return await self._offload(functools.partial(self._store.verify, progress=progress))

    async def backup(self, dest: str | os.PathLike[str], *, progress: Progress | None = None) -> BackupReport:
        """The online backup into ``dest`` (see ``Store.backup``); ``progress`` runs on a pool
        thread."""
        return await self._offload(functools.partial(self._store.backup, dest, progress=progress))

    async def compact(self, retention: Retention, *, progress: Progress | None = None) -> CompactionReport:
        """Removes the events ``retention`` selects from the sealed segments (see
        ``Store.compact``); the predicate and ``progress`` run on a pool thread."""
        return await self._offload_write(functools.partial(self._store.compact, retention, progress=progress))

    async def forget_entity(self, entity: str) -> None:
        """Crypto-shredding (see ``Store.forget_entity``): destroys ``entity``'s data keys."""
        await self._offload_write(functools.partial(self._store.forget_entity, entity))

    async def rotate_encryption_key(self, new_key: bytes) -> int:
        """Replaces the store key (see ``Store.rotate_encryption_key``); returns how many data
        keys were wrapped again."""
        return await self._offload_write(functools.partial(self._store.rotate_encryption_key, new_key))

    async def stats(self) -> StoreStats:
        """Counts, sizes, and what recovery did at open."""
        return await self._offload(self._store.stats)

    def fence(self) -> AsyncFence:
        """A visibility fence: ``async with store.fence() as f: await f.append(...)``.
        Raises ``ep.StoreClosed`` on a closed store and ``ep.ReadOnlyStore`` on a read-only
        one (the fence opens when the ``async with`` block is entered)."""
        NativeFence.check(self._native)
        return AsyncFence(self)

    def subscribe(
        self, region: Region, after: int | None = None, checkpoint_id: str | None = None
    ) -> Subscription:
        """``async for event in store.subscribe(region)``: the region's events in commit
        order, then each new one as it is committed (see :class:`Subscription`). With
        ``checkpoint_id`` it saves its position as it goes, which a ``read_only`` store
        refuses at once (``ep.ReadOnlyStore``), as it refuses a durable worker."""
        if checkpoint_id is not None and self._native.read_only:
            raise ReadOnlyStore(self.path, "a subscription with a checkpoint_id (it saves its position)")
        return Subscription(self, region, after, checkpoint_id)

    def worker(self, region: Region, handler: AsyncHandler, config: Any = None) -> AsyncWorkerHandle:
        """Starts a supervised worker task on this loop: ``await handler(batch, store,
        witness)`` with the region's events, with the actions, restart policies, standby and
        dead letters of ``ep.CursorWorkerConfig``. The handler receives this async store."""
        self._check_loop()
        if self.closed:
            self._native.check_open()  # the engine's own error (a fork's says so)
            raise StoreClosed(self.path)
        self._workers = [w for w in self._workers if not w.done]
        handle = start_async_worker(self, region, handler, config)
        self._workers.append(handle)
        return handle

    async def close(self, timeout: float | None = None) -> None:
        """Stops this store's workers and subscriptions, waits for each worker to finish the
        batch in its handler (saving its checkpoint, parking its dead letters; its calls are
        still served meanwhile) and cancels those still in their handler after ``timeout``
        seconds, then closes the store (sync, index checkpoint, release of the data dir).
        Idempotent: every call waits for the one closing, and cancelling a call does not
        stop the closing. From a worker's handler it returns at once (the closing waits for
        that handler to return)."""
        self._check_loop()
        if self._close_task is None:
            self._closing = True  # from here on only the stopping workers' calls are served
            own_fence = self._open_fence if self._in_own_fence() else None
            self._close_task = asyncio.ensure_future(self._close_now(timeout, own_fence))
        if worker_of.get() is self:
            return
        await asyncio.shield(self._close_task)

    async def _close_now(self, timeout: float | None, own_fence: AsyncFence | None) -> None:
        if own_fence is not None:  # closed from inside the block of the fence its task holds
            await own_fence._cancel_for_close()
        workers, self._workers = self._workers, []
        for worker in workers:
            worker.stop()
        if workers:
            _, abandoned = await asyncio.wait([w._task for w in workers], timeout=timeout)
            for task in abandoned:  # a handler still running after `timeout`: cancelled
                task.cancel()
        if self._commits is not None:
            self._commits.close()
        await self._offload_always(self._store.close)
        self._executor.shutdown(wait=False)
        self._write_executor.shutdown(wait=False)
        for thread in self._fence_threads:
            thread.shutdown(wait=False)

    async def __aenter__(self) -> AsyncStore:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"<eventpak.aio.AsyncStore {self.path!r} {'closed' if self.closed else 'open'}>"

    def _in_own_fence(self) -> bool:
        """True in the task that holds this store's fence: its own appends, or a second fence,
        would wait for that fence, which only this task can end."""
        return self._fence_task is not None and asyncio.current_task() is self._fence_task

    async def _offload(self, call: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Runs a blocking call on the store's threads and waits for it without blocking."""
        bound = functools.partial(call, *args, **kwargs) if args or kwargs else call
        return await self._submit(bound)

    async def _offload_write(self, call: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``_offload`` on the writes' threads."""
        bound = functools.partial(call, *args, **kwargs) if args or kwargs else call
        return await self._submit(bound, executor=self._write_executor)

    def _submit(
        self, call: Callable[..., T], *args: Any, executor: ThreadPoolExecutor | None = None
    ) -> asyncio.Future[T]:
        """Starts a blocking call on the store's threads (the reads' unless ``executor`` is
        given); refused before it starts from another loop, or when the store is closed (or
        closing, but for its workers)."""
        self._check_loop()
        self._check_open()
        return self._loop.run_in_executor(executor or self._executor, call, *args)

    def _check_loop(self) -> None:
        # Checked before anything is queued: a future of this loop awaited from another one
        # fails only after its call was made (an append would be written, then reported
        # as failed).
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is not self._loop:
            raise RuntimeError(_OTHER_LOOP)

    def _check_open(self) -> None:
        # While close waits for the workers, the batch in a handler is finished as the sync
        # store lets it be: the worker's calls (its handler's, its checkpoint's) are served.
        if self._store.closed or (self._closing and worker_of.get() is not self):
            self._native.check_open()  # the engine's own error (a fork's says so)
            raise StoreClosed(self.path)

    async def _offload_always(self, call: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        bound = functools.partial(call, *args, **kwargs) if args or kwargs else call
        return await self._loop.run_in_executor(self._executor, bound)

    def _watch(self) -> CommitWatch:
        if self._commits is None:
            self._commits = CommitWatch(self._native, self._loop)
        return self._commits

    def _take_fence_thread(self) -> ThreadPoolExecutor:
        """The thread a fence runs every call on, from its entry to its end. A fence belongs
        to the thread that opened it, so each fence has its own: a second task's fence then
        waits in its thread for the first to end (up to ``fence_wait_ms``), as a second
        thread's does, instead of meeting the first as its own and failing at once. Plain
        appends never run there, so they wait for the fence as other threads' do."""
        if self._idle_fence_threads:
            return self._idle_fence_threads.pop()
        thread = ThreadPoolExecutor(1, thread_name_prefix="eventpak-aio-fence")
        self._fence_threads.append(thread)
        return thread

    def _return_fence_thread(self, thread: ThreadPoolExecutor) -> None:
        """Keeps a fence's thread for the next fence (calls still queued on it run first)."""
        self._idle_fence_threads.append(thread)
