"""The store: ``Store.open`` a data dir, append events, read them back."""

from __future__ import annotations

import os
import threading
from types import TracebackType
from typing import Any, Self

from ._native import NativeStore, Region
from .config import StoreConfig
from .errors import InvalidConfig, StoreClosed
from .fence import Fence
from .projection import Freshness, NoCache, Projection, ProjectionCache, project, project_if_changed
from .worker import CursorWorkerConfig, CursorWorkerHandle, Handler, start_worker

__all__ = ["Store"]


class Store(NativeStore):
    """An open event store. Create it with :meth:`Store.open`; share it freely between
    threads (every engine call releases the GIL); close it with :meth:`close` or a
    ``with`` block."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # The native constructor did the opening; keep the workers to stop at close().
        self._workers: list[CursorWorkerHandle] = []
        self._workers_lock = threading.Lock()
        self._projection_cache: ProjectionCache = NoCache()

    @classmethod
    def open(cls, path: str | os.PathLike[str] | StoreConfig, **options: Any) -> Self:
        """Opens (or creates) the store in ``path``, recovering the longest valid prefix.

        Options are the fields of :class:`StoreConfig`, given as keywords or as one
        ``StoreConfig`` in place of the path. Bad options raise ``ep.InvalidConfig``.
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
        store = cls(os.fspath(config.path), **config.native_options())
        if config.projection_cache is not None:
            store._projection_cache = config.projection_cache
        return store

    def project(
        self, target: str | Region, projection: Projection, *, freshness: Freshness = Freshness.CONSISTENT
    ) -> Any:
        """The state of ``projection`` over ``target`` (an exact entity, or a ``Region``):
        its relevant events folded in commit order, served from the projection cache when
        the cached state is current (or young enough for ``freshness``); ``None`` when the
        target has no relevant event. Cache failures are logged and never fail the call."""
        return project(self, target, projection, freshness)

    def project_if_changed(
        self, target: str | Region, projection: Projection, last_generation: int | None
    ) -> tuple[int, Any] | None:
        """``(generation, state)`` when the target gained a relevant event since
        ``last_generation`` (the generation is the sequence of its newest relevant event),
        else ``None``."""
        return project_if_changed(self, target, projection, last_generation)

    def fence(self) -> Fence:
        """A visibility fence: ``with store.fence() as f: f.append(...)``. See :class:`Fence`."""
        return Fence(self)

    def cursor_worker(
        self, region: Region, handler: Handler, config: CursorWorkerConfig | None = None
    ) -> CursorWorkerHandle:
        """Starts a supervised worker thread that feeds ``handler(batch, store, witness)``
        with the events of ``region`` in commit order. See :class:`CursorWorkerConfig`."""
        if self.closed:
            raise StoreClosed("the store is closed; open it again to start a worker")
        handle = start_worker(self, region, handler, config)
        with self._workers_lock:
            self._workers = [w for w in self._workers if w.is_alive()]
            self._workers.append(handle)
        return handle

    def close(self) -> None:
        """Stops and joins this store's workers (their errors stay with their ``join()``),
        then syncs, writes the index checkpoint and releases the data dir. Idempotent."""
        with self._workers_lock:
            workers, self._workers = self._workers, []
        for worker in workers:
            worker.stop()
        current = threading.current_thread()
        for worker in workers:
            if worker._thread is not current:
                worker._thread.join()
        super().close()

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
