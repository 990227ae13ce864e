"""``ep.aio.open``: opening a store from the loop, and closing it again when the open is
cancelled."""

from __future__ import annotations

import asyncio
import functools
import os
from collections.abc import Generator
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import Any, Unpack

from ..config import StoreConfig, StoreOptions
from ..store import Store
from .store import AsyncStore

__all__ = ["open"]

# Threads per store for calls that touch the disk. Appends from any number of tasks share
# one of them (see appender.py), so a few cover reads, syncs and checkpoint saves beside it.
_THREADS = 4


class _Opening:
    """What ``ep.aio.open`` returns: await it for the store, or use it with ``async with``."""

    def __init__(self, path: str | os.PathLike[str] | StoreConfig, options: StoreOptions) -> None:
        self._path = path
        self._options = options
        self._store: AsyncStore | None = None

    def __await__(self) -> Generator[Any, None, AsyncStore]:
        return self._open().__await__()

    async def __aenter__(self) -> AsyncStore:
        self._store = await self._open()
        return self._store

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._store is not None:
            await self._store.close()

    async def _open(self) -> AsyncStore:
        loop = asyncio.get_running_loop()
        executor = ThreadPoolExecutor(_THREADS, thread_name_prefix="eventpak-aio")
        opened = functools.partial(Store.open, self._path, **self._options)
        future = loop.run_in_executor(executor, opened)
        try:
            store = await asyncio.shield(future)
        except asyncio.CancelledError:
            # The open goes on in its thread; the cancellation ends once a store it still
            # made is closed again, so the data dir is free when the caller sees it.
            await _close_when_opened(future, executor)
            raise
        except BaseException:
            executor.shutdown(wait=False)
            raise
        return AsyncStore(store, loop, executor)


async def _close_when_opened(future: asyncio.Future[Store], executor: ThreadPoolExecutor) -> None:
    try:
        store = await asyncio.wait_for(asyncio.shield(future), None)
    except BaseException:  # the open failed, or the wait was cancelled again: nothing to close
        executor.shutdown(wait=False)
        return
    await asyncio.get_running_loop().run_in_executor(executor, store.close)
    executor.shutdown(wait=False)


def open(path: str | os.PathLike[str] | StoreConfig, **options: Unpack[StoreOptions]) -> _Opening:
    """Opens (or creates) a store for asyncio code, with the options of ``ep.Store.open``:
    ``store = await ep.aio.open(path)`` or ``async with ep.aio.open(path) as store``."""
    return _Opening(path, options)
