"""Every open store, so that interpreter exit can stop their workers and close them."""

from __future__ import annotations

import logging
import weakref
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .store import Store

__all__ = ["close_open_stores_at_exit", "open_stores"]

open_stores: weakref.WeakSet[Store] = weakref.WeakSet()
"""The stores opened and not yet closed (held weakly: a dropped store closes itself)."""
# How long interpreter exit waits, per store, for handlers still running.
_EXIT_WORKER_TIMEOUT_S = 5.0


def close_open_stores_at_exit() -> None:
    """Interpreter exit: stop every open store's workers (bounded), then close the stores, so
    nothing acknowledged is lost and no worker thread is left inside the engine."""
    log = logging.getLogger("eventpak")
    for store in list(open_stores):
        try:
            try:
                store.close(timeout=_EXIT_WORKER_TIMEOUT_S)
            except KeyboardInterrupt:
                # A second Ctrl-C while exit waits for handlers: it asks not to wait. The
                # store is still closed (synced, checkpointed, released); the handlers left
                # running are abandoned, as after the timeout.
                log.warning("interrupted: closing %s without waiting for its workers", store.path)
                store.close(timeout=0)
        except BaseException:  # exit goes on: say what failed, and close the other stores
            log.exception("closing %s at interpreter exit failed", store.path)
