"""How an event travels as a NATS message: its stored payload bytes as the message body and
every other field in ``Eventpak-*`` headers. The publisher writes them (``event_headers``), the
replica reads them back into the tuple the core's replicated apply takes (``decode``)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .._native import Event

__all__ = ["EXPECTED_LAST", "HEADER_PREFIX", "BadMessage", "WireEvent", "decode", "event_headers"]

HEADER_PREFIX = "Eventpak-"
MSG_ID = "Nats-Msg-Id"
EXPECTED_LAST = "Nats-Expected-Last-Msg-Id"


def event_headers(event: Event, store_id: bytes) -> dict[str, str]:
    """The NATS headers describing ``event`` of the store ``store_id`` (all but its payload)."""
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
    ``follows`` is the event id the message's ``Nats-Expected-Last-Msg-Id`` names (``None``
    for the stream's first message)."""

    origin: bytes
    fields: tuple[Any, ...]
    event_id: str
    global_sequence: int
    follows: str | None


def decode(headers: Mapping[str, str] | None, payload: bytes | None) -> WireEvent:
    """The event a message carries; raises :class:`BadMessage` naming what is wrong."""
    h = headers or {}

    def field(name: str) -> str:
        value = h.get(HEADER_PREFIX + name)
        if value is None:
            raise BadMessage(f"header {HEADER_PREFIX}{name} is missing")
        if not isinstance(value, str):  # nats-py's stream-message API: a non-ASCII value
            raise BadMessage(f"header {HEADER_PREFIX}{name} is not ASCII")
        return value

    def number(name: str) -> int:
        text = field(name)
        if not text.isdigit():
            raise BadMessage(f"header {HEADER_PREFIX}{name} is not a number: {text!r}")
        return int(text)

    def uid(name: str) -> bytes:
        try:
            return uuid.UUID(field(name)).bytes
        except ValueError:
            raise BadMessage(f"header {HEADER_PREFIX}{name} is not a UUID: {field(name)!r}") from None

    def digest(name: str, size: int) -> bytes:
        try:
            value = bytes.fromhex(field(name))
        except ValueError:
            value = b""
        if len(value) != size:
            raise BadMessage(f"header {HEADER_PREFIX}{name} is not {size} bytes of hex")
        return value

    def name(name: str) -> str:
        try:
            value = json.loads(field(name))
        except ValueError:
            value = None
        if not isinstance(value, str):
            raise BadMessage(f"header {HEADER_PREFIX}{name} is not a JSON string")
        return value

    try:
        tags = json.loads(field("tags"))
    except ValueError:
        tags = None
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise BadMessage(f"header {HEADER_PREFIX}tags is not a JSON list of strings")
    event_id = uid("event_id")
    causation = uid("causation_id") if HEADER_PREFIX + "causation_id" in h else None
    global_sequence = number("global_sequence")
    fields = (
        event_id,
        global_sequence,
        name("entity"),
        name("scope"),
        name("kind"),
        number("entity_sequence"),
        number("timestamp_us"),
        causation,
        uid("correlation_id"),
        digest("prev_hash", 32),
        digest("hash", 32),
        number("payload_version"),
        payload or b"",
        tags,
    )
    follows = h.get(EXPECTED_LAST) or None
    return WireEvent(digest("store_id", 16), fields, str(uuid.UUID(bytes=event_id)), global_sequence, follows)
