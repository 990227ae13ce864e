"""Retention rules and compaction: :class:`Retention`, :class:`CompactionReport` and the
work behind :meth:`Store.compact`."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ._native import NativeStore, Region
from .errors import EventpakError, InvalidConfig
from .restart import check_count
from .verify import Progress, check_progress

if TYPE_CHECKING:
    from ._native import Event

__all__ = ["CompactionReport", "Retention", "compact_store"]


def _age(max_age_s: object) -> float | None:
    if max_age_s is None:
        return None
    if isinstance(max_age_s, bool) or not isinstance(max_age_s, (int, float)):
        raise InvalidConfig(f"max_age_s must be a number of seconds or None, not {type(max_age_s).__name__}")
    if not math.isfinite(max_age_s) or max_age_s < 0:
        raise InvalidConfig(f"max_age_s must be finite and at least 0, got {max_age_s!r}")
    return float(max_age_s)


def _kinds(kinds: object) -> frozenset[str] | None:
    if kinds is None:
        return None
    if isinstance(kinds, (str, bytes)) or not isinstance(kinds, Iterable):
        raise InvalidConfig("kinds must be an iterable of kind names (not a single str) or None")
    names = tuple(kinds)
    if not names:
        raise InvalidConfig("kinds must name at least one kind (None selects every kind)")
    for kind in names:
        if not isinstance(kind, str):
            raise InvalidConfig(f"kinds must hold str, not {type(kind).__name__}")
    try:
        # The naming rules of a read: reserved kinds (eventpak.denial, ...) may be removed.
        Region.all().with_kinds(list(names))
    except EventpakError as e:
        raise InvalidConfig(f"kinds holds an invalid kind: {e}") from e
    return frozenset(names)


@dataclass(frozen=True, init=False)
class Retention:
    """Which events :meth:`Store.compact` removes from the sealed segments.

    Events older than ``max_age_s`` seconds (``None``: any age; age is measured from the
    start of the compaction) whose kind is in ``kinds`` (``None``: every kind) are
    selected, except each entity's newest ``keep_last_per_entity`` among the selected
    events, counted over the whole store. A ``predicate(event) -> bool`` (true: remove)
    replaces all three rules and cannot be combined with them. Cancelled fence events are
    never selected. Bad values raise ``ep.InvalidConfig``."""

    max_age_s: float | None
    kinds: frozenset[str] | None
    keep_last_per_entity: int
    predicate: Callable[[Event], object] | None

    def __init__(
        self,
        max_age_s: float | None = None,
        kinds: Iterable[str] | None = None,
        keep_last_per_entity: int = 0,
        predicate: Callable[[Event], object] | None = None,
    ) -> None:
        age = _age(max_age_s)
        names = _kinds(kinds)
        keep = keep_last_per_entity
        check_count("keep_last_per_entity", keep, 0)
        if predicate is not None:
            if not callable(predicate):
                raise InvalidConfig(f"predicate must be callable, not {type(predicate).__name__}")
            if age is not None or names is not None or keep != 0:
                raise InvalidConfig(
                    "a predicate replaces max_age_s, kinds and keep_last_per_entity: give one or the other"
                )
        object.__setattr__(self, "max_age_s", age)
        object.__setattr__(self, "kinds", names)
        object.__setattr__(self, "keep_last_per_entity", keep)
        object.__setattr__(self, "predicate", predicate)


@dataclass(frozen=True)
class CompactionReport:
    """What :meth:`Store.compact` did: events ``removed``, visible events ``kept`` in the
    segments it examined (every sealed one), and ``bytes_freed`` from the segment files."""

    removed: int
    kept: int
    bytes_freed: int


def compact_store(native: NativeStore, retention: Retention, progress: Progress | None) -> CompactionReport:
    """Runs a compaction on ``native`` (see :meth:`Store.compact`)."""
    if not isinstance(retention, Retention):
        raise InvalidConfig(f"compact() takes an ep.Retention, not {type(retention).__name__}")
    check_progress(progress)
    age = retention.max_age_s
    max_age_us = None if age is None else min(int(age * 1_000_000), 2**64 - 1)
    kinds = None if retention.kinds is None else sorted(retention.kinds)
    removed, kept, freed = native.compact(
        max_age_us, kinds, retention.keep_last_per_entity, retention.predicate, progress
    )
    return CompactionReport(removed=removed, kept=kept, bytes_freed=freed)
