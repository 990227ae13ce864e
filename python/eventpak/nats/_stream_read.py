"""The replica's reads of the stream itself (the stream-message API), for catching up past
what its consumer delivered out of order or left unacknowledged, and for finding where a
consumer made anew starts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ._wire import BadMessage, decode

__all__ = ["Held", "after_head", "first_after", "stream_msg"]


@dataclass(frozen=True)
class Held:
    """What the replica holds: its origin store's id (``None`` before its first apply) and
    the global sequence of its last event (``None`` for an empty replica)."""

    origin: bytes | None
    head: int | None


async def after_head(jsm: Any, stream: str, durable: str, held: Held, last: int) -> int:
    """The stream sequence after the replica's head: after the consumer's ack floor (all
    before it is applied) unless the consumer acknowledged nothing yet while the replica
    holds events (a consumer made anew) or acknowledged past the replica (a replica dir
    replaced or restored): then found by bisecting stream sequences up to ``last``."""
    floor = (await jsm.consumer_info(stream, durable)).ack_floor.stream_seq or 0
    if (floor == 0 and held.head is None) or (floor > 0 and await at_or_before(jsm, stream, floor, held)):
        return floor + 1
    return await first_after(jsm, stream, held, last if floor == 0 else min(floor, last))


async def first_after(jsm: Any, stream: str, held: Held, last: int | None = None) -> int:
    """The first stream sequence whose message is not one the replica holds, found by
    bisecting the stream's sequences up to ``last`` (its last one when ``None``; ``last + 1``
    when the replica holds them all). A missing message, or one of another origin, counts as
    not held, which can only make the answer earlier: safe, since what the replica holds is
    taken again as no-ops, and another origin's events are refused."""
    state = (await jsm.stream_info(stream)).state
    lo = max(1, int(state.first_seq))  # the answer is in lo..hi+1
    hi = int(state.last_seq) if last is None else last
    while lo <= hi:
        mid = (lo + hi) // 2
        if await at_or_before(jsm, stream, mid, held):
            lo = mid + 1
        else:
            hi = mid - 1
    return lo


async def at_or_before(jsm: Any, stream: str, seq: int, held: Held) -> bool:
    """Whether stream message ``seq`` holds an event of the replica's origin at or before its
    head (a missing or foreign one counts as after: reading again from before it is
    harmless)."""
    raw = await stream_msg(jsm, stream, seq)
    if raw is None or held.head is None:
        return False
    try:
        event = decode(raw.headers, raw.data)
    except BadMessage:
        return False
    return event.global_sequence <= held.head and held.origin in (None, event.origin)


async def stream_msg(jsm: Any, stream: str, seq: int, following: bool = False) -> Any:
    """Stream message ``seq`` (``following``: the first there is from ``seq`` on), or ``None``."""
    from nats.js.errors import NotFoundError

    try:
        if following:
            return await jsm.get_msg(stream, seq, subject=">", next=True)
        return await jsm.get_msg(stream, seq)
    except NotFoundError:
        return None
