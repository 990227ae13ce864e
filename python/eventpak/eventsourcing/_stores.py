"""The stores the factories of one process share: one open ``ep.Store`` per data dir, held
by leases (a factory's own, and one per recorder it made), closed when the last lease goes.

A recorder holds a lease of its own because the library does not always keep the factory
that made it: its ``ProjectionRunner`` keeps only ``factory.tracking_recorder(view_class)``
and drops the factory, so a store closed with its factory would be closed under the view.
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import Any

import eventpak as ep

__all__ = ["StoreLease", "acquire", "hold_while_alive"]


class _Entry:
    """One data dir's open store and how many unreleased leases hold it."""

    __slots__ = ("key", "options", "store", "users")

    def __init__(self, key: str, store: ep.Store, options: dict[str, Any]) -> None:
        self.key = key
        self.store = store
        self.options = options
        self.users = 1


# Every store this process opened through a factory, by the real path of its data dir.
_entries: dict[str, _Entry] = {}
# Data dirs whose store the last lease's release is closing: set once the close is over. An
# acquire waits for it, since opening the dir again before then would meet the closing store's
# lock (ep.StoreLocked, in exclusive mode).
_closing: dict[str, threading.Event] = {}
# Reentrant: a recorder's lease is released by a finalizer, which a garbage collection may run
# in a thread that holds this lock already (opening a store allocates).
_lock = threading.RLock()


def _forget_stores_in_child() -> None:
    # A store opened before a fork belongs to the parent: the child opens its own (and
    # Store.close() in the child leaves the parent's store alone).
    global _lock
    _entries.clear()
    _closing.clear()
    _lock = threading.RLock()


os.register_at_fork(after_in_child=_forget_stores_in_child)


class StoreLease:
    """One user's hold on a shared store: the store stays open until every lease on it is
    released. :meth:`release` is idempotent."""

    __slots__ = ("_entry", "_released")

    def __init__(self, entry: _Entry) -> None:
        self._entry = entry
        self._released = False

    @property
    def store(self) -> ep.Store:
        """The store this lease holds."""
        return self._entry.store

    @property
    def released(self) -> bool:
        """True once :meth:`release` ran."""
        return self._released

    def share(self) -> StoreLease:
        """A new lease on the same store (this one must not be released yet)."""
        with _lock:
            if self._released:
                raise ValueError("a released lease cannot be shared")
            self._entry.users += 1
            return StoreLease(self._entry)

    def release(self) -> None:
        """Gives up this hold; the last one closes the store."""
        entry = self._entry
        with _lock:
            if self._released:
                return
            self._released = True
            entry.users -= 1
            if entry.users > 0:
                return
            if _entries.get(entry.key) is entry:
                del _entries[entry.key]
            if entry.store.closed:  # closed by its user directly: nothing to wait for
                return
            done = threading.Event()
            _closing[entry.key] = done
        # Closed outside the lock, so that other data dirs' factories need not wait for it
        # (writing the index checkpoint of a large store takes a while).
        try:
            entry.store.close()
        finally:
            with _lock:
                if _closing.get(entry.key) is done:
                    del _closing[entry.key]
            done.set()


def acquire(data_dir: str, options: dict[str, Any]) -> StoreLease:
    """A lease on the store of ``data_dir``: the one this process has open (which must have
    been opened with the same ``options``, else ``OSError``), or a new one."""
    key = os.path.realpath(data_dir)
    while True:
        with _lock:
            closing = _closing.get(key)
            if closing is None:
                entry = _entries.get(key)
                if entry is not None and not entry.store.closed:
                    if entry.options != options:
                        raise OSError(
                            f"eventpak data dir {data_dir!r} is already open in this process with other "
                            f"options ({entry.options} rather than {options}): give every application on "
                            "it the same EVENTPAK_* settings"
                        )
                    entry.users += 1
                    return StoreLease(entry)
                entry = _Entry(key, ep.Store.open(data_dir, **options), options)
                _entries[key] = entry
                return StoreLease(entry)
        closing.wait()


def hold_while_alive(holder: object, lease: StoreLease) -> None:
    """Releases ``lease`` when ``holder`` is garbage-collected (at the latest)."""
    # Not at interpreter exit: eventpak closes every open store then anyway.
    weakref.finalize(holder, lease.release).atexit = False
