"""``async with store.fence() as f``: the visibility fence of the sync API, for tasks."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import TYPE_CHECKING, Any, Unpack

from .._native import AppendReceipt, AppendRequest
from ..errors import FenceActive, StoreClosed
from ..fence import Fence, cancel_callers_fence, refuse_batch_commit_options, refuse_commit_options
from ..options import BatchItem, CoordinateLike, EventOptions

if TYPE_CHECKING:
    from .store import AsyncStore

__all__ = ["AsyncFence"]


class AsyncFence:
    """A visibility fence for asyncio (see ``ep.Fence``): events appended through it stay
    invisible until the ``async with`` block exits normally; an exception, or
    :meth:`cancel`, hides them for good. While it is open, ``store.append`` from the task
    that opened it raises ``ep.FenceActive``; other tasks' appends wait for it."""

    def __init__(self, store: AsyncStore) -> None:
        self._store = store
        self._fence = Fence(store._native)
        self._thread: ThreadPoolExecutor | None = None  # taken at the first call

    @property
    def state(self) -> str:
        """``"new"``, ``"open"``, ``"committed"`` or ``"cancelled"``."""
        return self._fence.state

    async def __aenter__(self) -> AsyncFence:
        if self._store._in_own_fence():
            self._give_back()
            raise FenceActive()  # a second fence in the task holding one would wait for it
        entering = asyncio.ensure_future(self._run(self._fence.__enter__))
        try:
            await asyncio.shield(entering)
        except asyncio.CancelledError:
            # The fence thread may open the fence after this task was cancelled, and the
            # block (so ``__aexit__``) never runs: cancel it then, shielded, so the fence
            # never stays open holding back every other writer of the data dir. The task
            # still ends cancelled, whatever the cancel meets (a closed store cancels its
            # fences itself).
            abandoning = asyncio.ensure_future(self._abandon(entering))
            abandoning.add_done_callback(self._give_back)
            with contextlib.suppress(Exception):
                await asyncio.shield(abandoning)
            raise
        except BaseException:
            self._give_back()  # not opened (another fence held on past fence_wait_ms, ...)
            raise
        self._store._fence_task = asyncio.current_task()
        self._store._open_fence = self
        return self

    async def _abandon(self, entering: asyncio.Future[Any]) -> None:
        try:
            await entering
        except BaseException:  # not opened: nothing to cancel
            return
        await self._run(self._fence.cancel)

    async def append(
        self, coord: CoordinateLike, kind: str, payload: Any, **options: Unpack[EventOptions]
    ) -> AppendReceipt:
        """Appends one event through the fence (options of ``Store.append``; a fence takes no
        ``condition`` nor ``tracking``)."""
        refuse_commit_options(options)
        receipts = await self.append_batch([AppendRequest(coord, kind, payload, **options)])
        return receipts[0]

    async def append_batch(
        self, items: Iterable[BatchItem], *, condition: None = None, tracking: None = None
    ) -> list[AppendReceipt]:
        """Appends events through the fence atomically (no ``condition`` nor ``tracking``, as
        ``Fence.append_batch``)."""
        refuse_batch_commit_options(condition, tracking)
        receipts: list[AppendReceipt] = await self._run(self._fence.append_batch, list(items))
        return receipts

    async def cancel(self) -> None:
        """Hides every event appended through this fence, for good."""
        try:
            await self._run(self._fence.cancel)
        finally:
            self._release()
            self._give_back()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        ending = asyncio.ensure_future(self._run(self._fence.__exit__, exc_type, exc, tb))
        ending.add_done_callback(self._give_back)
        try:
            # Shielded: a cancelled task still commits or cancels its fence, so the fence
            # never stays open holding back every other task's appends.
            await asyncio.shield(ending)
        finally:
            self._release()

    async def _cancel_for_close(self) -> None:
        """Cancels the fence from the thread that opened it, before its own task closes the
        store: other tasks' appends waiting for it (a worker's) go ahead instead of holding
        up the close for ``fence_wait_ms`` (see ``cancel_callers_fence``)."""
        if self._thread is not None:
            await self._store._loop.run_in_executor(self._thread, cancel_callers_fence, self._store._native)

    def _release(self) -> None:
        if self._store._fence_task is asyncio.current_task():
            self._store._fence_task = None
            self._store._open_fence = None

    def _give_back(self, _done: object = None) -> None:
        """The fence has ended (or never opened): its thread serves the next fence."""
        thread, self._thread = self._thread, None
        if thread is not None:
            self._store._return_fence_thread(thread)

    async def _run(self, call: Any, *args: Any) -> Any:
        store = self._store
        store._check_loop()
        store._check_open()
        try:
            if self._thread is None:
                self._thread = store._take_fence_thread()
            running = store._loop.run_in_executor(self._thread, call, *args)
        except RuntimeError:  # the fence thread was shut down by a close() meanwhile
            if not store.closed:
                raise
            store._native.check_open()  # the engine's own error (a fork's says so)
            raise StoreClosed(store.path) from None
        return await running
