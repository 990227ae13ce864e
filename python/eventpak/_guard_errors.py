"""Errors of tags, append conditions and tracking records. Exported from
:mod:`eventpak.errors` with the others."""

from __future__ import annotations

from ._error_base import EventpakError

__all__ = ["AppendConditionFailed", "InvalidTag", "TrackingConflict"]


class InvalidTag(EventpakError, ValueError):
    """A tag breaks the tag rules: 1-255 bytes of UTF-8 without control bytes, at most 64
    on one event, none twice on one event. Nothing was written."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"invalid tag: {reason}")
        self.reason = reason


class AppendConditionFailed(EventpakError):
    """An append's condition failed: a visible event matching its region was committed after
    its position. ``global_sequence`` is the first such event. Nothing was written."""

    def __init__(self, global_sequence: int) -> None:
        super().__init__(
            f"append condition failed: event {global_sequence} matches the condition's region; "
            "nothing was written. Read the events since your position, decide again and retry"
        )
        self.global_sequence = global_sequence


class TrackingConflict(EventpakError):
    """A tracking record's ``position`` is not after the one already recorded for ``name``
    (``recorded``): that input was already processed. Nothing was written."""

    def __init__(self, name: str, position: int, recorded: int) -> None:
        super().__init__(
            f"tracking {name!r}: position {position} is not after the recorded position {recorded}; "
            "nothing was written (that input was already processed: skip it)"
        )
        self.name = name
        self.position = position
        self.recorded = recorded


# Shown and pickled as members of eventpak.errors, where users import them from.
for _error in (AppendConditionFailed, InvalidTag, TrackingConflict):
    _error.__module__ = "eventpak.errors"
