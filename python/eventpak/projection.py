"""Projections: state folded from the log, served from a projection cache when possible."""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from ._native import (
    CacheMeta,
    Event,
    NativeCache,
    NativeStore,
    Region,
    decode_payload,
    encode_payload,
    replay,
    replay_head,
    target_identity,
)
from ._round_trip import comes_back_as_it_was
from .errors import InvalidArgument, InvalidConfig, InvalidRegion

__all__ = ["CacheMeta", "Freshness", "NativeCache", "NoCache", "Projection", "ProjectionCache"]

log = logging.getLogger("eventpak.projection")
REPLAY_BATCH = 1024
S = TypeVar("S")


class Projection(Generic[S]):
    """Derived state of type ``S``. Subclass it (``class Balance(ep.Projection[int])``) and set
    ``name`` (stable), ``version`` (bump to invalidate cached states), ``kinds`` (relevant
    kinds; empty = every kind) and ``incremental`` (whether a cached state may be brought
    forward with ``apply``); define ``initial`` and ``apply``. Override ``encode``/``decode``
    for states msgpack cannot carry as they are (a tuple comes back a list: such a state is
    not cached by the default codec, and each call replays). Subclasses that define ``__init__`` call
    ``super().__init__()``."""

    name: ClassVar[str] = ""
    version: ClassVar[int] = 1
    kinds: ClassVar[tuple[str, ...]] = ()
    incremental: ClassVar[bool] = False

    def __init__(self) -> None:
        if not type(self).name:
            raise TypeError(f"{type(self).__name__} must set a non-empty class attribute `name`")

    def initial(self) -> S:
        """The state before any relevant event."""
        raise NotImplementedError

    def apply(self, state: S, event: Event) -> S:
        """The state after ``event``."""
        raise NotImplementedError

    def encode(self, state: S) -> bytes:
        """Bytes of a state for the cache (msgpack by default)."""
        return encode_payload(state)

    def decode(self, data: bytes) -> S:
        """A state back from its cached bytes."""
        decoded: S = decode_payload(data)
        return decoded


class ProjectionCache(Protocol):
    """What a projection cache provides (keys and values are bytes)."""

    def get(self, key: bytes) -> tuple[bytes, CacheMeta] | None: ...
    def put(self, key: bytes, value: bytes, meta: CacheMeta) -> None: ...
    def delete_prefix(self, prefix: bytes) -> int: ...
    def sync(self) -> None: ...


class NoCache:
    """A cache that always misses: every ``project()`` replays."""

    def get(self, key: bytes) -> tuple[bytes, CacheMeta] | None:
        return None

    def put(self, key: bytes, value: bytes, meta: CacheMeta) -> None:
        return None

    def delete_prefix(self, prefix: bytes) -> int:
        return 0

    def sync(self) -> None:
        return None


@dataclass(frozen=True)
class Freshness:
    """How stale a served state may be: ``Freshness.CONSISTENT`` (only a state at the current
    watermark) or ``Freshness.maybe_stale(ms)`` (a cached state younger than ``ms``)."""

    max_stale_ms: int | None = None
    CONSISTENT: ClassVar[Freshness]

    @classmethod
    def maybe_stale(cls, max_stale_ms: int) -> Freshness:
        """Serve a cached state younger than ``max_stale_ms`` even if newer events exist."""
        if isinstance(max_stale_ms, bool) or not isinstance(max_stale_ms, (int, float)):
            kind = type(max_stale_ms).__name__
            raise TypeError(f"max_stale_ms must be a number of milliseconds, not {kind}")
        if max_stale_ms < 0:
            raise InvalidArgument("max_stale_ms", f"must be at least 0, got {max_stale_ms}")
        return cls(max_stale_ms)


Freshness.CONSISTENT = Freshness()


