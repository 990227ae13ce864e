"""Store options. The engine holds their defaults and their validation; this module reads
the defaults from it and asks it to check a config before anything touches the disk."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from typing import Any, Literal, TypedDict

from ._native import check_store_options, store_defaults
from .errors import InvalidConfig

__all__ = ["StoreConfig", "StoreOptions", "StoreStats", "SyncMode"]

SyncMode = Literal["always", "batch", "never"]
_DEFAULTS: dict[str, Any] = store_defaults()


@dataclass(frozen=True)
class StoreConfig:
    """Everything ``Store.open`` accepts (see ``docs/design.md``, "The Store API").

    ``sync``: ``"always"`` (fsync before an append returns; concurrent appenders share one
    fsync), ``"batch"`` (fsync every ``sync_every_n_events`` events or ``sync_interval_ms``,
    whichever first) or ``"never"`` (the OS decides; ``store.sync()`` is a barrier).
    """

    path: str | os.PathLike[str]
    sync: SyncMode = _DEFAULTS["sync"]
    sync_every_n_events: int = _DEFAULTS["sync_every_n_events"]
    sync_interval_ms: int = _DEFAULTS["sync_interval_ms"]
    segment_max_bytes: int = _DEFAULTS["segment_max_bytes"]
    max_event_bytes: int = _DEFAULTS["max_event_bytes"]
    max_batch_events: int = _DEFAULTS["max_batch_events"]
    max_batch_bytes: int = _DEFAULTS["max_batch_bytes"]
    enable_index_checkpoint: bool = _DEFAULTS["enable_index_checkpoint"]
    create: bool = _DEFAULTS["create"]
    read_only: bool = _DEFAULTS["read_only"]
    projection_cache: Any = None
    """An object with the projection cache protocol (``ep.NativeCache(dir)``, ``ep.NoCache()``
    or your own); ``None`` means ``NoCache``."""

    def __post_init__(self) -> None:
        if not isinstance(self.path, (str, os.PathLike)):
            raise InvalidConfig(f"path must be a str or os.PathLike, not {type(self.path).__name__}")
        check_store_options(**self.engine_options())

    def engine_options(self) -> dict[str, Any]:
        """The options the engine takes, by name (everything but the path and the cache)."""
        skip = ("path", "projection_cache")
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in skip}


class StoreOptions(TypedDict, total=False):
    """The keyword options of ``Store.open`` (the fields of :class:`StoreConfig`)."""

    sync: SyncMode
    sync_every_n_events: int
    sync_interval_ms: int
    segment_max_bytes: int
    max_event_bytes: int
    max_batch_events: int
    max_batch_bytes: int
    enable_index_checkpoint: bool
    create: bool
    read_only: bool
    projection_cache: Any


class StoreStats(TypedDict):
    """What ``Store.stats()`` returns."""

    events: int
    """Events written, including those hidden by a fence."""
    durable_events: int
    """Leading events covered by an fsync."""
    fsyncs: int
    segments: int
    bytes: int
    entities: int
    scopes: int
    kinds: int
    sync: SyncMode
    writer_failure: str | None
    """Why the writer stopped accepting appends, if it did."""
    torn_tail_bytes: int
    """Bytes of a torn tail cut away at open."""
    torn_tail_segment: str | None
    removed_segments: list[str]
    """Half-created segment files removed at open."""
    index_checkpoint: str
    """How the index was loaded at open (``"used"``, ``"missing"``, ...)."""
    scanned_events: int
    """Events read from segments at open (not covered by the index checkpoint)."""
