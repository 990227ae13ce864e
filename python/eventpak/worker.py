"""Supervised cursor workers: a named daemon thread drives a handler over a region.

The thread waits in the native ``Cursor.pull_batch`` (GIL released) until a commit or
``stop()`` wakes it, hands each batch to the handler, and acts on its answer. Durable
workers commit their position after every batch (one native call: sync through the
position, then an atomic checkpoint save), so a restart resumes after the last checkpoint
and re-delivers at most the batch in flight (at-least-once).
"""

from __future__ import annotations

import enum
import itertools
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from ._native import Cursor, CursorGapConfig, Event, Region
from .errors import (
    EventpakError,
    InvalidConfig,
    RestartBudgetExhausted,
    WorkerCrashed,
)

if TYPE_CHECKING:
    from .store import Store

__all__ = [
    "AtLeastOnce",
    "CursorWorkerAction",
    "CursorWorkerConfig",
    "CursorWorkerHandle",
    "RestartPolicy",
]

_worker_numbers = itertools.count(1)
# How long one native wait lasts. Commits and stop() wake the wait at once; the bound only
# keeps a worker from sleeping forever should a wake-up ever be lost.
_WAIT_S = 60.0


class CursorWorkerAction(enum.Enum):
    """What a handler tells its worker after a batch."""

    CONTINUE = "continue"
    """Commit the batch (persist the position when durable) and go on."""
    STOP = "stop"
    """Commit the batch, then stop."""
    STOP_WITH_ROLLBACK = "stop_with_rollback"
    """Rewind to the last committed position, persist nothing, stop."""


@dataclass(frozen=True)
class RestartPolicy:
    """How often a handler that raises may be restarted (its batch re-delivered)."""

    max_restarts: int | None
    within_ms: int | None = None

    @classmethod
    def once(cls) -> RestartPolicy:
        """One restart in the worker's life."""
        return cls(1)

    @classmethod
    def never(cls) -> RestartPolicy:
        """No restart: the first handler exception stops the worker."""
        return cls(0)

    @classmethod
    def bounded(cls, max_restarts: int, within_ms: int) -> RestartPolicy:
        """At most ``max_restarts`` restarts per window of ``within_ms`` milliseconds; the
        window starts again once it has elapsed."""
        if max_restarts < 0 or within_ms <= 0:
            raise InvalidConfig("bounded() needs max_restarts >= 0 and within_ms > 0")
        return cls(max_restarts, within_ms)


class _RestartBudget:
    def __init__(self, policy: RestartPolicy, clock: Callable[[], float]) -> None:
        self._policy = policy
        self._clock = clock
        self._window_start = clock()
        self._used = 0

    def allow(self) -> bool:
        limit = self._policy.max_restarts or 0
        if self._policy.within_ms is not None:
            now = self._clock()
            if (now - self._window_start) * 1000 >= self._policy.within_ms:
                self._window_start, self._used = now, 0
        if self._used >= limit:
            return False
        self._used += 1
        return True


@dataclass(frozen=True)
class AtLeastOnce:
    """Handed to the handlers of durable workers: delivery is at-least-once across
    restarts, resuming after the last checkpoint of ``checkpoint_id``."""

    checkpoint_id: str


@dataclass(frozen=True)
class CursorWorkerConfig:
    """Options of :meth:`Store.cursor_worker`.

    An idle worker waits in one native call until a commit or ``stop()`` wakes it.
    ``idle_sleep`` (seconds) is validated and kept for compatibility; waking does not
    depend on it.
    """

    batch_size: int = 64
    idle_sleep: float = 0.01
    restart: RestartPolicy = field(default_factory=RestartPolicy.once)
    checkpoint_id: str | None = None
    gap_observation: CursorGapConfig = field(default_factory=CursorGapConfig.disabled)

    def __post_init__(self) -> None:
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise InvalidConfig(f"batch_size must be an int >= 1, got {self.batch_size!r}")
        if not isinstance(self.idle_sleep, (int, float)) or not 0 < self.idle_sleep < 3600:
            raise InvalidConfig(f"idle_sleep must be seconds in (0, 3600), got {self.idle_sleep!r}")
        if self.checkpoint_id is not None:
            Cursor.validate_checkpoint_id(self.checkpoint_id)


class Handler(Protocol):
    """The callable a worker drives."""

    def __call__(
        self, batch: list[Event], store: Store, witness: AtLeastOnce | None
    ) -> CursorWorkerAction | None: ...


class CursorWorkerHandle:
    """Controls a running worker. Errors that stopped it are raised by :meth:`join`."""

    def __init__(self, store: Store, region: Region, handler: Handler, config: CursorWorkerConfig) -> None:
        self._store = store
        self._region = region
        self._handler = handler
        self._config = config
        self._stop = threading.Event()
        self._cursor: Cursor | None = None
        self._error: BaseException | None = None
        name = config.checkpoint_id or f"#{next(_worker_numbers)}"
        self._thread = threading.Thread(target=self._run, name=f"eventpak-worker-{name}", daemon=True)

    @property
    def name(self) -> str:
        """The worker thread's name."""
        return self._thread.name

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
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError(f"worker {self.name} still running after {timeout} s")
        if self._error is not None:
            raise self._error

    def stop_and_join(self, timeout: float | None = None) -> None:
        """:meth:`stop`, then :meth:`join`."""
        self.stop()
        self.join(timeout)

    def is_alive(self) -> bool:
        """True while the worker thread runs."""
        return self._thread.is_alive()

    def _open_cursor(self) -> Cursor:
        cursor = self._store.cursor(self._region).with_gap_config(self._config.gap_observation)
        if self._config.checkpoint_id is not None:
            cursor.resume(self._config.checkpoint_id)
        return cursor

    def _run(self) -> None:
        try:
            self._drive()
        except EventpakError as exc:
            self._error = exc
        except BaseException as exc:
            crashed = WorkerCrashed(f"worker {self.name} died outside its handler: {exc!r}")
            crashed.__cause__ = exc
            self._error = crashed

    def _drive(self) -> None:
        config = self._config
        cursor = self._cursor = self._open_cursor()
        if self._stop.is_set():
            return
        witness = None if config.checkpoint_id is None else AtLeastOnce(config.checkpoint_id)
        committed = (cursor.position, cursor.started)
        budget = _RestartBudget(config.restart, time.monotonic)
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
            except Exception as exc:
                if budget.allow():
                    cursor.seek(*committed)  # re-deliver from the last committed position
                    continue
                raise RestartBudgetExhausted(
                    f"worker {self.name}: handler raised {exc!r} and {config.restart} allows no more restarts"
                ) from exc
            if action is CursorWorkerAction.STOP_WITH_ROLLBACK:
                cursor.seek(*committed)
                return
            if config.checkpoint_id is not None:
                cursor.commit(config.checkpoint_id)
            committed = (cursor.position, cursor.started)
            if action is CursorWorkerAction.STOP:
                return


def start_worker(
    store: Store, region: Region, handler: Handler, config: CursorWorkerConfig | None
) -> CursorWorkerHandle:
    """Creates and starts a worker (see ``Store.cursor_worker``)."""
    handle = CursorWorkerHandle(store, region, handler, config or CursorWorkerConfig())
    handle.start()
    return handle


def stop_workers(workers: Iterable[CursorWorkerHandle]) -> None:
    """Stops ``workers`` and waits for each to finish, without raising their errors (those
    belong to their ``join()``). A worker calling this from its own handler is not waited on."""
    workers = list(workers)
    for worker in workers:
        worker.stop()
    current = threading.current_thread()
    for worker in workers:
        if worker._thread is not current:
            worker._thread.join()
