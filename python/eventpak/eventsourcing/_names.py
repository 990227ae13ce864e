"""How the ``eventsourcing`` library's names become eventpak names, and back.

Every mapping here is injective, so reading back gives exactly what was written:

- a text (an application name, a ``str`` originator id, a topic) becomes a coordinate part or
  a kind by percent-escaping the characters those names refuse: ``%`` itself, ``/``, ``|``,
  ``=``, control characters, and the second ``.`` of every ``..``. Text without them (nearly
  every topic and id) is kept as it is;
- an originator id becomes the entity ``<table>:<id>``: a ``UUID`` as its canonical 36
  characters, a ``str`` as ``str:`` and the escaped text (a ``UUID`` and its ``str`` form are
  two aggregates here, so each reads back with its own type);
- a topic becomes the event kind: the escaped topic, or, when that cannot be a kind (longer than
  255 bytes, empty, or starting with the reserved ``eventpak.``), ``~`` and a 128-bit BLAKE2b
  digest of the topic, in which case the topic itself travels in the payload (see
  ``_payload``).
"""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache
from uuid import UUID

from eventsourcing.persistence import DataError

__all__ = [
    "MAX_NAME_BYTES",
    "entity_name",
    "escape",
    "kind_for_topic",
    "originator_id_of",
    "topic_of_kind",
    "tracking_name",
    "unescape",
]

MAX_NAME_BYTES = 1024  # an entity or a scope
MAX_KIND_BYTES = 255
MAX_TRACKING_NAME_BYTES = 255
_STR_ID = "str:"
_HASHED = "~"
_RESERVED_KIND_PREFIX = "eventpak."

_NEEDS_ESCAPE = re.compile(r"[%/|=\x00-\x1f\x7f]|\.\.|^~")
_ESCAPED = re.compile(r"%([0-9A-F]{2})")


def escape(text: str) -> str:
    """``text`` with every character a coordinate part or a kind refuses written as ``%XX``
    (all of them are ASCII), ``%`` included, so that :func:`unescape` inverts it. A leading
    ``~`` is escaped too: kinds starting with ``~`` are the digests of overlong topics."""
    if _NEEDS_ESCAPE.search(text) is None:
        return text
    out: list[str] = []
    previous = ""
    for index, char in enumerate(text):
        code = ord(char)
        if (
            char in "%/|="
            or code < 0x20
            or code == 0x7F
            or (char == "." and previous == ".")
            or (char == "~" and index == 0)
        ):
            out.append(f"%{code:02X}")
            previous = ""
        else:
            out.append(char)
            previous = char
    return "".join(out)


def unescape(text: str) -> str:
    """The inverse of :func:`escape`."""
    if "%" not in text:
        return text
    return _ESCAPED.sub(lambda match: chr(int(match.group(1), 16)), text)


def entity_name(table: str, originator_id: UUID | str) -> str:
    """The entity holding the events of ``originator_id`` in ``table`` (an escaped name)."""
    if isinstance(originator_id, UUID):
        return f"{table}:{_uuid_text(originator_id)}"
    if not isinstance(originator_id, str):
        raise DataError(f"an originator id is a UUID or a str, not {type(originator_id).__name__}")
    name = f"{table}:{_STR_ID}{escape(originator_id)}"
    if len(name.encode("utf-8")) > MAX_NAME_BYTES:
        raise DataError(
            f"originator id too long for an eventpak entity ({MAX_NAME_BYTES} bytes with its table "
            f"prefix): {originator_id[:80]!r}..."
        )
    return name


def originator_id_of(entity: str, prefix_len: int) -> UUID | str:
    """The originator id an entity name (made by :func:`entity_name`) stands for;
    ``prefix_len`` is the length of its ``<table>:`` prefix."""
    rest = entity[prefix_len:]
    if rest.startswith(_STR_ID):
        return unescape(rest[len(_STR_ID) :])
    return _uuid(rest)


@lru_cache(maxsize=65536)
def _uuid_text(originator_id: UUID) -> str:
    return str(originator_id)


@lru_cache(maxsize=65536)
def _uuid(text: str) -> UUID:
    return UUID(text)


@lru_cache(maxsize=4096)
def kind_for_topic(topic: str) -> tuple[str, bool]:
    """``(kind, hashed)``: the event kind of ``topic``; ``hashed`` is True when the kind is a
    digest and the topic has to be stored in the payload."""
    kind = escape(topic)
    if kind.startswith(_RESERVED_KIND_PREFIX):
        kind = "%65" + kind[1:]  # "e", escaped: unescape gives the topic back
    if kind and len(kind.encode("utf-8")) <= MAX_KIND_BYTES:
        return kind, False
    digest = hashlib.blake2b(topic.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()
    return _HASHED + digest, True


@lru_cache(maxsize=4096)
def topic_of_kind(kind: str) -> str | None:
    """The topic a kind stands for, or ``None`` for a digest (the topic is in the payload)."""
    if kind.startswith(_HASHED):
        return None
    return unescape(kind)


def tracking_name(table: str, application_name: str) -> str:
    """The eventpak tracking name of an upstream application in a tracking table:
    ``<table>:<escaped name>``, or ``~`` and a 128-bit BLAKE2b digest of that when it would be
    longer than a tracking name may be (255 bytes; an escaped table never starts with ``~``)."""
    name = f"{table}:{escape(application_name)}"
    if len(name.encode("utf-8")) <= MAX_TRACKING_NAME_BYTES:
        return name
    return _HASHED + hashlib.blake2b(name.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()
