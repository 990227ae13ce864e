"""Supervised async workers: a task on the loop drives an ``async def`` handler over a
region, with the actions, restart policies and standby of the sync workers."""

from __future__ import annotations

import asyncio
import inspect
import itertools
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from .._native import Cursor, Event, GapObservation, Region, WorkerLease
from ..dead_letters import dead_letter_filter, park_and_log
from ..errors import EventpakError, WorkerCrashed
from ..isolation import Isolation
from ..restart import RestartBudget
from ..worker import committed_or_saved, save_at
from ..worker_config import AtLeastOnce, CursorWorkerAction, CursorWorkerConfig, checked_action
from .pool import finish_on_pool
from .pull import next_batch
from .worker_steps import cancelled_from_outside, worker_of

if TYPE_CHECKING:
    from .store import AsyncStore

__all__ = ["AsyncHandler", "AsyncWorkerHandle"]

log = logging.getLogger("eventpak.worker")
_worker_numbers = itertools.count(1)
# How often a standby tries its checkpoint's lease (it takes over within this of a release).
_STANDBY_RETRY_S = 0.25

# A coroutine function, or a plain function returning the action (run on the loop as is).
AsyncHandler = Callable[
    [list[Event], "AsyncStore", AtLeastOnce | None],
    Awaitable[CursorWorkerAction | None] | CursorWorkerAction | None,
]


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
        self._cursor: Cursor | None = None
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
        """The last committed global sequence (a durable worker starts from its checkpoint,
        also before its task has resumed it); ``None`` before the first commit."""
        position, started = self._committed_or_saved()
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

    def take_gaps(self) -> list[GapObservation]:
        """Drains the gap observations the worker's cursor recorded, oldest first (with
        ``gap_observation`` enabled in its config; always empty otherwise)."""
        return [] if self._cursor is None else self._cursor.take_gaps()

    @property
    def lag(self) -> int:
        """The worker's backlog: visible events of its region after its committed position
        (the batch in its handler included); 0 when caught up. A standby counts from its
        checkpoint. Counted in the in-memory index."""
        position, started = self._committed_or_saved()
        return self._store.sync_store._native.region_lag(self._region, position, started)[0]

    def _committed_or_saved(self) -> tuple[int, bool]:
        native = self._store.sync_store._native
        return committed_or_saved(
            self._committed, self._cursor is not None, self._config.checkpoint_id, native
        )

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
        worker_of.set(self._store)  # this task's context only (and tasks the handler starts)
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
            # Kept even by a worker cancelled meanwhile: it releases it when it ends.
            await finish_on_pool(self._store, native.take_worker_lease, checkpoint_id, keep=self._keep_lease)
            if self._lease is None:
                await self._pause(_STANDBY_RETRY_S)
        return not self._stop.is_set()

    def _keep_lease(self, lease: WorkerLease | None) -> None:
        self._lease = lease

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
        self._committed = (cursor.position, cursor.started)  # before `position` reads it
        self._cursor = cursor
        witness = None if config.checkpoint_id is None else AtLeastOnce(config.checkpoint_id)
        budget = RestartBudget(config.restart, store._loop.time)
        leave_out = dead_letter_filter(self._region, config.checkpoint_id, store.sync_store)
        while not self._stop.is_set():
            pulled = await next_batch(store, cursor, config.batch_size, self._stop.is_set)
            if pulled is None:
                return
            batch = pulled if leave_out is None else leave_out(pulled)
            if not batch:  # only dead letters this worker does not receive: move past them
                await self._commit(cursor, None)
                continue
            if config.dead_letter_after is not None:
                if await self._isolate(cursor, batch, witness, budget):
                    return
                continue
            try:
                action = await self._call(batch, witness)
            except BaseException as exc:
                if cancelled_from_outside(exc):
                    raise
                self._failed(exc, len(batch))
                self._charge(budget, exc)
                if await self._pause(budget.backoff_s()):
                    return
                self._restarts += 1
                cursor.seek(*self._committed)  # re-deliver from the last committed position
                continue
            budget.succeeded()
            if action is CursorWorkerAction.STOP_WITH_ROLLBACK:
                cursor.seek(*self._committed)
                return
            await self._commit(cursor, None)
            if action is CursorWorkerAction.STOP:
                return

    async def _isolate(
        self, cursor: Cursor, batch: list[Event], witness: AtLeastOnce | None, budget: RestartBudget
    ) -> bool:
        """Delivers ``batch`` until each event is handled or parked, as the sync worker does
        (see :mod:`eventpak.isolation`); True when the worker is to stop."""
        checkpoint_id, limit = self._config.checkpoint_id, self._config.dead_letter_after
        assert checkpoint_id is not None and limit is not None  # the config guarantees both
        isolation = Isolation(batch, limit)
        while (delivery := isolation.delivery) is not None:
            if self._stop.is_set():
                return True  # what is not committed comes again from the checkpoint
            action = CursorWorkerAction.CONTINUE
            try:
                action = await self._call(delivery, witness)
            except BaseException as exc:
                if cancelled_from_outside(exc):
                    raise
                self._failed(exc, len(delivery))
                step = isolation.failed(exc)
            else:
                if action is CursorWorkerAction.STOP_WITH_ROLLBACK:
                    cursor.seek(*self._committed)
                    return True
                budget.succeeded()
                step = isolation.succeeded()
            if step.park is not None:
                parked = step.park
                sync_store = self._store.sync_store
                await finish_on_pool(
                    self._store,
                    park_and_log,
                    sync_store,
                    checkpoint_id,
                    self.name,
                    parked.event,
                    parked.error,
                    parked.attempts,
                )
            if step.commit is not None:
                # The end of the batch is the cursor's own position (past any left-out event).
                await self._commit(cursor, None if isolation.done else step.commit.global_sequence)
            for error in step.charged:
                self._charge(budget, error)
                self._restarts += 1
            if action is CursorWorkerAction.STOP:
                return True
        return False

    def _failed(self, exc: BaseException, size: int) -> None:
        self._last_error = exc
        log.error("worker %s: handler raised on a batch of %d", self.name, size, exc_info=exc)

    def _charge(self, budget: RestartBudget, exc: BaseException) -> None:
        budget.charge(self.name, exc)

    async def _commit(self, cursor: Cursor, position: int | None) -> None:
        """Commits through ``position`` (``None``: the cursor's position); a durable worker
        saves it as its checkpoint (on the pool: it syncs and replaces a file)."""
        end = (cursor.position, cursor.started)
        target = end if position is None else (position, True)
        checkpoint_id = self._config.checkpoint_id
        if checkpoint_id is not None:
            # Finished even if the worker is cancelled meanwhile: no checkpoint write may
            # outlive the worker's lease.
            await finish_on_pool(self._store, save_at, cursor, checkpoint_id, target, end)
        self._committed = target

    async def _call(self, batch: list[Event], witness: AtLeastOnce | None) -> CursorWorkerAction:
        outcome: Any = self._handler(batch, self._store, witness)
        if inspect.isawaitable(outcome):
            outcome = await outcome
        return checked_action(outcome)
