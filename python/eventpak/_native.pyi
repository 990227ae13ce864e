"""Type stubs of the Rust extension ``eventpak._native``.

The binding of eventpak-core: every class here is final and built by the engine. The
public API lives in the ``eventpak`` package, which wraps these classes. Engine errors are
raised as the typed exceptions of ``eventpak.errors``.
"""

import datetime
import os
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, ClassVar, Literal, Self, SupportsIndex, TypeAlias, TypeVar, final, overload

__all__ = [
    "AppendCondition",
    "AppendReceipt",
    "AppendRequest",
    "CacheMeta",
    "CommitNotifier",
    "Coordinate",
    "Cursor",
    "CursorCheckpoint",
    "CursorGapConfig",
    "Event",
    "GapObservation",
    "NativeCache",
    "NativeFence",
    "NativeStore",
    "PriorItem",
    "Region",
    "Tracking",
    "WorkerLease",
    "__version__",
    "_convert_items",
    "after_fork_in_child",
    "check_store_options",
    "decode_payload",
    "encode_payload",
    "generate_encryption_key",
    "generate_signing_key",
    "mark_exit_started",
    "mark_exiting",
    "nats_decode",
    "nats_publish_commands",
    "public_key",
    "replay",
    "replay_head",
    "store_defaults",
    "target_identity",
    "validate_kind",
    "verify_receipt",
    "verify_receipt_signature",
]

__version__: str
"""The package version, from Cargo (the one place it is written)."""

# (event_id, global_sequence, entity, scope, kind, entity_sequence, timestamp_us, causation_id,
#  correlation_id, prev_hash, hash, payload_version, payload, tags)
_ReplicatedEvent = tuple[
    bytes, int, str, str, str, int, int, bytes | None, bytes, bytes, bytes, int, bytes, list[str]
]

@final
class Coordinate:
    """The address of a stream: an entity (hash chain and clock) and a scope (isolation label).
    It unpacks like the ``(entity, scope)`` pair it stands for: ``entity, scope = coord``."""

    def __new__(cls, entity: str, scope: str) -> Self:
        """A coordinate; raises ``InvalidCoordinate`` for an invalid part (empty, too long,
        control bytes, ``/``, ``|``, ``=`` or ``..``)."""
    @property
    def entity(self) -> str:
        """The entity part."""
    @property
    def scope(self) -> str:
        """The scope part."""
    def __len__(self) -> int:
        """2: a coordinate is an ``(entity, scope)`` pair."""
    @overload
    def __getitem__(self, index: SupportsIndex, /) -> str: ...
    @overload
    def __getitem__(self, index: slice, /) -> tuple[str, ...]: ...
    def __iter__(self) -> Iterator[str]:
        """The entity, then the scope."""
    def __getnewargs__(self) -> tuple[str, str]:
        """``(entity, scope)``, for pickling and copying."""
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...

# A list of two str is accepted too; not `Sequence[str]`, which a bare str would satisfy.
_CoordinateLike: TypeAlias = Coordinate | tuple[str, str] | list[str]
_EventId: TypeAlias = uuid.UUID | str
_BatchItem: TypeAlias = AppendRequest | tuple[_CoordinateLike, str, Any]
_Cause: TypeAlias = Event | AppendReceipt | uuid.UUID | str | PriorItem
_T = TypeVar("_T")

