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


async def finish_on_pool(store: AsyncStore, call: Callable[..., T], *args: Any) -> T:
    """Runs ``call(*args)`` on the store's pool; a cancellation meanwhile takes effect only
    once the call has ended (its result is then dropped)."""
    future = store._submit(call, *args)
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        await wait_out(future)
        raise


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
