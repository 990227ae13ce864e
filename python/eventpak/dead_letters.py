"""Dead letters: events a worker could not handle, parked in the store so it can go on.

A dead letter is a reserved ``eventpak.dead_letter`` event, written by the store itself, on
the coordinate ``("eventpak.dead_letter:<checkpoint id>", "eventpak")``: one entity per
checkpoint, in a scope of its own. Its payload names the parked event (``event_id``,
``global_sequence``), the ``checkpoint_id``, the failure (``error_type``, ``message``,
``traceback``), ``attempts`` and ``parked_at_us``; its cause is the parked event.

This module holds the record format: :func:`park` writes a dead letter, :func:`read_dead_letters`
reads a checkpoint's back as :class:`DeadLetter` values, and :func:`dead_letter_filter` keeps
dead letters away from workers that did not ask for them. How a worker finds what to park
is :mod:`eventpak.isolation`.
"""

from __future__ import annotations

import hashlib
import logging
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._native import AppendReceipt, AppendRequest, Coordinate, Cursor, Event, Region
from .errors import EventNotFound, EventTooLarge, IdempotencyConflict, PayloadForgotten

if TYPE_CHECKING:
    from .store import Store

__all__ = [
    "DEAD_LETTER_KIND",
    "DEAD_LETTER_SCOPE",
    "DeadLetter",
    "dead_letter_entity",
    "dead_letter_filter",
    "dead_letter_region",
    "park",
    "park_and_log",
    "read_dead_letters",
]

DEAD_LETTER_KIND = "eventpak.dead_letter"
"""The reserved kind of a dead letter."""
DEAD_LETTER_SCOPE = "eventpak"
"""The scope of every dead letter."""
_ENTITY_PREFIX = "eventpak.dead_letter:"
# A message or traceback longer than this is cut (a dead letter must always fit in an event).
_MAX_MESSAGE_CHARS = 16 * 1024
_MAX_TRACEBACK_CHARS = 64 * 1024


def dead_letter_entity(checkpoint_id: str) -> str:
    """The entity holding the dead letters of ``checkpoint_id``."""
    return _ENTITY_PREFIX + checkpoint_id


def dead_letter_region(checkpoint_id: str) -> Region:
    """The region of exactly the dead letters of ``checkpoint_id``."""
    entity = dead_letter_entity(checkpoint_id)
    return Region.entity(entity, exact=True).with_scope(DEAD_LETTER_SCOPE).with_kind(DEAD_LETTER_KIND)


@dataclass(frozen=True)
class DeadLetter:
    """An event a worker parked after its handler failed on it ``attempts`` times (every
    failed delivery that held it, from the first failure of its batch to the parking).
    ``error_type``, ``message`` and ``traceback`` describe the last failure;
    ``parked_at_us`` is when it was parked (µs since the epoch)."""

    event: Event
    error_type: str
    message: str
    traceback: str
    attempts: int
    parked_at_us: int


def error_type(error: BaseException) -> str:
    """The qualified name of the error's class (``ValueError``, ``app.errors.Bounced``)."""
    cls = type(error)
    return cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"


def _message(error: BaseException) -> str:
    try:
        text = str(error)
    except Exception:  # a broken __str__ must not keep the event from being parked
        text = f"<unprintable {error_type(error)}>"
    return text if len(text) <= _MAX_MESSAGE_CHARS else text[:_MAX_MESSAGE_CHARS] + " ...(cut)"


def _traceback(error: BaseException) -> str:
    text = "".join(traceback.format_exception(error))
    return text if len(text) <= _MAX_TRACEBACK_CHARS else "...(cut)\n" + text[-_MAX_TRACEBACK_CHARS:]


def _key(checkpoint_id: str, event_id: uuid.UUID) -> bytes:
    """The dead letter's idempotency key: one per checkpoint and event, so parking the same
    event again (after a crash between parking and saving the checkpoint) writes nothing."""
    digest = hashlib.blake2b(checkpoint_id.encode() + b"\0" + event_id.bytes, digest_size=16)
    return _ENTITY_PREFIX.encode() + digest.hexdigest().encode()