@final
class Region:
    """The read predicate of queries, cursors, workers, projections and append conditions.
    Builders return new regions and raise ``InvalidRegion`` for a bad filter value
    (``InvalidTag`` for a bad tag)."""

    @staticmethod
    def all() -> Region:
        """The region matching every event."""
    @staticmethod
    def any_of(regions: Sequence[Region]) -> Region:
        """The union of ``regions``: the events any of them matches, each once, in commit
        order. Nested unions are flattened and members kept once in the order of their
        identities (so the identity does not depend on how the union was written); a
        union of one region is that region; no region raises ``InvalidRegion``. A union
        takes no filter of its own: its builders raise ``InvalidRegion``."""
    @staticmethod
    def entity(name: str, *, exact: bool = False) -> Region:
        """Events of entity ``name`` and of entities in its namespace (``name:...``); with
        ``exact=True``, of entity ``name`` only (identity ``entity==name|...``)."""
    @staticmethod
    def scope(scope: str) -> Region:
        """Events of one scope."""
    def with_scope(self, scope: str) -> Region:
        """This region restricted to one scope."""
    def with_kind(self, kind: str) -> Region:
        """This region accepting exactly one kind."""
    def with_kinds(self, kinds: Sequence[str]) -> Region:
        """This region accepting exactly these kinds: a list, tuple or other sequence of str
        (a set or a bare str raises ``TypeError``)."""
    def with_kind_prefix(self, prefix: str) -> Region:
        """This region accepting the kinds that start with ``prefix``."""
    def with_clock_range(self, start: int, end: int) -> Region:
        """This region restricted to entity clocks (``entity_sequence``) ``start..=end``."""
    def with_tags(self, tags: Sequence[str]) -> Region:
        """This region restricted to events carrying every one of ``tags`` (matched
        literally), besides the tags it already requires; an empty sequence changes
        nothing. A bad tag raises ``InvalidTag``."""
    def matches(
        self,
        coord: _CoordinateLike,
        kind: str,
        entity_sequence: int | None = None,
        *,
        tags: Sequence[str] | None = None,
    ) -> bool:
        """True when an event at ``coord`` with ``kind``, carrying ``tags``, matches (for a
        union: when a member does); the clock range is checked only when
        ``entity_sequence`` is given. A coordinate or kind that breaks the naming rules
        raises ``InvalidCoordinate`` / ``InvalidKind``."""
    @property
    def tags(self) -> list[str]:
        """The tags every matching event carries, sorted (empty for a union)."""
    @property
    def members(self) -> list[Region]:
        """The members of a union, in the order of their identities; empty for a region
        that is not a union."""
    @property
    def checkpoint_identity(self) -> str:
        """Stable, injective name of every filter; bound into durable cursor checkpoints.
        Tags add a last field ``|tags=a,b``; a union is ``any=<n>|`` followed by its
        members' identities."""
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class Event:
    """A committed event, read in place from the store's memory-mapped segment: fields are
    decoded on access, the payload on first access (brought up to date by the store's
    upcasters, then cached). Two events are equal when they are the same stored event (id,
    global sequence and hash). An event pickles as an owned copy of its fields (without its
    idempotency key), which outlives the store; upcasters belong to the store, so an
    unpickled copy shows the payload and version as stored."""

    @property
    def event_id(self) -> uuid.UUID:
        """The event's unique id."""
    @property
    def global_sequence(self) -> int:
        """Position in the store's log (commit order)."""
    @property
    def coordinate(self) -> Coordinate:
        """The event's ``Coordinate`` (entity and scope)."""
    @property
    def entity(self) -> str:
        """The entity part of the coordinate."""
    @property
    def scope(self) -> str:
        """The scope part of the coordinate."""
    @property
    def kind(self) -> str:
        """The event kind."""
    @property
    def entity_sequence(self) -> int:
        """Position in its entity's stream (the entity clock, from 0)."""
    @property
    def timestamp_us(self) -> int:
        """Append time, in microseconds since the Unix epoch."""
    @property
    def timestamp(self) -> datetime.datetime:
        """``timestamp_us`` as an aware UTC ``datetime.datetime``."""
    @property
    def payload_version(self) -> int:
        """The payload's schema version: the newest registered for its kind once upcasters
        ran, else the stored one (0 when the event was appended without a version)."""
    @property
    def stored_payload_version(self) -> int:
        """The payload's schema version as stored on disk."""
    @property
    def causation_id(self) -> uuid.UUID | None:
        """The id of the event that caused this one, if given at append."""
    @property
    def correlation_id(self) -> uuid.UUID:
        """Groups related events; the event's own id unless given at append."""
    @property
    def prev_hash(self) -> bytes:
        """Hash of the entity's previous event (the hash chain link)."""
    @property
    def hash(self) -> bytes:
        """This event's chain hash."""
    @property
    def payload(self) -> Any:
        """The payload, decoded from msgpack and run through the store's upcasters from its
        stored version to the newest registered for its kind, once; later reads return the
        same object. An upcaster that raises makes this raise ``UpcastFailed`` from it (not
        cached: the next read runs it again)."""
    @property
    def payload_bytes(self) -> bytes:
        """The raw msgpack bytes of the payload, as stored (never upcast); of an encrypted
        store, opened (raises ``PayloadForgotten`` once its entity was forgotten)."""
    @property
    def tags(self) -> tuple[str, ...]:
        """The event's tags, as given at append and in that order (empty when none)."""
    def decode(self, cls: type[_T]) -> _T:
        """The payload as an instance of ``cls``, an ``@ep.event_type`` dataclass. Raises
        ``TypeError`` when ``cls`` is not one, is declared for another kind or another payload
        version than ``payload_version``, or when the payload does not fit its fields."""
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class AppendReceipt:
    """What an append returns. Two receipts are equal when they name the same stored event of
    the same store; ``durable`` (when the receipt was made), the key id and the signature (who
    vouches for it) are not compared. A receipt pickles with every field, as ``to_bytes()``."""

    @property
    def event_id(self) -> uuid.UUID:
        """The id of the stored event."""
    @property
    def global_sequence(self) -> int:
        """The event's position in the store's log."""
    @property
    def entity_sequence(self) -> int:
        """The event's position in its entity's stream."""
    @property
    def hash(self) -> bytes:
        """The event's chain hash."""
    @property
    def timestamp_us(self) -> int:
        """Append time, in microseconds since the Unix epoch."""
    @property
    def durable(self) -> bool:
        """True when an fsync covered the event before the receipt was made (not signed)."""
    @property
    def store_id(self) -> bytes:
        """The 16-byte id of the store that issued the receipt."""
    @property
    def key_id(self) -> bytes | None:
        """16 bytes naming the signing key (Blake3 of its public key); ``None`` when unsigned."""
    @property
    def signature(self) -> bytes | None:
        """The 64-byte Ed25519 signature over the receipt's canonical bytes (every field but
        ``durable``), or ``None``. A store computes it on first access (then cached)."""
    def to_bytes(self) -> bytes:
        """The versioned binary form of every field, signature and ``durable`` included."""
    @classmethod
    def from_bytes(cls, data: bytes) -> AppendReceipt:
        """Parses ``to_bytes()`` output. It checks the form only: altered fields still parse
        (verify them with ``verify_receipt_signature`` or ``Store.verify_receipt``).
        Malformed bytes (wrong length, unknown version or flags) raise ``InvalidArgument``."""
    def to_dict(self) -> dict[str, Any]:
        """Every field by name, JSON-ready: ``event_id`` as a str, bytes as lowercase hex,
        absent ``key_id`` and ``signature`` as ``None``."""
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class AppendRequest:
    """One event for ``append_batch``, with the same options as ``NativeStore.append``.
    Arguments are kept as given and validated when the batch is appended."""

    def __new__(
        cls,
        coord: _CoordinateLike,
        kind: str,
        payload: Any,
        *,
        idempotency_key: str | bytes | None = None,
        expected_sequence: int | None = None,
        causation_id: _EventId | PriorItem | None = None,
        correlation_id: _EventId | None = None,
        caused_by: _Cause | None = None,
        payload_version: int | None = None,
        tags: Sequence[str] | None = None,
    ) -> Self:
        """A request; see ``NativeStore.append`` for the arguments. In a batch,
        ``ep.PriorItem(k)`` names item ``k`` (an earlier one) as the cause."""
    @property
    def coord(self) -> _CoordinateLike:
        """The coordinate, as given."""
    @property
    def kind(self) -> str:
        """The event kind, as given."""
    @property
    def payload(self) -> Any:
        """The payload, as given (encoded when appended)."""
    @property
    def idempotency_key(self) -> str | bytes | None:
        """The idempotency key, as given."""
    @property
    def expected_sequence(self) -> int | None:
        """The compare-and-set entity clock, as given."""
    @property
    def causation_id(self) -> _EventId | PriorItem | None:
        """The causing event's id, as given."""
    @property
    def correlation_id(self) -> _EventId | None:
        """The correlation id, as given."""
    @property
    def caused_by(self) -> _Cause | None:
        """The cause, as given."""
    @property
    def payload_version(self) -> int | None:
        """The payload's schema version, as given (``None``: not given, stored as 0)."""
    @property
    def tags(self) -> Sequence[str] | None:
        """The tags, as given."""

