"""Helpers of the shared-mode tests (tests/test_shared_*.py); not a test module.

Children are real processes started with the "spawn" context (nothing is inherited from the
test process: each child imports eventpak and opens the store itself, as a web worker would).
A child runs ``fn(conn, *args)``, where ``conn`` is its end of a duplex pipe to the test; it
reports with ``conn.send((tag, value))`` and takes orders with ``conn.recv()``. A child that
raises sends ``("error", traceback)`` first, and the test fails with that traceback.

The test waits for a child's message with a generous safety net (``SAFETY_NET_S``): a wait that
runs out fails the test as a hang; it is never a pass/fail threshold.
"""

from __future__ import annotations

import hashlib
import itertools
import multiprocessing
import os
import signal
import threading
import time
import traceback
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

import eventpak as ep
import pytest

CTX = multiprocessing.get_context("spawn")
SAFETY_NET_S = 60.0  # fails a hung child; never a pass/fail threshold
ZERO_HASH = bytes(32)
R = ep.Region


# --- children ----------------------------------------------------------------------------------


def _child_main(fn: Callable[..., None], conn: Connection, args: tuple[Any, ...]) -> None:
    try:
        fn(conn, *args)
    except BaseException:
        try:
            conn.send(("error", traceback.format_exc()))
        finally:
            os._exit(1)
    conn.close()


class Child:
    """A spawned process running ``fn(conn, *args)``."""

    def __init__(self, fn: Callable[..., None], *args: Any, name: str | None = None) -> None:
        self.name = name or fn.__name__
        self.conn, child_conn = CTX.Pipe()
        self.proc: BaseProcess = CTX.Process(
            target=_child_main, args=(fn, child_conn, args), name=self.name, daemon=True
        )
        self.proc.start()
        child_conn.close()  # the child's end lives in the child only: EOF when it dies
        self.stash: defaultdict[str, list[Any]] = defaultdict(list)
        self.eof = False

    @property
    def pid(self) -> int:
        assert self.proc.pid is not None
        return self.proc.pid

    def send(self, obj: Any) -> None:
        self.conn.send(obj)

    def has_message(self) -> bool:
        """True when a message (or EOF) is waiting, without waiting."""
        return self.conn.poll(0)

    def recv(self, tag: str, timeout: float = SAFETY_NET_S) -> Any:
        """The value of the child's next message, which must carry ``tag``."""
        if not self.conn.poll(timeout):
            pytest.fail(f"child {self.name} sent nothing in {timeout} s (waiting for {tag!r}): hung")
        try:
            got, value = self.conn.recv()
        except EOFError:
            self.proc.join(SAFETY_NET_S)
            pytest.fail(f"child {self.name} died (exit code {self.proc.exitcode}) before sending {tag!r}")
        if got == "error":
            pytest.fail(f"child {self.name} failed:\n{value}")
        assert got == tag, f"child {self.name} sent {got!r} ({value!r}), expected {tag!r}"
        return value

    def take(self, tag: str, timeout: float = SAFETY_NET_S) -> Any:
        """The value of the child's oldest message with ``tag``, waiting for it; messages with
        other tags that come first are kept for later ``take`` and ``drain`` calls (for a child
        whose threads report independently, such as a worker's handler)."""
        deadline = time.monotonic() + timeout
        while not self.stash[tag]:
            if not self._pull(max(0.0, deadline - time.monotonic())):
                if self.eof:
                    self.proc.join(SAFETY_NET_S)
                    pytest.fail(f"child {self.name} died (exit code {self.proc.exitcode}) before {tag!r}")
                pytest.fail(f"child {self.name} sent no {tag!r} in {timeout} s: hung")
        return self.stash[tag].pop(0)

    def drain(self, tag: str) -> list[Any]:
        """Every message with ``tag`` the child sent so far (without waiting), oldest first."""
        while self.conn.poll(0) and self._pull(0):
            pass
        got, self.stash[tag] = self.stash[tag], []
        return got

    def _pull(self, timeout: float) -> bool:
        """Reads one message into the stash; False when none came in ``timeout`` or the child
        is gone (EOF)."""
        if self.eof or not self.conn.poll(timeout):
            return False
        try:
            got, value = self.conn.recv()
        except EOFError:
            self.eof = True
            return False
        if got == "error":
            pytest.fail(f"child {self.name} failed:\n{value}")
        self.stash[got].append(value)
        return True

    def join(self, timeout: float = SAFETY_NET_S) -> None:
        """Waits for a clean exit (exit code 0)."""
        self.proc.join(timeout)
        if self.proc.is_alive():
            pytest.fail(f"child {self.name} did not exit in {timeout} s")
        if self.proc.exitcode != 0 and self.conn.poll(0):
            try:
                got, value = self.conn.recv()
            except EOFError:
                pass
            else:
                if got == "error":
                    pytest.fail(f"child {self.name} failed:\n{value}")
        assert self.proc.exitcode == 0, f"child {self.name} exited with {self.proc.exitcode}"

    def kill(self) -> float:
        """SIGKILLs the child and reaps it; returns ``time.monotonic()`` right after waitpid
        returned, the moment its death was observed (its locks are released by then)."""
        os.kill(self.pid, signal.SIGKILL)
        self.proc.join()
        observed = time.monotonic()
        assert self.proc.exitcode == -signal.SIGKILL, f"child {self.name} ended with {self.proc.exitcode}"
        return observed

    def stop(self) -> None:
        """Teardown: kills the child if it is still running."""
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join(SAFETY_NET_S)
        self.conn.close()


