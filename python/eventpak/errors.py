"""Typed errors of eventpak.

Every error derives from :class:`EventpakError`; usage errors also derive from the matching
builtin (``ValueError``, ``TypeError``, ``KeyError``), and :class:`StorageFailed` is also an
``OSError`` carrying the operating system's ``errno``. Each error keeps what it is about as
attributes (``path``, ``offset``, ``entity``, ...) and builds its message from them, so a
message reads the same whichever layer raised it: what happened, then what to do.

This module defines the errors of the log itself (bad input, the store's state, its files);
the errors of tags, conditions and tracking records (``_guard_errors``) and of the layers
above the log (cursor checkpoints, workers, caches, gates, upcasters: ``_service_errors``)
are defined beside them and exported from here too. A name argument that is not a ``str``
raises a subclass of its name's error that is also a ``TypeError`` (``_name_type_errors``).
"""

from __future__ import annotations

import os

from ._error_base import EventpakError
from ._guard_errors import AppendConditionFailed, InvalidTag, TrackingConflict
from ._service_errors import (
    CacheFailed,
    CheckpointInUse,
    CheckpointWriteFailed,
    CursorCheckpointCorrupt,
    CursorCheckpointRegionMismatch,
    Denial,
    PayloadForgotten,
    RestartBudgetExhausted,
    UpcastFailed,
    WorkerCrashed,
)

__all__ = [
    "AppendConditionFailed",
    "BatchTooLarge",
    "CacheFailed",
    "CheckpointInUse",
    "CheckpointWriteFailed",
    "ConcurrencyConflict",
    "CorruptSegment",
    "CursorCheckpointCorrupt",
    "CursorCheckpointRegionMismatch",
    "Denial",
    "EventNotFound",
    "EventTooLarge",
    "EventpakError",
    "FenceActive",
    "FenceClosed",
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
    "PayloadForgotten",
    "PayloadNotDecodable",
    "PayloadNotSerializable",
    "ReadOnlyStore",
    "ReplicationRefused",
    "RestartBudgetExhausted",
    "StorageFailed",
    "StoreClosed",
    "StoreLocked",
    "TrackingConflict",
    "UpcastFailed",
    "WorkerCrashed",
]


class InvalidCoordinate(EventpakError, ValueError):
    """An entity or scope breaks the naming rules. ``reason`` says which rule."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"invalid coordinate: {reason}")
        self.reason = reason


class InvalidKind(EventpakError, ValueError):
    """An event kind breaks the naming rules or uses the reserved ``eventpak.`` prefix."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"invalid kind: {reason}")
        self.reason = reason


class InvalidRegion(EventpakError, ValueError):
    """A region filter is malformed."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"invalid region: {reason}")
        self.reason = reason


class InvalidCheckpointId(EventpakError, ValueError):
    """A cursor checkpoint id breaks the naming rules (it names a file)."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"invalid checkpoint id: {reason}")
        self.reason = reason


class InvalidArgument(EventpakError, ValueError):
    """An argument is out of range or malformed (a negative sequence, a limit too large for 64
    bits, an event id string that is not a UUID). ``argument`` names it."""

    def __init__(self, argument: str, reason: str) -> None:
        super().__init__(f"{argument}: {reason}")
        self.argument = argument
        self.reason = reason


class InvalidCausation(EventpakError, ValueError):
    """A causal link cannot be made: ``caused_by`` and ``causation_id`` both given, or an
    ``ep.PriorItem(k)`` that does not name an earlier item of its batch. Nothing was written."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"invalid causation: {reason}")
        self.reason = reason


class InvalidConfig(EventpakError, ValueError):
    """A store or worker option is out of range, or the store cannot do this as configured."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"invalid config: {reason}")
        self.reason = reason


