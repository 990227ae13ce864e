"""What an operator looks at: durable checkpoints with their lag, and the store's metrics
(``Store.checkpoints()``, ``Store.metrics()``; ``eventpak.prometheus`` exports the latter)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypedDict

from .dead_letters import count_dead_letters
from .errors import CursorCheckpointCorrupt

if TYPE_CHECKING:
    from .store import Store

__all__ = [
    "CheckpointInfo",
    "CheckpointMetrics",
    "StoreMetrics",
    "checkpoint_ids",
    "lag_seconds",
    "list_checkpoints",
    "metrics",
    "survey_checkpoints",
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
    """Every durable checkpoint of the store's data dir, sorted by id (``Store.checkpoints``).
    The first one that cannot be trusted raises ``CursorCheckpointCorrupt``."""
    infos, damaged = survey_checkpoints(store)
    if damaged:
        raise next(iter(damaged.values()))
    return infos


def checkpoint_ids(store: Store) -> list[str]:
    """The ids of the durable checkpoints of the store's data dir, sorted, without reading
    them (a damaged one is listed too)."""
    return store._native.checkpoint_ids()


def survey_checkpoints(store: Store) -> tuple[list[CheckpointInfo], dict[str, CursorCheckpointCorrupt]]:
    """Every durable checkpoint that can be read, sorted by id, and the error of each one
    that cannot, by id: one damaged file must not hide the others from an operator."""
    now_us = time.time_ns() // 1000
    infos, damaged = [], {}
    for checkpoint_id in checkpoint_ids(store):
        try:
            status = store._native.checkpoint_status(checkpoint_id)
        except CursorCheckpointCorrupt as exc:
            damaged[checkpoint_id] = exc
            continue
        if status is None:
            continue  # reset since it was listed
        _, identity, position, started, saved_at_us, lag = status
        events, seconds = (None, None) if lag is None else (lag[0], lag_seconds(lag[1], now_us))
        infos.append(
            CheckpointInfo(
                checkpoint_id, identity, position if started else None, saved_at_us, events, seconds
            )
        )
    return infos, damaged


class CheckpointMetrics(TypedDict):
    """The figures of one checkpoint in :class:`StoreMetrics`."""

    position: int | None
    lag_events: int | None
    lag_seconds: float | None
    dead_letters: int
    """Dead letters parked under this checkpoint so far."""
    corrupt: bool
    """The checkpoint file cannot be trusted (``Store.checkpoints()`` raises
    ``CursorCheckpointCorrupt`` for it); its position and lag are then ``None``."""


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
    infos, damaged = survey_checkpoints(store)
    checkpoints: dict[str, CheckpointMetrics] = {
        info.checkpoint_id: {
            "position": info.position,
            "lag_events": info.lag_events,
            "lag_seconds": info.lag_seconds,
            "dead_letters": count_dead_letters(store, info.checkpoint_id),
            "corrupt": False,
        }
        for info in infos
    }
    # A damaged checkpoint is still reported, so a dashboard sees it rather than going dark.
    for checkpoint_id in damaged:
        checkpoints[checkpoint_id] = {
            "position": None,
            "lag_events": None,
            "lag_seconds": None,
            "dead_letters": count_dead_letters(store, checkpoint_id),
            "corrupt": True,
        }
    checkpoints = dict(sorted(checkpoints.items()))
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
