"""Running the async tests on both event loops the package supports."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import pytest
import uvloop

T = TypeVar("T")

Runner = Callable[[Coroutine[Any, Any, T]], T]


@pytest.fixture(params=["asyncio", "uvloop"], name="run")
def run_fixture(request: pytest.FixtureRequest) -> Runner[Any]:
    """Runs a coroutine to completion on a fresh loop of the parametrised kind."""
    if request.param == "uvloop":
        return uvloop.run
    return asyncio.run


def native_threads() -> int:
    """Threads of this process, Python's and native ones (the engine's)."""
    return len(os.listdir("/proc/self/task"))


async def gather_all(*aws: Awaitable[T]) -> list[T]:
    return list(await asyncio.gather(*aws))


class HeldPool:
    """Keeps every thread of an async store's pool busy until :meth:`release`, so a call the
    store submits meanwhile waits in the queue: a test can then end something while that
    call is certainly not done, deterministically. Records each call submitted while held
    (``queued`` is set at the first), and, with ``lease_of``, every call that began while
    that checkpoint's lease was free (a subscription's calls should all run while it holds
    its lease)."""

    def __init__(self, store: Any, lease_of: str | None = None) -> None:
        self._executor = store._executor
        self._native = store.sync_store._native
        self._lease_of = lease_of
        self._hold = threading.Event()
        self._submit = self._executor.submit
        self.jobs: list[concurrent.futures.Future[Any]] = []
        self.queued = asyncio.Event()
        self.ran_without_lease: list[str] = []
        self.done_before_release: bool | None = None
        for _ in range(self._executor._max_workers):
            self._submit(self._hold.wait)
        self._executor.submit = self._recorded

    def release(self) -> None:
        """Lets the pool's threads go: the queued calls run."""
        self._hold.set()

    def release_after_first_step(self, task: asyncio.Task[Any]) -> None:
        """Lets the threads go once ``task`` (just created) has run up to its first wait, and
        records in ``done_before_release`` whether it had already finished then: one that
        had, returned while a call it depends on was still queued."""

        def release() -> None:
            self.done_before_release = task.done()
            self.release()

        asyncio.get_running_loop().call_soon(release)  # runs after the task's first step

    async def finished(self) -> None:
        """Waits for every call submitted while held (and calls they led to), then stops
        recording."""
        while not all(job.done() for job in self.jobs):
            pending = [asyncio.wrap_future(job) for job in self.jobs if not job.done()]
            await asyncio.wait(pending)
        del self._executor.submit

    def _recorded(
        self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any
    ) -> concurrent.futures.Future[Any]:
        def job() -> Any:
            if self._lease_of is not None:
                probe = self._native.take_worker_lease(self._lease_of)
                if probe is not None:  # nobody holds it: the caller had let it go
                    probe.release()
                    self.ran_without_lease.append(repr(fn))
            return fn(*args, **kwargs)

        future = self._submit(job)
        self.jobs.append(future)
        self.queued.set()
        return future
