"""The JetStream replica: a durable pull consumer on a publisher's stream whose messages are
applied verbatim to a local read-only store, in stream order, each checked to follow the
replica's last event; the consumer is acknowledged only once the apply is durable."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import threading
import time
from typing import Unpack

from ..config import StoreConfig, StoreOptions
from ..errors import InvalidArgument, InvalidConfig
from ..restart import check_count
from ..store import Store
from ._follow import Follower, Stop
from ._loop import LoopThread
from ._options import check_servers, check_stream_name

__all__ = ["Replica"]

log = logging.getLogger("eventpak.nats")


def _check_store_options(data_dir: str | os.PathLike[str], store_options: StoreOptions) -> None:
    """Refuses the store options no replica can have, before ``Store.open`` writes anything:
    refused after it, an encryption key would leave a new encrypted store in ``data_dir``,
    which a replica can never be made of."""
    try:
        StoreConfig(data_dir, **store_options)  # bad values, unknown names
    except TypeError as exc:
        raise InvalidConfig(f"unknown store option: {exc}") from None
    if store_options.get("encryption_key") is not None:
        raise InvalidConfig("an encrypted store cannot be a replica: give no encryption_key")


class Replica:
    """Follows the JetStream ``stream`` of an :class:`eventpak.nats.Publisher` into the store
    in ``data_dir``, which becomes (for good) a read-only replica of it: the origin's events
    verbatim, with their ids, global sequences, hashes and payload bytes. It starts at once
    and keeps (re)connecting while the servers are down. ``durable`` names the JetStream
    consumer that remembers what this replica acknowledged: give each replica of a stream its
    own (two on one consumer would split the deliveries);
    ``store_options`` go to :meth:`Store.open` (``shared=True`` lets other processes read the
    replica with ``read_only=True, shared=True``).

    A message that cannot follow the replica (a forged or corrupt event, a lost message,
    another origin) stops it with ``ep.ReplicationRefused``: see :attr:`error`."""

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        *,
        servers: list[str],
        stream: str = "EVENTS",
        durable: str = "replica-1",
        batch: int = 512,
        **store_options: Unpack[StoreOptions],
    ) -> None:
        if not re.fullmatch(r"[A-Za-z0-9_-]+", durable):
            raise InvalidConfig(f"durable must be letters, digits, '_' or '-' (a NATS name), not {durable!r}")
        check_count("batch", batch, 1)
        servers = check_servers(servers)
        check_stream_name(stream)
        _check_store_options(data_dir, store_options)
        self._stream, self._durable = stream, durable
        self.store = Store.open(data_dir, **store_options)
        try:
            self.store._native._become_replica(stream)
            self._follower = Follower(self.store, list(servers), stream, durable, batch, self._applied_to)
        except BaseException:
            self.store.close()
            raise
        self._cond = threading.Condition()
        self._head = self._follower.head
        self._applied = 0
        self._error: Exception | None = None
        self._done = threading.Event()
        self._task: asyncio.Task[None] | None = None
        self._following = True  # until the consume task's follow loop ends
        self._loop = LoopThread(f"eventpak-nats-replica-{durable}")
        self._loop.run(self._start())

    @property
    def applied(self) -> int:
        """Events this replica applied since it started (redeliveries not counted)."""
        with self._cond:
            return self._applied

    @property
    def error(self) -> Exception | None:
        """What stopped the replica: ``ep.ReplicationRefused`` (a message it cannot follow) or
        a store error; ``None`` while it runs and after a plain stop."""
        with self._cond:
            return self._error

    def wait_for(self, global_sequence: int, timeout: float | None = None) -> bool:
        """True once the replica's head is at or past ``global_sequence`` (a sequence outside
        the published region counts once a later event is applied); False after ``timeout``
        seconds, or at once when the replica stopped short of it. Raises the error that
        stopped the replica."""
        seq = global_sequence
        if isinstance(seq, bool) or not isinstance(seq, int) or not 0 <= seq < 2**64:
            raise InvalidArgument("global_sequence", f"must be an int from 0 to 2**64 - 1, got {seq!r}")
        if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float))):
            raise InvalidArgument("timeout", f"must be a number of seconds or None, got {timeout!r}")
        # A timeout of 0 or less answers at once, as threading's waits do.
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                if self._head is not None and self._head >= global_sequence:
                    return True
                if self._error is not None:
                    raise self._error
                remaining = None if deadline is None else deadline - time.monotonic()
                if self._done.is_set() or (remaining is not None and remaining <= 0):
                    return False
                self._cond.wait(remaining)

    def is_alive(self) -> bool:
        """True until the replica stopped (asked to, or on an error)."""
        return not self._done.is_set()

    def stop(self) -> None:
        """Asks the replica to stop once the apply in progress is done (without waiting)."""
        with contextlib.suppress(RuntimeError):  # not waited for: the loop may be blocked, or closed
            self._loop.submit(self._ask_stop())

    def stop_and_join(self, timeout: float | None = None) -> None:
        """Stops the replica, closes its connection and its store, then raises the error that
        stopped it, if any. Raises ``TimeoutError`` (closing nothing) when an apply still runs
        after ``timeout`` seconds."""
        self.stop()
        if not self._done.wait(timeout):
            raise TimeoutError(f"the replica {self._durable!r} did not stop within {timeout}s")
        self._loop.close()
        self._follower.executor.shutdown()
        self.store.close()
        if self._error is not None:
            raise self._error

    def __enter__(self) -> Replica:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_and_join()

    # The consume task, on the private loop.

    async def _start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._main())

    async def _ask_stop(self) -> None:
        self._follower.stopping = True
        if self._task is not None and not self._task.done():
            asyncio.get_running_loop().create_task(self._cancel_until_done(self._task))

    async def _cancel_until_done(self, task: asyncio.Task[None]) -> None:
        """Cancels the consume task whenever no apply runs (waiting on the network: nothing
        to finish), again and again until it ends: the NATS client can lose a cancellation
        that meets a refused connection (see ``_loop.bounded``)."""
        while self._following and not task.done():
            if not self._follower.applying:
                task.cancel()
            await asyncio.wait({task}, timeout=0.1)

    async def _main(self) -> None:
        error: Exception | None = None
        try:
            try:
                await self._follower.run()
            finally:
                self._following = False  # no cancelling the close below
        except (asyncio.CancelledError, Stop):
            pass
        except Exception as exc:
            log.error("eventpak.nats: replica %r of stream %s stopped: %s", self._durable, self._stream, exc)
            error = exc
        finally:
            try:
                await self._follower.close()
            finally:
                with self._cond:  # stopped, and why, seen together
                    self._error = error
                    self._done.set()
                    self._cond.notify_all()

    def _applied_to(self, head: int | None, applied: int) -> None:
        with self._cond:
            self._head = head
            self._applied += applied
            self._cond.notify_all()