def park_and_log(
    store: Store, checkpoint_id: str, worker: str, event: Event, error: BaseException, attempts: int
) -> None:
    """:func:`park`, then a warning on the ``eventpak.worker`` logger naming worker ``worker``."""
    park(store, checkpoint_id, event, error, attempts)
    logging.getLogger("eventpak.worker").warning(
        "worker %s: parked event %d as a dead letter after %d failed deliveries",
        worker,
        event.global_sequence,
        attempts,
    )


def park(store: Store, checkpoint_id: str, event: Event, error: BaseException, attempts: int) -> bool:
    """Parks ``event`` as a dead letter of ``checkpoint_id`` and makes it durable, so that a
    worker may then commit its position past the event. Returns ``False`` when the event was
    already parked for this checkpoint (by a run that crashed before it saved its
    checkpoint): that dead letter stays, and nothing is written."""
    payload: dict[str, Any] = {
        "event_id": str(event.event_id),
        "global_sequence": event.global_sequence,
        "checkpoint_id": checkpoint_id,
        "error_type": error_type(error),
        "message": _message(error),
        "traceback": _traceback(error),
        "attempts": attempts,
        "parked_at_us": time.time_ns() // 1000,
    }
    native = store._native

    def append(payload: dict[str, Any]) -> AppendReceipt:
        request = AppendRequest(
            Coordinate(dead_letter_entity(checkpoint_id), DEAD_LETTER_SCOPE),
            DEAD_LETTER_KIND,
            payload,
            idempotency_key=_key(checkpoint_id, event.event_id),
            causation_id=event.event_id,
            correlation_id=event.correlation_id,
        )
        return native._append_reserved_batch([request])[0]

    try:
        try:
            receipt = append(payload)
        except EventTooLarge as too_large:
            receipt = append(_shrunk(payload, too_large))
    except IdempotencyConflict:
        native.sync()  # the earlier dead letter is durable before the position moves past
        return False
    if not receipt.durable:
        native.sync()
    return True


