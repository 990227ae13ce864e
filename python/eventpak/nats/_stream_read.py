"""The replica's reads of the stream itself (the stream-message API), for catching up past
what its consumer delivered out of order or left unacknowledged."""

from __future__ import annotations

from typing import Any

from ._wire import BadMessage, decode

__all__ = ["after_head", "stream_msg"]


async def after_head(jsm: Any, stream: str, durable: str, head: int | None, last: int) -> int:
    """The stream sequence after the replica's ``head``: after the consumer's ack floor (all
    before it is applied) unless the consumer acknowledged past the replica (a replica dir
    replaced or restored), then found by bisecting stream sequences 1..``last``."""
    floor = (await jsm.consumer_info(stream, durable)).ack_floor.stream_seq or 0
    if floor == 0 or await at_or_before(jsm, stream, floor, head):
        return floor + 1
    lo, hi = 1, min(floor, last)  # the answer is in lo..hi+1
    while lo <= hi:
        mid = (lo + hi) // 2
        if await at_or_before(jsm, stream, mid, head):
            lo = mid + 1
        else:
            hi = mid - 1
    return lo


async def at_or_before(jsm: Any, stream: str, seq: int, head: int | None) -> bool:
    """Whether stream message ``seq`` holds an event at or before ``head`` (a missing or
    foreign one counts as after: reading again from before it is harmless)."""
    raw = await stream_msg(jsm, stream, seq)
    if raw is None or head is None:
        return False
    try:
        return decode(raw.headers, raw.data).global_sequence <= head
    except BadMessage:
        return False


async def stream_msg(jsm: Any, stream: str, seq: int, following: bool = False) -> Any:
    """Stream message ``seq`` (``following``: the first there is from ``seq`` on), or ``None``."""
    from nats.js.errors import NotFoundError

    try:
        if following:
            return await jsm.get_msg(stream, seq, subject=">", next=True)
        return await jsm.get_msg(stream, seq)
    except NotFoundError:
        return None
