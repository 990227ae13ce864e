"""What the commands share: refusing what is not a data dir, opening one to read, whole-number
options, and events (and other stored values) as JSON records and as table cells."""

from __future__ import annotations

import argparse
import base64
import datetime
import errno
import json
import math
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .. import Event, InvalidRegion, Region, Store
from ..errors import InvalidConfig, PayloadForgotten, StorageFailed

__all__ = [
    "EVENT_COLUMNS_HELP",
    "KEY_VARIABLE",
    "LARGEST",
    "READER_NEEDS",
    "Refused",
    "UsageError",
    "check_data_dir",
    "count",
    "encryption_key",
    "event_cells",
    "event_record",
    "format_time_us",
    "is_data_dir",
    "kind",
    "open_for_reading",
    "open_refusal",
    "to_json",
]


class Refused(Exception):
    """A command cannot do what was asked (exit status 1); printed as ``eventpak: <message>``."""


class UsageError(Exception):
    """The command line asks for something impossible (exit status 2, with the usage line)."""


def is_data_dir(path: Path) -> bool:
    """Whether ``path`` looks like an eventpak data dir (it has a ``segments/`` folder)."""
    return (path / "segments").is_dir()


def check_data_dir(data_dir: str) -> None:
    """Refuses a path that is not a data dir, before opening it touches anything."""
    path = Path(data_dir)
    if not path.exists():
        raise Refused(f"{data_dir}: no such directory")
    if not path.is_dir():
        raise Refused(f"{data_dir} is not a directory")
    if not is_data_dir(path):
        if (path / ".backup.staging").is_dir():
            # The engine tells a first backup still running into the folder (it holds the
            # lock: ep.StoreLocked) from one a kill interrupted (its advice, ep.InvalidConfig).
            Store.open(data_dir, read_only=True).close()
            return  # that backup has just finished: the store is there now
        raise Refused(f"{data_dir} is not an eventpak data dir (it has no segments/ folder)")


KEY_VARIABLE = "EVENTPAK_ENCRYPTION_KEY"


def encryption_key(variable: str = KEY_VARIABLE) -> bytes | None:
    """The store key of an encrypted data dir, from ``EVENTPAK_ENCRYPTION_KEY`` (or
    ``variable``; 64 hex digits): the environment, not the command line, so the key does not
    show in ``ps``. ``None`` when the variable is unset or empty."""
    text = os.environ.get(variable)
    if not text:
        return None
    try:
        key = bytes.fromhex(text.strip())
    except ValueError:
        key = b""
    if len(key) != 32:
        raise Refused(f"{variable} must hold the store key as 64 hex digits")
    return key


def open_with_key(data_dir: str, **options: Any) -> Store:
    """``Store.open`` with the key from ``EVENTPAK_ENCRYPTION_KEY``. The engine's refusals of a
    missing or wrong key name the ``encryption_key`` argument; a command-line user sets the
    variable instead, so the refusal names that."""
    key = encryption_key()
    try:
        return Store.open(data_dir, encryption_key=key, **options)
    except InvalidConfig as exc:
        text = exc.reason
        if "encryption_key" not in text:
            raise
        if key is None and "is encrypted" in text:
            needs = f"set {KEY_VARIABLE} to its store key (64 hex digits)"
            raise Refused(f"{data_dir} is encrypted: {needs}") from exc
        if "without encryption" in text:
            raise Refused(f"{data_dir} was created without encryption: unset {KEY_VARIABLE}") from exc
        raise Refused(text.replace("encryption_key", KEY_VARIABLE)) from exc


def open_for_reading(data_dir: str) -> Store:
    """Opens an existing data dir read-only and shared: beside processes that share it (they keep
    writing, and one that starts later is not locked out) and beside nobody. A store held by an
    exclusive opener refuses with ``StoreLocked``; an encrypted one needs its key in
    ``EVENTPAK_ENCRYPTION_KEY``."""
    check_data_dir(data_dir)
    try:
        return open_with_key(data_dir, read_only=True, shared=True)
    except StorageFailed as exc:
        raise open_refusal(exc, data_dir, READER_NEEDS) from exc


READER_NEEDS = (
    "a command that reads opens the store as a shared reader, which writes its LOCK file and shared/ folder"
)
# What the operating system says when the user, or the file system, may not write there.
_NO_WRITE = {errno.EACCES, errno.EPERM, errno.EROFS}


