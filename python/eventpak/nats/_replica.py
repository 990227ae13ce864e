"""The JetStream replica: a durable pull consumer on a publisher's stream whose messages are
applied verbatim to a local read-only store, in stream order, each checked to follow the
replica's last event; the consumer is acknowledged only once the apply is durable."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Unpack

from .._native import Region
from ..config import StoreOptions
from ..errors import EventNotFound, EventpakError, InvalidConfig, ReplicationRefused
from ..store import Store
from ._loop import LoopThread
from ._wire import BadMessage, WireEvent, decode

__all__ = ["Replica"]

log = logging.getLogger("eventpak.nats")

Item = tuple[int, Any, bytes | None, Any]  # (stream sequence, headers, payload, consumer message or None)
Run = list[tuple[WireEvent, Any]]  # events to apply in one call, each with its consumer message or None


class _Stop(Exception):
    """Ends the consume task once a stop was asked for and the last apply is acknowledged."""


class Replica:
    """Follows the JetStream ``stream`` of an :class:`eventpak.nats.Publisher` into the store
    in ``data_dir``, which becomes (for good) a read-only replica of it: the origin's events
    verbatim, with their ids, global sequences, hashes and payload bytes. It starts at once
    and keeps (re)connecting while the servers are down. ``durable`` names the JetStream
    consumer that remembers what this replica acknowledged (one per replica);
    ``store_options`` go to :meth:`Store.open` (``shared=True`` lets other processes read the
    replica with ``read_only=True, shared=True``).

    A message that cannot follow the replica (a forged or corrupt event, a lost message,
    another origin) stops it with ``ep.ReplicationRefused``: see :attr:`error`."""

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        *,
        servers: list[str],
        durable: str,
        stream: str = "EVENTS",
        batch: int = 512,
        **store_options: Unpack[StoreOptions],
    ) -> None:
        if not re.fullmatch(r"[A-Za-z0-9_-]+", durable):
            raise InvalidConfig(f"durable must be letters, digits, '_' or '-' (a NATS name), not {durable!r}")
        self._stream, self._durable, self._servers, self._batch = stream, durable, list(servers), batch
        self.store = Store.open(data_dir, **store_options)
        try:
            self.store._native._become_replica(stream)
            marked = self.store._native._replica_origin()
            self._origin = marked[1] if marked is not None else None
            self._head = self.store.head()
            self._head_id: str | None = None
            if self._head is not None:
                last = self.store.query(Region.all(), after=self._head - 1 if self._head else None, limit=1)
                self._head_id = str(last[0].event_id)
        except BaseException:
            self.store.close()
            raise
        self._cond = threading.Condition()
        self._applied = 0
        self._error: Exception | None = None
        self._done = threading.Event()
        self._stopping = self._applying = False
        self._nc: Any = None
        self._sub: Any = None
        self._task: asyncio.Task[None] | None = None
        self._executor = ThreadPoolExecutor(1, thread_name_prefix=f"eventpak-replica-{durable}")
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
        if not self._loop.loop.is_closed():
            self._loop.run(self._ask_stop())

    def stop_and_join(self, timeout: float | None = None) -> None:
        """Stops the replica, closes its connection and its store, then raises the error that
        stopped it, if any. Raises ``TimeoutError`` (closing nothing) when an apply still runs
        after ``timeout`` seconds."""
        self.stop()
        if not self._done.wait(timeout):
            raise TimeoutError(f"the replica {self._durable!r} did not stop within {timeout}s")
        self._loop.close()
        self._executor.shutdown()
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
        self._stopping = True
        if self._task is not None and not self._applying:
            self._task.cancel()  # waiting on the network: nothing to finish

    async def _main(self) -> None:
        error: Exception | None = None
        try:
            await self._follow()
        except (asyncio.CancelledError, _Stop):
            pass
        except Exception as exc:
            log.error("eventpak.nats: replica %r of stream %s stopped: %s", self._durable, self._stream, exc)
            error = exc
        finally:
            if self._nc is not None and not self._nc.is_closed:
                try:
                    await asyncio.wait_for(self._nc.close(), 5)
                except Exception as exc:  # closing a dead connection: nothing left to flush
                    log.debug("eventpak.nats: close: %s", exc)
            with self._cond:  # stopped, and why, seen together
                self._error = error
                self._done.set()
                self._cond.notify_all()

    async def _follow(self) -> None:
        failures = 0
        while True:
            try:
                sub = await self._subscribe()
                failures, idle = 0, False
                while True:
                    # Idle, it waits for one message (a fetch of one returns as it arrives); then
                    # it takes what is there in batches (returned when full or when the request
                    # expires, so that one is short).
                    try:
                        fetch = sub.fetch(1, timeout=1.0) if idle else sub.fetch(self._batch, timeout=0.2)
                        msgs = await fetch
                    except TimeoutError:
                        msgs = []
                    idle = not msgs if idle else len(msgs) < self._batch
                    await self._take([(m.metadata.sequence.stream, m.headers, m.data, m) for m in msgs])
            except (asyncio.CancelledError, _Stop, EventpakError):
                raise  # stopped, a refusal, or the store failing: the replica stops
            except Exception as exc:  # the server down, the stream not there yet: retry
                failures += 1
                level = logging.WARNING if failures == 1 else logging.DEBUG
                log.log(level, "eventpak.nats: replica %r: %r; retrying", self._durable, exc)
                if self._sub is not None:
                    self._sub, sub = None, self._sub
                    try:
                        await sub.unsubscribe()
                    except Exception as unsub:
                        log.debug("eventpak.nats: unsubscribe: %s", unsub)
                await asyncio.sleep(min(0.05 * 2 ** (failures - 1), 1.0))

    async def _subscribe(self) -> Any:
        import nats
        from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
        from nats.js.errors import NotFoundError

        if self._sub is not None:
            return self._sub
        if self._nc is None or self._nc.is_closed:
            self._nc = await nats.connect(
                servers=self._servers, connect_timeout=2, allow_reconnect=True, max_reconnect_attempts=-1,
                reconnect_time_wait=0.25, error_cb=_quiet, disconnected_cb=_quiet_event,
                reconnected_cb=_quiet_event,
            )  # fmt: skip
        jsm = self._nc.jsm()
        try:
            info = await jsm.consumer_info(self._stream, self._durable)
        except NotFoundError:
            # Acking a message acknowledges all before it: everything before it in the stream
            # is in the replica, as each applied event follows the one before it.
            config = ConsumerConfig(
                durable_name=self._durable, deliver_policy=DeliverPolicy.ALL, ack_policy=AckPolicy.ALL,
                max_ack_pending=4 * self._batch,
            )  # fmt: skip
            info = await jsm.add_consumer(self._stream, config)
        # What the consumer delivered to a replica killed before applying it would come again
        # only after the ack wait: read it from the stream now.
        await self._catch_up((info.delivered.stream_seq or 0) + 1)
        js = self._nc.jetstream()
        self._sub = await js.pull_subscribe_bind(consumer=self._durable, stream=self._stream)
        return self._sub

    async def _take(self, items: list[Item]) -> None:
        """Applies ``items`` in order, the consecutive ones that follow the replica in one call.
        A consumer message that does not follow (delivered out of order: one before it lost in
        transit, or left unacknowledged by a killed replica) makes the replica read the stream
        up to it first; then, or for a message read from the stream, it is refused."""
        run: Run = []
        tail_gs, tail_id, origin = self._head, self._head_id, self._origin
        caught_up: set[int] = set()
        i = 0
        while i < len(items):
            sseq, headers, payload, msg = items[i]
            where = f"message {sseq} of stream {self._stream}"
            try:
                ev = decode(headers, payload)
            except BadMessage as exc:
                await self._apply(run)
                raise ReplicationRefused(None, f"{where} is not an eventpak event: {exc}") from None
            origin = origin or ev.origin
            if ev.origin != origin:
                await self._apply(run)
                raise ReplicationRefused(
                    ev.global_sequence,
                    f"{where} comes from store {ev.origin.hex()}, not from this replica's origin "
                    f"{origin.hex()}",
                )
            if tail_gs is not None and ev.global_sequence <= tail_gs:
                run.append((ev, msg))  # a redelivery (a no-op) or behind the replica: the core decides
            elif ev.follows == tail_id:
                run.append((ev, msg))
                tail_gs, tail_id = ev.global_sequence, ev.event_id
            elif msg is not None and sseq not in caught_up:
                await self._apply(run)
                run = []
                caught_up.add(sseq)
                await self._catch_up(sseq)
                tail_gs, tail_id = self._head, self._head_id
                continue  # the same message again
            else:
                await self._apply(run)
                last = "none" if tail_id is None else f"{tail_id} (global sequence {tail_gs})"
                raise ReplicationRefused(
                    ev.global_sequence,
                    f"{where} follows {ev.follows or 'no event'}, not the replica's last event, {last}: "
                    "a message is missing (deleted, expired) or was not sent by the origin's publisher",
                )
            i += 1
        await self._apply(run)

    async def _catch_up(self, before: int) -> None:
        """Applies the stream's messages from the one after the replica's head up to (not
        including) stream sequence ``before``, read from the stream itself in batches."""
        start = await self._after_head(before - 1)
        for first in range(start, before, self._batch):
            items: list[Item] = []
            for seq in range(first, min(first + self._batch, before)):
                raw = await self._stream_msg(seq)
                if raw is not None:  # a deleted one is left out: the next does not follow it
                    items.append((seq, raw.headers, raw.data, None))
            await self._take(items)

    async def _after_head(self, last: int) -> int:
        """The stream sequence after the replica's head: after the consumer's ack floor (all
        before it is applied) unless the consumer acknowledged past the replica (a replica dir
        replaced or restored), then found by bisecting stream sequences 1..``last``."""
        floor = (await self._nc.jsm().consumer_info(self._stream, self._durable)).ack_floor.stream_seq or 0
        if floor == 0 or await self._at_or_before_head(floor):
            return floor + 1
        lo, hi = 1, min(floor, last)  # the answer is in lo..hi+1
        while lo <= hi:
            mid = (lo + hi) // 2
            if await self._at_or_before_head(mid):
                lo = mid + 1
            else:
                hi = mid - 1
        return lo

    async def _at_or_before_head(self, seq: int) -> bool:
        """Whether stream message ``seq`` holds an event at or before the replica's head (a
        missing or foreign one counts as after: reading again from before it is harmless)."""
        raw = await self._stream_msg(seq)
        if raw is None or self._head is None:
            return False
        try:
            return decode(raw.headers, raw.data).global_sequence <= self._head
        except BadMessage:
            return False

    async def _stream_msg(self, seq: int) -> Any:
        from nats.js.errors import NotFoundError

        try:
            return await self._nc.jsm().get_msg(self._stream, seq)
        except NotFoundError:
            return None

    async def _apply(self, run: Run) -> None:
        """Applies ``run`` durably, off the loop, then acknowledges its newest consumer message
        (which acknowledges all before it)."""
        if not run:
            return
        apply = self.store._native._apply_replicated
        self._applying = True
        try:
            loop = asyncio.get_running_loop()
            applied, _ = await loop.run_in_executor(
                self._executor, apply, run[0][0].origin, [e.fields for e, _ in run]
            )
        except ReplicationRefused:
            run = self._applied_prefix(run)
            self._advance(run, sum(1 for e, _ in run if self._head is None or e.global_sequence > self._head))
            await self._ack(run)
            raise
        finally:
            self._applying = False
        self._origin = run[0][0].origin
        self._advance(run, applied)
        await self._ack(run)
        if self._stopping:
            raise _Stop

    def _applied_prefix(self, run: Run) -> Run:
        """The events of ``run`` the store holds: those before the one the core refused."""
        for n, (ev, _) in enumerate(run):
            try:
                stored = self.store.get(ev.event_id)
            except EventNotFound:
                return run[:n]
            if stored.global_sequence != ev.global_sequence or stored.hash != ev.fields[10]:
                return run[:n]
        return run

    def _advance(self, run: Run, applied: int) -> None:
        newest = max((ev for ev, _ in run), key=lambda ev: ev.global_sequence, default=None)
        with self._cond:
            self._applied += applied
            if newest is not None and (self._head is None or newest.global_sequence > self._head):
                self._head, self._head_id = newest.global_sequence, newest.event_id
            self._cond.notify_all()

    async def _ack(self, run: Run) -> None:
        msgs = [msg for _, msg in run if msg is not None]
        if msgs:
            await max(msgs, key=lambda m: m.metadata.sequence.stream).ack()


async def _quiet(exc: Exception) -> None:
    log.debug("nats: %s", exc)


async def _quiet_event() -> None:
    log.debug("nats: connection state changed")
