"""The DCB recorder of ``eventsourcing.dcb`` (dynamic consistency boundaries) on an eventpak store.

- A DCB event is an eventpak event in the scope ``<table>`` (entity ``<table>`` too: DCB events
  belong to no stream), its type the kind (escaped as topics are, see ``_names``), its data the
  payload bytes, its tags eventpak tags (literal: matched and indexed as they are). A tag given
  twice is stored once (the library matches tags as a set); eventpak's other tag rules apply
  and raise ``ep.InvalidTag``.
- A DCB position is ``global_sequence + 1`` (positions start at 1); ``after=p`` (events with a
  position above ``p``) reads strictly after ``global_sequence p - 1``.
- A query is the union (``Region.any_of``) of one region per item: the item's types as kinds, its
  tags as ``with_tags`` (events carrying every one). A query without items matches every DCB
  event; an item with a tag no event can carry matches none.
- An append condition is an ``ep.AppendCondition`` on the same region, checked atomically with
  the append; ``ep.AppendConditionFailed`` becomes the library's ``IntegrityError``.
- ``head`` of a read without a limit is the position of the newest DCB event when the read
  began (or the last one returned, if newer); with a limit, the last one returned.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import Any

from eventsourcing.dcb.api import (
    DCBAppendCondition,
    DCBEvent,
    DCBQuery,
    DCBReadResponse,
    DCBRecorder,
    DCBSequencedEvent,
    DCBSubscription,
)
from eventsourcing.persistence import IntegrityError, ProgrammingError

import eventpak as ep

from ._names import kind_for_topic, topic_of_kind
from ._recorders import last_matching_sequence

__all__ = ["EventpakDCBReadResponse", "EventpakDCBRecorder", "EventpakDCBSubscription"]

_PULL_WAIT_SECONDS = 3600.0
_PULL_BATCH = 500


def _after_sequence(after: int | None) -> int | None:
    """The global sequence strictly after which events have a position above ``after``."""
    return after - 1 if after is not None and after >= 1 else None


def _dcb_event(event: ep.Event) -> DCBSequencedEvent:
    payload = event.payload
    if type(payload) is bytes:
        type_ = topic_of_kind(event.kind)
        data = payload
    else:  # a type too long for a kind travels in the payload
        data, type_ = payload[0], payload[1]
    if type_ is None:
        raise ProgrammingError(f"event {event.global_sequence} has a digest kind but no type in its payload")
    return DCBSequencedEvent(
        event=DCBEvent(type=type_, data=data, tags=list(event.tags)), position=event.global_sequence + 1
    )


def _distinct(tags: Any) -> Any:
    """``tags`` with every repeat left out, in the order of their first occurrence.

    The library's recorders take a tag twice on one event (``EnduringObject.trigger_event``
    adds the object's id before the tags it is given, which may name it again) and match tags
    as a set, where a repeat changes nothing; eventpak refuses one. What is not a list or
    tuple of str is passed on as it is, for the store to refuse with its own error."""
    if isinstance(tags, (list, tuple)) and all(isinstance(tag, str) for tag in tags):
        return list(dict.fromkeys(tags))
    return tags


class EventpakDCBReadResponse(DCBReadResponse):
    """The events of one read, converted as they are iterated."""

    def __init__(self, events: list[ep.Event], head: int | None) -> None:
        self._events = iter(events)
        self._head = head

    @property
    def head(self) -> int | None:
        return self._head

    def __next__(self) -> DCBSequencedEvent:
        return _dcb_event(next(self._events))


class EventpakDCBRecorder(DCBRecorder):
    """DCB events in one table (scope) of an eventpak store."""

    def __init__(self, store: ep.Store, table: str) -> None:
        self.store = store
        self.table = table
        self._coordinate = (table, table)
        self._table_region = ep.Region.scope(table)

    def region(self, query: DCBQuery | None) -> ep.Region | None:
        """The eventpak region of a DCB query; ``None`` when no event can match it."""
        if query is None or not query.items:
            return self._table_region
        regions = []
        for item in query.items:
            region = self._table_region
            if item.types:
                region = region.with_kinds([kind_for_topic(type_)[0] for type_ in item.types])
            if item.tags:
                try:
                    region = region.with_tags(list(dict.fromkeys(item.tags)))
                except ep.InvalidTag as exc:
                    if isinstance(exc, TypeError):
                        raise  # not a str at all: the caller's mistake, not an unmatchable tag
                    continue  # a tag no event can carry: the item matches nothing
            regions.append(region)
        if not regions:
            return None
        if len(regions) == 1:
            return regions[0]
        return ep.Region.any_of(regions)

    def read(
        self,
        query: DCBQuery | None = None,
        *,
        after: int | None = None,
        limit: int | None = None,
    ) -> DCBReadResponse:
        if limit is not None and limit <= 0:
            return EventpakDCBReadResponse([], None)
        head = None
        if limit is None:  # the newest position before reading: a safe `after` for a condition
            newest = last_matching_sequence(self.store, self._table_region)
            head = None if newest is None else newest + 1
        region = self.region(query)
        events = [] if region is None else self.store.query(region, after=_after_sequence(after), limit=limit)
        if events:
            last = events[-1].global_sequence + 1
            head = last if head is None or last > head else head
        return EventpakDCBReadResponse(events, head)

    def append(self, events: Sequence[DCBEvent], condition: DCBAppendCondition | None = None) -> int:
        if len(events) == 0:
            raise ProgrammingError("a DCB append needs at least one event")
        items = []
        for event in events:
            kind, hashed = kind_for_topic(event.type)
            data = event.data if type(event.data) is bytes else bytes(event.data)
            payload: Any = [data, event.type] if hashed else data
            items.append(ep.AppendRequest(self._coordinate, kind, payload, tags=_distinct(event.tags)))
        native_condition = None
        if condition is not None:
            region = self.region(condition.fail_if_events_match)
            if region is not None:  # else no event can match: nothing to check
                native_condition = ep.AppendCondition(region, after=_after_sequence(condition.after))
        try:
            receipts = self.store.append_batch(items, condition=native_condition)
        except ep.AppendConditionFailed as failed:
            raise IntegrityError(condition) from failed
        return receipts[-1].global_sequence + 1

    def subscribe(
        self,
        query: DCBQuery | None = None,
        *,
        after: int | None = None,
    ) -> EventpakDCBSubscription:
        return EventpakDCBSubscription(self, query=query, after=after)


class EventpakDCBSubscription(DCBSubscription[EventpakDCBRecorder]):
    """The events of a query after ``after``, then each new one as it is committed: an
    eventpak cursor woken by commits, never a polling loop; ``stop()`` interrupts its wait."""

    def __init__(
        self, recorder: EventpakDCBRecorder, query: DCBQuery | None = None, after: int | None = None
    ) -> None:
        super().__init__(recorder=recorder, query=query, after=after)
        region = recorder.region(query)
        self._cursor = None if region is None else recorder.store.cursor(region, after=_after_sequence(after))
        self._stopped = threading.Event()
        self._batch: Iterator[ep.Event] = iter(())

    def stop(self) -> None:
        super().stop()
        self._stopped.set()
        if self._cursor is not None:
            self._cursor.interrupt()

    def __next__(self) -> DCBSequencedEvent:
        while not self._has_been_stopped:
            event = next(self._batch, None)
            if event is not None:
                sequenced = _dcb_event(event)
                self._last_position = sequenced.position
                return sequenced
            if self._cursor is None:  # a query nothing can match: wait to be stopped
                self._stopped.wait()
                continue
            self._batch = iter(self._cursor.pull_batch(_PULL_BATCH, _PULL_WAIT_SECONDS))
        raise StopIteration