class Children:
    """Every child a test started; the fixture kills those still running at teardown."""

    def __init__(self) -> None:
        self.children: list[Child] = []

    def __call__(self, fn: Callable[..., None], *args: Any, name: str | None = None) -> Child:
        child = Child(fn, *args, name=name)
        self.children.append(child)
        return child

    def stop_all(self) -> None:
        for child in self.children:
            child.stop()


def finish_all(children: Sequence[Child], tag: str = "done") -> list[Any]:
    """The value of each child's ``tag`` message, in order, once every child exited cleanly."""
    values = [child.recv(tag) for child in children]
    for child in children:
        child.join()
    return values


def children_fixture() -> Iterator[Children]:
    """The body of each shared test module's ``spawn`` fixture."""
    children = Children()
    yield children
    children.stop_all()


def wait_blocked(pid: int, what: str, timeout: float = SAFETY_NET_S) -> None:
    """Waits until the main thread of process ``pid`` sleeps in a futex or file-lock wait (as
    told by ``/proc/<pid>/wchan``): a child that said it is about to make a blocking call is
    then inside it, so what the test does next happens while it waits. A bounded observation,
    not a pass/fail threshold."""
    deadline = time.monotonic() + timeout
    tick = threading.Event()  # never set: paces the observation loop
    last = ""
    while time.monotonic() < deadline:
        try:
            last = Path(f"/proc/{pid}/wchan").read_text()
        except OSError as exc:
            pytest.fail(f"cannot observe process {pid} ({what}): {exc}")
        if "futex" in last or "lock" in last:
            return
        tick.wait(0.002)
    pytest.fail(f"process {pid} never blocked ({what}); last wchan {last!r}")


def wait_until(predicate: Callable[[], bool], what: str, timeout: float = SAFETY_NET_S) -> None:
    """A bounded poll on a condition no event signals (a safety net, never a threshold)."""
    deadline = time.monotonic() + timeout
    tick = threading.Event()
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        tick.wait(0.005)


# --- stores and events -------------------------------------------------------------------------


def open_shared(path: str | os.PathLike[str], **options: Any) -> ep.Store:
    return ep.Store.open(path, shared=True, **options)


Row = tuple[int, str, str, str, str, int, str, str, bytes]


def row(event: ep.Event) -> Row:
    """What identifies a stored event, as plain (picklable, comparable) values."""
    return (
        event.global_sequence,
        event.event_id.hex,
        event.entity,
        event.scope,
        event.kind,
        event.entity_sequence,
        event.prev_hash.hex(),
        event.hash.hex(),
        event.payload_bytes,
    )


def rows(events: Iterable[ep.Event]) -> list[Row]:
    return [row(e) for e in events]


def digest(view: Sequence[Row]) -> str:
    h = hashlib.sha256()
    for r in view:
        h.update(repr(r).encode())
    return h.hexdigest()


def receipt_row(receipt: ep.AppendReceipt) -> tuple[int, str, int, str]:
    return (receipt.global_sequence, receipt.event_id.hex, receipt.entity_sequence, receipt.hash.hex())


def check_chains(events: Sequence[ep.Event]) -> None:
    """Commit order, rising ids, timestamps that never fall, and per entity a dense clock from
    0 with each ``prev_hash`` the previous event's hash (the rules of the kill harness)."""
    seqs = [e.global_sequence for e in events]
    assert all(a < b for a, b in itertools.pairwise(seqs)), "query is not in commit order"
    ids = [e.event_id.int for e in events]
    assert all(a < b for a, b in itertools.pairwise(ids)), "event ids do not rise with the sequence"
    stamps = [e.timestamp_us for e in events]
    assert all(a <= b for a, b in itertools.pairwise(stamps)), "timestamps went backwards"
    chains: dict[str, list[ep.Event]] = defaultdict(list)
    for e in events:
        chains[e.entity].append(e)
    for entity, chain in chains.items():
        assert [e.entity_sequence for e in chain] == list(range(len(chain))), f"{entity}: clock not dense"
        prev = ZERO_HASH
        for e in chain:
            assert e.prev_hash == prev, f"{entity}: prev_hash of {e.global_sequence} breaks the chain"
            prev = e.hash


def check_store(store: ep.Store) -> list[ep.Event]:
    """Every visible event, checked: chains, ``verify().ok``, and ``stats`` agreeing."""
    events = store.query(R.all())
    check_chains(events)
    report = store.verify()
    assert report.ok, f"verify found problems: {report}"
    stats = store.stats()
    assert stats["visible_events"] == len(events)
    assert not events or events[-1].global_sequence < stats["events"]
    return events
