"""Store options. The engine holds their defaults and their validation; this module reads
the defaults from it and asks it to check a config before anything touches the disk."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Literal, TypedDict

from ._native import check_store_options, store_defaults
from .errors import InvalidConfig
from .projection import ProjectionCache
from .typed import Upcasters

__all__ = ["StoreConfig", "StoreOptions", "StoreStats", "SyncMode"]

SyncMode = Literal["always", "batch", "never"]
_DEFAULTS: dict[str, Any] = store_defaults()
# What `project()` calls on a projection cache: an object without them is a mistake (a
# path given in place of `ep.NativeCache(path)`) that would only show as warnings later.
_CACHE_METHODS = ("get", "put")


@dataclass(frozen=True)
class StoreConfig:
    """Everything ``Store.open`` accepts (see ``docs/design.md``, "The Store API").

    ``sync``: ``"always"`` (fsync before an append returns; concurrent appenders share one
    fsync), ``"batch"`` (fsync every ``sync_every_n_events`` events or ``sync_interval_ms``,
    whichever first) or ``"never"`` (the OS decides; ``store.sync()`` is a barrier).
    """

    path: str | os.PathLike[str]
    sync: SyncMode = _DEFAULTS["sync"]
    sync_every_n_events: int = _DEFAULTS["sync_every_n_events"]
    sync_interval_ms: int = _DEFAULTS["sync_interval_ms"]
    segment_max_bytes: int = _DEFAULTS["segment_max_bytes"]
    max_event_bytes: int = _DEFAULTS["max_event_bytes"]
    max_batch_events: int = _DEFAULTS["max_batch_events"]
    max_batch_bytes: int = _DEFAULTS["max_batch_bytes"]
    enable_index_checkpoint: bool = _DEFAULTS["enable_index_checkpoint"]
    create: bool = _DEFAULTS["create"]
    read_only: bool = _DEFAULTS["read_only"]
    shared: bool = _DEFAULTS["shared"]
    """Share the data dir with other processes that open it with ``shared=True`` too (web
    workers, job runners): appends, reads, cursors and workers work in each, in one global
    order. Open after forking, in each process."""
    fence_wait_ms: int = _DEFAULTS["fence_wait_ms"]
    """How long a plain append (or a fence) waits for another thread's open fence before
    raising ``ep.FenceActive``."""
    projection_cache: ProjectionCache | None = None
    """An object with the projection cache protocol (``ep.NativeCache(dir)``, ``ep.NoCache()``
    or your own); ``None`` means ``NoCache``."""
    default: Callable[[Any], Any] | None = None
    """Converts payload values msgpack cannot carry into ones it can, as ``json.dumps(default=)``
    does; without it such a value raises ``ep.PayloadNotSerializable``."""
    signing_key: bytes | None = field(default=_DEFAULTS["signing_key"], repr=False)
    """An Ed25519 signing key (32 bytes, ``ep.generate_signing_key()``): every receipt the
    store returns is signed with it. Never shown by ``repr``."""
    verify_keys: Sequence[bytes] = _DEFAULTS["verify_keys"]
    """Public keys (32 bytes each) whose receipt signatures ``verify_receipt`` accepts besides
    the signing key's: the keys the store signed with before a key rotation."""
    encryption_key: bytes | None = field(default=None, repr=False)
    """A 32-byte store key (``ep.generate_encryption_key()``): payloads are sealed at rest under
    per-entity data keys it wraps, and ``forget_entity`` can destroy one entity's for good. A
    new data dir opened with it is encrypted for life; a wrong key, a missing one and a key
    for a clear store raise ``ep.InvalidConfig``. Never shown by ``repr``."""
    upcasters: Upcasters | None = None
    """Run on every read: each payload is brought to the newest registered version of its kind.
    The store keeps the steps registered when it opens."""

    def __post_init__(self) -> None:
        if not isinstance(self.path, (str, os.PathLike)):
            raise InvalidConfig(f"path must be a str or os.PathLike, not {type(self.path).__name__}")
        cache = self.projection_cache
        if cache is not None and not all(callable(getattr(cache, m, None)) for m in _CACHE_METHODS):
            raise InvalidConfig(
                "projection_cache must be a cache (ep.NativeCache(dir), ep.NoCache() or an object "
                f"with {', '.join(_CACHE_METHODS)} methods), not {type(cache).__name__}"
            )
        if self.default is not None and not callable(self.default):
            raise InvalidConfig(f"default must be callable, not {type(self.default).__name__}")
        if isinstance(self.verify_keys, list):
            # A frozen config holds a tuple, so it stays hashable and nobody edits it later.
            object.__setattr__(self, "verify_keys", tuple(self.verify_keys))
        if self.upcasters is not None:
            if not isinstance(self.upcasters, Upcasters):
                raise InvalidConfig(f"upcasters must be an ep.Upcasters, not {type(self.upcasters).__name__}")
            self.upcasters.chains()  # a gap in a kind's steps is refused before the disk is touched
        check_store_options(**self.engine_options())

    def engine_options(self) -> dict[str, Any]:
        """The options the engine takes, by name (all but the path, the cache, ``default`` and
        ``upcasters``)."""
        skip = ("path", "projection_cache", "default", "upcasters")
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in skip}


class StoreOptions(TypedDict, total=False):
    """The keyword options of ``Store.open`` (the fields of :class:`StoreConfig`)."""

    sync: SyncMode
    sync_every_n_events: int
    sync_interval_ms: int
    segment_max_bytes: int
    max_event_bytes: int
    max_batch_events: int
    max_batch_bytes: int
    enable_index_checkpoint: bool
    create: bool
    read_only: bool
    shared: bool
    fence_wait_ms: int
    projection_cache: ProjectionCache | None
    default: Callable[[Any], Any] | None
    signing_key: bytes | None
    verify_keys: Sequence[bytes]
    encryption_key: bytes | None
    upcasters: Upcasters | None


class StoreStats(TypedDict):
    """What ``Store.stats()`` returns."""

    events: int
    """Events written, including those hidden by a fence."""
    visible_events: int
    """Events readers can see."""
    durable_events: int
    """Leading events covered by an fsync."""
    fsyncs: int
    appends: int
    """Appends through this store since it opened that wrote events (a batch counts once)."""
    appended_events: int
    """Events those appends wrote."""
    segments: int
    bytes: int
    entities: int
    scopes: int
    kinds: int
    sync: SyncMode
    writer_failure: str | None
    """Why the writer stopped accepting appends, if it did."""
    torn_tail_bytes: int
    """Bytes of a torn tail cut away at open."""
    torn_tail_segment: str | None
    removed_segments: list[str]
    """Half-created segment files removed at open."""
    index_checkpoint: str
    """How the index was loaded at open: ``"loaded"`` (from its checkpoint), ``"missing"``,
    ``"stale"``, ``"corrupt"`` or ``"disabled"`` (rebuilt from the segments)."""
    scanned_events: int
    """Events read from segments at open (not covered by the index checkpoint)."""