@final
class AppendCondition:
    """Fails an append when a visible event matching ``fail_if_events_match`` was committed
    after the global sequence ``after`` (at all, when ``after`` is ``None``): the check and
    the write are one atomic step, across processes sharing the data dir too."""

    def __new__(cls, fail_if_events_match: Region, after: int | None = None) -> Self:
        """A condition; ``after`` is a global sequence (typically the position of the last
        event read when deciding)."""
    @property
    def fail_if_events_match(self) -> Region:
        """The events that must not exist after ``after``."""
    @property
    def after(self) -> int | None:
        """Only events strictly after this global sequence count (``None``: every event)."""
    def __getnewargs__(self) -> tuple[Region, int | None]:
        """``(fail_if_events_match, after)``, for pickling and copying."""
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class Tracking:
    """A consumer's position ``position`` in its input ``name``, recorded atomically with the
    batch that processed it (``append_batch(items, tracking=...)``): it takes no global
    sequence, and a position at or below the recorded one raises ``TrackingConflict``."""

    def __new__(cls, name: str, position: int) -> Self:
        """A tracking record; ``name`` follows the tag rules (1-255 bytes of UTF-8 without
        control bytes; else ``InvalidArgument``)."""
    @property
    def name(self) -> str:
        """The tracking name (typically the upstream the consumer reads)."""
    @property
    def position(self) -> int:
        """The position reached in that input."""
    def __getnewargs__(self) -> tuple[str, int]:
        """``(name, position)``, for pickling and copying."""
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class PriorItem:
    """In ``append_batch``: the earlier item at position ``index`` of the same batch, as a
    cause (its id is only known at commit)."""

    def __new__(cls, index: int) -> Self:
        """Names item ``index``; it must come before the item that names it."""
    @property
    def index(self) -> int:
        """Position of the causing item in its batch."""
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class CursorGapConfig:
    """Whether a cursor records gap observations, and how many it keeps."""

    @staticmethod
    def enabled(capacity: int) -> CursorGapConfig:
        """Records the newest ``capacity`` observations (oldest dropped first); raises
        ``ValueError`` when ``capacity`` is 0."""
    @staticmethod
    def disabled() -> CursorGapConfig:
        """Records nothing."""
    @property
    def capacity(self) -> int | None:
        """Ring capacity; ``None`` when disabled."""
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class GapObservation:
    """A delivery that jumped over cancelled fence ranges or ranges removed by compaction."""

    def __new__(
        cls,
        expected_sequence: int,
        delivered_sequence: int,
        cancelled_ranges: Iterable[tuple[int, int]] | None = None,
        compacted_ranges: Iterable[tuple[int, int]] | None = None,
    ) -> GapObservation:
        """An observation as a cursor records it: a jump (``delivered_sequence >
        expected_sequence``) and ranges ``(start, end)``, end exclusive, each non-empty, in
        ascending order without overlap, inside ``[expected_sequence, delivered_sequence)``."""
    @property
    def expected_sequence(self) -> int:
        """Sequence the cursor would have delivered next with no gap."""
    @property
    def delivered_sequence(self) -> int:
        """Sequence it delivered."""
    @property
    def cancelled_ranges(self) -> list[tuple[int, int]]:
        """Cancelled ``(start, end)`` ranges, end exclusive, within the jump."""
    @property
    def compacted_ranges(self) -> list[tuple[int, int]]:
        """Ranges removed by compaction, ``(start, end)`` with end exclusive, within the jump."""
    def __eq__(self, other: object, /) -> bool: ...
    __hash__: ClassVar[None]  # type: ignore[assignment]

