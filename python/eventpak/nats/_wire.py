"""How an event travels as a NATS message: its stored payload bytes as the message body and
every other field in ``Eventpak-*`` headers. The publisher writes them (``event_headers``), the
replica reads them back into the tuple the core's replicated apply takes (``decode``)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .._native import Event, nats_decode, nats_publish_commands

__all__ = [
    "EXPECTED_LAST",
    "FOLLOWS",
    "HEADER_PREFIX",
    "BadMessage",
    "WireEvent",
    "decode",
    "event_headers",
    "nats_publish_commands",
]

HEADER_PREFIX = "Eventpak-"
MSG_ID = "Nats-Msg-Id"
EXPECTED_LAST = "Nats-Expected-Last-Msg-Id"
# The predecessor of a message the server cannot check (the first one sent to a stream its
# limits emptied): named for the replicas only.
FOLLOWS = HEADER_PREFIX + "follows"


def event_headers(event: Event, store_id: bytes) -> dict[str, str]:
    """The NATS headers describing ``event`` of the store ``store_id`` (all but its payload).
    The publisher sends the same headers built natively (``nats_publish_commands``); this is
    the readable reference the tests hold the native bytes to."""
    h = {
        "store_id": store_id.hex(),
        "global_sequence": str(event.global_sequence),
        # JSON strings, ASCII only: nats-py strips header values and the stream-message API
        # returns non-ASCII ones as email Header objects; a quoted, escaped name survives both.
        "entity": json.dumps(event.entity),
        "scope": json.dumps(event.scope),
        "kind": json.dumps(event.kind),
        "entity_sequence": str(event.entity_sequence),
        "timestamp_us": str(event.timestamp_us),
        "event_id": str(event.event_id),
        "correlation_id": str(event.correlation_id),
        "prev_hash": event.prev_hash.hex(),
        "hash": event.hash.hex(),
        "payload_version": str(event.stored_payload_version),
        "tags": json.dumps(list(event.tags)),  # ASCII too (ensure_ascii)
    }
    if event.causation_id is not None:
        h["causation_id"] = str(event.causation_id)
    return {MSG_ID: str(event.event_id), **{HEADER_PREFIX + k: v for k, v in h.items()}}


class BadMessage(Exception):
    """A message that does not describe an eventpak event (a header missing or malformed)."""


@dataclass(frozen=True)
class WireEvent:
    """An event read from a message: ``fields`` is the tuple ``_apply_replicated`` takes;
    ``follows`` is the event id the message's ``Nats-Expected-Last-Msg-Id`` (or, without it,
    ``Eventpak-follows``) names: ``None`` for the stream's first message."""

    origin: bytes
    fields: tuple[Any, ...]
    event_id: str
    global_sequence: int
    follows: str | None


def decode(headers: Mapping[str, str] | None, payload: bytes | None) -> WireEvent:
    """The event a message carries; raises :class:`BadMessage` naming what is wrong. The
    parsing is native (``nats_decode``): it is most of the replica's CPU per event."""
    if headers is not None and type(headers) is not dict:
        headers = dict(headers)
    try:
        origin, fields, event_id, global_sequence, follows = nats_decode(headers, payload)
    except ValueError as exc:
        raise BadMessage(str(exc)) from None
    if follows is None and headers is not None:
        follows = headers.get(FOLLOWS)
    return WireEvent(origin, fields, event_id, global_sequence, follows)
