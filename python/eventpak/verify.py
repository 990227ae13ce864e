"""The report of :meth:`Store.verify`, the full integrity check."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ._native import NativeStore
from .errors import InvalidConfig

__all__ = ["VerifyProblem", "VerifyReport", "check_progress", "verify_store"]

Progress = Callable[[int, int], object]


def check_progress(progress: object) -> None:
    """Raises ``ep.InvalidConfig`` unless ``progress`` is ``None`` or callable, before
    anything runs (rather than a ``TypeError`` at its first call, midway)."""
    if progress is not None and not callable(progress):
        raise InvalidConfig(f"progress must be callable, not {type(progress).__name__}")


@dataclass(frozen=True)
class VerifyProblem:
    """One thing :meth:`Store.verify` found wrong: the file, the byte offset in it (0 when the
    whole file is concerned), the global sequence when one event is concerned, and why."""

    path: str
    offset: int
    sequence: int | None
    reason: str

    def __str__(self) -> str:
        event = f" (event {self.sequence})" if self.sequence is not None else ""
        return f"{self.path} at offset {self.offset}{event}: {self.reason}"


@dataclass(frozen=True)
class VerifyReport:
    """What :meth:`Store.verify` checked (``events``: those the log holds up to the head
    when it started, not counting events a compaction removed; ``segments``; ``bytes`` of
    segments read) and found (``problems``, empty when ``ok``). At most 1,000 problems are
    listed; ``problems_not_listed`` counts the rest."""

    events: int
    segments: int
    bytes: int
    problems: tuple[VerifyProblem, ...]
    problems_not_listed: int = 0

    @property
    def ok(self) -> bool:
        """True when nothing was found wrong."""
        return not self.problems


def verify_store(native: NativeStore, progress: Progress | None) -> VerifyReport:
    """Runs the engine's check and wraps what it found."""
    check_progress(progress)
    events, segments, size, problems, not_listed = native.verify(progress)
    listed = tuple(VerifyProblem(*p) for p in problems)
    return VerifyReport(events, segments, size, listed, not_listed)