@final
class CursorCheckpoint:
    """A saved cursor position (value type)."""

    def __new__(
        cls,
        position: int,
        started: bool,
        process_boot_ns: int | None = None,
        region_identity: str | None = None,
    ) -> Self:
        """A checkpoint at ``position``; ``region_identity`` binds it to a region."""
    @property
    def position(self) -> int:
        """Last delivered global sequence (0 before the first delivery)."""
    @property
    def started(self) -> bool:
        """False until the first delivery."""
    @property
    def process_boot_ns(self) -> int | None:
        """Reserved for monotonic-clock cross-checks."""
    @property
    def region_identity(self) -> str | None:
        """``Region.checkpoint_identity`` of the cursor's region, if bound."""
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class Cursor:
    """Ordered, at-least-once pull delivery of the visible events of a region. Made by
    ``NativeStore.cursor``; starts at the beginning of the log."""

    def poll(self) -> Event | None:
        """The next matching event, or ``None`` when there is none yet."""
    def poll_batch(self, max: int) -> list[Event]:
        """Up to ``max`` matching events, without waiting."""
    def pull_batch(self, max: int, timeout: float) -> list[Event]:
        """Up to ``max`` events, waiting (GIL released) up to ``timeout`` seconds for the
        first; a commit or ``interrupt()`` ends the wait at once."""
    def resume(self, checkpoint_id: str) -> bool:
        """Moves to durable checkpoint ``checkpoint_id``: ``True`` if found, ``False`` (no
        move) if not. Raises ``CursorCheckpointRegionMismatch`` or ``CursorCheckpointCorrupt``."""
    def commit(self, checkpoint_id: str) -> None:
        """Saves the position as durable checkpoint ``checkpoint_id``, bound to the region:
        events through it are fsynced first, then the file is replaced atomically."""
    def interrupt(self) -> None:
        """Makes a ``pull_batch`` blocked in another thread return (empty) now."""
    def seek(self, position: int, started: bool) -> None:
        """Moves the cursor: the next delivery is the first match after ``position`` (or
        at it, when ``started`` is False)."""
    def with_gap_config(self, config: CursorGapConfig) -> Cursor:
        """A copy of this cursor (same position) recording gaps as ``config`` says."""
    def take_gaps(self) -> list[GapObservation]:
        """Drains the recorded gap observations, oldest first."""
    @property
    def position(self) -> int:
        """Last delivered global sequence (0 before the first delivery)."""
    @property
    def started(self) -> bool:
        """False until the first delivery."""
    @property
    def region(self) -> Region:
        """The cursor's region."""
    @staticmethod
    def load_checkpoint(data_dir: str | os.PathLike[str], checkpoint_id: str) -> CursorCheckpoint | None:
        """Loads checkpoint ``checkpoint_id`` of ``data_dir``; ``None`` when there is none."""
    @staticmethod
    def save_checkpoint(
        data_dir: str | os.PathLike[str], checkpoint_id: str, checkpoint: CursorCheckpoint
    ) -> None:
        """Saves ``checkpoint`` as ``checkpoint_id`` atomically (temp, fsync, rename, dir fsync)."""
    @staticmethod
    def validate_checkpoint_id(checkpoint_id: str) -> None:
        """Raises ``InvalidCheckpointId`` unless ``checkpoint_id`` can name a checkpoint."""

