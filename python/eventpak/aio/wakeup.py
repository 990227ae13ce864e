"""Waiting for commits on the event loop, holding no thread.

The store signals a descriptor (an eventfd on Linux) when events become visible; the loop
watches it with ``add_reader``. A waiter arms the descriptor, re-reads the store's commit
generation (a commit that landed in between is then seen at once), and awaits a future
that the reader callback resolves. One reader per store serves every waiting
subscription and worker; an idle store makes no wake-ups at all.
"""

from __future__ import annotations

import asyncio

from .._native import CommitNotifier, NativeStore

__all__ = ["CommitWatch"]


class CommitWatch:
    """The commit descriptor of one store, watched on the loop the store belongs to."""

    def __init__(self, native: NativeStore, loop: asyncio.AbstractEventLoop) -> None:
        self._native = native
        self._loop = loop
        self._notifier: CommitNotifier | None = None
        self._waiters: list[asyncio.Future[None]] = []
        self._closed = False

    def generation(self) -> int:
        """The store's commit generation: read it before looking for events, and hand it to
        :meth:`wait` when none were found."""
        return self._native._commit_generation()

    async def wait(self, seen: int) -> None:
        """Returns once the commit generation differs from ``seen`` (or the store is woken
        to stop its readers, or closed). May return early; callers look again for what they
        wait for."""
        if self._closed:
            return
        notifier = self._notifier or self._watch()
        notifier.arm()
        # Arming first, then re-reading: a commit after the arming signals the descriptor,
        # and one before it shows in the generation.
        if self._native._commit_generation() != seen:
            return
        waiter = self._loop.create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        finally:
            if not waiter.done():
                waiter.cancel()

    def wake_all(self) -> None:
        """Resolves every pending wait (a worker being stopped looks at its flag again)."""
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def close(self) -> None:
        """Stops watching the descriptor and releases every waiter."""
        self._closed = True
        if self._notifier is not None:
            self._loop.remove_reader(self._notifier.fileno())
            self._notifier = None
        self.wake_all()

    def _watch(self) -> CommitNotifier:
        notifier = self._native._commit_notifier()
        self._loop.add_reader(notifier.fileno(), self._on_readable)
        self._notifier = notifier
        return notifier

    def _on_readable(self) -> None:
        if self._notifier is not None:
            self._notifier.drain()
        self.wake_all()
