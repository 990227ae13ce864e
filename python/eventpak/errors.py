"""Typed errors of eventpak. Every error derives from :class:`EventpakError`; usage
errors also derive from the matching builtin (``ValueError``, ``TypeError``, ``KeyError``)."""

from __future__ import annotations

__all__ = [
    "BatchTooLarge",
    "CacheFailed",
    "CheckpointWriteFailed",
    "ConcurrencyConflict",
    "CorruptSegment",
    "CursorCheckpointCorrupt",
    "CursorCheckpointRegionMismatch",
    "EventNotFound",
    "EventTooLarge",
    "EventpakError",
    "FenceActive",
    "FenceClosed",
    "IdempotencyConflict",
    "InvalidCheckpointId",
    "InvalidConfig",
    "InvalidCoordinate",
    "InvalidIdempotencyKey",
    "InvalidKind",
    "InvalidRegion",
    "PayloadNotSerializable",
    "RestartBudgetExhausted",
    "StorageFailed",
    "StoreClosed",
    "StoreLocked",
    "WorkerCrashed",
]


class EventpakError(Exception):
    """Base of every eventpak error."""


class InvalidCoordinate(EventpakError, ValueError):
    """An entity or scope breaks the naming rules."""


class InvalidKind(EventpakError, ValueError):
    """An event kind breaks the naming rules or uses the reserved ``eventpak.`` prefix."""


class InvalidRegion(EventpakError, ValueError):
    """A region filter is malformed."""


class InvalidCheckpointId(EventpakError, ValueError):
    """A cursor checkpoint id breaks the naming rules."""


class InvalidConfig(EventpakError, ValueError):
    """A store option is out of range, or the store cannot do this as configured."""


class InvalidIdempotencyKey(EventpakError, ValueError):
    """An idempotency key is empty, longer than 64 bytes, or used inconsistently in a batch."""


class PayloadNotSerializable(EventpakError, TypeError):
    """A payload holds a value msgpack cannot carry. Nothing was written."""


class EventTooLarge(EventpakError, ValueError):
    """One event exceeds ``max_event_bytes``. Nothing was written."""


class BatchTooLarge(EventpakError, ValueError):
    """A batch exceeds ``max_batch_events`` or ``max_batch_bytes``. Nothing was written."""


class StoreLocked(EventpakError):
    """Another open store owns the data dir."""

    def __init__(self, path: str) -> None:
        super().__init__(
            f"data dir {path} is locked by another open store; close it or use another directory"
        )
        self.path = path


class StoreClosed(EventpakError):
    """The store was closed; open it again to use it."""


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


class StorageFailed(EventpakError):
    """The writer hit an I/O error and accepts no more appends; reopen the store to recover."""


class CursorCheckpointCorrupt(EventpakError):
    """A cursor checkpoint file cannot be decoded or fails its CRC."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"cursor checkpoint {path} is corrupt: {reason}")
        self.path = path
        self.reason = reason


class CursorCheckpointRegionMismatch(EventpakError):
    """A cursor checkpoint was saved for another region."""

    def __init__(self, path: str, stored: str | None, expected: str) -> None:
        super().__init__(f"cursor checkpoint {path} belongs to region {stored!r}, not {expected!r}")
        self.path = path
        self.stored = stored
        self.expected = expected


class CheckpointWriteFailed(EventpakError):
    """A durable worker could not persist its checkpoint."""

    def __init__(self, checkpoint_id: str, cause: str) -> None:
        super().__init__(f"writing cursor checkpoint {checkpoint_id!r} failed: {cause}")
        self.checkpoint_id = checkpoint_id
        self.id = checkpoint_id  # the name DESIGN.md uses: CheckpointWriteFailed(id, cause)
        self.cause = cause


class RestartBudgetExhausted(EventpakError):
    """A worker's handler kept failing beyond its restart policy."""


class WorkerCrashed(EventpakError):
    """A worker thread died outside its handler."""


class CacheFailed(EventpakError):
    """A projection cache refused an operation."""
