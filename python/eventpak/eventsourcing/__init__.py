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
  lets several processes (web workers, process applications) use one data dir.

Factories of one process that name the same data dir share one open store (closed when the
last of them closes). Tables are scopes: ``<name>_events`` for an application's events,
``<name>_snapshots`` for its snapshots, ``<name>_tracking`` for its tracking records and
``<name>_dcb`` for DCB events, ``<name>`` being the application's name in lower case; so
several applications can share a data dir (their notification ids then have gaps).
"""

from __future__ import annotations

import contextlib
import os
import threading
from dataclasses import MISSING, dataclass, fields
from typing import Any

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


@dataclass
class _OpenStore:
    store: ep.Store
    options: dict[str, Any]
    users: int


# Every store this process opened through a factory, by the real path of its data dir.
_open_stores: dict[str, _OpenStore] = {}
_open_stores_lock = threading.Lock()


def _forget_stores_in_child() -> None:
    # A store opened before a fork belongs to the parent: the child opens its own.
    global _open_stores_lock
    _open_stores.clear()
    _open_stores_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_stores_in_child)


def _acquire_store(data_dir: str, options: dict[str, Any]) -> ep.Store:
    key = os.path.realpath(data_dir)
    with _open_stores_lock:
        entry = _open_stores.get(key)
        if entry is not None and not entry.store.closed:
            if entry.options != options:
                raise OSError(
                    f"eventpak data dir {data_dir!r} is already open in this process with other options "
                    f"({entry.options} rather than {options}): give every application on it the same "
                    "EVENTPAK_* settings"
                )
            entry.users += 1
            return entry.store
        store = ep.Store.open(data_dir, **options)
        _open_stores[key] = _OpenStore(store, options, 1)
        return store


def _release_store(store: ep.Store) -> None:
    with _open_stores_lock:
        for key, entry in list(_open_stores.items()):
            if entry.store is store:
                entry.users -= 1
                if entry.users > 0:
                    return
                del _open_stores[key]
                break
    store.close()


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
        self._store: ep.Store | None = None
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
        return options

    @property
    def store(self) -> ep.Store:
        """The eventpak store the recorders write to (opened on first use)."""
        with self._store_lock:
            if self._store is None or self._store.closed:
                self._store = _acquire_store(self.data_dir, self.store_options)
            return self._store

    def _table(self, purpose: str, default_prefix: str = "stored") -> str:
        prefix = escape(self.env.name.lower()) or default_prefix
        return f"{prefix}_{escape(purpose)}"

    def aggregate_recorder(self, purpose: str = "events") -> AggregateRecorder:
        recorder = self.aggregate_recorder_class(self.store, self._table(purpose))
        recorder.skips_older = purpose == "snapshots"  # see EventpakAggregateRecorder
        return recorder

    def application_recorder(self) -> ApplicationRecorder:
        topic = self.env.get(self.APPLICATION_RECORDER_TOPIC)
        cls: type[EventpakApplicationRecorder] = (
            resolve_topic(topic) if topic else self.application_recorder_class
        )
        if not issubclass(cls, EventpakApplicationRecorder):
            raise TypeError(f"{topic} is not an EventpakApplicationRecorder")
        return cls(self.store, self._table("events"))

    def tracking_recorder(
        self, tracking_recorder_class: type[EventpakTrackingRecorder] | None = None
    ) -> EventpakTrackingRecorder:
        cls = tracking_recorder_class
        if cls is None:
            topic = self.env.get(self.TRACKING_RECORDER_TOPIC)
            cls = resolve_topic(topic) if topic else self.tracking_recorder_class
        if not issubclass(cls, EventpakTrackingRecorder):
            raise TypeError(f"{cls} is not an EventpakTrackingRecorder")
        return cls(self.store, self._table("tracking", "notification"))

    def process_recorder(self) -> ProcessRecorder:
        topic = self.env.get(self.PROCESS_RECORDER_TOPIC)
        cls: type[EventpakProcessRecorder] = resolve_topic(topic) if topic else self.process_recorder_class
        if not issubclass(cls, EventpakProcessRecorder):
            raise TypeError(f"{topic} is not an EventpakProcessRecorder")
        return cls(self.store, self._table("events"), self._table("tracking", "notification"))

    def dcb_recorder(self) -> EventpakDCBRecorder:
        return self.dcb_recorder_class(self.store, self._table("dcb"))

    def close(self) -> None:
        """Releases the store (closed when no other factory of this process uses it)."""
        with self._store_lock:
            store, self._store = self._store, None
        if store is not None and not store.closed:
            _release_store(store)

    def __del__(self) -> None:
        # As the library's SQLite datastore does: a factory dropped without close() releases
        # its store (applications are not always closed).
        with contextlib.suppress(Exception):  # interpreter shutdown
            self.close()


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
