"""asyncio for eventpak: ``async with ep.aio.open(path) as store``.

The same store, semantics, errors and durability as the sync API. Calls that touch the
disk run on a few threads of the store's own, so the event loop never waits for the disk;
waiting for new events (``store.subscribe``, async workers) holds no thread: the loop
watches a descriptor the store signals on commit. Works on the default loop and on uvloop.
"""

from .fence import AsyncFence
from .opening import open
from .store import AsyncStore
from .subscribe import Subscription
from .worker import AsyncHandler, AsyncWorkerHandle

__all__ = ["AsyncFence", "AsyncHandler", "AsyncStore", "AsyncWorkerHandle", "Subscription", "open"]