def _shrunk(payload: dict[str, Any], too_large: EventTooLarge) -> dict[str, Any]:
    """``payload`` with its message and traceback cut so the dead letter fits the store's
    ``max_event_bytes`` (a quarter of the room for the message, the rest for the traceback's
    end); raises ``too_large`` when even empty ones would not fit."""
    message, trace = payload["message"].encode(), payload["traceback"].encode()
    room = too_large.max_bytes - (too_large.size - len(message) - len(trace)) - 64  # msgpack headers
    if room <= 0:
        raise too_large
    keep_message = min(len(message), room // 4)
    keep_trace = room - keep_message
    return payload | {
        "message": message[:keep_message].decode(errors="ignore"),
        "traceback": trace[len(trace) - min(len(trace), keep_trace) :].decode(errors="ignore"),
    }


def _forgotten(record: Event) -> bool:
    """True when the record's payload was forgotten (``forget_entity`` of its entity)."""
    try:
        record.payload  # noqa: B018 - opened and decoded once: the listing then reads it from the event
    except PayloadForgotten:
        return True
    return False


def _held(store: Store, checkpoint_id: str) -> Iterator[tuple[Event, Event]]:
    """Each dead letter of ``checkpoint_id`` with the event it parked, oldest first. A dead
    letter whose event a compaction removed is left out: the event is gone from the store,
    as it is from ``get`` and queries, and its dead letter goes with it. So is one whose own
    record was forgotten (``forget_entity`` of its entity erases a handler's error text)."""
    encrypted = store.encrypted  # only an encrypted store forgets: a clear one's stay unopened
    for record in store.query(dead_letter_region(checkpoint_id)):
        # Its cause is the parked event (kept as an id even once that event is removed).
        parked_id = record.causation_id
        if parked_id is None:  # never written so; read it as if the event were gone
            continue
        if encrypted and _forgotten(record):
            continue
        try:
            parked = store.get(parked_id)
        except EventNotFound:
            continue
        yield record, parked


def read_dead_letters(store: Store, checkpoint_id: str) -> list[DeadLetter]:
    """The dead letters of ``checkpoint_id``, oldest first (what ``Store.dead_letters`` returns):
    those whose parked event the store still holds and whose record was not forgotten."""
    Cursor.validate_checkpoint_id(checkpoint_id)
    letters = []
    for record, parked in _held(store, checkpoint_id):
        p = record.payload
        letters.append(
            DeadLetter(
                event=parked,
                error_type=p["error_type"],
                message=p["message"],
                traceback=p["traceback"],
                attempts=p["attempts"],
                parked_at_us=p["parked_at_us"],
            )
        )
    return letters


def count_dead_letters(store: Store, checkpoint_id: str) -> int:
    """How many dead letters ``read_dead_letters`` lists for ``checkpoint_id``: counted in the
    index when there is none; else each one's parked event is looked up by id (and, on an
    encrypted store, its record's payload opened), so that a count never includes what the
    listing leaves out."""
    if store._native.region_lag(dead_letter_region(checkpoint_id), 0, False)[0] == 0:
        return 0
    return sum(1 for _ in _held(store, checkpoint_id))


def dead_letter_filter(
    region: Region, checkpoint_id: str | None, store: Store | None = None
) -> Callable[[list[Event]], list[Event]] | None:
    """What a worker of ``region`` leaves out of the batches it hands its handler, or
    ``None`` when there is nothing to leave out.

    A worker never receives its own dead letters (it would park its failures on them in
    turn), and receives other workers' only when its region filters kinds and admits
    ``eventpak.dead_letter`` (names it, or a prefix of it): a region that takes every kind
    (``Region.all()``, an entity or scope region) does not get them. Left-out events still
    move the worker's position on.

    With ``store``, a batch is looked at event by event only when the store holds a dead
    letter within its range (one index lookup per batch): reading every event's kind costs
    more than the rest of a worker's delivery of a batch its handler does not touch.
    """
    leave_out = _leave_out(region, checkpoint_id)
    if leave_out is None or store is None:
        return leave_out
    letters = Region.scope(DEAD_LETTER_SCOPE).with_kinds([DEAD_LETTER_KIND])

    def where_present(batch: list[Event]) -> list[Event]:
        if not batch:
            return batch
        first = batch[0].global_sequence
        found = store.query(letters, after=first - 1 if first else None, limit=1)
        if not found or found[0].global_sequence > batch[-1].global_sequence:
            return batch
        return leave_out(batch)

    return where_present


def _leave_out(region: Region, checkpoint_id: str | None) -> Callable[[list[Event]], list[Event]] | None:
    """The per-event filter of :func:`dead_letter_filter`."""
    if region.members:
        return _union_filter(region.members, checkpoint_id)
    # The identity names every filter (values escaped, which leaves these names alone).
    fields = dict(part.partition("=")[::2] for part in region.checkpoint_identity.split("|"))
    entity = fields.get("entity", "*").removeprefix("=")
    may_hold = entity == "*" or entity.startswith(_ENTITY_PREFIX.rstrip(":"))
    if not may_hold or fields.get("scope", "*") not in ("*", DEAD_LETTER_SCOPE):
        return None
    if fields.get("kind", "*") == "*":
        return lambda batch: [e for e in batch if e.kind != DEAD_LETTER_KIND]
    own = None if checkpoint_id is None else dead_letter_entity(checkpoint_id)
    if own is None or not region.matches((own, DEAD_LETTER_SCOPE), DEAD_LETTER_KIND):
        return None
    return lambda batch: [e for e in batch if e.kind != DEAD_LETTER_KIND or e.entity != own]


def _union_filter(
    members: list[Region], checkpoint_id: str | None
) -> Callable[[list[Event]], list[Event]] | None:
    """The filter of a union: a dead letter stays when a member that matches it lets it
    through (as that member's own worker would)."""
    filters = [(member, dead_letter_filter(member, checkpoint_id)) for member in members]
    if all(f is None for _, f in filters):
        return None

    def kept(event: Event) -> bool:
        return any(
            member.matches(event.coordinate, event.kind, tags=event.tags) and (f is None or f([event]))
            for member, f in filters
        )

    return lambda batch: [e for e in batch if e.kind != DEAD_LETTER_KIND or kept(e)]