@final
class CacheMeta:
    """When and at which watermark a projection state was cached."""

    def __new__(cls, watermark: int, cached_at_us: int) -> Self:
        """Metadata of a cached state."""
    @property
    def watermark(self) -> int:
        """Global sequence of the last relevant event folded into the state."""
    @property
    def cached_at_us(self) -> int:
        """Wall clock (µs since the epoch) when the state was cached."""
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class NativeCache:
    """Projection states on disk, one file per key under ``<dir>/<2 hex>/<hex key>.bin``;
    writes are atomic (temp, rename) but not fsynced; a damaged file is deleted and missed."""

    def __new__(cls, dir: str | os.PathLike[str]) -> Self:
        """Opens the cache in ``dir`` (made absolute: a later ``os.chdir`` does not move it),
        creating it if needed and removing temp files killed writers left there over ten
        minutes ago; raises ``CacheFailed``."""
    def get(self, key: bytes) -> tuple[bytes, CacheMeta] | None:
        """``(value, CacheMeta)`` for ``key`` (1 to 100 bytes), or ``None``."""
    def put(self, key: bytes, value: bytes, meta: CacheMeta) -> None:
        """Stores ``value`` under ``key`` (1 to 100 bytes)."""
    def delete_prefix(self, prefix: bytes) -> int:
        """Deletes every entry whose key starts with ``prefix``; returns how many."""
    def sync(self) -> None:
        """Nothing to flush: puts are written at once (and a cache needs no fsync)."""
    def prefetch(self, key: bytes, meta: CacheMeta) -> None:
        """Nothing to prefetch: a get is one file read."""

@final
class WorkerLease:
    """Held by the one live worker of a checkpoint id; ``release()`` (or the process ending)
    hands it to a standby."""
    def release(self) -> None:
        """Releases the lease (idempotent); a waiting standby takes it over."""
    @property
    def held(self) -> bool:
        """True until ``release()``."""

@final
class CommitNotifier:
    """A descriptor that becomes readable after events become visible, once armed (for
    event loops: ``eventpak.aio``)."""

    def fileno(self) -> int:
        """The descriptor an event loop watches for readability."""
    def arm(self) -> None:
        """Asks for a signal at the next commit; re-check for events after calling it."""
    def drain(self) -> None:
        """Empties the descriptor once it was seen readable."""

