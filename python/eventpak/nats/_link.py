"""The publisher's NATS side, living on its private loop: the connection, the stream, the
inbox acks arrive on, and the pipelined window of requests one batch is published through."""

from __future__ import annotations

import asyncio
import importlib.metadata
import json
import logging
from collections import deque
from typing import TYPE_CHECKING, Any

from .._native import Event, Region
from ._connect import Connector
from ._mark import Mark, load_mark, save_mark
from ._tail import predecessor, read_tail
from ._wire import FOLLOWS, event_headers, nats_publish_commands

if TYPE_CHECKING:
    from ..store import Store

__all__ = ["ACK_EVERY", "NATS_INTERNALS", "Link", "PublishFailed"]

log = logging.getLogger("eventpak.nats")

ACK_EVERY = 128  # messages per acknowledged group: one reply and one ack per group
NATS_INTERNALS = ("_send_command", "_flush_pending", "_flush_queue", "_pending")
EXPECTED_LAST_SEQUENCE = "Nats-Expected-Last-Sequence"  # JetStream's check of a stream's last sequence


class PublishFailed(Exception):
    """JetStream refused a message or did not acknowledge it in time (the batch is retried)."""


class Link:
    """The NATS side, living on the publisher's loop: the connection, the stream, the inbox
    acks arrive on, and the stream's last event (``tail``; asked again when ``tail_known`` is
    False, after any failure; ``tail_read`` until the events of ``region`` after it are
    compared with the next batch), and the publisher's mark (``_mark.py``)."""

    def __init__(
        self,
        servers: list[str],
        stream: str,
        subject: str,
        replicas: int,
        ack_timeout: float,
        store: Store,
        region: Region,
        checkpoint_id: str,
    ) -> None:
        self.servers, self.stream, self.subject = servers, stream, subject
        self.store, self.region, self.store_id = store, region, store.store_id
        self.checkpoint_id = checkpoint_id
        self.connector = Connector(servers, pending_size=8 * 1024 * 1024)
        self.replicas, self.ack_timeout = replicas, ack_timeout
        self.nc: Any = None
        self.waiting: dict[str, asyncio.Future[Any]] = {}
        self.inbox = ""
        self.tail: tuple[int, str] | None = None  # (global_sequence, event id) of the stream's last message
        self.tail_known = self.tail_read = False
        self.unchecked = False  # the server has no last message to check the next one against
        self.forgotten = False  # the server refused an expected id for not knowing its last one
        self.named: str | None = None  # the next message's predecessor, named in FOLLOWS
        self.expect_seq: int | None = None  # the stream's last sequence, as read last
        self.counter = 0
        self.mark = self.saved_mark = load_mark(store, checkpoint_id, stream)

    async def ready(self) -> None:
        if self.nc is None or self.nc.is_closed:
            self.nc = await self.connector.connect(self.ack_timeout)
            missing = [name for name in NATS_INTERNALS if not hasattr(self.nc, name)]
            if missing:  # the publisher writes protocol bytes through them: fail loudly
                version = importlib.metadata.version("nats-py")
                raise RuntimeError(f"nats-py {version} lacks {missing}: eventpak.nats needs updating for it")
            self.inbox = self.nc.new_inbox()
            await self.nc.subscribe(self.inbox + ".*", cb=self._on_ack)
            self.tail_known = False
        if self.tail_known:
            return
        end = await read_tail(
            self.nc.jsm(), self.stream, self.subject, self.replicas, self.store, self.region
        )
        self.tail, self.unchecked = end.resume_point(self.mark, self.store, self.region)
        self.expect_seq = end.last_seq
        self.mark = end.mark(self.stream) or self.mark
        # A server that forgot its last message's id cannot check the next one either; a new
        # stream (nothing to follow) needs no check.
        self.unchecked, self.forgotten = self.unchecked or (self.forgotten and self.tail is not None), False
        self.tail_known = self.tail_read = True

    async def _on_ack(self, msg: Any) -> None:
        fut = self.waiting.pop(msg.subject, None)
        if fut is not None and not fut.done():
            fut.set_result(msg)

    async def publish(self, events: list[Event], window: int, window_bytes: int, acked: Any) -> None:
        """Publishes ``events`` in order (those the stream already holds are skipped), at most
        ``window`` messages / ``window_bytes`` in flight, in groups of up to ``ACK_EVERY``
        whose last message alone asks for an ack; calls ``acked(group)`` with each group of
        events the stream holds, in order. Raises on any failure."""
        try:
            await self.ready()
            # The stream is the truth of what was delivered: one that lost messages it had
            # acknowledged (its store restored from a copy, or a power loss before its fsync)
            # gets the region's events after its last message again, before this batch.
            while missed := self._missed(events[0].global_sequence, window):
                self._name_predecessor(missed[0])
                await self._pipeline(missed, window, window_bytes, acked)
            skip = -1 if self.tail is None else self.tail[0]
            todo = [e for e in events if e.global_sequence > skip]
            if len(todo) < len(events):
                acked(events[: len(events) - len(todo)])
            if todo:
                self._name_predecessor(todo[0])
            await self._pipeline(todo, window, window_bytes, acked)
            if self.mark != self.saved_mark and self.mark is not None:
                # Before the worker saves its checkpoint: the mark is never behind it.
                save_mark(self.store, self.checkpoint_id, self.mark)
                self.saved_mark = self.mark
        except BaseException:
            self.tail_known = False  # some acks may be lost: ask the stream on the next attempt
            for fut in self.waiting.values():
                fut.cancel()
            self.waiting.clear()
            raise

    def _name_predecessor(self, first: Event) -> None:
        """When the server has no last message to check ``first`` against (and it forgets the
        id of the last one when it restarts), ``first`` names its predecessor for the replicas
        (the stream's newest message, or the event the checkpoint stands on), so a replica
        that holds it takes ``first``."""
        if self.unchecked:
            self.unchecked = False
            if self.tail is not None:
                self.named = self.tail[1]
            else:
                self.named = predecessor(self.store, self.region, self.checkpoint_id, first.global_sequence)

    def _missed(self, before: int, limit: int) -> list[Event]:
        """The region's events after the stream's tail (just read from it) and before global
        sequence ``before``, at most ``limit``: those the stream lost."""
        if not self.tail_read:
            return []
        if self.tail is None and self.unchecked:  # its limits or a purge removed them: not sent again
            self.tail_read = False
            return []
        after = None if self.tail is None else self.tail[0]
        nxt = self.store.query(self.region, after=after, limit=1)
        if not nxt or nxt[0].global_sequence >= before:
            self.tail_read = False  # the batch follows the stream: no need to ask until it is read again
            return []
        missed = self.store.query(self.region, after=after, limit=limit)
        return [e for e in missed if e.global_sequence < before]

    async def _pipeline(self, todo: list[Event], window: int, window_bytes: int, acked: Any) -> None:
        """Sends ``todo`` through the window, awaiting the acks in order."""
        flight: deque[tuple[list[Event], asyncio.Future[Any], int]] = deque()
        i = msgs = size = 0
        while i < len(todo) or flight:
            if i < len(todo) and msgs < window and size < window_bytes:
                group = todo[i : i + min(ACK_EVERY, window - msgs)]
                fut, n, sent = await self._send(group, window_bytes - size)
                flight.append((group[:n], fut, sent))
                i, msgs, size = i + n, msgs + n, size + sent
                # Lets nats-py's flusher write this group while the next one is built.
                await asyncio.sleep(0)
                continue
            group, fut, sent = flight.popleft()
            # The ack of a group's last message proves the whole group (and all before it)
            # is in the stream: each message names its predecessor, so the server stores
            # one only after storing the one before it, and refuses every later one if an
            # earlier one was refused or lost. A duplicate is stored already.
            seq = self._check(await self._ack(fut, group))
            last = group[-1]
            self.mark = Mark(self.stream, seq, last.global_sequence, str(last.event_id))
            acked(group)
            msgs, size = msgs - len(group), size - sent

    async def _ack(self, fut: asyncio.Future[Any], group: list[Event]) -> Any:
        """The ack of ``group``'s last message; a ``TimeoutError`` saying what went
        unacknowledged, where, after ``ack_timeout`` (the worker's log shows it)."""
        try:
            return await asyncio.wait_for(fut, self.ack_timeout)
        except TimeoutError:
            first, last = group[0].global_sequence, group[-1].global_sequence
            raise TimeoutError(
                f"NATS stream {self.stream} at {self.connector.where} acknowledged no publish of "
                f"events {first}-{last} within ack_timeout={self.ack_timeout:g} s; they are "
                "published again from the checkpoint"
            ) from None

    async def _send(self, group: list[Event], max_bytes: int) -> tuple[asyncio.Future[Any], int, int]:
        """Sends the first events of ``group`` (at least one, about ``max_bytes`` at most),
        the last with a reply subject; their ack, how many were sent, and their size."""
        nc = self.nc
        if nc.is_closed:
            raise PublishFailed("the NATS connection is closed")
        self.counter += 1
        reply = f"{self.inbox}.{self.counter}"
        # The server refuses a message that would not follow the last one: order holds even
        # when a reconnect loses a message in flight and delivers the next.
        follows = None if self.tail is None else self.tail[1]
        named, self.named = self.named, None
        # A first message the server cannot check by its predecessor's id (naming it for the
        # replicas, or the region's first) is checked by the stream's last sequence as read:
        # a stream made again or put back meanwhile refuses it, and is read again.
        expect, self.expect_seq = self.expect_seq, None
        if named is None and follows is not None:
            expect = None  # chained: the server checks it by its predecessor's id
        alone = named is not None or expect is not None
        try:
            data, n = nats_publish_commands(
                group[:1] if alone else group, self.store_id, self.subject, follows, reply, max_bytes,
                nc.max_payload,
            )  # fmt: skip
        except ValueError as exc:  # nothing sent: retried (the limit is read again on reconnect)
            raise PublishFailed(f"{exc}: raise max_payload in the server's configuration") from exc
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.waiting[reply] = fut
        if alone:  # through nats-py's own publish, with the headers added
            headers = event_headers(group[0], self.store_id)
            if named is not None:
                headers[FOLLOWS] = named
            if expect is not None:
                headers[EXPECTED_LAST_SEQUENCE] = str(expect)
            await nc.publish(self.subject, group[0].payload_bytes, reply=reply, headers=headers)
        else:
            # nats-py's publish, minus its per-header Python encoding (tests pin these internals).
            await nc._send_command(data)
            if nc._flush_queue is not None and nc._flush_queue.empty():
                await nc._flush_pending()
        last = group[n - 1]
        self.tail = (last.global_sequence, str(last.event_id))  # what the next one must follow
        return fut, n, len(data)

    def _check(self, msg: Any) -> int:
        """The stream sequence JetStream acknowledged ``msg`` with; raises ``PublishFailed``
        for anything else."""
        if not msg.data:
            status = (msg.headers or {}).get("Status", "?")
            raise PublishFailed(f"no JetStream acknowledgement (status {status})")
        answer = json.loads(msg.data)
        if "error" in answer:
            error = answer["error"]
            # "wrong last msg ID: " naming none: the server forgot its last message's id (it
            # restarted after that message left its duplicate window) and refuses every
            # expected id; the next attempt names the predecessor for the replicas instead.
            self.forgotten = (
                error.get("err_code") == 10070 and error.get("description") == "wrong last msg ID: "
            )
            raise PublishFailed(f"JetStream refused the message: {error}")
        return int(answer["seq"])

    async def close(self) -> None:
        if self.nc is not None and not self.nc.is_closed:
            await self.nc.close()
