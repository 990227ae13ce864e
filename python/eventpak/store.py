"""The store: ``Store.open`` a data dir, append events, read them back."""

from __future__ import annotations

import os
from types import TracebackType
from typing import Any, Self

from ._native import NativeStore
from .config import StoreConfig
from .errors import InvalidConfig

__all__ = ["Store"]


class Store(NativeStore):
    """An open event store. Create it with :meth:`Store.open`; share it freely between
    threads (every engine call releases the GIL); close it with :meth:`close` or a
    ``with`` block."""

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
        return cls(os.fspath(config.path), **config.native_options())

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