@final
class NativeStore:
    """An open event store (engine side), held by ``eventpak.Store``. Every method that
    touches disk or waits releases the GIL; calls after ``close()`` raise ``StoreClosed``."""

    @staticmethod
    def open(
        path: str | os.PathLike[str],
        *,
        default: Callable[[Any], Any] | None = None,
        upcasters: dict[str, tuple[int, tuple[Callable[[Any], Any], ...]]] | None = None,
        sync: Literal["always", "batch", "never"] = ...,
        sync_every_n_events: int = ...,
        sync_interval_ms: int = ...,
        segment_max_bytes: int = ...,
        max_event_bytes: int = ...,
        max_batch_events: int = ...,
        max_batch_bytes: int = ...,
        enable_index_checkpoint: bool = ...,
        create: bool = ...,
        read_only: bool = ...,
        shared: bool = ...,
        fence_wait_ms: int = ...,
        signing_key: bytes | None = ...,
        verify_keys: Sequence[bytes] = ...,
    ) -> NativeStore:
        """Opens (or creates) the store in ``path``; defaults are ``store_defaults()``.
        ``upcasters`` is ``eventpak.Upcasters.chains()``: ``{kind: (first_version, steps)}``.
        Raises ``InvalidConfig`` for bad options, ``StoreLocked`` if the dir is in use."""
    def append(
        self,
        coord: _CoordinateLike,
        kind: str,
        payload: Any,
        *,
        idempotency_key: str | bytes | None = None,
        expected_sequence: int | None = None,
        causation_id: _EventId | PriorItem | None = None,
        correlation_id: _EventId | None = None,
        caused_by: _Cause | None = None,
        payload_version: int | None = None,
        tags: Sequence[str] | None = None,
        condition: AppendCondition | None = None,
        tracking: Tracking | None = None,
    ) -> AppendReceipt:
        """Appends one event and returns its receipt. Raises ``FenceActive`` while a fence
        is open, ``ConcurrencyConflict`` when ``expected_sequence`` is not the entity's clock,
        ``InvalidCausation`` for ``caused_by`` together with ``causation_id``, ``InvalidTag``
        for a bad tag, ``AppendConditionFailed`` when ``condition`` fails and
        ``TrackingConflict`` when ``tracking`` is not past the recorded position."""
    def append_batch(
        self,
        items: Iterable[_BatchItem],
        *,
        condition: AppendCondition | None = None,
        tracking: Tracking | None = None,
    ) -> list[AppendReceipt]:
        """Appends ``AppendRequest`` items or ``(coord, kind, payload)`` tuples atomically
        (all or none); one receipt per item. Raises ``BatchTooLarge`` past the limits. With
        ``condition`` and ``tracking``, as ``append`` (``items`` may then be empty)."""
    def tracking_position(self, name: str) -> int | None:
        """The position last recorded for tracking name ``name``, or ``None``."""
    def _append_reserved_batch(
        self,
        items: Iterable[_BatchItem],
        *,
        condition: AppendCondition | None = None,
        tracking: Tracking | None = None,
    ) -> list[AppendReceipt]:
        """Like ``append_batch``, for events the store writes itself: the reserved kinds
        ``eventpak.denial``, ``eventpak.bypass`` and ``eventpak.dead_letter`` are accepted beside
        ordinary ones (any other ``eventpak.`` kind raises ``InvalidKind``)."""
    def get(self, event_id: _EventId) -> Event:
        """The event with this id; raises ``EventNotFound``."""
    def query(self, region: Region, *, after: int | None = None, limit: int | None = None) -> list[Event]:
        """Visible events matching ``region`` in commit order, strictly after global
        sequence ``after`` when given, at most ``limit``."""
    def query_hits_after(self, region: Region, position: int, started: bool, limit: int) -> list[int]:
        """Global sequences matching ``region`` after cursor position ``position`` (at it,
        when ``started`` is False), at most ``limit``."""
    def walk_ancestors(self, event_id: _EventId, limit: int | None = None) -> list[Event]:
        """The event, then its entity's earlier events (newest first) along the ``prev_hash``
        chain, at most ``limit`` in all. Raises ``EventNotFound``."""
    def causes(self, event_id: _EventId, *, limit: int | None = None) -> list[Event]:
        """The event, its cause, that cause's cause ... up to the root. Raises ``EventNotFound``."""
    def effects(self, event_id: _EventId) -> list[Event]:
        """The direct effects of the event, in commit order. Raises ``EventNotFound``."""
    def descendants(self, event_id: _EventId, *, max_depth: int | None = None) -> list[Event]:
        """Every event the event caused, breadth first, itself excluded. Raises ``EventNotFound``."""
    def correlated(
        self, correlation_id: _EventId, *, after: int | None = None, limit: int | None = None
    ) -> list[Event]:
        """The events carrying ``correlation_id``, in commit order, strictly after ``after``."""
    def cursor(self, region: Region, *, after: int | None = None) -> Cursor:
        """A cursor over ``region``: from the beginning of the log, or strictly after the
        global sequence ``after``."""
    def head(self) -> int | None:
        """The newest visible global sequence, or ``None`` while nothing is visible."""
    def next_sequence(self, entity: str) -> int:
        """The entity's next clock value: what ``expected_sequence`` must be for its next append."""
    def reset_checkpoint(self, checkpoint_id: str) -> bool:
        """Deletes cursor checkpoint ``checkpoint_id`` (durably); ``False`` when there was none.
        Raises ``ReadOnlyStore`` on a read-only store."""
    def sync(self) -> None:
        """fsync barrier: every event appended so far (in shared mode, by any process) is
        durable when this returns; at once on a read-only store, which appends nothing."""
    def _commit_notifier(self) -> CommitNotifier:
        """The store's commit descriptor (one per store, made on first call)."""
    def _commit_generation(self) -> int:
        """A counter that changes whenever events become visible (in any process sharing the
        data dir)."""
    def _append_each(self, items: list[AppendRequest | tuple[_CoordinateLike, str, Any]]) -> list[Any]:
        """Appends each item as its own event, with one durability wait for all; returns per
        item its receipt or the exception that refused it."""
    def _become_replica(self, stream: str) -> None:
        """Makes this (empty) store and its data dir a replica of ``stream``: from now on
        only ``_apply_replicated`` writes to it, in this and every later open."""
    def _replica_origin(self) -> tuple[str, bytes | None] | None:
        """``(stream, origin store id or None)`` for a replica, ``None`` for an ordinary store."""
    def _apply_replicated(
        self,
        origin_store_id: bytes,
        events: list[_ReplicatedEvent],
    ) -> tuple[int, int]:
        """Applies events of origin ``origin_store_id`` in order, verbatim, then fsyncs;
        returns ``(applied, already_present)``. The first event that does not continue the
        log raises ``ReplicationRefused``; those before it are applied and durable."""
    def checkpoint_ids(self) -> list[str]:
        """The ids of the durable cursor checkpoints of the data dir, sorted."""
    def checkpoint_status(
        self, checkpoint_id: str
    ) -> tuple[str, str | None, int, bool, int, tuple[int, int | None] | None] | None:
        """Checkpoint ``checkpoint_id`` as ``(checkpoint_id, region_identity, position,
        started, saved_at_us, lag)``, or ``None`` when there is none; ``lag`` is ``(events,
        oldest_timestamp_us)``, or ``None`` when the region identity cannot be read back.
        Raises ``CursorCheckpointCorrupt`` for a checkpoint that cannot be trusted."""
    def region_lag(self, region: Region, position: int, started: bool) -> tuple[int, int | None]:
        """``(events, oldest_timestamp_us)``: the visible events of ``region`` after cursor
        position ``position`` (at it, when ``started`` is False), and the timestamp of the
        first of them (``None`` when there is none)."""
    def take_worker_lease(self, checkpoint_id: str, timeout: float = 0.0) -> WorkerLease | None:
        """Takes the worker lease of ``checkpoint_id``, waiting up to ``timeout`` seconds for
        its holder (a worker in this or another process) to release it; ``None`` if still held."""
    @property
    def read_only(self) -> bool:
        """True when the store was opened with ``read_only=True``."""
    def verify(
        self, progress: Callable[[int, int], object] | None = None
    ) -> tuple[int, int, int, list[tuple[str, int, int | None, str]], int]:
        """The full integrity check: ``(events, segments, bytes, problems, problems_not_listed)``
        with each problem ``(path, offset, sequence, reason)``. ``progress(done, total)`` is
        called every few megabytes; an exception from it stops the check and is raised."""
    def backup(
        self, dest: str, progress: Callable[[int, int], object] | None = None
    ) -> tuple[int | None, int, int, bool]:
        """Backs the store up into ``dest`` (see ``eventpak.Store.backup``):
        ``(through, events, bytes_copied, incremental)``. An exception from
        ``progress(done_bytes, total_bytes)`` stops the backup and is raised."""
    def compact(
        self,
        max_age_us: int | None,
        kinds: Iterable[str] | None,
        keep_last_per_entity: int,
        predicate: Callable[[Event], object] | None,
        progress: Callable[[int, int], object] | None,
    ) -> tuple[int, int, int]:
        """Removes the events the rules (or ``predicate``, which replaces them) select from
        the sealed segments; returns ``(removed, kept, bytes_freed)``. An exception from
        ``predicate`` or ``progress(done, total)`` stops it before anything changes and is
        raised."""
    def stats(self) -> dict[str, Any]:
        """Counts, sizes and what recovery did at open (see ``eventpak.StoreStats``)."""
    def close(self) -> None:
        """Syncs, writes the index checkpoint and releases the data dir. Idempotent."""
    def pause_syncs(self, paused: bool) -> None:
        """Holds (``True``) or releases (``False``) every fsync of the group-commit path,
        so tests can observe appenders blocked in fsync. Not for production use."""
    @property
    def closed(self) -> bool:
        """True once ``close()`` ran."""
    @property
    def path(self) -> str:
        """The data dir as given to ``open`` (what error messages name)."""
    @property
    def data_dir(self) -> str:
        """The data dir made absolute at open: a later ``os.chdir`` does not move it."""
    @property
    def store_id(self) -> bytes:
        """The 16 random bytes fixed when the data dir was created."""
    def check_open(self) -> None:
        """Raises ``StoreClosed`` when the store is closed, or was opened before a fork in
        this (forked) process; else nothing."""
    def forget_entity(self, entity: str) -> int:
        """Destroys the data keys of exactly ``entity``; returns how many it destroyed."""
    def rotate_encryption_key(self, new_key: bytes) -> int:
        """Wraps every data key again by the store key ``new_key``; returns how many it wrapped."""
    @property
    def encrypted(self) -> bool:
        """True when the store seals its payloads (opened with an encryption_key)."""

