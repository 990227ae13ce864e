"""A private asyncio loop on a daemon thread: the home of a publisher's NATS connection, so
the synchronous worker thread can run coroutines on it and wait for their results; and
``bounded``, a time limit that always ends what it limits."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


async def bounded(coro: Coroutine[Any, Any, T], timeout: float, what: str) -> T:
    """Awaits ``coro`` for at most ``timeout`` seconds, then raises ``TimeoutError`` naming
    ``what``. Unlike ``asyncio.wait_for`` on Python 3.11, the limit and a cancellation of the
    caller always end ``coro``: it is cancelled again until it finishes. (nats-py's connect
    loop, cancelled just as a connection is refused, can get the refusal instead of the
    cancellation, take it for one more failed attempt and retry for ever.)"""
    task = asyncio.ensure_future(coro)
    try:
        await asyncio.wait({task}, timeout=timeout)
    finally:
        while not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=0.05)
    if task.cancelled():
        raise TimeoutError(f"{what}: nothing within {timeout:g} s")
    return task.result()


class LoopThread:
    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
        finally:
            self.loop.close()  # here, so a loop that stops after close() gave up is closed too

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Runs ``coro`` on the loop and waits for its result (re-raising its exception)."""
        return self.submit(coro).result(timeout)

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Starts ``coro`` on the loop; cancelling the future cancels it. Raises
        ``RuntimeError`` once the loop has stopped (nothing would ever run it)."""
        if not self._thread.is_alive() or self.loop.is_closed():
            coro.close()
            raise RuntimeError("the NATS loop has stopped")
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def close(self, timeout: float | None = 5.0) -> None:
        """Cancels what still runs on the loop (a client's reader and reconnect tasks), then
        stops and closes the loop, waiting ``timeout`` seconds at most: a loop that does not
        answer by then does so by itself once it does."""
        with contextlib.suppress(RuntimeError):  # stopped already
            self.submit(_cancel_others_and_stop())
        self._thread.join(timeout)


async def _cancel_others_and_stop() -> None:
    me = asyncio.current_task()
    others = [t for t in asyncio.all_tasks() if t is not me]
    for task in others:
        task.cancel()
    if others:  # a task that will not die: the loop stops anyway
        await asyncio.wait(others, timeout=5.0)
    asyncio.get_running_loop().stop()
