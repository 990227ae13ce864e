"""What an operator looks at: durable checkpoints with their lag, and the store's metrics
(``Store.checkpoints()``, ``Store.metrics()``; ``eventpak.prometheus`` exports the latter)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypedDict

from .dead_letters import count_dead_letters

if TYPE_CHECKING:
    from .store import Store

__all__ = [
    "CheckpointInfo",
    "CheckpointMetrics",
    "StoreMetrics",
    "lag_seconds",
    "list_checkpoints",
    "metrics",
]


@dataclass(frozen=True)
class CheckpointInfo:
    """A durable cursor checkpoint of the data dir and how far behind its region it is.

    ``position`` is the last committed global sequence (``None`` when nothing was committed
    yet). ``saved_at_us`` is when the checkpoint was last saved (the file's modification
    time, µs since the epoch). ``lag_events`` counts the visible events of the checkpoint's
    region after ``position``; ``lag_seconds`` is the age of the oldest of them (0.0 when
    caught up). Both are ``None`` when the checkpoint names no region this version can read.
    """

    checkpoint_id: str
    region_identity: str | None
    position: int | None
    saved_at_us: int
    lag_events: int | None
    lag_seconds: float | None


def lag_seconds(oldest_timestamp_us: int | None, now_us: int) -> float:
    """The age in seconds of the oldest unread event (0.0 when there is none, and never
    below 0.0 should the clock have stepped back)."""
    if oldest_timestamp_us is None:
        return 0.0
    return max(0, now_us - oldest_timestamp_us) / 1_000_000


def list_checkpoints(store: Store) -> list[CheckpointInfo]:
    """Every durable checkpoint of the store's data dir, sorted by id (``Store.checkpoints``)."""
    listed = store._native.checkpoints()
    now_us = time.time_ns() // 1000
    infos = []
    for checkpoint_id, identity, position, started, saved_at_us, lag in listed:
        events, seconds = (None, None) if lag is None else (lag[0], lag_seconds(lag[1], now_us))
        infos.append(
            CheckpointInfo(
                checkpoint_id, identity, position if started else None, saved_at_us, events, seconds
            )
        )
    return infos


class CheckpointMetrics(TypedDict):
    """The figures of one checkpoint in :class:`StoreMetrics`."""

    position: int | None
    lag_events: int | None
    lag_seconds: float | None
    dead_letters: int
    """Dead letters parked under this checkpoint so far."""


class StoreMetrics(TypedDict):
    """What ``Store.metrics()`` returns: stable names, for dashboards and alerts."""

    appends: int
    """Appends through this store since it opened that wrote events (a batch counts once)."""
    appended_events: int
    """Events those appends wrote."""
    fsyncs: int
    """fsyncs this store did for durability (group commit, the flusher, ``sync()``)."""
    events: int
    """Events in the log, including events hidden by a fence."""
    visible_events: int
    durable_events: int
    """Leading events covered by an fsync."""
    bytes: int
    """Bytes of segment files."""
    segments: int
    entities: int
    checkpoints: dict[str, CheckpointMetrics]
    """Every durable checkpoint of the data dir, by id."""


def metrics(store: Store) -> StoreMetrics:
    """The store's metrics (``Store.metrics``)."""
    stats = store.stats()
    checkpoints: dict[str, CheckpointMetrics] = {
        info.checkpoint_id: {
            "position": info.position,
            "lag_events": info.lag_events,
            "lag_seconds": info.lag_seconds,
            "dead_letters": count_dead_letters(store, info.checkpoint_id),
        }
        for info in list_checkpoints(store)
    }
    return {
        "appends": stats["appends"],
        "appended_events": stats["appended_events"],
        "fsyncs": stats["fsyncs"],
        "events": stats["events"],
        "visible_events": stats["visible_events"],
        "durable_events": stats["durable_events"],
        "bytes": stats["bytes"],
        "segments": stats["segments"],
        "entities": stats["entities"],
        "checkpoints": checkpoints,
    }