@final
class NativeFence:
    """An open visibility fence of one store: its events are written at once but stay
    invisible until ``commit()``. ``eventpak.Fence`` wraps it with the ``with`` protocol."""

    def __new__(cls, store: NativeStore) -> Self:
        """Opens the store's fence; raises ``FenceActive`` if one is already open."""
    @staticmethod
    def check(store: NativeStore) -> None:
        """Raises what opening a fence on ``store`` would raise at once (``StoreClosed``,
        ``ReadOnlyStore``), without opening one."""
    @staticmethod
    def cancel_own(store: NativeStore) -> bool:
        """Cancels the store's open fence if the calling thread opened it; true when it did."""
    def append_batch(self, items: Iterable[_BatchItem]) -> list[AppendReceipt]:
        """Appends events through the fence atomically (items as in ``NativeStore.append_batch``).
        Raises ``FenceClosed`` once the fence was committed or cancelled."""
    def commit(self) -> None:
        """Makes the fence's events durable, then visible; raises ``FenceClosed`` if it is
        no longer open."""
    def cancel(self) -> None:
        """Hides the fence's events for good (persisted); raises ``FenceClosed`` if it is no
        longer open."""

def mark_exit_started() -> None:
    """Called by the package's ``atexit`` hook before it closes the open stores: from now on,
    another thread whose engine call ends because its store was closed parks for good instead
    of raising ``StoreClosed``."""

def mark_exiting(timeout: float = 5.0) -> bool:
    """Called by the package's ``atexit`` hook: from now on, threads other than the exiting
    one that come back from the engine, or are about to run Python code from inside it (an
    upcaster, ``default=``, a progress callback), park for good instead of taking the GIL
    again. Then waits up to ``timeout`` seconds for such Python code already running to
    return; ``False`` when some still runs."""

def after_fork_in_child() -> None:
    """Marks this process as a child just forked: stores opened before the fork become
    unusable here (registered with ``os.register_at_fork``)."""