class InvalidIdempotencyKey(EventpakError, ValueError):
    """An idempotency key is empty, longer than 64 bytes, or used inconsistently in a batch."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"invalid idempotency key: {reason}")
        self.reason = reason


class PayloadNotSerializable(EventpakError, TypeError):
    """A payload holds a value msgpack cannot carry. Nothing was written."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class PayloadNotDecodable(EventpakError, ValueError):
    """Bytes read as a payload are not exactly one msgpack value eventpak can return: cut short,
    followed by trailing bytes, a ``str`` that is not UTF-8, an unknown extension type."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"payload is not valid msgpack: {reason}")
        self.reason = reason


class EventTooLarge(EventpakError, ValueError):
    """One event exceeds ``max_event_bytes``. Nothing was written."""

    def __init__(self, size: int, max_bytes: int) -> None:
        super().__init__(
            f"event of {size} bytes exceeds max_event_bytes={max_bytes}; nothing was written. "
            "Store large blobs elsewhere and append a reference, or raise max_event_bytes"
        )
        self.size = size
        self.max_bytes = max_bytes


class BatchTooLarge(EventpakError, ValueError):
    """A batch exceeds ``max_batch_events`` or ``max_batch_bytes``. Nothing was written."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"batch too large: {reason}")
        self.reason = reason


class StoreLocked(EventpakError):
    """Another open store owns the data dir. ``pid`` is the holder's process id when known;
    ``mode`` is how the holder opened it: ``"exclusive"`` (the default) or ``"shared"``.
    ``kind`` is ``"backup destination"`` when ``path`` is the destination of a backup (a
    store open on it, or another backup writing into it), not the store's own data dir."""

    def __init__(
        self, path: str, pid: int | None = None, mode: str | None = None, kind: str = "data dir"
    ) -> None:
        holder = "another open store" if pid is None else f"another open store (process {pid})"
        opened = "" if mode is None else f" opened in {mode} mode"
        if kind == "backup destination":
            message = (
                f"backup destination {path} is locked by {holder}{opened}, or by another backup "
                "writing into it: close that store or wait for that backup, then back up again"
            )
        else:
            message = (
                f"data dir {path} is locked by {holder}{opened}; close it, use another directory, "
                "or, to share the data dir between processes, open it with shared=True in every process"
            )
        super().__init__(message)
        self.kind = kind
        self.path = path
        self.pid = pid
        self.mode = mode


class ReadOnlyStore(EventpakError):
    """A write was attempted through a store opened with ``read_only=True``, or through a
    replica (``reason`` says so), which only its replication writes. Nothing was written."""

    def __init__(self, path: str, operation: str, reason: str | None = None) -> None:
        if reason is None:
            message = (
                f"the store at {path} was opened read_only=True; {operation} is refused. "
                "Open it without read_only to write"
            )
        else:
            message = f"the store at {path} takes no writes: {reason}; {operation} is refused"
        super().__init__(message)
        self.path = path
        self.operation = operation
        self.reason = reason


class ReplicationRefused(EventpakError):
    """A replica refused an event: it does not continue the replica's log (out of order, a
    lost predecessor, forged content, another origin or stream). Nothing from it on was
    applied; ``global_sequence`` is the sequence the event claims (``None`` when refused
    before any event). A publisher raises it too, with ``stops`` saying so, for a stream that
    does not continue its store's log (another store's, or one ahead of a restored store)."""

    def __init__(
        self, global_sequence: int | None, reason: str, *, stops: str = "the replica stops applying here"
    ) -> None:
        where = "" if global_sequence is None else f" event {global_sequence}"
        super().__init__(f"replication refused{where}: {reason}; {stops}")
        self.global_sequence = global_sequence
        self.reason = reason


class StoreClosed(EventpakError):
    """The store was closed (or was opened before ``os.fork()`` and this is the child)."""

    def __init__(self, path: str, reason: str | None = None) -> None:
        why = reason or "it was closed; open it again to use it"
        super().__init__(f"the store at {path} cannot be used: {why}")
        self.path = path
        self.reason = reason


