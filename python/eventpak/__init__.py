"""eventpak: an embedded, durable, append-only event log for Python services.

Open a data dir with :meth:`Store.open`, append events addressed by a
:class:`Coordinate` (entity + scope) with a string kind and a msgpack payload, and read
them back in commit order with :class:`Region` queries.
"""

from __future__ import annotations

import atexit
import logging
import os
from typing import TYPE_CHECKING as _TYPE_CHECKING

from . import _native, errors
from ._lifetime import close_open_stores_at_exit
from ._native import (
    AppendCondition,
    AppendReceipt,
    AppendRequest,
    Coordinate,
    Cursor,
    CursorCheckpoint,
    CursorGapConfig,
    Event,
    GapObservation,
    PriorItem,
    Region,
    Tracking,
    __version__,
    generate_encryption_key,
)
from .backup import BackupReport
from .config import StoreConfig, StoreOptions, StoreStats, SyncMode
from .dead_letters import DeadLetter
from .errors import (
    AppendConditionFailed,
    BatchTooLarge,
    CacheFailed,
    CheckpointInUse,
    CheckpointWriteFailed,
    ConcurrencyConflict,
    CorruptSegment,
    CursorCheckpointCorrupt,
    CursorCheckpointRegionMismatch,
    Denial,
    EventNotFound,
    EventpakError,
    EventTooLarge,
    FenceActive,
    FenceClosed,
    IdempotencyConflict,
    InvalidArgument,
    InvalidCausation,
    InvalidCheckpointId,
    InvalidConfig,
    InvalidCoordinate,
    InvalidIdempotencyKey,
    InvalidKind,
    InvalidRegion,
    InvalidTag,
    PayloadForgotten,
    PayloadNotDecodable,
    PayloadNotSerializable,
    ReadOnlyStore,
    ReplicationRefused,
    RestartBudgetExhausted,
    StorageFailed,
    StoreClosed,
    StoreLocked,
    TrackingConflict,
    UpcastFailed,
    WorkerCrashed,
)
from .fence import Fence
from .gates import Gate, GateSet, Proposal
from .operations import CheckpointInfo, CheckpointMetrics, StoreMetrics
from .options import AppendOptions
from .pipeline import Pipeline
from .projection import CacheMeta, Freshness, NativeCache, NoCache, Projection, ProjectionCache
from .receipts import ReceiptCheck, generate_signing_key, public_key, verify_receipt_signature
from .retention import CompactionReport, Retention
from .store import Store
from .typed import EventType, Upcasters, event_type
from .verify import VerifyProblem, VerifyReport
from .worker import (
    AtLeastOnce,
    CursorWorkerAction,
    CursorWorkerConfig,
    CursorWorkerHandle,
    Handler,
    RestartPolicy,
)

if _TYPE_CHECKING:
    from . import aio as aio
    from . import nats as nats

# A store opened before os.fork() belongs to the parent: the child must not use it.
os.register_at_fork(after_in_child=_native.after_fork_in_child)


def __getattr__(name: str) -> object:
    # `ep.aio` and `ep.nats` are imported on first use, so sync-only programs never load
    # asyncio, and `ep.nats.Publisher` works as the docs write it without an import of its own.
    if name in ("aio", "nats"):
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'eventpak' has no attribute {name!r}")


# How long interpreter exit waits for the Python code that other threads run from inside the
# engine: once it ends, those threads park for good (see _native.mark_exiting).
_EXIT_CALLBACK_TIMEOUT_S = 5.0


@atexit.register
def _at_exit() -> None:
    # atexit runs after non-daemon threads are joined and before daemon threads are stopped:
    # stop workers and close stores while the interpreter is whole, then keep every other
    # thread that comes back from the engine out of Python (see _native.mark_exiting), after
    # the Python code other threads run from inside the engine (upcasters, progress
    # callbacks, `default=`) returned.
    _native.mark_exit_started()
    try:
        close_open_stores_at_exit()
    finally:
        if not _native.mark_exiting(_EXIT_CALLBACK_TIMEOUT_S):
            logging.getLogger("eventpak").warning(
                "a callback called by eventpak (an upcaster, a progress callback, default=) was still "
                "running %.0f s into interpreter exit; exit went on without it",
                _EXIT_CALLBACK_TIMEOUT_S,
            )


__all__ = [
    "AppendCondition",
    "AppendConditionFailed",
    "AppendOptions",
    "AppendReceipt",
    "AppendRequest",
    "AtLeastOnce",
    "BackupReport",
    "BatchTooLarge",
    "CacheFailed",
    "CacheMeta",
    "CheckpointInUse",
    "CheckpointInfo",
    "CheckpointMetrics",
    "CheckpointWriteFailed",
    "CompactionReport",
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
    "DeadLetter",
    "Denial",
    "Event",
    "EventNotFound",
    "EventTooLarge",
    "EventType",
    "EventpakError",
    "Fence",
    "FenceActive",
    "FenceClosed",
    "Freshness",
    "GapObservation",
    "Gate",
    "GateSet",
    "Handler",
    "IdempotencyConflict",
    "InvalidArgument",
    "InvalidCausation",
    "InvalidCheckpointId",
    "InvalidConfig",
    "InvalidCoordinate",
    "InvalidIdempotencyKey",
    "InvalidKind",
    "InvalidRegion",
    "InvalidTag",
    "NativeCache",
    "NoCache",
    "PayloadForgotten",
    "PayloadNotDecodable",
    "PayloadNotSerializable",
    "Pipeline",
    "PriorItem",
    "Projection",
    "ProjectionCache",
    "Proposal",
    "ReadOnlyStore",
    "ReceiptCheck",
    "Region",
    "ReplicationRefused",
    "RestartBudgetExhausted",
    "RestartPolicy",
    "Retention",
    "StorageFailed",
    "Store",
    "StoreClosed",
    "StoreConfig",
    "StoreLocked",
    "StoreMetrics",
    "StoreOptions",
    "StoreStats",
    "SyncMode",
    "Tracking",
    "TrackingConflict",
    "UpcastFailed",
    "Upcasters",
    "VerifyProblem",
    "VerifyReport",
    "WorkerCrashed",
    "__version__",
    "aio",
    "errors",
    "event_type",
    "generate_encryption_key",
    "generate_signing_key",
    "public_key",
    "verify_receipt_signature",
]
