"""Stopping eventpak.nats.Publisher and Replica keeps to the timeout given: a batch waiting on
the server is given up, and a private loop that does not answer (the NATS client spinning)
turns into a TimeoutError instead of a stop that never returns. And a connect that fails says
why (wrong credentials), not only that time ran out."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import eventpak as ep
import eventpak.nats
import pytest
from nats_support import (  # noqa: F401 (the nats_server fixture)
    NatsNode,
    NatsServer,
    free_port,
    nats_server_fixture,
    require_nats_server,
    wait_connectable,
)
from test_nats_publisher import wait_until

DEADLINE = 20.0  # how long a stop that keeps to its timeout may take, at most, on a slow machine


def in_thread(call: Callable[[], None]) -> tuple[threading.Thread, list[BaseException | None]]:
    """Runs ``call`` on a thread; its outcome lands in the list (``None`` when it returned)."""
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            call()
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


@contextmanager
def blocked(loop: Any) -> Iterator[None]:
    """Keeps ``loop`` busy in one callback until the block ends."""
    busy, release = threading.Event(), threading.Event()
    loop.call_soon_threadsafe(lambda: (busy.set(), release.wait()))
    assert busy.wait(DEADLINE)
    try:
        yield
    finally:
        release.set()


def test_a_publisher_stops_at_once_while_a_batch_waits_for_its_acks(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    store = ep.Store.open(tmp_path / "origin")
    try:
        pub = ep.nats.Publisher(store, ep.Region.all(), servers=nats_server.urls, ack_timeout=600)
        store.append(("e", "s"), "k", {})
        wait_until(lambda: pub.position == 0)
        nats_server.stop()
        store.append(("e", "s"), "k", {})
        wait_until(lambda: bool(pub._link.waiting))  # sent, its ack never coming
        thread, outcome = in_thread(lambda: pub.stop_and_join(timeout=DEADLINE / 2))
        thread.join(DEADLINE)
        assert outcome == [None]  # stopped, not timed out
        assert pub.position == 0 and not pub.is_alive()  # the unacknowledged event comes again
    finally:
        store.close()


def test_a_publisher_whose_loop_does_not_answer_stops_within_its_timeout(tmp_path: Path) -> None:
    store = ep.Store.open(tmp_path / "origin")
    servers = [f"nats://127.0.0.1:{free_port()}"]
    try:
        pub = ep.nats.Publisher(store, ep.Region.all(), servers=servers, ack_timeout=0.1)
        with blocked(pub._loop.loop):
            store.append(("e", "s"), "k", {})
            wait_until(lambda: pub._running is not None)  # the handler waits on the loop
            thread, outcome = in_thread(lambda: pub.stop_and_join(timeout=0.5))
            thread.join(DEADLINE / 4)  # the connection's close may not take its 5 s
            assert outcome == [None]
        assert pub.position is None and not pub.is_alive()
    finally:
        store.close()


def test_a_replica_whose_loop_does_not_answer_times_out_its_stop(tmp_path: Path) -> None:
    replica = ep.nats.Replica(tmp_path / "replica", servers=[f"nats://127.0.0.1:{free_port()}"])
    with blocked(replica._loop.loop):
        thread, outcome = in_thread(lambda: replica.stop_and_join(timeout=0.5))
        thread.join(DEADLINE)
        assert len(outcome) == 1 and isinstance(outcome[0], TimeoutError)
    replica.stop_and_join(timeout=DEADLINE)
    assert not replica.is_alive() and replica.store.closed


class AuthNode(NatsNode):
    """A node that takes only clients giving the token ``s3cret``."""

    def command(self) -> list[str]:
        return [*super().command(), "--auth", "s3cret"]


def test_wrong_credentials_are_named_not_taken_for_a_server_that_does_not_answer(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    require_nats_server()
    (tmp_path / "js").mkdir()
    node = AuthNode("auth", tmp_path / "js")
    node.start()
    caplog.set_level(logging.DEBUG, logger="eventpak")
    try:
        wait_connectable([f"nats://s3cret@127.0.0.1:{node.port}"])
        with ep.Store.open(tmp_path / "origin") as store:
            store.append(("e", "s"), "k", {})
            servers = [f"nats://user:wrong-password@127.0.0.1:{node.port}"]
            pub = ep.nats.Publisher(store, ep.Region.all(), servers=servers, ack_timeout=0.5)
            wait_until(lambda: pub._worker.last_error is not None)
            assert "Authorization Violation" in str(pub._worker.last_error)
            pub.stop_and_join()
        warned = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
        assert any("Authorization Violation" in m for m in warned)
        assert "wrong-password" not in caplog.text
        caplog.clear()
        replica = ep.nats.Replica(tmp_path / "r", servers=[f"nats://wrong-token@127.0.0.1:{node.port}"])
        try:
            wait_until(lambda: any("retrying" in r.getMessage() for r in caplog.records))
            warned = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
            assert any("retrying" in m and "Authorization Violation" in m for m in warned)
            assert "wrong-token" not in caplog.text
        finally:
            replica.stop_and_join()
    finally:
        node.kill()
