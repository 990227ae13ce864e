"""Calls on the store's pool that a cancellation does not outrun.

Cancelling a task that awaits a pool call does not stop the call: it goes on in its thread.
For most reads that is harmless (the result is dropped). For a call whose effect must come
before what the task does next when it ends (a checkpoint written before its lease is let
go, a lease taken that the ending must release), the task waits for the call to end
before its cancellation goes on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from .store import AsyncStore

__all__ = ["finish_on_pool", "wait_out"]

T = TypeVar("T")


async def finish_on_pool(
    store: AsyncStore, call: Callable[..., T], *args: Any, keep: Callable[[T], None] | None = None
) -> T:
    """Runs ``call(*args)`` on the store's pool; a cancellation meanwhile takes effect only
    once the call has ended. ``keep`` receives the result, on the loop, even then (a lease
    taken must reach its owner to be released).

    Pass calls that refer to no object whose lifetime matters: the pool thread may still
    hold the call for a moment after the loop has its result."""
    future = store._submit(call, *args)
    try:
        result = await asyncio.shield(future)
    except asyncio.CancelledError:
        await wait_out(future)
        if keep is not None and future.exception() is None:
            keep(future.result())
        raise
    if keep is not None:
        keep(result)
    return result


async def wait_out(future: asyncio.Future[Any]) -> None:
    """Waits until ``future`` is done, even through cancellations of the waiting task; the
    last cancellation that arrived meanwhile is raised once it is."""
    cancelled: asyncio.CancelledError | None = None
    while not future.done():
        try:
            await asyncio.wait([future])
        except asyncio.CancelledError as exc:
            cancelled = exc
    if cancelled is not None:
        raise cancelled
