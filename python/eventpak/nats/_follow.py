"""The replica's consume loop, on its private asyncio loop: fetch from the durable consumer,
check that each message follows the replica's last event, apply runs of them durably off the
loop, then acknowledge; read the stream itself where deliveries come out of order."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .._native import Region
from ..errors import EventNotFound, EventpakError, ReplicationRefused
from ..store import Store
from ._connect import Connector
from ._stream_read import Held, after_head, first_after, stream_msg
from ._wire import BadMessage, WireEvent, decode

__all__ = ["Follower", "Stop"]

log = logging.getLogger("eventpak.nats")

CONNECT_SECONDS = 5.0  # one connect attempt round before the replica backs off and tries again
IDLE_CHECK = 5  # idle fetches (of 1 s) between two checks that the consumer is still there
COMPACTED = (
    ", or the origin removed events by compaction before they were replicated (compact only "
    "events published and replicated; a compacted origin cannot seed a new replica: see "
    "docs/lifecycle.md)"
)

Item = tuple[int, Any, bytes | None, Any]  # (stream sequence, headers, payload, consumer message or None)
Run = list[tuple[WireEvent, Any]]  # events to apply in one call, each with its consumer message or None


class Stop(Exception):
    """Ends the consume task once a stop was asked for and the last apply is acknowledged."""


class ConsumerGone(Exception):
    """The replica's consumer was deleted (or its stream): it is made again, from the
    replica's head, by the retry that follows."""


