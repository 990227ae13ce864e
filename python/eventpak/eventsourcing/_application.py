"""The application, tracking and process recorders of the ``eventsourcing`` library, on an
eventpak store (the aggregate recorder they build on is in ``_recorders``).

- A notification id is ``global_sequence + 1`` (ids start at 1). Events of other tables sharing
  the data dir (snapshots, other applications) leave gaps in an application's ids.
- Subscriptions wait in a cursor's ``pull_batch``, woken by any process's commit.
- Tracking records are eventpak tracking records (``ep.Tracking``), named
  ``<tracking table>:<application name>``; a process recorder commits them with its events in
  one batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from eventsourcing.persistence import (
    ApplicationRecorder,
    IntegrityError,
    Notification,
    ProcessRecorder,
    StoredEvent,
    Subscription,
    Tracking,
    TrackingRecorder,
)

import eventpak as ep

from ._names import kind_for_topic, originator_id_of, topic_of_kind, tracking_name
from ._recorders import (
    _PULL_BATCH,
    _PULL_WAIT_SECONDS,
    EventpakAggregateRecorder,
    _native_tracking,
    _topic,
    _version_and_state,
    last_matching_sequence,
)

if TYPE_CHECKING:
    pass

__all__ = [
    "EventpakApplicationRecorder",
    "EventpakProcessRecorder",
    "EventpakSubscription",
    "EventpakTrackingRecorder",
]


class EventpakApplicationRecorder(EventpakAggregateRecorder, ApplicationRecorder):
    """Stored events and their notifications (the application sequence)."""

    def __init__(self, store: ep.Store, events_table: str) -> None:
        super().__init__(store, events_table)
        self._regions: dict[tuple[str, ...], ep.Region] = {}

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        return [receipt.global_sequence + 1 for receipt in self._insert(stored_events, None)]

    def notification_region(self, topics: Sequence[str] = ()) -> ep.Region:
        """The region of this application's notifications (of ``topics`` when given)."""
        key = tuple(topics)
        region = self._regions.get(key)
        if region is None:
            region = self._table_region
            if key:
                region = region.with_kinds([kind_for_topic(topic)[0] for topic in key])
            if len(self._regions) < 1024:
                self._regions[key] = region
        return region

    def notification(self, event: ep.Event) -> Notification:
        """The notification of one stored event of this application."""
        return self.notifications([event])[0]

    def notifications(self, events: list[ep.Event]) -> list[Notification]:
        """The notifications of stored events of this application (the hot loop of reading the
        notification log: the common case inline)."""
        prefix_len = len(self._entity_prefix)
        kind_topic = topic_of_kind
        originator = originator_id_of
        result = []
        for event in events:
            payload = event.payload
            if type(payload) is bytes:
                version, state = event.entity_sequence + 1, payload
                topic = kind_topic(event.kind) or _topic(event, None)
            else:
                version, state, stored_topic = _version_and_state(event)
                topic = _topic(event, stored_topic)
            result.append(
                Notification(
                    id=event.global_sequence + 1,
                    originator_id=originator(event.entity, prefix_len),
                    originator_version=version,
                    topic=topic,
                    state=state,
                )
            )
        return result

    def select_notifications(
        self,
        start: int | None,
        limit: int,
        stop: int | None = None,
        topics: Sequence[str] = (),
        *,
        inclusive_of_start: bool = True,
    ) -> Sequence[Notification]:
        first_id = 1 if start is None else start if inclusive_of_start else start + 1
        first_id = max(first_id, 1)
        if limit <= 0 or (stop is not None and stop < first_id):
            return []
        after = first_id - 2  # notification id n is global_sequence n - 1
        events = self.store.query(
            self.notification_region(topics), after=after if after >= 0 else None, limit=limit
        )
        if stop is not None:
            last_sequence = stop - 1
            while events and events[-1].global_sequence > last_sequence:
                events.pop()
        return self.notifications(events)

    def max_notification_id(self) -> int | None:
        sequence = last_matching_sequence(self.store, self._table_region)
        return None if sequence is None else sequence + 1

    def subscribe(
        self, gt: int | None = None, topics: Sequence[str] = ()
    ) -> Subscription[ApplicationRecorder]:
        return EventpakSubscription(self, gt=gt, topics=topics)


class EventpakSubscription(Subscription[EventpakApplicationRecorder]):
    """Notifications after ``gt``, then each new one as it is committed: an eventpak cursor
    whose ``pull_batch`` is woken by commits (of any process sharing the data dir), never a
    polling loop; ``stop()`` interrupts a waiting pull."""

    def __init__(
        self, recorder: EventpakApplicationRecorder, gt: int | None = None, topics: Sequence[str] = ()
    ) -> None:
        super().__init__(recorder=recorder, gt=gt, topics=topics)
        after = gt - 1 if gt is not None and gt >= 1 else None
        self._cursor = recorder.store.cursor(recorder.notification_region(topics), after=after)
        self._batch: list[ep.Event] = []
        self._index = 0

    def stop(self) -> None:
        super().stop()
        self._cursor.interrupt()

    def __next__(self) -> Notification:
        while not self._has_been_stopped:
            if self._index < len(self._batch):
                event = self._batch[self._index]
                self._index += 1
                notification = self._recorder.notification(event)
                self._last_notification_id = notification.id
                return notification
            self._batch = self._cursor.pull_batch(_PULL_BATCH, _PULL_WAIT_SECONDS)
            self._index = 0
        raise StopIteration


class EventpakTrackingRecorder(TrackingRecorder):
    """Tracking records: the last upstream notification id each upstream application's
    events were processed up to, as eventpak tracking records (no events, no sequence)."""

    def __init__(self, store: ep.Store, tracking_table: str) -> None:
        self.store = store
        self.tracking_table = tracking_table

    def _tracking_name(self, application_name: str) -> str:
        return tracking_name(self.tracking_table, application_name)

    def insert_tracking(self, tracking: Tracking) -> None:
        native = _native_tracking(self._tracking_name(tracking.application_name), tracking)
        try:
            self.store.append_batch([], tracking=native)
        except ep.TrackingConflict as conflict:
            raise IntegrityError(str(conflict)) from conflict

    def max_tracking_id(self, application_name: str) -> int | None:
        return self.store.tracking_position(self._tracking_name(application_name))


class EventpakProcessRecorder(EventpakTrackingRecorder, EventpakApplicationRecorder, ProcessRecorder):
    """An application recorder whose inserts may carry a tracking record, committed in the
    same atomic batch as the events (exactly-once consume-transform-produce)."""

    def __init__(self, store: ep.Store, events_table: str, tracking_table: str) -> None:
        EventpakApplicationRecorder.__init__(self, store, events_table)
        EventpakTrackingRecorder.__init__(self, store, tracking_table)

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        tracking: Tracking | None = kwargs.get("tracking")
        return [receipt.global_sequence + 1 for receipt in self._insert(stored_events, tracking)]
