"""Timeouts of blocking calls: ``inf`` or one too long to wait for means no limit (never a
bare ``OverflowError``), a negative or NaN one is refused with ``ep.InvalidArgument`` and
changes nothing: the worker keeps running and its handle keeps saying so, the store stays
open."""

from __future__ import annotations

import threading
from collections.abc import Callable

import eventpak as ep
import pytest

A = ep.Region.all()
BAD = [float("nan"), -1.0, float("-inf")]


def _worker(store: ep.Store) -> tuple[ep.CursorWorkerHandle, threading.Semaphore]:
    """A worker releasing the semaphore once per event it handles."""
    handled = threading.Semaphore(0)

    def handler(batch: list[ep.Event], _s: ep.Store, _w: object) -> None:
        for _ in batch:
            handled.release()

    return store.cursor_worker(A, handler), handled


def _after(event: threading.Event, action: Callable[[], object]) -> threading.Thread:
    """Runs ``action`` in a thread once ``event`` is set."""
    thread = threading.Thread(target=lambda: (event.wait(30), action()), daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("timeout", [float("inf"), 1e300, threading.TIMEOUT_MAX])
def test_join_with_an_endless_timeout_waits_for_the_worker(store: ep.Store, timeout: float) -> None:
    handle, handled = _worker(store)
    store.append(("a", "s"), "k", 1)
    assert handled.acquire(timeout=30)
    go = threading.Event()
    stopper = _after(go, handle.stop)
    go.set()
    handle.join(timeout)  # returns once the stop lands, however long the timeout
    stopper.join(30)
    assert not handle.is_alive()


@pytest.mark.parametrize("timeout", BAD)
def test_a_bad_join_timeout_is_refused_and_the_worker_goes_on(store: ep.Store, timeout: float) -> None:
    handle, handled = _worker(store)
    with pytest.raises(ep.InvalidArgument, match="timeout"):
        handle.join(timeout)
    with pytest.raises(ep.InvalidArgument, match="timeout"):
        handle.stop_and_join(timeout)
    with pytest.raises(TypeError, match="timeout"):
        handle.join("1")  # type: ignore[arg-type]
    assert handle.is_alive()
    store.append(("a", "s"), "k", 1)
    assert handled.acquire(timeout=30)  # still handling
    handle.stop_and_join(30)


@pytest.mark.parametrize("timeout", [float("inf"), 1e300])
def test_close_with_an_endless_timeout_closes(open_store, timeout: float) -> None:
    store = open_store()
    handle, _ = _worker(store)
    store.close(timeout)
    assert store.closed and not handle.is_alive()


@pytest.mark.parametrize("timeout", BAD)
def test_a_bad_close_timeout_leaves_the_store_and_its_workers_running(open_store, timeout: float) -> None:
    store = open_store()
    handle, handled = _worker(store)
    with pytest.raises(ep.InvalidArgument, match="timeout"):
        store.close(timeout)
    assert not store.closed and handle.is_alive()
    store.append(("a", "s"), "k", 1)
    assert handled.acquire(timeout=30)
    store.close(30)  # the worker is still the store's: closing stops it
    assert not handle.is_alive()


@pytest.mark.parametrize("timeout", [float("inf"), 1e300])
def test_pull_batch_with_an_endless_timeout_waits_for_a_commit(store: ep.Store, timeout: float) -> None:
    cursor = store.cursor(A)
    go = threading.Event()
    appender = _after(go, lambda: store.append(("a", "s"), "k", 7))
    go.set()
    [event] = cursor.pull_batch(1, timeout)
    appender.join(30)
    assert event.payload == 7


@pytest.mark.parametrize("timeout", BAD)
def test_a_bad_pull_batch_or_lease_timeout_is_refused(store: ep.Store, timeout: float) -> None:
    store.append(("a", "s"), "k", 1)
    cursor = store.cursor(A)
    with pytest.raises(ep.InvalidArgument, match="timeout"):
        cursor.pull_batch(1, timeout)
    assert [e.payload for e in cursor.poll_batch(10)] == [1]  # the refused call read nothing
    with pytest.raises(ep.InvalidArgument, match="timeout"):
        store._native.take_worker_lease("w", timeout)
