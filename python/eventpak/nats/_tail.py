"""What a publisher's stream holds, read on every (re)connect and after any failure: the
stream (created when missing) and its last message, checked to be an event of the publishing
store, at the place the store holds it, before anything is sent after it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .._native import Cursor, Event, Region
from ..errors import EventNotFound, InvalidConfig, ReplicationRefused
from ._mark import Mark, event_before_last
from ._wire import HEADER_PREFIX, MSG_ID

if TYPE_CHECKING:
    from ..store import Store

__all__ = ["PUBLISHER_STOPS", "NotAnEvent", "StreamEnd", "predecessor", "read_tail"]

PUBLISHER_STOPS = "the publisher stops here"


class NotAnEvent(Exception):
    """The stream's last message was not sent by an eventpak publisher (retried: it may be
    deleted)."""


@dataclass(frozen=True)
class StreamEnd:
    """How a stream ends: ``tail``, ``(global_sequence, event id)`` of its newest message
    (``None`` for an empty stream), which is message ``tail_seq``; ``last_seq``, the last
    sequence the stream gave (it never goes down unless the stream lost messages); and
    ``unchecked``: the server has no last message to check the next one against (the stream
    is empty having held messages, or its last message was deleted)."""

    tail: tuple[int, str] | None
    tail_seq: int
    last_seq: int
    unchecked: bool

    def mark(self, stream: str) -> Mark | None:
        """The publisher's mark this end shows (``None`` for an empty stream)."""
        return None if self.tail is None else Mark(stream, self.tail_seq, *self.tail)

    def resume_point(
        self, mark: Mark | None, store: Store, region: Region
    ) -> tuple[tuple[int, str] | None, bool]:
        """The event the next one sent must follow (``None``: the region's first) and whether
        the server cannot check it (then the next one names it for the replicas). For an
        empty stream that held messages the publisher's ``mark`` tells whether its limits or
        a purge removed them (what they held was delivered: the next event follows the
        marked one) or it lost them (the events of the lost sequences are sent again)."""
        if self.tail is not None or self.last_seq == 0:
            return self.tail, self.unchecked
        if mark is None or self.last_seq > mark.stream_seq:
            return None, self.unchecked  # nothing to tell by: the checkpoint stands for it
        # The mark must name this store's event, as a last message must: a data dir put back
        # under a newer mark (or that lost its newest events) does not hold it.
        check_ours(store, mark.stream, mark.global_sequence, mark.event_id)
        if self.last_seq == mark.stream_seq:
            return (mark.global_sequence, mark.event_id), True
        lost = mark.stream_seq - self.last_seq  # one event of the region per stream sequence
        before = event_before_last(store, region, mark.global_sequence, lost)
        return before, before is not None


async def read_tail(
    jsm: Any, stream: str, subject: str, replicas: int, store: Store, region: Region
) -> StreamEnd:
    """How ``stream`` ends, created with ``subject`` and ``replicas`` when missing. Raises
    ``ep.ReplicationRefused`` when its newest message is not ``store``'s event there, or is
    not an event of ``region``."""
    from nats.js.api import StreamConfig
    from nats.js.errors import NotFoundError

    try:
        info = await jsm.stream_info(stream)
    except NotFoundError:
        cfg = StreamConfig(name=stream, subjects=[subject], num_replicas=replicas)
        info = await jsm.add_stream(cfg)
    subjects = list(info.config.subjects or [])
    if not any(captures(pattern, subject) for pattern in subjects):
        # The server would answer every message with "no responders" (503), for ever.
        raise InvalidConfig(
            f"stream {stream} does not capture subject {subject}, which the publisher sends to "
            f"(its subjects: {subjects}): add the subject to the stream, or give the publisher a "
            "subject it captures"
        )
    if not info.state.messages:
        return StreamEnd(None, 0, info.state.last_seq, info.state.last_seq > 0)
    # A deleted last message: the newest one left stands for it (found within as many steps
    # back as the stream has deleted messages; the server's last-by-subject lookup does not
    # find one there).
    seq, last = info.state.last_seq, None
    while last is None and seq >= info.state.first_seq:
        try:
            last = await jsm.get_msg(stream, seq)
        except NotFoundError:
            seq -= 1
    gone = seq != info.state.last_seq
    headers = (last.headers if last is not None else None) or {}
    if HEADER_PREFIX + "global_sequence" not in headers or MSG_ID not in headers:
        raise NotAnEvent(
            f"the last message of stream {stream} was not sent by an eventpak publisher: "
            "a stream takes one publisher's events only"
        )
    origin = headers.get(HEADER_PREFIX + "store_id")
    if origin != store.store_id.hex():
        raise ReplicationRefused(
            None,
            f"stream {stream} holds the events of store {origin}, not of this store "
            f"{store.store_id.hex()}: a stream takes one store's events; give this publisher a "
            "stream of its own",
            stops=PUBLISHER_STOPS,
        )
    tail = (int(headers[HEADER_PREFIX + "global_sequence"]), headers[MSG_ID])
    event = check_ours(store, stream, *tail)
    if event is not None:  # an event compaction removed is not checked
        check_region(region, stream, event)
    return StreamEnd(tail, seq, info.state.last_seq, gone)


