"""Supervised cursor workers: a named daemon thread drives a handler over a region.

The thread waits in the native ``Cursor.pull_batch`` (GIL released) until a commit or
``stop()`` wakes it, hands each batch to the handler, and acts on its answer. Durable
workers commit their position after every batch (one native call: sync through the
position, then an atomic checkpoint save), so a restart resumes after the last checkpoint
and re-delivers at most the batch in flight (at-least-once). Every handler exception is
logged on the ``eventpak.worker`` logger, with its traceback. With ``dead_letter_after``,
each batch goes through an :class:`~eventpak.isolation.Isolation`, which finds the events
to park as dead letters.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from typing import TYPE_CHECKING

from ._native import Cursor, Event, GapObservation, Region, WorkerLease
from ._timeouts import wait_seconds
from .dead_letters import dead_letter_filter, park_and_log
from .errors import EventpakError, WorkerCrashed
from .isolation import Isolation
from .restart import RestartBudget, RestartPolicy
from .worker_config import AtLeastOnce, CursorWorkerAction, CursorWorkerConfig, Handler, checked_action

if TYPE_CHECKING:
    from ._native import NativeStore
    from .store import Store

__all__ = [
    "AtLeastOnce",
    "CursorWorkerAction",
    "CursorWorkerConfig",
    "CursorWorkerHandle",
    "Handler",
    "RestartPolicy",
]

log = logging.getLogger("eventpak.worker")
_worker_numbers = itertools.count(1)
# How long one native wait lasts. Commits and stop() wake the wait at once; the bound only
# keeps a worker from sleeping forever should a wake-up ever be lost.
_WAIT_S = 60.0
# How long one wait of a standby for its checkpoint's lease lasts: a release (or the holder's
# death) ends it sooner; it bounds how late the standby notices its own stop().
_STANDBY_WAIT_S = 0.25


class CursorWorkerHandle:
    """Controls a running worker. Errors that stopped it are raised by :meth:`join`."""

    def __init__(
        self,
        store: Store,
        region: Region,
        handler: Handler,
        config: CursorWorkerConfig,
        lease: WorkerLease | None = None,
    ) -> None:
        self._store = store
        self._lease = lease
        self._active = threading.Event()
        self._region = region
        self._handler = handler
        self._config = config
        self._stop = threading.Event()
        self._cursor: Cursor | None = None
        self._error: BaseException | None = None
        self._committed: tuple[int, bool] = (0, False)
        self._last_error: BaseException | None = None
        self._restarts = 0
        name = config.checkpoint_id or f"#{next(_worker_numbers)}"
        self._thread = threading.Thread(target=self._run, name=f"eventpak-worker-{name}", daemon=True)

    @property
    def name(self) -> str:
        """The worker thread's name."""
        return self._thread.name

    @property
    def checkpoint_id(self) -> str | None:
        """The durable checkpoint this worker commits to, if any."""
        return self._config.checkpoint_id

    @property
    def position(self) -> int | None:
        """The last committed global sequence (a durable worker starts from its checkpoint,
        also before its thread has resumed it); ``None`` before the first commit."""
        position, started = self._committed_or_saved()
        return position if started else None

    @property
    def is_active(self) -> bool:
        """True while this worker runs its handler loop; False while a standby waits for
        the checkpoint's active worker to go, and after it stopped (in a child forked from
        the process, where its thread does not exist, too)."""
        return self._active.is_set() and self._thread.is_alive()

    @property
    def last_error(self) -> BaseException | None:
        """The most recent handler exception (``None`` before any; a success does not clear it)."""
        return self._last_error

    @property
    def restarts(self) -> int:
        """Restarts so far in the worker's life (with ``dead_letter_after``: the failures
        charged to the restart policy, see :mod:`eventpak.isolation`)."""
        return self._restarts

    def take_gaps(self) -> list[GapObservation]:
        """Drains the gap observations the worker's cursor recorded, oldest first (with
        ``gap_observation`` enabled in its config; always empty otherwise)."""
        return [] if self._cursor is None else self._cursor.take_gaps()

    @property
    def lag(self) -> int:
        """The worker's backlog: how many visible events of its region lie after its
        committed position (the batch in its handler included); 0 when caught up. Before a
        durable worker starts (a standby), counted from its checkpoint."""
        position, started = self._committed_or_saved()
        return self._store._native.region_lag(self._region, position, started)[0]

    def _committed_or_saved(self) -> tuple[int, bool]:
        resumed = self._cursor is not None
        return committed_or_saved(self._committed, resumed, self._config.checkpoint_id, self._store._native)

    def start(self) -> None:
        """Starts the worker thread (done by ``Store.cursor_worker``)."""
        self._thread.start()

    def stop(self) -> None:
        """Asks the worker to stop after its current batch; wakes it if it is waiting."""
        self._stop.set()
        if self._cursor is not None:
            self._cursor.interrupt()

    def join(self, timeout: float | None = None) -> None:
        """Waits for the worker to finish (does not ask it to stop). Raises the error that
        stopped it, or ``TimeoutError`` if it still runs after ``timeout`` seconds."""
        timeout = wait_seconds(timeout)
        self._refuse_self_join()
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError(f"worker {self.name} still running after {timeout} s")
        if self._error is not None:
            raise self._error

    def stop_and_join(self, timeout: float | None = None) -> None:
        """:meth:`stop`, then :meth:`join`. From inside the worker's own handler it raises
        ``RuntimeError`` at once (it would wait on itself); call :meth:`stop` there."""
        # Both checked before stop(): a refused call must not stop the worker.
        timeout = wait_seconds(timeout)
        self._refuse_self_join()
        self.stop()
        self.join(timeout)

    def _refuse_self_join(self) -> None:
        if threading.current_thread() is self._thread:
            raise RuntimeError(f"worker {self.name} cannot join itself from its own handler; call stop()")

    def is_alive(self) -> bool:
        """True while the worker thread runs."""
        return self._thread.is_alive()

    def _finish(self, deadline: float | None) -> bool:
        """Waits until the worker ends or ``deadline`` (monotonic) passes; True if it ended."""
        if threading.current_thread() is self._thread:
            return True  # closing from its own handler: it ends when the handler returns
        self._thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        return not self._thread.is_alive()

    def _run(self) -> None:
        try:
            if self._wait_for_lease():
                self._active.set()
                self._drive()
        except EventpakError as exc:
            self._error = exc
        except BaseException as exc:
            crashed = WorkerCrashed(f"worker {self.name} died outside its handler: {exc!r}")
            crashed.__cause__ = exc
            self._error = crashed
        finally:
            self._active.clear()
            if self._lease is not None:
                self._lease.release()

    def _wait_for_lease(self) -> bool:
        """A standby waits here until it holds its checkpoint's lease; False if stopped first."""
        checkpoint_id = self._config.checkpoint_id
        while self._lease is None and checkpoint_id is not None and not self._stop.is_set():
            # A release wakes the wait at once; the timeout bounds how late a stop is seen.
            self._lease = self._store._native.take_worker_lease(checkpoint_id, _STANDBY_WAIT_S)
        return not self._stop.is_set()

    def _drive(self) -> None:
        config = self._config
        cursor = self._store.cursor(self._region).with_gap_config(config.gap_observation)
        if config.checkpoint_id is not None:
            cursor.resume(config.checkpoint_id)
        # Before the cursor is published: `position` and `lag` read the saved checkpoint
        # until then.
        self._committed = (cursor.position, cursor.started)
        self._cursor = cursor
        if self._stop.is_set():
            return
        witness = None if config.checkpoint_id is None else AtLeastOnce(config.checkpoint_id)
        budget = RestartBudget(config.restart, time.monotonic)
        leave_out = dead_letter_filter(self._region, config.checkpoint_id, self._store)
        while not self._stop.is_set():
            pulled = cursor.pull_batch(config.batch_size, _WAIT_S)
            batch = pulled if leave_out is None else leave_out(pulled)
            if not batch:
                if pulled:  # only dead letters this worker does not receive: move past them
                    self._commit(cursor, None)
                continue
            if config.dead_letter_after is not None:
                if self._isolate(cursor, batch, witness, budget):
                    return
                continue
            try:
                action = self._call_handler(batch, witness)
            # A handler's SystemExit or KeyboardInterrupt is its failure too, not the worker's.
            except BaseException as exc:
                self._failed(exc, len(batch))
                self._charge(budget, exc)
                if self._stop.wait(budget.backoff_s()):
                    return
                self._restarts += 1
                cursor.seek(*self._committed)  # re-deliver from the last committed position
                continue
            budget.succeeded()
            if action is CursorWorkerAction.STOP_WITH_ROLLBACK:
                cursor.seek(*self._committed)
                return
            self._commit(cursor, None)
            if action is CursorWorkerAction.STOP:
                return

    def _isolate(
        self, cursor: Cursor, batch: list[Event], witness: AtLeastOnce | None, budget: RestartBudget
    ) -> bool:
        """Delivers ``batch`` until each event is handled or parked (``dead_letter_after``, see
        :mod:`eventpak.isolation`); True when the worker is to stop."""
        checkpoint_id, limit = self._config.checkpoint_id, self._config.dead_letter_after
        assert checkpoint_id is not None and limit is not None  # the config guarantees both
        isolation = Isolation(batch, limit)
        while (delivery := isolation.delivery) is not None:
            if self._stop.is_set():
                return True  # what is not committed comes again from the checkpoint
            action = CursorWorkerAction.CONTINUE
            try:
                action = self._call_handler(delivery, witness)
            except BaseException as exc:
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
                park_and_log(
                    self._store, checkpoint_id, self.name, parked.event, parked.error, parked.attempts
                )
            if step.commit is not None:
                # The end of the batch is the cursor's own position (past any left-out event).
                self._commit(cursor, None if isolation.done else step.commit.global_sequence)
            for error in step.charged:
                self._charge(budget, error)
                self._restarts += 1
            if action is CursorWorkerAction.STOP:
                return True
        return False

    def _call_handler(self, batch: list[Event], witness: AtLeastOnce | None) -> CursorWorkerAction:
        return checked_action(self._handler(batch, self._store, witness))

    def _failed(self, exc: BaseException, size: int) -> None:
        self._last_error = exc
        log.error("worker %s: handler raised on a batch of %d", self.name, size, exc_info=exc)

    def _charge(self, budget: RestartBudget, exc: BaseException) -> None:
        budget.charge(self.name, exc)

    def _commit(self, cursor: Cursor, position: int | None) -> None:
        """Commits through ``position`` (``None``: the cursor's position, the end of what it
        delivered); durable workers save it as their checkpoint first."""
        end = (cursor.position, cursor.started)
        target = end if position is None else (position, True)
        checkpoint_id = self._config.checkpoint_id
        if checkpoint_id is not None:
            save_at(cursor, checkpoint_id, target, end)
        self._committed = target


def committed_or_saved(
    committed: tuple[int, bool], resumed: bool, checkpoint_id: str | None, native: NativeStore
) -> tuple[int, bool]:
    """A worker's committed position; before its cursor was ``resumed`` (just started, or
    a standby), a durable worker's saved checkpoint (sync and asyncio workers alike)."""
    if not resumed and checkpoint_id is not None:
        saved = Cursor.load_checkpoint(native.data_dir, checkpoint_id)
        if saved is not None:
            return saved.position, saved.started
    return committed


def save_at(cursor: Cursor, checkpoint_id: str, target: tuple[int, bool], end: tuple[int, bool]) -> None:
    """Saves ``target`` as checkpoint ``checkpoint_id``, leaving the cursor at ``end`` (the
    caller moves the cursor in no other way meanwhile)."""
    if target == end:
        cursor.commit(checkpoint_id)
        return
    cursor.seek(*target)
    try:
        cursor.commit(checkpoint_id)
    finally:
        cursor.seek(*end)