def validate_kind(kind: str) -> None:
    """Raises ``InvalidKind`` unless ``kind`` may be appended (naming rules, no reserved
    ``eventpak.`` prefix); ``TypeError`` when it is not a str."""

def store_defaults() -> dict[str, Any]:
    """The default of every engine option (the keywords of ``NativeStore.open``), by name."""

def check_store_options(
    *,
    sync: Literal["always", "batch", "never"] = ...,
    sync_every_n_events: int = ...,
    sync_interval_ms: int = ...,
    segment_max_bytes: int = ...,
    max_event_bytes: int = ...,
    max_batch_events: int = ...,
    max_batch_bytes: int = ...,
    enable_index_checkpoint: bool = ...,
    create: bool = ...,
    read_only: bool = ...,
    shared: bool = ...,
    fence_wait_ms: int = ...,
    signing_key: bytes | None = ...,
    verify_keys: Sequence[bytes] = ...,
) -> None:
    """Raises ``InvalidConfig`` unless these options (those of ``NativeStore.open``) would
    open a store; unknown names are refused too."""

def replay(
    store: NativeStore, target: str | Region, kinds: Sequence[str], after: int | None, limit: int
) -> list[Event]:
    """Up to ``limit`` relevant events (kind in ``kinds``; empty: every kind) of a projection
    target (an exact entity, or a ``Region``) after ``after``, in commit order."""

def replay_head(store: NativeStore, target: str | Region, kinds: Sequence[str]) -> int | None:
    """The global sequence of the newest relevant event of a projection target, if any."""

def generate_encryption_key() -> bytes:
    """A new store encryption key: 32 random bytes from the operating system."""

def generate_signing_key() -> bytes:
    """A new Ed25519 signing key: a 32-byte seed from the operating system's randomness."""

def public_key(signing_key: bytes) -> bytes:
    """The 32-byte Ed25519 public key of a signing key; a key of another length raises
    ``InvalidArgument``."""

def verify_receipt_signature(receipt: AppendReceipt, public_key: bytes) -> bool:
    """True when ``receipt`` names the key ``public_key`` and carries its valid signature over
    every field but ``durable``. Needs no store. A malformed public key raises
    ``InvalidArgument``."""

def verify_receipt(store: NativeStore, receipt: AppendReceipt) -> str | None:
    """``None`` when ``store`` vouches for ``receipt``, else the first reason it does not
    (see ``eventpak.ReceiptCheck``). Never raises for a bad receipt."""

def target_identity(target: str | Region) -> str:
    """The stable identity of a projection target (part of cache keys)."""

def encode_payload(value: Any, *, default: Callable[[Any], Any] | None = None) -> bytes:
    """Encodes a payload to msgpack the way the store does. A value msgpack cannot carry is
    passed to ``default`` (as in ``json.dumps``) and its result encoded instead; without
    ``default``, or when it raises, raises ``PayloadNotSerializable`` (the exception
    ``default`` raised is its ``__cause__``)."""

def decode_payload(data: bytes, /) -> Any:
    """Decodes msgpack bytes the way the store does. Raises ``PayloadNotDecodable`` (a
    ``ValueError``) unless the bytes hold exactly one msgpack value whose every ``str`` is
    UTF-8 and whose extensions are timestamps."""

def _convert_items(items: Iterable[Any], *, default: Callable[[Any], Any] | None = None) -> int:
    """Converts ``append_batch`` items as ``append_batch`` does before appending and returns
    their count; appends nothing (the Python boundary's cost alone, for benchmarks)."""

def nats_publish_commands(
    events: list[Event],
    store_id: bytes,
    subject: str,
    follows: str | None,
    reply: str,
    max_bytes: int,
    max_message: int,
) -> tuple[bytes, int]:
    """The NATS protocol bytes publishing ``events`` in order on ``subject`` (used by
    ``eventpak.nats``), and how many of them it holds: one ``HPUB`` per event with its stored
    payload as the body and its fields in ``Eventpak-*`` headers (the format of
    ``eventpak.nats._wire.event_headers``), until the bytes reach ``max_bytes`` (at least one
    event). Each message names its predecessor in ``Nats-Expected-Last-Msg-Id`` (the first
    names ``follows``, or nothing when it is ``None``); only the last carries the reply
    subject ``reply`` (none when empty). A message over ``max_message`` bytes (the server's
    ``max_payload``) ends the run before it; first in the run, it raises ``ValueError``
    naming the event."""

def nats_decode(
    headers: dict[str, Any] | None, payload: bytes | None
) -> tuple[bytes, _ReplicatedEvent, str, int, str | None]:
    """The event a NATS message of ``eventpak.nats`` carries: ``(origin store id, the tuple
    NativeStore._apply_replicated takes, event id text, global_sequence, the id its
    Nats-Expected-Last-Msg-Id names or None)``. Raises ``ValueError`` naming the header that
    is missing or malformed."""