def _digest(*parts: str) -> bytes:
    h = hashlib.blake2b(digest_size=16)
    for part in parts:
        data = part.encode("utf-8", "surrogatepass")
        h.update(len(data).to_bytes(8, "little"))  # length-prefixed: no two part lists collide
        h.update(data)
    return h.digest()


def projection_prefix(store_id: bytes, projection: Projection[Any]) -> bytes:
    """The cache-key prefix of one projection of one store: the store's identity (so a cache
    never serves a state computed from another store, e.g. a data dir deleted and made again
    at the same path), the projection's name, version and kind set."""
    p = type(projection)
    return _digest(store_id.hex(), p.name, str(p.version), *sorted(p.kinds))


def _now_us() -> int:
    return time.time_ns() // 1000


class _Projector:
    def __init__(
        self, store: NativeStore, cache: ProjectionCache, target: str | Region, projection: Projection[Any]
    ) -> None:
        self.store, self.cache, self.target, self.projection = store, cache, target, projection
        self.kinds = list(type(projection).kinds)
        self.key = projection_prefix(store.store_id, projection) + _digest(target_identity(target))
        self.folded_to_us = 0  # timestamp of the last event folded

    def cached(self) -> tuple[Any, CacheMeta] | None:
        try:
            found = self.cache.get(self.key)
            if found is None:
                return None
            value, meta = found
            # Rebuilt here so that a malformed entry fails inside this try, not in project().
            meta = CacheMeta(meta.watermark, meta.cached_at_us)
            if not self.same_history(meta):
                return None
            return self.projection.decode(value), meta
        except Exception as exc:  # a cache never fails project(): warn and replay
            log.warning("projection cache get failed for %s: %r; replaying", type(self.projection).name, exc)
            return None

    def same_history(self, meta: CacheMeta) -> bool:
        """False when the event now at the cached watermark was appended after the state was
        cached: the data dir was restored from a backup (same ``store_id``) and its history
        went another way since, so the state folds events the log no longer holds. (A state
        is cached no earlier than its watermark event's timestamp: see ``remember``.)"""
        w = meta.watermark
        found = self.store.query(Region.all(), after=w - 1 if w else None, limit=1)
        if not found or found[0].global_sequence != w:
            return True  # hidden, removed by a compaction, or not there: nothing to compare
        return found[0].timestamp_us <= meta.cached_at_us

    def fold(self, state: Any, after: int | None, watermark: int) -> Any:
        """Applies the relevant events in ``(after, watermark]``: events committed while the
        replay runs belong to a later watermark, so the cached state matches its meta."""
        while True:
            batch = replay(self.store, self.target, self.kinds, after, REPLAY_BATCH)
            for event in batch:
                if event.global_sequence > watermark:
                    return state
                state = self.projection.apply(state, event)
                self.folded_to_us = event.timestamp_us
            if len(batch) < REPLAY_BATCH:
                return state
            after = batch[-1].global_sequence

    def remember(self, state: Any, watermark: int) -> None:
        try:
            value = self.projection.encode(state)
            if type(self.projection).encode is Projection.encode and not comes_back_as_it_was(
                state, decode_payload(value)
            ):
                # A cached state must come back as it was, or the next project() would hand
                # `apply` another type: msgpack has no tuple (it comes back a list), no enum
                # (an IntEnum comes back an int), no dict subclass, only UTC datetimes.
                name = type(self.projection).name
                if name not in _NOT_CACHEABLE:
                    _NOT_CACHEABLE.add(name)
                    log.warning(
                        "projection %s is not cached: its state does not come back from msgpack "
                        "as it was (a tuple comes back a list, an enum its value); override "
                        "encode/decode",
                        name,
                    )
                return
            # Never before the watermark event's own timestamp (the engine's clock may run
            # ahead of the wall clock in a burst of appends), so `same_history` holds for it.
            cached_at_us = max(_now_us(), self.folded_to_us)
            self.cache.put(self.key, value, CacheMeta(watermark, cached_at_us))
        except Exception as exc:
            log.warning("projection cache put failed for %s: %r", type(self.projection).name, exc)

    def project(self, freshness: Freshness, watermark: int | None) -> Any:
        """The state at ``watermark`` (the target's newest relevant event when it is read)."""
        if watermark is None:
            return None
        cached = self.cached()
        if cached is not None:
            state, meta = cached
            if meta.watermark == watermark:
                return state
            young = (
                freshness.max_stale_ms is not None
                and _now_us() - meta.cached_at_us <= freshness.max_stale_ms * 1000
            )
            if young:
                return state
            if type(self.projection).incremental and meta.watermark < watermark:
                state = self.fold(state, meta.watermark, watermark)
                self.remember(state, watermark)
                return state
        state = self.fold(self.projection.initial(), None, watermark)
        self.remember(state, watermark)
        return state


