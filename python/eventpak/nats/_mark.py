"""The publisher's mark: the stream sequence JetStream gave the newest event it acknowledged,
kept in memory and in ``nats/<checkpoint_id>.mark`` in the data dir. A stream's last sequence
never goes down, whatever its limits, purges and deletes remove; below the mark it tells that
the stream lost messages (its server's store went back in time, or it was deleted and made
again), even when nothing is left in it to compare with."""

from __future__ import annotations

import json
import logging
import os
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .._native import Region

if TYPE_CHECKING:
    from ..store import Store

__all__ = ["Mark", "event_before_last", "load_mark", "save_mark"]

log = logging.getLogger("eventpak.nats")

MARK_DIR = "nats"


@dataclass(frozen=True)
class Mark:
    """Event ``event_id`` at ``global_sequence`` is message ``stream_seq`` of ``stream``."""

    stream: str
    stream_seq: int
    global_sequence: int
    event_id: str


def mark_path(store: Store, checkpoint_id: str) -> Path:
    return Path(store.path) / MARK_DIR / f"{checkpoint_id}.mark"


def load_mark(store: Store, checkpoint_id: str, stream: str) -> Mark | None:
    """The saved mark of this publisher on ``stream``; ``None`` when there is none, it is of
    another stream, or it cannot be read (the publisher then works as it did before marks)."""
    try:
        fields = json.loads(mark_path(store, checkpoint_id).read_bytes())
        mark = Mark(
            str(fields["stream"]), int(fields["stream_seq"]), int(fields["global_sequence"]),
            str(fields["event_id"]),
        )  # fmt: skip
        if not (0 < mark.stream_seq < 2**64 and 0 <= mark.global_sequence < 2**64):
            raise ValueError(f"sequences out of range: {mark.stream_seq}, {mark.global_sequence}")
        uuid.UUID(mark.event_id)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("eventpak.nats: the publisher's mark is unreadable (%s); going on without it", exc)
        return None
    return mark if mark.stream == stream else None


def save_mark(store: Store, checkpoint_id: str, mark: Mark) -> None:
    """Replaces the saved mark (write then rename, not fsynced: after a power loss the mark may
    be an older one, which only makes the check weaker, never wrong; it is saved before the
    checkpoint, so it is never behind the checkpoint otherwise)."""
    path = mark_path(store, checkpoint_id)
    path.parent.mkdir(exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temp.write_text(json.dumps(asdict(mark)))
    os.replace(temp, path)


def event_before_last(store: Store, region: Region, upto: int, count: int) -> tuple[int, str] | None:
    """``(global_sequence, event id)`` of the event of ``region`` that comes ``count`` events
    before the one at global sequence ``upto``; ``None`` when the region has fewer before it."""
    span = 2 * count + 64
    while True:
        start = max(upto - span, 0)
        hits = store._native.query_hits_after(region, start, False, span + 1)
        hits = [g for g in hits if g <= upto]
        if len(hits) > count:
            at = hits[-1 - count]
            event = store.query(region, after=at - 1 if at else None, limit=1)[0]
            return at, str(event.event_id)
        if start == 0:
            return None
        span *= 2