def predecessor(store: Store, region: Region, checkpoint_id: str, before: int) -> str | None:
    """The id of the event of ``region`` the publisher's checkpoint stands on, the one before
    global sequence ``before``: ``None`` before the first, or when it is gone (compacted)."""
    saved = Cursor.load_checkpoint(store.path, checkpoint_id)
    if saved is None or not saved.started or saved.position >= before:
        return None
    at = store.query(region, after=saved.position - 1 if saved.position else None, limit=1)
    return str(at[0].event_id) if at and at[0].global_sequence == saved.position else None


def check_ours(store: Store, stream: str, global_sequence: int, event_id: str) -> Event | None:
    """The event ``event_id``, which ``store`` holds at ``global_sequence``; ``None`` when it
    holds no event there that could be compared (a hole: an event removed by compaction, a
    cancelled fence). Raises ``ep.ReplicationRefused`` otherwise."""
    try:
        event: Event | None = store.get(event_id)
    except EventNotFound:
        event = None
    here = None if event is None else event.global_sequence
    if here == global_sequence:
        return event
    head = store.head()
    if here is not None:
        why = f"this store holds that event at global sequence {here}"
    elif head is None or head < global_sequence:
        why = f"this store ends at global sequence {head}"
    else:
        at = store.query(Region.all(), after=global_sequence - 1 if global_sequence else None, limit=1)
        if not at or at[0].global_sequence != global_sequence:
            return None  # nothing here to compare with
        why = f"this store holds event {at[0].event_id} there"
    raise ReplicationRefused(
        None,
        f"the last message of stream {stream} is event {event_id} at global sequence "
        f"{global_sequence}, and {why}: the stream does not continue this store's log (the "
        "store was restored from a backup older than the stream, or another copy of it "
        "publishes there); publish to a new stream and build its replicas from it",
        stops=PUBLISHER_STOPS,
    )


def check_region(region: Region, stream: str, event: Event) -> None:
    """Raises ``ep.ReplicationRefused`` when the stream's last ``event`` is not one of
    ``region``: another publisher of the store (of another region) sends to the stream, and
    each would skip the other's events as sent."""
    if not region.matches((event.entity, event.scope), event.kind, event.entity_sequence, tags=event.tags):
        raise ReplicationRefused(
            None,
            f"the last message of stream {stream} is event {event.event_id} ({event.entity}, {event.kind}), "
            "which is not in this publisher's region: another publisher of this store sends "
            "there; a stream takes one publisher's events, so give each region a stream of its own",
            stops=PUBLISHER_STOPS,
        )


def captures(pattern: str, subject: str) -> bool:
    """Whether the subject ``pattern`` (tokens split by ``.``; ``*`` stands for one token,
    a last ``>`` for one or more) matches ``subject``."""
    want, have = pattern.split("."), subject.split(".")
    for i, token in enumerate(want):
        if token == ">" and i == len(want) - 1:
            return len(have) > i
        if i >= len(have) or token not in ("*", have[i]):
            return False
    return len(want) == len(have)
