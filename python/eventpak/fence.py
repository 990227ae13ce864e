"""Visibility fences: events written now, visible only when the ``with`` block succeeds."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, Unpack

from ._native import AppendReceipt, AppendRequest, NativeFence
from .errors import EventpakError, FenceClosed, StoreClosed
from .options import COMMIT_OPTIONS, BatchItem, CoordinateLike, EventOptions

if TYPE_CHECKING:
    from ._native import NativeStore

__all__ = ["Fence", "cancel_callers_fence", "refuse_batch_commit_options", "refuse_commit_options"]


def cancel_callers_fence(store: NativeStore) -> None:
    """Before ``close()`` joins the workers: cancels the open fence if the closing thread
    opened it (``close()`` called inside its own fence block). A worker's append waiting
    for that fence then goes ahead; left open, it would wait ``fence_wait_ms`` while the
    close waits for the worker. Closing cancels the fence anyway; an error here (a store
    already closed, a failed writer) is left for the close itself to meet."""
    if not store.closed:
        with contextlib.suppress(EventpakError):
            NativeFence.cancel_own(store)


def refuse_commit_options(options: Mapping[str, object], method: str = "append") -> None:
    """Raises ``TypeError`` for the options a fence's append does not take, saying why."""
    refused = [name for name in COMMIT_OPTIONS if name in options]
    if refused:
        raise TypeError(
            f"Fence.{method}() takes no {' nor '.join(refused)}: a fence's events commit with the "
            "fence, so a condition or tracking record goes on a store.append_batch instead"
        )


def refuse_batch_commit_options(condition: object, tracking: object) -> None:
    """``refuse_commit_options`` for a fence's ``append_batch``, whose two are keywords."""
    given = {
        name: value for name, value in (("condition", condition), ("tracking", tracking)) if value is not None
    }
    refuse_commit_options(given, "append_batch")


class Fence:
    """A visibility fence, made by :meth:`Store.fence`.

    Inside ``with store.fence() as f:``, events appended through ``f`` take sequence numbers
    and are written, but stay invisible to queries and cursors. They become visible when
    the block exits normally; :meth:`cancel` or an exception hides them for good (the
    decision is persisted and survives reopening). While the fence is open, plain
    ``store.append`` raises ``ep.FenceActive``.
    """

    def __init__(self, store: NativeStore) -> None:
        self._store = store
        self._native: NativeFence | None = None
        self._state = "new"

    @property
    def state(self) -> str:
        """``"new"``, ``"open"``, ``"committed"`` or ``"cancelled"`` (also once the store
        closed under an open fence: closing cancels it)."""
        if self._state == "open" and self._store.closed:
            return "cancelled"
        return self._state

    def __enter__(self) -> Self:
        if self._state != "new":
            raise FenceClosed("a fence is entered once; open a new one with store.fence()")
        self._native = NativeFence(self._store)
        self._state = "open"
        return self

    def append(
        self, coord: CoordinateLike, kind: str, payload: Any, **options: Unpack[EventOptions]
    ) -> AppendReceipt:
        """Appends one event through the fence (the options of one event, as for
        ``Store.append``; a fence takes no ``condition`` nor ``tracking``)."""
        refuse_commit_options(options)
        return self.append_batch([AppendRequest(coord, kind, payload, **options)])[0]

    def append_batch(
        self, items: Iterable[BatchItem], *, condition: None = None, tracking: None = None
    ) -> list[AppendReceipt]:
        """Appends events through the fence atomically (same items as ``Store.append_batch``;
        a fence takes no ``condition`` nor ``tracking``: they are refused, saying why)."""
        refuse_batch_commit_options(condition, tracking)
        if self._native is None or self._state != "open":
            raise FenceClosed(f"this fence is {self._state}; appends go through an open fence")
        return self._native.append_batch(items)

    def cancel(self) -> None:
        """Hides every event appended through this fence, for good."""
        if self._native is None or self._state != "open":
            raise FenceClosed(f"this fence is {self._state}; only an open fence can be cancelled")
        self._native.cancel()
        self._state = "cancelled"

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._native is None or self._state != "open":
            return
        if exc_type is None:
            try:
                self._native.commit()
            except StoreClosed:
                self._state = "cancelled"  # the store closed under it, which cancelled it
                raise
            self._state = "committed"
            return
        # A store closed meanwhile cancelled it already: the block's own error goes on.
        with contextlib.suppress(StoreClosed):
            self._native.cancel()
        self._state = "cancelled"
