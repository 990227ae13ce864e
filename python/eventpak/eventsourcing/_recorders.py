"""The aggregate recorder of the ``eventsourcing`` library on an eventpak store, and what the
other recorders (``_application``, ``_dcb``) share with it.

- The stored events of one originator are the events of one entity, ``<table>:<id>``, in the
  scope ``<table>`` (see ``_names``); the topic is the event kind.
- ``originator_version`` is checked with compare-and-set on the entity clock
  (``expected_sequence``): an insert names the clock it saw, so two writers of the same version
  cannot both succeed, in one process or several. Versions of one originator must increase
  (each insert's versions above every recorded one); anything else raises ``IntegrityError``
  and writes nothing (but a snapshot older than the newest one: taken, not stored). A batch of
  events of several originators is one atomic ``append_batch``.
- The payload is the state bytes themselves when ``originator_version == entity_sequence + 1``
  (how the library numbers an aggregate's events), else ``[version, state]``; when the topic is
  too long for a kind, ``[version, state, topic]``.
- A notification id is ``global_sequence + 1`` (ids start at 1). Events of other tables sharing
  the data dir (snapshots, other applications) leave gaps in an application's ids.
- Tracking records are eventpak tracking records (``ep.Tracking``), named
  ``<tracking table>:<application name>``; a process recorder commits them with its events in
  one batch.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from eventsourcing.persistence import (
    AggregateRecorder,
    IntegrityError,
    ProgrammingError,
    StoredEvent,
    Tracking,
)

import eventpak as ep
from eventpak._native import replay_head

from ._names import entity_name, kind_for_topic, topic_of_kind

if TYPE_CHECKING:
    from uuid import UUID

__all__ = ["EventpakAggregateRecorder", "last_matching_sequence"]

# How many times an insert re-reads an originator's clock after another writer moved it.
_MAX_ATTEMPTS = 64
# How many originators' clocks a recorder remembers between inserts.
_CLOCK_CACHE_SIZE = 65536
# A subscription waits this long per pull (a commit ends the wait at once; stop() too).
_PULL_WAIT_SECONDS = 3600.0
_PULL_BATCH = 500


class _Clocks:
    """What a recorder last knew of each originator: ``(next entity_sequence, last version)``.
    Only a guess: every insert checks it with compare-and-set, and re-reads it when another
    writer (thread or process) moved the clock."""

    def __init__(self) -> None:
        self._known: dict[str, tuple[int, int]] = {}
        self._lock = threading.Lock()

    def get(self, entity: str) -> tuple[int, int] | None:
        return self._known.get(entity)

    def set(self, entity: str, next_sequence: int, last_version: int) -> None:
        known = self._known
        known[entity] = (next_sequence, last_version)  # one atomic dict store
        if len(known) > _CLOCK_CACHE_SIZE:
            with self._lock:
                while len(known) > _CLOCK_CACHE_SIZE:
                    known.pop(next(iter(known)), None)  # the oldest entries

    def forget(self, entity: str) -> None:
        with self._lock:
            self._known.pop(entity, None)


def _version_and_state(event: ep.Event) -> tuple[int, bytes, str | None]:
    """``(originator_version, state, topic)`` of a stored event; the topic is ``None`` when the
    kind gives it."""
    payload = event.payload
    if type(payload) is bytes:
        return event.entity_sequence + 1, payload, None
    topic = payload[2] if len(payload) > 2 else None
    return payload[0], payload[1], topic


def _topic(event: ep.Event, topic: str | None) -> str:
    """The topic of a stored event: from its kind, or from its payload when the kind is a digest."""
    if topic is not None:
        return topic
    from_kind = topic_of_kind(event.kind)
    if from_kind is None:
        raise ProgrammingError(f"event {event.global_sequence} has a digest kind but no topic in its payload")
    return from_kind


def last_matching_sequence(store: ep.Store, region: ep.Region) -> int | None:
    """The global sequence of the newest visible event of ``region`` (the last one
    ``store.query(region)`` returns), if any: found in the index from the newest end (an empty
    kind list is every kind), reading no event, however many other tables' events follow it."""
    return replay_head(store._native, region, [])


def _native_tracking(name: str, tracking: Tracking) -> ep.Tracking:
    """``ep.Tracking(name, position)``: the position is the upstream notification id."""
    return ep.Tracking(name, tracking.notification_id)