class EventNotFound(EventpakError, KeyError):
    """No event has this id."""

    def __init__(self, event_id: str) -> None:
        super().__init__(event_id)
        self.event_id = event_id

    def __str__(self) -> str:
        return f"no event with id {self.event_id}"


class ConcurrencyConflict(EventpakError):
    """``expected_sequence`` did not match the entity's next clock value. Nothing was written."""

    def __init__(self, entity: str, expected: int, actual: int) -> None:
        super().__init__(
            f"entity {entity!r}: expected next entity_sequence {expected}, actual {actual}; "
            "reload the entity and retry"
        )
        self.entity = entity
        self.expected = expected
        self.actual = actual


class IdempotencyConflict(EventpakError):
    """An idempotency key was reused for different content, or a batch is partly committed."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"idempotency conflict: {reason}")
        self.reason = reason


class FenceActive(EventpakError):
    """A plain append (or a second fence) was attempted while a visibility fence is open."""


class FenceClosed(EventpakError):
    """An append went through a fence that was already committed or cancelled."""


class CorruptSegment(EventpakError):
    """A data file holds bytes that cannot be part of a valid log. Nothing was changed."""

    def __init__(self, path: str, offset: int, reason: str) -> None:
        super().__init__(f"corrupt segment {path} at offset {offset}: {reason}")
        self.path = path
        self.offset = offset
        self.reason = reason


# The engine's context prefixes of failures that leave the writer working (`BACKUP_CONTEXT`,
# `COMPACTION_CONTEXT`, `READ_CONTEXT`, `KEY_FILE_CONTEXT` in its error module).
_BESIDE_WRITER = ("backup: ", "compaction: ", "read: ", "key file: ")
_CHECKPOINT_CONTEXT = "writing the index checkpoint"


class StorageFailed(EventpakError, OSError):
    """The writer hit an I/O error and accepts no more appends; reopen the store to recover.
    (A ``context`` starting with ``"backup: "``, ``"compaction: "``, ``"read: "`` or
    ``"key file: "`` is the failure of an operation beside the writer: the store is
    unaffected.)

    Also an ``OSError``: ``errno`` and ``strerror`` are the operating system's (``errno`` is
    ``None`` when the failure did not come from the OS), ``path`` (also ``filename``) is the
    data dir, ``context`` what the store was doing. Nothing after the failure was acknowledged.
    """

    def __init__(self, context: str, errno: int | None, strerror: str, path: str) -> None:
        OSError.__init__(self, errno, strerror, path)
        self.context = context
        self.path = path
        # Set by `Store.open` for a failure of the open itself: there is no store to reopen.
        self.opening = False

    def __str__(self) -> str:
        code = "" if self.errno is None else f" [errno {self.errno}: {os.strerror(self.errno)}]"
        return f"storage failed ({self.context}) in {self.path}: {self.strerror}{code}; {self._advice()}"

    def _advice(self) -> str:
        if self.opening:
            return "the store was not opened"
        if self.context.startswith(_BESIDE_WRITER):
            # A backup's, a compaction's before its commit, a read's: the store's writer goes on.
            return "the store itself is unaffected"
        if self.context == _CHECKPOINT_CONTEXT:
            # Written at close after the final fsync: only the cache of the index is missing.
            return "every event is durable; the next open scans the log instead of loading the checkpoint"
        return "nothing after this failure was acknowledged, reopen the store to recover"


# Subclasses of the name errors above that are also `TypeError`s (a name that is not a str):
# importable from here, as their `__module__` says, so they pickle; not in `__all__`.
from ._name_type_errors import InvalidCheckpointIdType as InvalidCheckpointIdType  # noqa: E402
from ._name_type_errors import InvalidCoordinateType as InvalidCoordinateType  # noqa: E402
from ._name_type_errors import InvalidKindType as InvalidKindType  # noqa: E402
from ._name_type_errors import InvalidRegionType as InvalidRegionType  # noqa: E402
from ._name_type_errors import InvalidTagType as InvalidTagType  # noqa: E402
