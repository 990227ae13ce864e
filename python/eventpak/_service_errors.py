"""Errors of the layers above the log: cursor checkpoints, workers, the projection cache,
gates and upcasters. Exported from :mod:`eventpak.errors` with the others."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from ._error_base import EventpakError

__all__ = [
    "CacheFailed",
    "CheckpointInUse",
    "CheckpointWriteFailed",
    "CursorCheckpointCorrupt",
    "CursorCheckpointRegionMismatch",
    "Denial",
    "PayloadForgotten",
    "RestartBudgetExhausted",
    "UpcastFailed",
    "WorkerCrashed",
]


class CursorCheckpointCorrupt(EventpakError):
    """A cursor checkpoint file cannot be decoded or fails its CRC."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(
            f"cursor checkpoint {path} is corrupt: {reason}; delete the file to start that cursor over"
        )
        self.path = path
        self.reason = reason


class CursorCheckpointRegionMismatch(EventpakError):
    """A cursor checkpoint was saved for another region."""

    def __init__(self, path: str, stored: str | None, expected: str) -> None:
        checkpoint_id = os.path.basename(path).removesuffix(".ckpt")
        super().__init__(
            f"cursor checkpoint {path} belongs to region {stored!r}, not {expected!r}; use another "
            f"checkpoint id for the new region, or call store.reset_checkpoint({checkpoint_id!r}) "
            "to start it over from the beginning"
        )
        self.path = path
        self.stored = stored
        self.expected = expected


class CheckpointWriteFailed(EventpakError):
    """A durable worker could not persist its checkpoint."""

    def __init__(self, id: str, cause: str) -> None:
        super().__init__(f"writing cursor checkpoint {id!r} failed: {cause}")
        self.id = id
        self.checkpoint_id = id
        self.cause = cause


class CheckpointInUse(EventpakError):
    """A live worker or subscription already uses this checkpoint id; at most one may."""

    def __init__(self, checkpoint_id: str, path: str) -> None:
        super().__init__(
            f"checkpoint {checkpoint_id!r} of {path} is in use by a live worker or subscription "
            "(in this process or another); stop it first, or use another checkpoint_id"
        )
        self.checkpoint_id = checkpoint_id
        self.path = path


class RestartBudgetExhausted(EventpakError):
    """A worker's handler kept failing beyond its restart policy."""


class WorkerCrashed(EventpakError):
    """A worker thread died outside its handler."""


class CacheFailed(EventpakError):
    """A projection cache refused an operation."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"projection cache failed: {reason}")
        self.reason = reason


class Denial(EventpakError):
    """A gate refused a proposal. Gates raise it (``raise ep.Denial(self.name, "CODE", "why")``)
    and a pipeline raises it after recording it. Also a value: equal when ``gate``, ``code``,
    ``message`` and ``context`` are, and picklable. ``context`` holds details for the record
    (msgpack-encodable values; others are recorded by their ``repr``)."""

    def __init__(self, gate: str, code: str, message: str, context: Mapping[str, Any] | None = None) -> None:
        for name, value in (("gate", gate), ("code", code), ("message", message)):
            if not isinstance(value, str):
                raise TypeError(f"Denial {name} must be a str, not {type(value).__name__}")
        super().__init__(gate, code, message, context)
        self.gate = gate
        self.code = code
        self.message = message
        self.context = context

    def __str__(self) -> str:
        return f"denied by gate {self.gate!r} ({self.code}): {self.message}"

    def __repr__(self) -> str:
        return f"Denial({self.gate!r}, {self.code!r}, {self.message!r}, {self.context!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Denial):
            return NotImplemented
        return (self.gate, self.code, self.message, self.context) == (
            other.gate,
            other.code,
            other.message,
            other.context,
        )

    def __hash__(self) -> int:  # the context may be a dict: equal denials still hash alike
        return hash((self.gate, self.code, self.message))


class UpcastFailed(EventpakError):
    """An upcaster raised while bringing a payload up to date on read; its exception is the
    ``__cause__``. ``kind`` and ``version`` name the failing step (the one registered with
    ``Upcasters().add(kind, version, fn)``); ``global_sequence`` is the event being read, when
    known. The stored event is unchanged: fix the upcaster and read it again."""

    def __init__(self, kind: str, version: int, global_sequence: int | None = None) -> None:
        at = "" if global_sequence is None else f" (event at global sequence {global_sequence})"
        super().__init__(
            f"the upcaster of kind {kind!r} from version {version} raised{at}; the stored event is "
            "unchanged: fix that upcaster (its exception is the __cause__) and read the event again"
        )
        self.kind = kind
        self.version = version
        self.global_sequence = global_sequence


class PayloadForgotten(EventpakError):
    """The payload of an event whose entity was forgotten (``store.forget_entity``): its
    data key was destroyed, so the payload can never be read again. Everything else about
    the event (id, kind, sequences, hashes, tags) is still there. ``entity`` and
    ``global_sequence`` name the event."""

    def __init__(self, entity: str, global_sequence: int) -> None:
        super().__init__(
            f"the payload of event {global_sequence} (entity {entity!r}) was forgotten: its key "
            "was destroyed; its other fields are still readable"
        )
        self.entity = entity
        self.global_sequence = global_sequence


# Shown, pickled and documented as members of eventpak.errors, where users import them from.
for _error in (
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
):
    _error.__module__ = "eventpak.errors"
