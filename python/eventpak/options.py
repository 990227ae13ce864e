"""The arguments of an append: coordinates, batch items and the keyword options."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, TypedDict

from ._native import AppendCondition, AppendReceipt, AppendRequest, Coordinate, Event, PriorItem, Tracking

__all__ = ["COMMIT_OPTIONS", "AppendOptions", "BatchItem", "CoordinateLike", "EventOptions"]

# A list of two str is accepted too; not `Sequence[str]`, which a bare str would satisfy.
CoordinateLike = Coordinate | tuple[str, str] | list[str]
BatchItem = AppendRequest | tuple[CoordinateLike, str, Any]


class EventOptions(TypedDict, total=False):
    """Optional keywords of one event (:class:`AppendRequest`, a fence's ``append``)."""

    idempotency_key: str | bytes | None
    """At most 64 bytes: a retry with the same key and content returns the original
    receipt and writes nothing; the same key with other content raises
    ``ep.IdempotencyConflict``."""
    expected_sequence: int | None
    """Compare-and-set on the entity's clock: the append succeeds only if the entity's next
    ``entity_sequence`` is this (``0``: the entity has no events yet)."""
    causation_id: uuid.UUID | str | PriorItem | None
    """The id of the event that caused this one (in a batch, ``ep.PriorItem(k)``: item ``k``)."""
    correlation_id: uuid.UUID | str | None
    """Groups related events; defaults to the event's own id."""
    caused_by: Event | AppendReceipt | uuid.UUID | str | PriorItem | None
    """The cause, whose id becomes ``causation_id`` and whose correlation id becomes this
    event's (unless ``correlation_id`` is given). Not together with ``causation_id``."""
    payload_version: int | None
    """The schema version of the payload (default 0), stored with the event; upcasters bring
    older versions up to date on read."""
    tags: Sequence[str] | None
    """Labels the event carries, kept in this order (``event.tags``) and indexed:
    ``Region.all().with_tags([...])`` finds the events carrying them. At most 64, each 1-255
    bytes of UTF-8 without control bytes, none twice; else ``ep.InvalidTag``."""


class AppendOptions(EventOptions, total=False):
    """Optional keywords of :meth:`Store.append`: those of one event, and what the append
    may carry besides it."""

    condition: AppendCondition | None
    """Appends only if no visible event matching ``condition.fail_if_events_match`` was
    committed after ``condition.after``, checked in one atomic step with the write; else
    ``ep.AppendConditionFailed`` and nothing is written."""
    tracking: Tracking | None
    """Records ``tracking.position`` for ``tracking.name`` in the same atomic commit; it takes
    no global sequence, and a position at or below the recorded one raises
    ``ep.TrackingConflict`` and writes nothing. A keyed batch already committed returns its
    original receipts before the condition or the tracking position is checked."""


COMMIT_OPTIONS = tuple(k for k in AppendOptions.__annotations__ if k not in EventOptions.__annotations__)
"""The options of a whole commit (``condition``, ``tracking``), which no event carries."""