def open_refusal(exc: StorageFailed, data_dir: str, needs: str) -> Refused:
    """The refusal for a store that failed to open on a storage error: what failed, without
    the advice of a writer failure (reopening: nothing was acknowledged, nothing is to be
    recovered), and when the data dir may not be written, what the command needs (``needs``)
    and, for a permission problem, who may run it."""
    what = exc.strerror if exc.errno is None else os.strerror(exc.errno)
    message = f"cannot open {data_dir}: {what} ({exc.context})"
    if exc.errno in _NO_WRITE:
        message += f": {needs}"
        if exc.errno != errno.EROFS:
            message += f"; run it as a user who may write {data_dir} (such as the service's)"
    return Refused(message)


def _payload(event: Event) -> Any:
    """The payload, or ``None`` for a forgotten entity's event (its other fields still show)."""
    try:
        return event.payload
    except PayloadForgotten:
        return None


LARGEST = 2**64 - 1
"""The largest sequence or count the store takes (an unsigned 64-bit number)."""


def count(minimum: int, maximum: int | None = None) -> Callable[[str], int]:
    """An argparse type: a whole number of at least ``minimum`` (and at most ``maximum``)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"must be at most {maximum}, got {value}")
        return value

    parse.__name__ = "count"  # argparse names the type in some messages
    return parse


def kind(text: str) -> str:
    """An argparse type: an event kind, by the naming rules of a read (so the reserved
    ``eventpak.`` kinds may be named)."""
    try:
        Region.all().with_kinds([text])
    except InvalidRegion as exc:
        raise argparse.ArgumentTypeError(exc.reason) from None
    return text


# --- values as JSON and as table cells ---------------------------------------------------------


# Deeper than any payload the encoder writes (256 levels): only bytes written by another
# msgpack writer nest further (up to the decoder's 1,024), past what Python's recursion allows.
SHOWN_LEVELS = 300


def to_json(value: Any, depth: int = 0) -> Any:
    """A payload (or any value the store holds) as plain JSON data: bytes become
    ``{"$bytes": "<base64>"}``, a ``datetime`` its ISO 8601 text, a UUID its text, a tuple a
    list, a float that JSON cannot carry (nan, inf) its ``repr``; dict keys become strings.
    What nests deeper than ``SHOWN_LEVELS`` is replaced by a note saying so."""
    if depth > SHOWN_LEVELS:
        return {"$unshown": f"nested deeper than {SHOWN_LEVELS} levels"}
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return {"$bytes": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dict):
        return {str(key): to_json(item, depth + 1) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(item, depth + 1) for item in value]
    return repr(value)


def _optional_id(value: uuid.UUID | None) -> str | None:
    return None if value is None else str(value)


def event_record(event: Event) -> dict[str, Any]:
    """An event as a JSON object keyed by ``ep.Event`` attribute names: ids as text, hashes as
    hex, ``timestamp`` in ISO 8601, ``payload`` through :func:`to_json`."""
    return {
        "global_sequence": event.global_sequence,
        "event_id": str(event.event_id),
        "entity": event.entity,
        "scope": event.scope,
        "kind": event.kind,
        "entity_sequence": event.entity_sequence,
        "timestamp_us": event.timestamp_us,
        "timestamp": event.timestamp.isoformat(),
        "causation_id": _optional_id(event.causation_id),
        "correlation_id": str(event.correlation_id),
        "payload_version": event.payload_version,
        "stored_payload_version": event.stored_payload_version,
        "prev_hash": event.prev_hash.hex(),
        "hash": event.hash.hex(),
        "tags": list(event.tags),
        "payload": to_json(_payload(event)),
    }


EVENT_COLUMNS_HELP = (
    "sequence, time (UTC, to the millisecond), entity, scope, kind, entity clock, payload (JSON)"
)


EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)


def format_time_us(timestamp_us: int) -> str:
    """Microseconds since the epoch as ``YYYY-MM-DD HH:MM:SS.fff`` (UTC, to the millisecond)."""
    moment = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC) + datetime.timedelta(
        microseconds=timestamp_us
    )
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def payload_text(value: Any) -> str:
    """A payload as one line of JSON."""
    return json.dumps(to_json(value), ensure_ascii=False)


def event_cells(event: Event) -> list[str]:
    """An event as the cells of a table row or plain line (``EVENT_COLUMNS_HELP``)."""
    return [
        str(event.global_sequence),
        format_time_us(event.timestamp_us),
        event.entity,
        event.scope,
        event.kind,
        str(event.entity_sequence),
        payload_text(_payload(event)),
    ]
