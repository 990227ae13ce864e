"""eventpak: an embedded, durable, append-only event log for Python services.

Open a data dir with :meth:`Store.open`, append events addressed by a
:class:`Coordinate` (entity + scope) with a string kind and a msgpack payload, and read
them back in commit order with :class:`Region` queries.
"""

from __future__ import annotations

from . import errors
from ._native import (
    AppendReceipt,
    AppendRequest,
    Coordinate,
    Cursor,
    CursorCheckpoint,
    CursorGapConfig,
    Event,
    GapObservation,
    Region,
    __version__,
)
from .config import StoreConfig, StoreOptions, StoreStats, SyncMode
from .errors import (
    BatchTooLarge,
    CacheFailed,
    CheckpointWriteFailed,
    ConcurrencyConflict,
    CorruptSegment,
    CursorCheckpointCorrupt,
    CursorCheckpointRegionMismatch,
    EventNotFound,
    EventpakError,
    EventTooLarge,
    FenceActive,
    FenceClosed,
    IdempotencyConflict,
    InvalidCheckpointId,
    InvalidConfig,
    InvalidCoordinate,
    InvalidIdempotencyKey,
    InvalidKind,
    InvalidRegion,
    PayloadNotSerializable,
    ReadOnlyStore,
    RestartBudgetExhausted,
    StorageFailed,
    StoreClosed,
    StoreLocked,
    WorkerCrashed,
)
from .fence import Fence
from .projection import CacheMeta, Freshness, NativeCache, NoCache, Projection, ProjectionCache
from .store import AppendOptions, Store
from .worker import AtLeastOnce, CursorWorkerAction, CursorWorkerConfig, CursorWorkerHandle, RestartPolicy

__all__ = [
    "AppendOptions",
    "AppendReceipt",
    "AppendRequest",
    "AtLeastOnce",
    "BatchTooLarge",
    "CacheFailed",
    "CacheMeta",
    "CheckpointWriteFailed",
    "ConcurrencyConflict",
    "Coordinate",
    "CorruptSegment",
    "Cursor",
    "CursorCheckpoint",
    "CursorCheckpointCorrupt",
    "CursorCheckpointRegionMismatch",
    "CursorGapConfig",
    "CursorWorkerAction",
    "CursorWorkerConfig",
    "CursorWorkerHandle",
    "Event",
    "EventNotFound",
    "EventTooLarge",
    "EventpakError",
    "Fence",
    "FenceActive",
    "FenceClosed",
    "Freshness",
    "GapObservation",
    "IdempotencyConflict",
    "InvalidCheckpointId",
    "InvalidConfig",
    "InvalidCoordinate",
    "InvalidIdempotencyKey",
    "InvalidKind",
    "InvalidRegion",
    "NativeCache",
    "NoCache",
    "PayloadNotSerializable",
    "Projection",
    "ProjectionCache",
    "ReadOnlyStore",
    "Region",
    "RestartBudgetExhausted",
    "RestartPolicy",
    "StorageFailed",
    "Store",
    "StoreClosed",
    "StoreConfig",
    "StoreLocked",
    "StoreOptions",
    "StoreStats",
    "SyncMode",
    "WorkerCrashed",
    "__version__",
    "errors",
]
