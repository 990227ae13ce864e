"""Store options, validated before anything touches the disk."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from typing import Any, Literal

from .errors import InvalidConfig

__all__ = ["StoreConfig", "SyncMode"]

SyncMode = Literal["always", "batch", "never"]
_SYNC_MODES = ("always", "batch", "never")
_MIN_SEGMENT_BYTES = 4096


@dataclass(frozen=True)
class StoreConfig:
    """Everything ``Store.open`` accepts. See DESIGN.md section 3 for what each option does."""

    path: str | os.PathLike[str]
    sync: SyncMode = "batch"
    sync_every_n_events: int = 1000
    sync_interval_ms: int = 50
    segment_max_bytes: int = 256 * 1024 * 1024
    max_event_bytes: int = 16 * 1024 * 1024
    max_batch_events: int = 4096
    max_batch_bytes: int = 64 * 1024 * 1024
    enable_index_checkpoint: bool = True
    create: bool = True
    read_only: bool = False
    projection_cache: Any = None
    """An object with the projection cache protocol (``ep.NativeCache(dir)``, ``ep.NoCache()``
    or your own); ``None`` means ``NoCache``."""

    def __post_init__(self) -> None:
        if not isinstance(self.path, (str, os.PathLike)):
            raise InvalidConfig(f"path must be a str or os.PathLike, not {type(self.path).__name__}")
        if self.sync not in _SYNC_MODES:
            raise InvalidConfig(f"sync must be one of {_SYNC_MODES}, not {self.sync!r}")
        for name in ("enable_index_checkpoint", "create", "read_only"):
            if not isinstance(getattr(self, name), bool):
                raise InvalidConfig(f"{name} must be a bool")
        minimums = {
            "sync_every_n_events": 1,
            "sync_interval_ms": 1,
            "segment_max_bytes": _MIN_SEGMENT_BYTES,
            "max_event_bytes": 1,
            "max_batch_events": 1,
            "max_batch_bytes": 1,
        }
        for name, minimum in minimums.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise InvalidConfig(f"{name} must be an int, not {type(value).__name__}")
            if value < minimum:
                raise InvalidConfig(f"{name} must be at least {minimum}, got {value}")

    def native_options(self) -> dict[str, Any]:
        """The keyword arguments of the native store constructor."""
        skip = ("path", "projection_cache")
        options = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in skip}
        return options
