"""Supervised cursor workers: a named daemon thread drives a handler over a region.

The thread waits in the native ``Cursor.pull_batch`` (GIL released) until a commit or
``stop()`` wakes it, hands each batch to the handler, and acts on its answer. Durable
workers commit their position after every batch (one native call: sync through the
position, then an atomic checkpoint save), so a restart resumes after the last checkpoint
and re-delivers at most the batch in flight (at-least-once). Every handler exception is
logged on the ``eventpak.worker`` logger, with its traceback.
"""

from __future__ import annotations

import enum
import itertools
import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from ._native import Cursor, CursorGapConfig, Event, Region, WorkerLease
from .errors import CheckpointInUse, EventpakError, InvalidConfig, RestartBudgetExhausted, WorkerCrashed
from .restart import RestartBudget, RestartPolicy, check_count

if TYPE_CHECKING:
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


class CursorWorkerAction(enum.Enum):
    """What a handler tells its worker after a batch."""

    CONTINUE = "continue"
    """Commit the batch (persist the position when durable) and go on."""
    STOP = "stop"
    """Commit the batch, then stop."""
    STOP_WITH_ROLLBACK = "stop_with_rollback"
    """Rewind to the last committed position, persist nothing, stop."""


@dataclass(frozen=True)
class AtLeastOnce:
    """Handed to the handlers of durable workers: delivery is at-least-once across
    restarts, resuming after the last checkpoint of ``checkpoint_id``."""

    checkpoint_id: str


def _default_restart() -> RestartPolicy:
    return RestartPolicy.bounded(5, 60_000)


@dataclass(frozen=True)
class CursorWorkerConfig:
    """Options of :meth:`Store.cursor_worker`.

    ``restart`` defaults to ``RestartPolicy.bounded(5, 60_000)`` with backoff. An idle
    worker waits in one native call until a commit or ``stop()`` wakes it; ``idle_sleep``
    (seconds) is validated and kept for compatibility, waking does not depend on it.
    """

    batch_size: int = 64
    idle_sleep: float = 0.01
    restart: RestartPolicy = field(default_factory=_default_restart)
    checkpoint_id: str | None = None
    gap_observation: CursorGapConfig = field(default_factory=CursorGapConfig.disabled)
    standby: bool = False
    """With a ``checkpoint_id``: when another worker (in this or another process sharing the
    data dir) already runs that checkpoint, wait and take over from its last checkpoint
    within a second of it stopping or its process dying, instead of raising
    ``ep.CheckpointInUse``. ``handle.is_active`` says which one runs."""

    def __post_init__(self) -> None:
        check_count("batch_size", self.batch_size, 1)
        if not isinstance(self.idle_sleep, (int, float)) or not 0 < self.idle_sleep < 3600:
            raise InvalidConfig(f"idle_sleep must be seconds in (0, 3600), got {self.idle_sleep!r}")
        if not isinstance(self.restart, RestartPolicy):
            raise InvalidConfig(f"restart must be an ep.RestartPolicy, not {type(self.restart).__name__}")
        if self.checkpoint_id is not None:
            Cursor.validate_checkpoint_id(self.checkpoint_id)
        if not isinstance(self.standby, bool):
            raise InvalidConfig(f"standby must be a bool, not {type(self.standby).__name__}")


class Handler(Protocol):
    """The callable a worker drives: ``handler(batch, store, witness)``, positionally."""

    def __call__(
        self, batch: list[Event], store: Store, witness: AtLeastOnce | None, /
    ) -> CursorWorkerAction | None: ...


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
        """The last committed global sequence (a durable worker starts from its checkpoint);
        ``None`` before the first commit."""
        position, started = self._committed
        return position if started else None

    @property
    def is_active(self) -> bool:
        """True while this worker runs its handler loop; False while a standby waits for
        the checkpoint's active worker to go, and after it stopped."""
        return self._active.is_set()

    @property
    def last_error(self) -> BaseException | None:
        """The most recent handler exception (``None`` before any; a success does not clear it)."""
        return self._last_error

    @property
    def restarts(self) -> int:
        """Restarts so far in the worker's life."""
        return self._restarts

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
        self._refuse_self_join()
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError(f"worker {self.name} still running after {timeout} s")
        if self._error is not None:
            raise self._error

    def stop_and_join(self, timeout: float | None = None) -> None:
        """:meth:`stop`, then :meth:`join`. From inside the worker's own handler it raises
        ``RuntimeError`` at once (it would wait on itself); call :meth:`stop` there."""
        self._refuse_self_join()  # before stop(): a refused call must not stop the worker
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
        self._cursor = cursor
        if self._stop.is_set():
            return
        witness = None if config.checkpoint_id is None else AtLeastOnce(config.checkpoint_id)
        self._committed = (cursor.position, cursor.started)
        budget = RestartBudget(config.restart, time.monotonic)
        while not self._stop.is_set():
            batch = cursor.pull_batch(config.batch_size, _WAIT_S)
            if not batch:
                continue
            try:
                action = self._handler(batch, self._store, witness)
                if action is None:
                    action = CursorWorkerAction.CONTINUE
                if not isinstance(action, CursorWorkerAction):
                    raise TypeError(f"handler returned {action!r}, not a CursorWorkerAction")
            # A handler's SystemExit or KeyboardInterrupt is its failure too, not the worker's.
            except BaseException as exc:
                self._last_error = exc
                log.error("worker %s: handler raised on a batch of %d", self.name, len(batch), exc_info=exc)
                if not budget.allow():
                    raise RestartBudgetExhausted(
                        f"worker {self.name}: handler raised {exc!r} and {config.restart} allows no more "
                        "restarts"
                    ) from exc
                if self._stop.wait(budget.backoff_s()):
                    return
                self._restarts += 1
                cursor.seek(*self._committed)  # re-deliver from the last committed position
                continue
            budget.succeeded()
            if action is CursorWorkerAction.STOP_WITH_ROLLBACK:
                cursor.seek(*self._committed)
                return
            if config.checkpoint_id is not None:
                cursor.commit(config.checkpoint_id)
            self._committed = (cursor.position, cursor.started)
            if action is CursorWorkerAction.STOP:
                return


def start_worker(
    store: Store, region: Region, handler: Handler, config: CursorWorkerConfig | None
) -> CursorWorkerHandle:
    """Creates and starts a worker (see ``Store.cursor_worker``). A worker with a
    ``checkpoint_id`` first takes that checkpoint's lease: at most one live worker per
    checkpoint across every process of the data dir. When another holds it, this raises
    ``ep.CheckpointInUse``, or with ``standby=True`` starts a worker that waits for it."""
    config = config or CursorWorkerConfig()
    lease = None
    if config.checkpoint_id is not None and not store._native.read_only:
        lease = store._native.take_worker_lease(config.checkpoint_id)
        if lease is None and not config.standby:
            raise CheckpointInUse(config.checkpoint_id, store.path)
    handle = CursorWorkerHandle(store, region, handler, config, lease)
    handle.start()
    return handle


def stop_workers(workers: Iterable[CursorWorkerHandle], timeout: float | None) -> None:
    """Stops ``workers`` and waits for each to finish, without raising their errors (those
    belong to their ``join()``). With a ``timeout`` (seconds, for all of them together), a
    worker still in its handler then is abandoned and logged: its next store call raises
    ``ep.StoreClosed``."""
    workers = list(workers)
    for worker in workers:
        worker.stop()
    deadline = None if timeout is None else time.monotonic() + timeout
    for worker in workers:
        if not worker._finish(deadline):
            log.warning("worker %s did not stop within %s s; abandoning it", worker.name, timeout)
