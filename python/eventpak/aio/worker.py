"""Supervised async workers: a task on the loop drives an ``async def`` handler over a
region, with the actions, restart policies and standby of the sync workers."""

from __future__ import annotations

import asyncio
import inspect
import itertools
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from .._native import Event, Region, WorkerLease
from ..errors import CheckpointInUse, EventpakError, RestartBudgetExhausted, WorkerCrashed
from ..restart import RestartBudget
from ..worker import AtLeastOnce, CursorWorkerAction, CursorWorkerConfig

if TYPE_CHECKING:
    from .store import AsyncStore

__all__ = ["AsyncHandler", "AsyncWorkerHandle", "start_async_worker"]

log = logging.getLogger("eventpak.worker")
_worker_numbers = itertools.count(1)
# How often a standby tries its checkpoint's lease (it takes over within this of a release).
_STANDBY_RETRY_S = 0.25

AsyncHandler = Callable[[list[Event], "AsyncStore", AtLeastOnce | None], Awaitable[CursorWorkerAction | None]]


class AsyncWorkerHandle:
    """Controls an async worker. ``stop()`` is plain; ``await join()`` raises the error
    that stopped it, as the sync handle's ``join()`` does."""

    def __init__(
        self,
        store: AsyncStore,
        region: Region,
        handler: AsyncHandler,
        config: CursorWorkerConfig,
        lease: WorkerLease | None,
    ) -> None:
        self._store = store
        self._region = region
        self._handler = handler
        self._config = config
        self._lease = lease
        self._stop = asyncio.Event()
        self._active = False
        self._error: BaseException | None = None
        self._last_error: BaseException | None = None
        self._restarts = 0
        self._committed: tuple[int, bool] = (0, False)
        self._name = f"eventpak-worker-{config.checkpoint_id or f'async#{next(_worker_numbers)}'}"
        self._task: asyncio.Task[None] = store._loop.create_task(self._run(), name=self._name)

    @property
    def name(self) -> str:
        """The worker task's name."""
        return self._name

    @property
    def checkpoint_id(self) -> str | None:
        """The durable checkpoint this worker commits to, if any."""
        return self._config.checkpoint_id

    @property
    def position(self) -> int | None:
        """The last committed global sequence; ``None`` before the first commit."""
        position, started = self._committed
        return position if started else None

    @property
    def is_active(self) -> bool:
        """True while the handler loop runs (False while a standby waits, and after)."""
        return self._active

    @property
    def last_error(self) -> BaseException | None:
        """The most recent handler exception (a success does not clear it)."""
        return self._last_error

    @property
    def restarts(self) -> int:
        """Restarts so far in the worker's life."""
        return self._restarts

    @property
    def done(self) -> bool:
        """True once the worker task has finished."""
        return self._task.done()

    def is_alive(self) -> bool:
        """True while the worker task runs."""
        return not self._task.done()

    def stop(self) -> None:
        """Asks the worker to stop after its current batch (callable from any thread)."""
        loop = self._store._loop
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._stop_now()
        elif not loop.is_closed():
            loop.call_soon_threadsafe(self._stop_now)

    async def join(self, timeout: float | None = None) -> None:
        """Waits for the worker to finish (does not stop it); raises the error that stopped
        it, or ``TimeoutError`` after ``timeout`` seconds."""
        if asyncio.current_task() is self._task:
            raise RuntimeError(f"worker {self.name} cannot join itself from its own handler; call stop()")
        done, _ = await asyncio.wait([self._task], timeout=timeout)
        if not done:
            raise TimeoutError(f"worker {self.name} still running after {timeout} s")
        if self._error is not None:
            raise self._error

    async def stop_and_join(self, timeout: float | None = None) -> None:
        """:meth:`stop`, then :meth:`join`."""
        if asyncio.current_task() is self._task:
            raise RuntimeError(f"worker {self.name} cannot join itself from its own handler; call stop()")
        self.stop()
        await self.join(timeout)

    def _stop_now(self) -> None:
        self._stop.set()
        self._store._watch().wake_all()

    async def _run(self) -> None:
        try:
            if await self._wait_for_lease():
                self._active = True
                await self._drive()
        except EventpakError as exc:
            self._error = exc
        except asyncio.CancelledError:
            self._error = WorkerCrashed(f"worker {self.name} was cancelled")
        except BaseException as exc:
            crashed = WorkerCrashed(f"worker {self.name} died outside its handler: {exc!r}")
            crashed.__cause__ = exc
            self._error = crashed
        finally:
            self._active = False
            if self._lease is not None:
                self._lease.release()

    async def _wait_for_lease(self) -> bool:
        checkpoint_id = self._config.checkpoint_id
        native = self._store.sync_store._native
        while self._lease is None and checkpoint_id is not None and not self._stop.is_set():
            self._lease = await self._store._offload(native.take_worker_lease, checkpoint_id)
            if self._lease is None:
                await self._pause(_STANDBY_RETRY_S)
        return not self._stop.is_set()

    async def _pause(self, seconds: float) -> bool:
        """Waits ``seconds`` or until stopped; True if stopped."""
        try:
            await asyncio.wait_for(self._stop.wait(), seconds)
        except TimeoutError:
            return False
        return True

    async def _drive(self) -> None:
        store, config = self._store, self._config
        cursor = store.sync_store.cursor(self._region).with_gap_config(config.gap_observation)
        if config.checkpoint_id is not None:
            await store._offload(cursor.resume, config.checkpoint_id)
        witness = None if config.checkpoint_id is None else AtLeastOnce(config.checkpoint_id)
        self._committed = (cursor.position, cursor.started)
        budget = RestartBudget(config.restart, store._loop.time)
        watch = store._watch()
        while not self._stop.is_set():
            seen = watch.generation()
            batch = await store._offload(cursor.pull_batch, config.batch_size, 0.0)
            if not batch:
                if not self._stop.is_set():  # a stop() during the pull found no waiter to wake
                    await watch.wait(seen)
                continue
            try:
                action = await self._call(batch, witness)
            except BaseException as exc:
                if _cancelled_from_outside(exc):
                    raise
                self._last_error = exc
                log.error("worker %s: handler raised on a batch of %d", self.name, len(batch), exc_info=exc)
                if not budget.allow():
                    raise RestartBudgetExhausted(
                        f"worker {self.name}: handler raised {exc!r} and {config.restart} allows no more "
                        "restarts"
                    ) from exc
                if await self._pause(budget.backoff_s()):
                    return
                self._restarts += 1
                cursor.seek(*self._committed)
                continue
            budget.succeeded()
            if action is CursorWorkerAction.STOP_WITH_ROLLBACK:
                cursor.seek(*self._committed)
                return
            if config.checkpoint_id is not None:
                await store._offload(cursor.commit, config.checkpoint_id)
            self._committed = (cursor.position, cursor.started)
            if action is CursorWorkerAction.STOP:
                return

    async def _call(self, batch: list[Event], witness: AtLeastOnce | None) -> CursorWorkerAction:
        outcome: Any = self._handler(batch, self._store, witness)
        if inspect.isawaitable(outcome):
            outcome = await outcome
        if outcome is None:
            return CursorWorkerAction.CONTINUE
        if not isinstance(outcome, CursorWorkerAction):
            raise TypeError(f"handler returned {outcome!r}, not a CursorWorkerAction")
        return outcome


def _cancelled_from_outside(exc: BaseException) -> bool:
    """A cancellation of the worker's own task (close, cancel) ends it; a CancelledError a
    handler raised by itself is its failure, like any other exception."""
    task = asyncio.current_task()
    return isinstance(exc, asyncio.CancelledError) and task is not None and task.cancelling() > 0


def start_async_worker(
    store: AsyncStore, region: Region, handler: AsyncHandler, config: CursorWorkerConfig | None
) -> AsyncWorkerHandle:
    """Creates and starts an async worker; a ``checkpoint_id`` takes its lease first (as
    ``Store.cursor_worker`` does: ``ep.CheckpointInUse`` unless ``standby=True``)."""
    config = config or CursorWorkerConfig()
    lease = None
    native = store.sync_store._native
    if config.checkpoint_id is not None and not native.read_only:
        # Non-blocking: the lease is a lock file taken without waiting.
        lease = native.take_worker_lease(config.checkpoint_id)
        if lease is None and not config.standby:
            raise CheckpointInUse(config.checkpoint_id, store.path)
    return AsyncWorkerHandle(store, region, handler, config, lease)
