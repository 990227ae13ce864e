"""A private asyncio loop on a daemon thread: the home of a publisher's NATS connection, so
the synchronous worker thread can run coroutines on it and wait for their results; and
``bounded``, a time limit that always ends what it limits."""

from __future__ import annotations

import asyncio
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
        self.loop.run_forever()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Runs ``coro`` on the loop and waits for its result (re-raising its exception)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self, timeout: float | None = 5.0) -> None:
        """Cancels what still runs on the loop (a client's reader and reconnect tasks), waits
        for it, then stops and closes the loop."""
        if self.loop.is_closed():
            return
        with contextlib.suppress(Exception):  # a task that will not die: stop the loop anyway
            self.run(_cancel_others(), timeout)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout)
        if not self._thread.is_alive():
            self.loop.close()


async def _cancel_others() -> None:
    me = asyncio.current_task()
    others = [t for t in asyncio.all_tasks() if t is not me]
    for task in others:
        task.cancel()
    await asyncio.gather(*others, return_exceptions=True)