class Follower:
    """The NATS side of a replica: its connection, consumer and position (``head``, the last
    applied global sequence, and ``head_id``, that event's id). ``on_applied(head, applied)``
    is called after every durable apply. ``stopping`` asks it to stop after the apply in
    progress; ``applying`` is true while one runs (then it must not be cancelled)."""

    def __init__(
        self,
        store: Store,
        servers: list[str],
        stream: str,
        durable: str,
        batch: int,
        on_applied: Callable[[int | None, int], None],
    ) -> None:
        self.store, self.servers, self.stream, self.durable, self.batch = (
            store,
            servers,
            stream,
            durable,
            batch,
        )
        self.on_applied = on_applied
        self.connector = Connector(servers)
        marked = store._native._replica_origin()
        self.origin = marked[1] if marked is not None else None
        self.head = store.head()
        self.head_id: str | None = None
        if self.head is not None:
            last = store.query(Region.all(), after=self.head - 1 if self.head else None, limit=1)
            self.head_id = str(last[0].event_id)
        self.stopping = self.applying = False
        self.nc: Any = None
        self.sub: Any = None
        self.executor = ThreadPoolExecutor(1, thread_name_prefix=f"eventpak-replica-{durable}")

    async def close(self) -> None:
        if self.nc is not None and not self.nc.is_closed:
            try:
                await asyncio.wait_for(self.nc.close(), 5)
            except Exception as exc:  # closing a dead connection: nothing left to flush
                log.debug("eventpak.nats: close: %s", exc)

    async def run(self) -> None:
        """Follows the stream until stopped (``Stop``, or cancelled) or refused (raised)."""
        failures = 0
        while True:
            try:
                sub = await self._subscribe()
                failures, idle, quiet = 0, False, 0
                while True:
                    # Idle, it waits for one message (a fetch of one returns as it arrives); then
                    # it takes what is there in batches (returned when full or when the request
                    # expires, so that one is short).
                    try:
                        fetch = sub.fetch(1, timeout=1.0) if idle else sub.fetch(self.batch, timeout=0.2)
                        msgs = await fetch
                    except TimeoutError:
                        msgs = []
                    # A deleted consumer looks like a quiet stream to a fetch: asked now and
                    # then, so the replica does not wait for ever on a consumer that is gone.
                    quiet = quiet + 1 if idle and not msgs else 0
                    if quiet % IDLE_CHECK == IDLE_CHECK - 1:
                        await self._check_consumer()
                    idle = not msgs if idle else len(msgs) < self.batch
                    await self._take([(m.metadata.sequence.stream, m.headers, m.data, m) for m in msgs])
            except (asyncio.CancelledError, Stop, EventpakError):
                raise  # stopped, a refusal, or the store failing: the replica stops
            except Exception as exc:  # the server down, the stream not there yet: retry
                if self.stopping:  # a cancellation the NATS client turned into an error
                    raise Stop from exc
                failures += 1
                level = logging.WARNING if failures == 1 else logging.DEBUG
                log.log(level, "eventpak.nats: replica %r: %r; retrying", self.durable, exc)
                if self.sub is not None:
                    self.sub, sub = None, self.sub
                    try:
                        await sub.unsubscribe()
                    except Exception as unsub:
                        log.debug("eventpak.nats: unsubscribe: %s", unsub)
                await asyncio.sleep(min(0.05 * 2 ** (failures - 1), 1.0))

    async def _subscribe(self) -> Any:
        from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
        from nats.js.errors import NotFoundError

        if self.sub is not None:
            return self.sub
        if self.nc is None or self.nc.is_closed:
            # Bounded: the first connect to an unreachable server retries for ever, and may
            # miss the cancellation of a stop (see ``bounded``).
            self.nc = await self.connector.connect(CONNECT_SECONDS)
        jsm = self.nc.jsm()
        try:
            info = await jsm.consumer_info(self.stream, self.durable)
        except NotFoundError:
            # Acking a message acknowledges all before it: everything before it in the stream
            # is in the replica, as each applied event follows the one before it. A replica
            # that holds events (its consumer deleted, or a new durable name) starts after them.
            start = 1
            if self.head is not None:
                start = await first_after(jsm, self.stream, Held(self.origin, self.head))
            config = ConsumerConfig(
                durable_name=self.durable, ack_policy=AckPolicy.ALL, max_ack_pending=4 * self.batch,
                deliver_policy=DeliverPolicy.BY_START_SEQUENCE if start > 1 else DeliverPolicy.ALL,
                opt_start_seq=start if start > 1 else None,
            )  # fmt: skip
            info = await jsm.add_consumer(self.stream, config)
        # What the consumer delivered to a replica killed before applying it would come again
        # only after the ack wait: read it from the stream now.
        await self._catch_up((info.delivered.stream_seq or 0) + 1)
        js = self.nc.jetstream()
        self.sub = await js.pull_subscribe_bind(consumer=self.durable, stream=self.stream)
        return self.sub

    async def _check_consumer(self) -> None:
        """Raises ``ConsumerGone`` when the replica's consumer (or its stream) is not there, or
        delivers nothing while messages wait: all its acknowledgements pending (a server store
        put back while an ack was in flight leaves its ack floor past what it delivers, so
        the acks of what it delivers next are ignored). Such a consumer is deleted first."""
        from nats.js.errors import NotFoundError

        jsm = self.nc.jsm()
        try:
            info = await jsm.consumer_info(self.stream, self.durable)
        except NotFoundError:
            gone = f"consumer {self.durable} of stream {self.stream} is gone: making it again"
            raise ConsumerGone(gone) from None
        if info.num_pending and info.num_ack_pending >= (info.config.max_ack_pending or 0) > 0:
            await jsm.delete_consumer(self.stream, self.durable)
            raise ConsumerGone(
                f"consumer {self.durable} of stream {self.stream} delivers nothing while {info.num_pending} "
                f"messages wait ({info.num_ack_pending} deliveries unacknowledged): making it again"
            )

    async def _take(self, items: list[Item]) -> None:
        """Applies ``items`` in order, the consecutive ones that follow the replica in one call.
        A consumer message that does not follow (delivered out of order: one before it lost in
        transit, or left unacknowledged by a killed replica) makes the replica read the stream
        up to it first; then, or for a message read from the stream, it is refused."""
        run: Run = []
        tail_gs, tail_id, origin = self.head, self.head_id, self.origin
        caught_up: set[int] = set()
        i = 0
        while i < len(items):
            sseq, headers, payload, msg = items[i]
            where = f"message {sseq} of stream {self.stream}"
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
                tail_gs, tail_id = self.head, self.head_id
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
        seq = await after_head(
            self.nc.jsm(), self.stream, self.durable, Held(self.origin, self.head), before - 1
        )
        while seq < before:
            items: list[Item] = []
            while seq < before and len(items) < self.batch:
                # The next message there is: one request steps over what limits, a purge or
                # a delete removed (a deleted one is left out: the next does not follow it).
                raw = await stream_msg(self.nc.jsm(), self.stream, seq, following=True)
                if raw is None or raw.seq >= before:
                    seq = before
                else:
                    items.append((raw.seq, raw.headers, raw.data, None))
                    seq = raw.seq + 1
            await self._take(items)

    async def _apply(self, run: Run) -> None:
        """Applies ``run`` durably, off the loop, then acknowledges its newest consumer message
        (which acknowledges all before it)."""
        if not run:
            return
        apply = self.store._native._apply_replicated
        self.applying = True
        try:
            loop = asyncio.get_running_loop()
            applied, _ = await loop.run_in_executor(
                self.executor, apply, run[0][0].origin, [e.fields for e, _ in run]
            )
        except ReplicationRefused as exc:
            run = self._applied_prefix(run)
            self._advance(run, sum(1 for e, _ in run if self.head is None or e.global_sequence > self.head))
            await self._ack(run)
            if "the published region does not hold whole entities" not in exc.reason:
                raise
            # A clock jump is also what an origin's compaction of unpublished events looks like.
            raise ReplicationRefused(exc.global_sequence, exc.reason + COMPACTED) from None
        finally:
            self.applying = False
        self.origin = run[0][0].origin
        self._advance(run, applied)
        await self._ack(run)
        if self.stopping:
            raise Stop

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
        if newest is not None and (self.head is None or newest.global_sequence > self.head):
            self.head, self.head_id = newest.global_sequence, newest.event_id
        self.on_applied(self.head, applied)

    async def _ack(self, run: Run) -> None:
        msgs = [msg for _, msg in run if msg is not None]
        if msgs:
            await max(msgs, key=lambda m: m.metadata.sequence.stream).ack()