# Projections whose state the default codec cannot carry as it is (warned about once).
_NOT_CACHEABLE: set[str] = set()

# Kind tuples already checked (one per projection class in practice): `project` stays cheap.
_VALID_KINDS: set[tuple[str, ...]] = set()


def check_projection(projection: object, freshness: object = Freshness.CONSISTENT) -> None:
    """Refuses what ``project`` could only misuse: not a ``Projection`` (``TypeError``), a
    ``kinds`` that is not a tuple of kind names (``ep.InvalidConfig``: ``("deposit")`` is a
    str, and would fold nothing), a ``freshness`` that is not a ``Freshness``."""
    if not isinstance(projection, Projection):
        raise TypeError(f"projection must be an ep.Projection, not {type(projection).__name__}")
    kinds = type(projection).kinds
    if isinstance(kinds, str | bytes) or not all(isinstance(kind, str) for kind in kinds):
        raise InvalidConfig(
            f"{type(projection).__name__}.kinds must be a tuple of kind names, not {kinds!r}"
            " (a tuple of one needs its comma: ('deposit',))"
        )
    if kinds and tuple(kinds) not in _VALID_KINDS:
        # A name no event can have ("order/placed") would fold nothing, silently: the rules
        # are a region's (a projection may read reserved kinds, as a region may).
        try:
            Region.all().with_kinds(list(kinds))
        except InvalidRegion as exc:
            raise InvalidConfig(f"{type(projection).__name__}.kinds: {exc.reason}") from None
        _VALID_KINDS.add(tuple(kinds))
    if not isinstance(freshness, Freshness):
        raise TypeError(
            "freshness must be ep.Freshness.CONSISTENT or ep.Freshness.maybe_stale(ms), "
            f"not {type(freshness).__name__}"
        )


def project(
    store: NativeStore,
    cache: ProjectionCache,
    target: str | Region,
    projection: Projection[Any],
    freshness: Freshness,
) -> Any:
    """See :meth:`Store.project`."""
    check_projection(projection, freshness)
    projector = _Projector(store, cache, target, projection)
    return projector.project(freshness, replay_head(store, target, projector.kinds))


def project_if_changed(
    store: NativeStore,
    cache: ProjectionCache,
    target: str | Region,
    projection: Projection[Any],
    last_generation: int | None,
) -> tuple[int, Any] | None:
    """See :meth:`Store.project_if_changed`."""
    check_projection(projection)
    if last_generation is not None:
        # A generation is a global sequence: the same range, and the same error classes.
        if isinstance(last_generation, bool) or not isinstance(last_generation, int):
            raise TypeError(f"last_generation must be an int or None, not {type(last_generation).__name__}")
        if not 0 <= last_generation < 2**64:
            raise InvalidArgument("last_generation", f"must be in 0..2**64 - 1, got {last_generation}")
    generation = replay_head(store, target, list(type(projection).kinds))
    if generation is None or generation == last_generation:
        return None
    # The state is computed at exactly this generation, so the pair always agrees.
    projector = _Projector(store, cache, target, projection)
    return generation, projector.project(Freshness.CONSISTENT, generation)