class EventpakAggregateRecorder(AggregateRecorder):
    """Stored events of aggregates (or snapshots) in one table of an eventpak store.

    A snapshot recorder (``skips_older``) takes a snapshot older than the originator's newest
    one as recorded without storing it: another process got further first, and the newer
    snapshot serves every read the older one would have (the library takes snapshots after
    the events are committed, so raising there would report a save that succeeded as failed).
    """

    skips_older = False

    def __init__(self, store: ep.Store, events_table: str) -> None:
        self.store = store
        self.events_table = events_table
        self._entity_prefix = events_table + ":"
        self._table_region = ep.Region.scope(events_table)
        self._clocks = _Clocks()

    # --- writing ---------------------------------------------------------------------------

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        self._insert(stored_events, None)
        return None

    def _insert(
        self, stored_events: Sequence[StoredEvent], tracking: Tracking | None
    ) -> list[ep.AppendReceipt]:
        if not stored_events and tracking is None:
            return []
        table = self.events_table
        rows = [(entity_name(table, s.originator_id), *kind_for_topic(s.topic), s) for s in stored_events]
        native_tracking = None
        if tracking is not None:
            native_tracking = _native_tracking(self._tracking_name(tracking.application_name), tracking)
        fresh: set[str] = set()  # entities whose clock must be read from the store this time
        for _ in range(_MAX_ATTEMPTS):
            items, ends = self._items(rows, fresh)
            try:
                receipts = self.store.append_batch(items, tracking=native_tracking)
            except ep.ConcurrencyConflict as conflict:
                self._clocks.forget(conflict.entity)
                fresh.add(conflict.entity)
                continue
            except ep.TrackingConflict as conflict:
                raise IntegrityError(str(conflict)) from conflict
            for entity, (next_sequence, last_version) in ends.items():
                self._clocks.set(entity, next_sequence, last_version)
            return receipts
        raise IntegrityError(f"gave up after {_MAX_ATTEMPTS} attempts: other writers kept moving the clocks")

    def _tracking_name(self, application_name: str) -> str:
        raise ProgrammingError(f"{type(self).__name__} records no tracking: use a process recorder")

    def _clock(self, entity: str, first_version: int, fresh: bool) -> tuple[int, int | None]:
        """``(next entity_sequence, last version or None)`` of ``entity``, as the recorder
        believes it: remembered, or guessed "new" for the first event of an aggregate (version
        0 or 1), else read from the store."""
        if not fresh:
            known = self._clocks.get(entity)
            if known is not None:
                return known
            if first_version <= 1:
                return 0, None
        next_sequence = self.store.next_sequence(entity)
        if next_sequence == 0:
            return 0, None
        return next_sequence, self._version_at(entity, next_sequence - 1)

    def _items(
        self, rows: list[tuple[str, str, bool, StoredEvent]], fresh: set[str]
    ) -> tuple[list[ep.AppendRequest | tuple[tuple[str, str], str, Any]], dict[str, tuple[int, int]]]:
        """The batch items of an insert, and each originator's clock and last version after it.
        The first event of each originator carries the clock it expects."""
        items: list[ep.AppendRequest | tuple[tuple[str, str], str, Any]] = []
        ends: dict[str, tuple[int, int]] = {}
        table = self.events_table
        for entity, kind, hashed, stored in rows:
            version = stored.originator_version
            end = ends.get(entity)
            if end is None:
                sequence, last_version = self._clock(entity, version, entity in fresh)
            else:
                sequence, last_version = end
            if last_version is not None and version < last_version and self.skips_older:
                continue
            if last_version is not None and version <= last_version:
                raise IntegrityError(
                    f"stored event already recorded or out of order: originator {stored.originator_id!r} "
                    f"version {version} (its last recorded version is {last_version})"
                )
            state = stored.state if type(stored.state) is bytes else bytes(stored.state)
            payload: Any
            if hashed:
                payload = [version, state, stored.topic]
            elif version == sequence + 1:
                payload = state
            else:
                payload = [version, state]
            if end is None:
                items.append(ep.AppendRequest((entity, table), kind, payload, expected_sequence=sequence))
            else:
                items.append(((entity, table), kind, payload))
            ends[entity] = (sequence + 1, version)
        return items, ends

    # --- reading ---------------------------------------------------------------------------

    def _version_at(self, entity: str, sequence: int) -> int:
        region = ep.Region.entity(entity, exact=True).with_clock_range(sequence, sequence)
        events = self.store.query(region, limit=1)
        if not events:  # cannot happen for a sequence below next_sequence: visible events stay
            raise ProgrammingError(f"entity {entity!r} has no event at clock {sequence}")
        return _version_and_state(events[0])[0]

    def _first_above(self, entity: str, version: int, count: int) -> int:
        """The clock of the first event of ``entity`` whose originator version is above
        ``version`` (``count`` when there is none), among its first ``count`` events. Versions
        increase with the clock; the library's numbering (version = clock + 1) is tried first,
        then a binary search."""
        guess = min(max(version, 0), count)
        if (guess == count or self._version_at(entity, guess) > version) and (
            guess == 0 or self._version_at(entity, guess - 1) <= version
        ):
            return guess
        low, high = 0, count
        while low < high:
            middle = (low + high) // 2
            if self._version_at(entity, middle) > version:
                high = middle
            else:
                low = middle + 1
        return low

    def select_events(
        self,
        originator_id: UUID | str,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> Sequence[StoredEvent]:
        if limit is not None and limit <= 0:
            return []
        entity = entity_name(self.events_table, originator_id)
        region = ep.Region.entity(entity, exact=True)
        if gt is None and lte is None and not (desc and limit is not None):
            events = self.store.query(region, limit=None if desc else limit)
            if desc:
                events.reverse()
            to_the_end = desc or limit is None or len(events) < limit
        else:
            count = self.store.next_sequence(entity)
            low = 0 if gt is None else self._first_above(entity, gt, count)
            high = count if lte is None else self._first_above(entity, lte, count)
            if limit is not None:
                if desc:
                    low = max(low, high - limit)
                else:
                    high = min(high, low + limit)
            events = self.store.query(region.with_clock_range(low, high - 1)) if low < high else []
            to_the_end = bool(events) and high == count
            if desc:
                events.reverse()
        result = [
            StoredEvent(
                originator_id=originator_id,
                originator_version=version,
                topic=_topic(event, topic),
                state=state,
            )
            for event in events
            for version, state, topic in (_version_and_state(event),)
        ]
        if to_the_end and events:
            # The stream's last event was read: the next insert needs no look-up.
            last = events[0] if desc else events[-1]
            self._clocks.set(entity, last.entity_sequence + 1, result[0 if desc else -1].originator_version)
        return result
