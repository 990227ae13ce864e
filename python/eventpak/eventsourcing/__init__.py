"""eventpak as a persistence module of the ``eventsourcing`` library (9.5), with its DCB recorder.

Optional extra: ``pip install 'eventpak[eventsourcing]'``. Select it in an application's
environment::

    PERSISTENCE_MODULE=eventpak.eventsourcing
    EVENTPAK_DATA_DIR=/var/lib/myapp/events

Settings (each may be prefixed with the application's name in upper case, as the library's
settings may: ``BANKACCOUNTS_EVENTPAK_DATA_DIR``):

- ``EVENTPAK_DATA_DIR`` (required): the store's data dir;
- ``EVENTPAK_SYNC``, ``EVENTPAK_SYNC_EVERY_N_EVENTS``, ``EVENTPAK_SYNC_INTERVAL_MS``,
  ``EVENTPAK_SEGMENT_MAX_BYTES``, ``EVENTPAK_MAX_EVENT_BYTES``, ``EVENTPAK_MAX_BATCH_EVENTS``,
  ``EVENTPAK_MAX_BATCH_BYTES``, ``EVENTPAK_ENABLE_INDEX_CHECKPOINT``, ``EVENTPAK_CREATE``,
  ``EVENTPAK_READ_ONLY``, ``EVENTPAK_SHARED``, ``EVENTPAK_FENCE_WAIT_MS``: the store options of
  the same names (``ep.StoreConfig``), unset ones keeping eventpak's defaults. ``EVENTPAK_SHARED=1``
  lets several processes (web workers, process applications) use one data dir;
- ``EVENTPAK_ENCRYPTION_KEY``: the store key of an encrypted store, 64 hex digits (as the
  command line reads it), so the application's payloads are sealed at rest.

Factories of one process that name the same data dir share one open store, closed when the
last of them closes; a factory dropped without closing lets go of it, and each recorder holds
it too, until it is dropped or its factory closes. Tables are scopes: ``<name>_events`` for an
application's events, ``<name>_snapshots`` for its snapshots, ``<name>_tracking`` for its
tracking records and ``<name>_dcb`` for DCB events, ``<name>`` being the application's name in
lower case; so several applications can share a data dir (their notification ids then have
gaps).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from dataclasses import MISSING, fields
from typing import Any, TypeVar

try:
    from eventsourcing.dcb.persistence import DCBInfrastructureFactory
    from eventsourcing.persistence import (
        AggregateRecorder,
        ApplicationRecorder,
        InfrastructureFactory,
        ProcessRecorder,
    )
    from eventsourcing.utils import Environment, EnvType, resolve_topic, strtobool
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "eventpak.eventsourcing needs the eventsourcing library: pip install 'eventpak[eventsourcing]'"
    ) from exc

import eventpak as ep

from ._application import (
    EventpakApplicationRecorder,
    EventpakProcessRecorder,
    EventpakSubscription,
    EventpakTrackingRecorder,
)
from ._dcb import EventpakDCBReadResponse, EventpakDCBRecorder, EventpakDCBSubscription
from ._names import escape
from ._recorders import EventpakAggregateRecorder
from ._stores import StoreLease, acquire, hold_while_alive

__all__ = [
    "EventpakAggregateRecorder",
    "EventpakApplicationRecorder",
    "EventpakDCBReadResponse",
    "EventpakDCBRecorder",
    "EventpakDCBSubscription",
    "EventpakFactory",
    "EventpakProcessRecorder",
    "EventpakSubscription",
    "EventpakTrackingRecorder",
    "Factory",
]

# The store options read from EVENTPAK_<NAME>: every StoreConfig field with a str, int or bool
# default (the others, such as signing keys or upcasters, are not settings a string can carry).
_OPTION_TYPES: dict[str, type] = {
    field.name: type(field.default)
    for field in fields(ep.StoreConfig)
    if field.name != "path" and field.default is not MISSING and type(field.default) in (str, int, bool)
}

R = TypeVar("R")


class EventpakFactory(
    InfrastructureFactory[EventpakTrackingRecorder], DCBInfrastructureFactory[EventpakTrackingRecorder]
):
    """Builds the recorders of an application on one eventpak store (``EVENTPAK_DATA_DIR``),
    opened on first use and closed by :meth:`close` (the library calls it from
    ``Application.close()``)."""

    EVENTPAK_DATA_DIR = "EVENTPAK_DATA_DIR"
    EVENTPAK_OPTION_PREFIX = "EVENTPAK_"

    aggregate_recorder_class = EventpakAggregateRecorder
    application_recorder_class = EventpakApplicationRecorder
    tracking_recorder_class = EventpakTrackingRecorder
    process_recorder_class = EventpakProcessRecorder
    dcb_recorder_class = EventpakDCBRecorder

    def __init__(self, env: Environment | EnvType | None):
        super().__init__(env)
        data_dir = self.env.get(self.EVENTPAK_DATA_DIR)
        if not data_dir:
            raise OSError(
                "eventpak data dir not found in environment with keys: "
                f"{', '.join(self.env.create_keys(self.EVENTPAK_DATA_DIR))}"
            )
        self.data_dir = data_dir
        self.store_options = self._read_store_options()
        ep.StoreConfig(data_dir, **self.store_options)  # bad values fail here, before any file is touched
        self._lease: StoreLease | None = None  # the factory's own hold on the store
        self._lent: list[StoreLease] = []  # the holds of the recorders it made
        self._store_lock = threading.Lock()

    def _read_store_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {}
        for name, kind in _OPTION_TYPES.items():
            key = self.EVENTPAK_OPTION_PREFIX + name.upper()
            text = self.env.get(key)
            if text is None or not text.strip():
                continue
            try:
                if kind is bool:
                    options[name] = bool(strtobool(text.strip()))
                elif kind is int:
                    options[name] = int(text.strip())
                else:
                    options[name] = text.strip()
            except ValueError:
                expected = "a boolean such as 1, 0, true or false" if kind is bool else "an integer"
                raise OSError(
                    f"eventpak environment value for key '{key}' is invalid: {text!r} (expected {expected})"
                ) from None
        key = self.EVENTPAK_OPTION_PREFIX + "ENCRYPTION_KEY"
        text = self.env.get(key)
        if text is not None and text.strip():
            try:
                options["encryption_key"] = bytes.fromhex(text.strip())
            except ValueError:
                # The value is a secret: it is not repeated in the message.
                raise OSError(f"eventpak environment value for key '{key}' must be 64 hex digits") from None
        return options

    @property
    def store(self) -> ep.Store:
        """The eventpak store the recorders write to (opened on first use)."""
        with self._store_lock:
            return self._own_lease().store

    def _own_lease(self) -> StoreLease:
        """The factory's lease, taken now when it has none (call with ``_store_lock`` held)."""
        if self._lease is not None and self._lease.store.closed:  # its user closed it directly
            self._lease.release()
            self._lease = None
        if self._lease is None:
            self._lease = acquire(self.data_dir, self.store_options)
        return self._lease

    def _held(self, make: Callable[[ep.Store], R]) -> R:
        """A recorder ``make(store)`` holding a lease of its own on the store: it keeps the
        store open after this factory is dropped without :meth:`close` (the library's
        ``ProjectionRunner`` keeps only its view), until it is dropped too."""
        with self._store_lock:
            lease = self._own_lease().share()
            self._lent = [held for held in self._lent if not held.released]
            self._lent.append(lease)
        try:
            recorder = make(lease.store)
        except BaseException:
            lease.release()
            raise
        hold_while_alive(recorder, lease)
        return recorder

    def _table(self, purpose: str, default_prefix: str = "stored") -> str:
        prefix = escape(self.env.name.lower()) or default_prefix
        return f"{prefix}_{escape(purpose)}"

    def aggregate_recorder(self, purpose: str = "events") -> AggregateRecorder:
        table = self._table(purpose)
        recorder = self._held(lambda store: self.aggregate_recorder_class(store, table))
        recorder.skips_older = purpose == "snapshots"  # see EventpakAggregateRecorder
        return recorder

    def application_recorder(self) -> ApplicationRecorder:
        topic = self.env.get(self.APPLICATION_RECORDER_TOPIC)
        cls: type[EventpakApplicationRecorder] = (
            resolve_topic(topic) if topic else self.application_recorder_class
        )
        if not issubclass(cls, EventpakApplicationRecorder):
            raise TypeError(f"{topic} is not an EventpakApplicationRecorder")
        table = self._table("events")
        return self._held(lambda store: cls(store, table))

    def tracking_recorder(
        self, tracking_recorder_class: type[EventpakTrackingRecorder] | None = None
    ) -> EventpakTrackingRecorder:
        cls = tracking_recorder_class
        if cls is None:
            topic = self.env.get(self.TRACKING_RECORDER_TOPIC)
            cls = resolve_topic(topic) if topic else self.tracking_recorder_class
        if not issubclass(cls, EventpakTrackingRecorder):
            raise TypeError(f"{cls} is not an EventpakTrackingRecorder")
        tracking_cls, table = cls, self._table("tracking", "notification")
        return self._held(lambda store: tracking_cls(store, table))

    def process_recorder(self) -> ProcessRecorder:
        topic = self.env.get(self.PROCESS_RECORDER_TOPIC)
        cls: type[EventpakProcessRecorder] = resolve_topic(topic) if topic else self.process_recorder_class
        if not issubclass(cls, EventpakProcessRecorder):
            raise TypeError(f"{topic} is not an EventpakProcessRecorder")
        events, tracking = self._table("events"), self._table("tracking", "notification")
        return self._held(lambda store: cls(store, events, tracking))

    def dcb_recorder(self) -> EventpakDCBRecorder:
        table = self._table("dcb")
        return self._held(lambda store: self.dcb_recorder_class(store, table))

    def close(self) -> None:
        """Releases the store for this factory and every recorder it made (the library calls it
        from ``Application.close()``): it closes when no other factory of this process, nor a
        recorder of one, still holds it."""
        with self._store_lock:
            leases = [*self._lent, *([self._lease] if self._lease is not None else [])]
            self._lease, self._lent = None, []
        for lease in leases:
            lease.release()

    def __del__(self) -> None:
        # As the library's SQLite datastore does: a factory dropped without close() lets go of
        # the store, but only of its own hold: the recorders it made may outlive it.
        with contextlib.suppress(Exception):  # interpreter shutdown, or a failed __init__
            lease, self._lease = self._lease, None
            if lease is not None:
                lease.release()


Factory = EventpakFactory

# The classes are documented (and their topics resolve) under this module's name.
for _cls in (
    EventpakAggregateRecorder,
    EventpakApplicationRecorder,
    EventpakDCBReadResponse,
    EventpakDCBRecorder,
    EventpakDCBSubscription,
    EventpakProcessRecorder,
    EventpakSubscription,
    EventpakTrackingRecorder,
):
    _cls.__module__ = __name__
del _cls
