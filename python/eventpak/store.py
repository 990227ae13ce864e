"""The store: ``Store.open`` a data dir, append events, read them back."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeVar, Unpack

from ._lifetime import open_stores
from ._native import (
    AppendCondition,
    AppendReceipt,
    Cursor,
    Event,
    NativeFence,
    NativeStore,
    Region,
    Tracking,
)
from ._timeouts import wait_seconds
from .backup import BackupReport, backup_store
from .config import StoreConfig, StoreOptions, StoreStats
from .dead_letters import DeadLetter, read_dead_letters
from .errors import Denial, InvalidConfig, StorageFailed, StoreClosed
from .fence import Fence, cancel_callers_fence
from .operations import CheckpointInfo, StoreMetrics, list_checkpoints, metrics
from .options import AppendOptions, BatchItem, CoordinateLike
from .projection import Freshness, NoCache, Projection, ProjectionCache, project, project_if_changed
from .receipts import ReceiptCheck, check_receipt
from .retention import CompactionReport, Retention, compact_store
from .typed import append_typed
from .verify import Progress, VerifyReport, verify_store
from .worker import CursorWorkerConfig, CursorWorkerHandle, Handler
from .worker_start import start_worker, stop_workers

if TYPE_CHECKING:
    from .gates import Proposal

__all__ = ["Store"]


S = TypeVar("S")


class Store:
    """An open event store. Create it with :meth:`Store.open`; share it freely between
    threads (every engine call releases the GIL); close it with :meth:`close` or a
    ``with`` block."""

    _native: NativeStore
    _projection_cache: ProjectionCache
    _workers: list[CursorWorkerHandle]
    _workers_lock: threading.Lock
    __weakref__: object

    def __init__(self, *args: object, **kwargs: object) -> None:
        raise TypeError("a Store is not built directly: open one with ep.Store.open(path, **options)")

    @classmethod
    def open(cls, path: str | os.PathLike[str] | StoreConfig, **options: Unpack[StoreOptions]) -> Self:
        """Opens (or creates) the store in ``path``, recovering the longest valid prefix.

        Options are the fields of :class:`StoreConfig`, given as keywords or as one
        ``StoreConfig`` in place of the path. Bad options raise ``ep.InvalidConfig``;
        another open store on the same data dir raises ``ep.StoreLocked``.
        """
        if isinstance(path, StoreConfig):
            if options:
                raise InvalidConfig("give options either inside the StoreConfig or as keywords, not both")
            config = path
        else:
            try:
                config = StoreConfig(path, **options)
            except TypeError as exc:
                raise InvalidConfig(f"unknown store option: {exc}") from None
        store = cls.__new__(cls)
        upcasters = config.upcasters.chains() if config.upcasters is not None else None
        try:
            store._native = NativeStore.open(
                os.fspath(config.path), default=config.default, upcasters=upcasters, **config.engine_options()
            )
        except StorageFailed as exc:
            exc.opening = True  # its message then does not advise reopening a store never opened
            raise
        store._projection_cache = (
            config.projection_cache if config.projection_cache is not None else NoCache()
        )
        store._workers = []
        store._workers_lock = threading.Lock()
        # The hottest calls skip a Python frame (about 5% of a single append): the instance
        # gets the native bound methods, which take exactly the same arguments, while the
        # class keeps the documented signatures that help(), IDEs and type checkers read.
        store.append = store._native.append  # type: ignore[method-assign]
        store.append_batch = store._native.append_batch  # type: ignore[method-assign]
        open_stores.add(store)
        return store

    def append(
        self, coord: CoordinateLike, kind: str, payload: Any, **options: Unpack[AppendOptions]
    ) -> AppendReceipt:
        """Appends one event; returns its :class:`AppendReceipt` (``durable`` when an fsync
        covered it). ``coord`` is a :class:`Coordinate` or an ``(entity, scope)`` pair; the
        payload is any msgpack-encodable value. See :class:`AppendOptions` for the options."""
        return self._native.append(coord, kind, payload, **options)

    def append_batch(
        self,
        items: Iterable[BatchItem],
        *,
        condition: AppendCondition | None = None,
        tracking: Tracking | None = None,
    ) -> list[AppendReceipt]:
        """Appends ``(coord, kind, payload)`` tuples or :class:`AppendRequest` items
        atomically: all are written, or none. Returns one receipt per item. ``condition``
        and ``tracking`` are checked and recorded in the same atomic step (see
        :class:`AppendOptions`; with ``tracking``, ``items`` may be empty)."""
        return self._native.append_batch(items, condition=condition, tracking=tracking)

    def tracking_position(self, name: str) -> int | None:
        """The position last recorded for tracking name ``name``, or ``None``."""
        return self._native.tracking_position(name)

    def append_denial(self, denial: Denial, proposal: Proposal) -> AppendReceipt:
        """Records ``denial`` of ``proposal`` as a reserved ``eventpak.denial`` event on the
        proposal's coordinate (payload: gate, code, message, context, proposed_kind), as a
        gate :class:`~eventpak.Pipeline` does; the proposal itself is not written."""
        from .pipeline import record_denial  # the pipeline builds on Store: imported when used

        return record_denial(self._native, denial, proposal)

    def append_typed(
        self, coord: CoordinateLike, obj: object, **options: Unpack[AppendOptions]
    ) -> AppendReceipt:
        """Appends an instance of an ``@ep.event_type`` dataclass: its fields as a dict payload
        (nested dataclasses as dicts), with the kind and ``payload_version`` of its class.
        Takes the options of :meth:`append` except ``payload_version``; any other object
        raises ``TypeError``. Read it back with ``event.decode(cls)``."""
        return append_typed(self._native, coord, obj, options)

    def get(self, event_id: uuid.UUID | str) -> Event:
        """The event with this id; raises ``ep.EventNotFound``."""
        return self._native.get(event_id)

    def query(self, region: Region, *, after: int | None = None, limit: int | None = None) -> list[Event]:
        """The visible events matching ``region`` in commit order, strictly after the global
        sequence ``after`` when given, at most ``limit``."""
        return self._native.query(region, after=after, limit=limit)

    def walk_ancestors(self, event_id: uuid.UUID | str, limit: int | None = None) -> list[Event]:
        """The event, then its entity's earlier events along the ``prev_hash`` chain."""
        return self._native.walk_ancestors(event_id, limit)

    def causes(self, event_id: uuid.UUID | str, *, limit: int | None = None) -> list[Event]:
        """The event, its cause, that cause's cause ... up to the root, at most ``limit``.
        The walk stops at a cause that is not a visible event of this store."""
        return self._native.causes(event_id, limit=limit)

    def effects(self, event_id: uuid.UUID | str) -> list[Event]:
        """The events whose cause is this event, in commit order (from an index, not a scan)."""
        return self._native.effects(event_id)

    def descendants(self, event_id: uuid.UUID | str, *, max_depth: int | None = None) -> list[Event]:
        """Every event this one caused, directly or not, breadth first; the event itself is
        not included. ``max_depth=1`` is :meth:`effects`."""
        return self._native.descendants(event_id, max_depth=max_depth)

    def correlated(
        self, correlation_id: uuid.UUID | str, *, after: int | None = None, limit: int | None = None
    ) -> list[Event]:
        """The events carrying ``correlation_id``, in commit order, strictly after the global
        sequence ``after`` when given, at most ``limit``. An event's default correlation is
        its own id, so the root of a saga is in its own correlation."""
        return self._native.correlated(correlation_id, after=after, limit=limit)

    def cursor(self, region: Region, *, after: int | None = None) -> Cursor:
        """A cursor delivering the visible events of ``region`` in commit order, at least
        once, from the start of the log or strictly after the global sequence ``after``
        (``cursor.resume(checkpoint_id)`` continues from a durable checkpoint)."""
        return self._native.cursor(region, after=after)

    def cursor_guaranteed(self, region: Region) -> Cursor:
        """The same as :meth:`cursor`: ordered, at-least-once delivery."""
        return self._native.cursor(region)

    def fence(self) -> Fence:
        """A visibility fence: ``with store.fence() as f: f.append(...)``. See :class:`Fence`.
        Raises ``ep.StoreClosed`` on a closed store and ``ep.ReadOnlyStore`` on a read-only
        one (the fence opens when the ``with`` block is entered)."""
        NativeFence.check(self._native)
        return Fence(self._native)

    def cursor_worker(
        self, region: Region, handler: Handler, config: CursorWorkerConfig | None = None
    ) -> CursorWorkerHandle:
        """Starts a supervised worker thread that feeds ``handler(batch, store, witness)``
        with the events of ``region`` in commit order. See :class:`CursorWorkerConfig`."""
        if self.closed:
            self._native.check_open()  # the engine's own error (a fork's says so)
            raise StoreClosed(self.path)
        with self._workers_lock:
            self._workers = [w for w in self._workers if w.is_alive()]
            # Two live workers on one checkpoint would both deliver and overwrite each other:
            # the checkpoint's lease (start_worker) admits one, in any process.
            handle = start_worker(self, region, handler, config)
            self._workers.append(handle)
        return handle

    def project(
        self, target: str | Region, projection: Projection[S], *, freshness: Freshness = Freshness.CONSISTENT
    ) -> S | None:
        """The state of ``projection`` over ``target`` (an exact entity, or a ``Region``):
        its relevant events folded in commit order, served from the projection cache when
        the cached state is current (or young enough for ``freshness``); ``None`` when the
        target has no relevant event. Cache failures are logged and never fail the call."""
        state: S | None = project(self._native, self._projection_cache, target, projection, freshness)
        return state

    def project_if_changed(
        self, target: str | Region, projection: Projection[S], last_generation: int | None
    ) -> tuple[int, S] | None:
        """``(generation, state)`` when the target gained a relevant event since
        ``last_generation`` (the generation is the sequence of its newest relevant event),
        else ``None``."""
        return project_if_changed(self._native, self._projection_cache, target, projection, last_generation)

    def verify_receipt(self, receipt: AppendReceipt) -> ReceiptCheck:
        """Whether this store vouches for ``receipt``: it names a visible event of this store
        with the same sequences, hash and timestamp, and is unsigned or signed by the store's
        signing key or one of its ``verify_keys``. Never raises for a bad receipt: the
        :class:`ReceiptCheck` says what is wrong (a non-receipt raises ``TypeError``)."""
        return check_receipt(self._native, receipt)

    def head(self) -> int | None:
        """The newest visible global sequence; ``None`` while nothing is visible."""
        return self._native.head()

    def next_sequence(self, entity: str) -> int:
        """What ``expected_sequence`` must be for the entity's next append (its visible
        events so far; ``0`` for a new entity)."""
        return self._native.next_sequence(entity)

    def reset_checkpoint(self, checkpoint_id: str) -> bool:
        """Deletes durable cursor checkpoint ``checkpoint_id``, so the cursor or worker that
        uses it starts over from the beginning of the log; ``False`` when there was none.
        The fix for a ``CursorCheckpointRegionMismatch`` after changing a worker's region."""
        return self._native.reset_checkpoint(checkpoint_id)

    def checkpoints(self) -> list[CheckpointInfo]:
        """Every durable cursor checkpoint of the data dir, sorted by id, with its lag: of
        running and stopped workers, of this process and of others sharing the dir."""
        return list_checkpoints(self)

    def dead_letters(self, checkpoint_id: str) -> list[DeadLetter]:
        """The events the workers of ``checkpoint_id`` parked, oldest first; one that a
        compaction has since removed is no longer listed (nor counted by :meth:`metrics`)."""
        return read_dead_letters(self, checkpoint_id)

    def metrics(self) -> StoreMetrics:
        """Counters and gauges under stable names (see :class:`StoreMetrics`), with the lag
        and dead letters of every checkpoint."""
        return metrics(self)

    def sync(self) -> None:
        """An fsync barrier: every event appended so far (in shared mode, by any process) is
        durable when this returns. A read-only store appends nothing: it returns at once."""
        self._native.sync()

    def verify(self, *, progress: Progress | None = None) -> VerifyReport:
        """The full integrity check: re-reads every frame of every segment (CRCs, event
        hashes, ``prev_hash`` links, entity clocks, seal records), checks that the index
        agrees with the log, and parses ``hidden.ranges`` and every cursor checkpoint. It
        reports problems instead of raising, runs while appends continue (up to the head it
        saw when it started), and calls ``progress(done_bytes, total_bytes)`` as it goes."""
        return verify_store(self._native, progress)

    def backup(self, dest: str | os.PathLike[str], *, progress: Progress | None = None) -> BackupReport:
        """Copies the store into ``dest`` while appends and reads go on, consistent as of one
        global sequence (``report.through``); the copy opens as a store. ``dest`` must not
        exist, be empty, or hold an earlier backup of this store (then only new and changed
        files are copied); anything else raises ``ep.InvalidConfig`` and writes nothing.
        ``progress(done_bytes, total_bytes)`` is called as bytes are copied; an exception
        from it stops the backup, leaving ``dest`` as it was, and is raised."""
        return backup_store(self._native, dest, progress)

    def compact(self, retention: Retention, *, progress: Progress | None = None) -> CompactionReport:
        """Removes the events ``retention`` selects from the sealed segments (every segment
        but the active one), while appends and reads go on; the rest keep every field and
        byte. A crash leaves the store as before or as after. ``progress(done_bytes,
        total_bytes)`` is called as segments are rewritten; an exception from it or from the
        predicate stops the compaction with nothing changed, and is raised. Refused with
        ``ep.InvalidConfig`` in shared mode, ``ep.ReadOnlyStore`` when read-only."""
        return compact_store(self._native, retention, progress)

    def forget_entity(self, entity: str) -> None:
        """Crypto-shredding: durably destroys the data keys of exactly ``entity``; its payloads
        then raise ``ep.PayloadForgotten``, the rest of its events stays and verifies, later
        appends get a new key. ``ep.InvalidConfig`` on a store without ``encryption_key``."""
        self._native.forget_entity(entity)

    def rotate_encryption_key(self, new_key: bytes) -> int:
        """Replaces the store key: every data key is wrapped again by ``new_key`` (32 bytes)
        in a key file replaced atomically, no payload is rewritten, and from then on only
        ``new_key`` opens the store (this handle goes on with it). A crash leaves the data
        dir opening with exactly one of the two keys. Returns how many data keys it wrapped.
        Needs the data dir to itself: ``ep.InvalidConfig`` in shared mode, on a clear store
        and for a key that is not 32 bytes; ``ep.ReadOnlyStore`` when read-only."""
        return self._native.rotate_encryption_key(new_key)

    @property
    def encrypted(self) -> bool:
        """True when the store seals payloads at rest (opened with ``encryption_key``)."""
        return self._native.encrypted

    def stats(self) -> StoreStats:
        """Counts, sizes, and what recovery did at open."""
        return self._native.stats()  # type: ignore[return-value]

    def close(self, timeout: float | None = None) -> None:
        """Stops and joins this store's workers (their errors stay with their ``join()``),
        then syncs, writes the index checkpoint and releases the data dir. Idempotent.

        With a ``timeout`` (seconds), a worker whose handler is still running then is
        abandoned (logged; its next store call raises ``ep.StoreClosed``) and closing goes
        on, so shutdown is bounded. In a process forked after the store was opened, it does
        nothing: the parent still owns the store."""
        timeout = wait_seconds(timeout)  # a bad one refused before anything is stopped
        cancel_callers_fence(self._native)
        with self._workers_lock:
            workers, self._workers = self._workers, []
        stop_workers(workers, timeout)
        self._native.close()
        open_stores.discard(self)

    @property
    def closed(self) -> bool:
        """True once :meth:`close` ran."""
        return self._native.closed

    @property
    def store_id(self) -> bytes:
        """16 random bytes fixed when the data dir was created (part of projection cache keys)."""
        return self._native.store_id

    @property
    def path(self) -> str:
        """The data dir as given to :meth:`open` (error messages name it so). The store itself
        keeps the absolute form it had at open: a later ``os.chdir`` does not move it."""
        return self._native.path

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<eventpak.Store {self.path!r} {state}>"
