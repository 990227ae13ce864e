"""Name arguments of the wrong type. A value that is not a ``str`` where an entity, scope,
kind, region filter, checkpoint id or tag belongs is bad input of that name, so it raises
the name's typed error; it is also a wrong type, so the error is a ``TypeError`` as well, and
``except ep.InvalidKind`` and ``except TypeError`` both catch ``kind=3``. Catch them by the
name's error (or ``TypeError``); the subclasses themselves are not part of the API (shown, and
pickled, as members of :mod:`eventpak.errors`, like every error)."""

from __future__ import annotations

from ._guard_errors import InvalidTag
from .errors import InvalidCheckpointId, InvalidCoordinate, InvalidKind, InvalidRegion

__all__ = [
    "InvalidCheckpointIdType",
    "InvalidCoordinateType",
    "InvalidKindType",
    "InvalidRegionType",
    "InvalidTagType",
]


class _NotAStr(Exception):
    """Keeps the message a ``TypeError`` would have ("kind must be a str, not int"): it
    names the argument and what it takes, which the typed error's prefix would only repeat."""

    def __init__(self, reason: str) -> None:
        Exception.__init__(self, reason)
        self.reason = reason


class InvalidCoordinateType(_NotAStr, InvalidCoordinate, TypeError):
    """An entity or scope that is not a ``str``: an ``ep.InvalidCoordinate`` and a ``TypeError``."""


class InvalidKindType(_NotAStr, InvalidKind, TypeError):
    """A kind that is not a ``str``: an ``ep.InvalidKind`` and a ``TypeError``."""


class InvalidRegionType(_NotAStr, InvalidRegion, TypeError):
    """A region filter value that is not a ``str`` (or a filter list that is not a sequence of
    them): an ``ep.InvalidRegion`` and a ``TypeError``."""


class InvalidCheckpointIdType(_NotAStr, InvalidCheckpointId, TypeError):
    """A checkpoint id that is not a ``str``: an ``ep.InvalidCheckpointId`` and a ``TypeError``."""


class InvalidTagType(_NotAStr, InvalidTag, TypeError):
    """A tag that is not a ``str``, or tags that are not a sequence of them: an
    ``ep.InvalidTag`` and a ``TypeError``."""


for _error in (
    InvalidCoordinateType,
    InvalidKindType,
    InvalidRegionType,
    InvalidCheckpointIdType,
    InvalidTagType,
):
    _error.__module__ = "eventpak.errors"
