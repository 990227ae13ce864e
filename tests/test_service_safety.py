"""What a real service hits: a fork after open, an interpreter that exits with workers or
blocked cursors, Ctrl-C while waiting, and a shutdown bounded by ``close(timeout=)``.

The fork and exit cases run in child interpreters, so that an abort (SIGABRT) or a damaged
data dir shows up as what it is."""

from __future__ import annotations

import itertools
import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import eventpak as ep
import pytest


def _run(script: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _assert_no_abort(done: subprocess.CompletedProcess[str]) -> None:
    assert done.returncode != -signal.SIGABRT, done.stderr
    assert "FATAL" not in done.stderr and "PanicException" not in done.stderr, done.stderr


FORK_SCRIPT = """
    import os, sys, threading
    import eventpak as ep

    store = ep.Store.open(sys.argv[1], sync="always")
    store.append(("acct:1", "eu"), "deposit", {"amount": 1})
    delivered = threading.Event()
    worker = store.cursor_worker(ep.Region.all(), lambda *args: delivered.set())
    delivered.wait(30)
    assert worker.is_active
    pid = os.fork()
    if pid == 0:
        # The worker's thread is not in the child: its handle says so.
        stale_worker = worker.is_active or worker.is_alive()
        refusals = 0
        for i in range(50):
            try:
                store.append(("acct:1", "eu"), "deposit", {"amount": i})
            except ep.StoreClosed as exc:
                refusals += "os.fork()" in str(exc)
        calls = (
            store.stats,
            store.sync,
            lambda: store.query(ep.Region.all()),
            lambda: store.cursor_worker(ep.Region.all(), lambda *args: None),
            lambda: store.store_id,
            store.fence,
        )
        for call in calls:
            try:
                call()
            except ep.StoreClosed as exc:
                refusals += "os.fork()" in str(exc)
        closed = store.closed
        store.close()  # does nothing in the child and releases nothing of the parent's
        os._exit(0 if refusals == 56 and closed and not stale_worker else 1)
    for i in range(50):
        store.append(("acct:1", "eu"), "deposit", {"amount": i})
    _, status = os.waitpid(pid, 0)
    store.append(("acct:1", "eu"), "deposit", {"amount": 99})  # the child's close() left us alone
    store.close()
    print(os.waitstatus_to_exitcode(status))
"""


def test_a_store_opened_before_fork_is_unusable_in_the_child_and_the_parent_is_unharmed(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    done = _run(FORK_SCRIPT, str(data_dir))
    _assert_no_abort(done)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "0", "the child did not see StoreClosed for every call"
    with ep.Store.open(data_dir) as store:
        events = store.query(ep.Region.all())
        assert [e.entity_sequence for e in events] == list(range(52))
        assert [e.payload["amount"] for e in events] == [1, *range(50), 99]
        assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(events))


def test_a_child_opens_its_own_store_after_the_fork(tmp_path: Path) -> None:
    script = """
        import os, sys
        import eventpak as ep

        parent = ep.Store.open(sys.argv[1])
        parent.close()
        pid = os.fork()
        if pid == 0:
            with ep.Store.open(sys.argv[1], sync="always") as mine:
                mine.append(("c", "s"), "k", "from the child")
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        print(os.waitstatus_to_exitcode(status))
    """
    done = _run(script, str(tmp_path / "data"))
    assert done.returncode == 0 and done.stdout.strip() == "0", done.stderr
    with ep.Store.open(tmp_path / "data") as store:
        assert [e.payload for e in store.query(ep.Region.all())] == ["from the child"]


EXIT_SCRIPT = """
    import sys, threading
    import eventpak as ep

    data_dir, ending = sys.argv[1], sys.argv[2]
    store = ep.Store.open(data_dir, sync="always")
    delivered = threading.Event()
    store.cursor_worker(
        ep.Region.all(), lambda batch, store, witness: delivered.set(),
        ep.CursorWorkerConfig(checkpoint_id="mailer"),
    )
    idle = store.cursor(ep.Region.entity("nobody"))
    threading.Thread(target=idle.pull_batch, args=(10, 3600.0), daemon=True).start()
    for i in range(300):
        store.append(("acct:1", "eu"), "deposit", {"i": i})
    delivered.wait(30)
    print("appended", flush=True)
    if ending == "exception":
        raise RuntimeError("the service failed")
    if ending == "ctrl-c":
        raise KeyboardInterrupt
"""


@pytest.mark.parametrize("ending", ["normal", "exception", "ctrl-c"])
def test_exit_with_a_worker_and_a_blocked_cursor_is_normal_and_loses_nothing(
    tmp_path: Path, ending: str
) -> None:
    data_dir = tmp_path / "data"
    done = _run(EXIT_SCRIPT, str(data_dir), ending)
    _assert_no_abort(done)
    expected = {"normal": [0], "exception": [1], "ctrl-c": [-signal.SIGINT, 128 + signal.SIGINT]}[ending]
    assert done.returncode in expected, done.stderr
    assert done.stdout.strip() == "appended"
    # The cursor parked in its daemon thread stays parked: no StoreClosed from it at exit.
    assert "Exception in thread" not in done.stderr and "StoreClosed" not in done.stderr, done.stderr
    with ep.Store.open(data_dir) as store:
        assert [e.payload["i"] for e in store.query(ep.Region.all())] == list(range(300))
        saved = ep.Cursor.load_checkpoint(data_dir, "mailer")
        assert saved is not None and saved.position < 300


def _wait_until_sleeping(pid: int, timeout: float = 30.0) -> None:
    """Polls the child's main thread state until the kernel reports it asleep (``S``)."""
    deadline = time.monotonic() + timeout
    stat = Path(f"/proc/{pid}/stat")
    while time.monotonic() < deadline:
        # The state is the field after the parenthesised command name.
        if stat.read_text().rsplit(")", 1)[1].split()[0] == "S":
            return
        time.sleep(0.005)
    raise AssertionError(f"process {pid} never blocked")


def test_ctrl_c_interrupts_a_main_thread_waiting_in_pull_batch(tmp_path: Path) -> None:
    script = """
        import sys
        import eventpak as ep

        store = ep.Store.open(sys.argv[1])
        cursor = store.cursor(ep.Region.all())
        try:
            # Inside the try: a signal that lands just after the print is handled the same way.
            print("waiting", flush=True)
            cursor.pull_batch(10, 3600.0)
        except KeyboardInterrupt:
            print("interrupted", flush=True)
            store.close()
    """
    child = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script), str(tmp_path / "data")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "waiting"
    _wait_until_sleeping(child.pid)  # blocked in pull_batch: nothing else in the child waits
    child.send_signal(signal.SIGINT)
    out, err = child.communicate(timeout=60)
    assert child.returncode == 0, err
    assert out.strip() == "interrupted"


def test_close_with_a_timeout_abandons_a_blocked_handler(
    store: ep.Store, caplog: pytest.LogCaptureFixture
) -> None:
    entered, release = threading.Event(), threading.Event()

    def stuck(batch: list[ep.Event], _store: ep.Store, _witness: object) -> None:
        entered.set()
        release.wait(60)

    handle = store.cursor_worker(ep.Region.all(), stuck, ep.CursorWorkerConfig(checkpoint_id="stuck"))
    store.append(("a", "s"), "k", 1)
    assert entered.wait(30)
    with caplog.at_level(logging.WARNING, logger="eventpak.worker"):
        store.close(timeout=0.2)  # returns although the handler still runs
    assert store.closed
    assert any("abandoning" in r.getMessage() for r in caplog.records)
    release.set()
    # The abandoned worker's next store call meets the closed store.
    with pytest.raises(ep.StoreClosed):
        handle.join(timeout=30)


def test_close_without_a_timeout_waits_for_the_handler(store: ep.Store) -> None:
    entered, release = threading.Event(), threading.Event()
    seen: list[int] = []

    def slow(batch: list[ep.Event], _store: ep.Store, _witness: object) -> None:
        entered.set()
        release.wait(60)
        seen.extend(e.global_sequence for e in batch)

    store.cursor_worker(ep.Region.all(), slow)
    store.append(("a", "s"), "k", 1)
    assert entered.wait(30)
    closer = threading.Thread(target=store.close)
    closer.start()
    closer.join(timeout=0.2)
    assert closer.is_alive()  # still waiting for the handler
    release.set()
    closer.join(timeout=30)
    assert not closer.is_alive() and seen == [0]


WAIT_FOR_FENCE_SCRIPT = """
    import subprocess, sys, threading
    import eventpak as ep

    path, waits_for, call = sys.argv[1], sys.argv[2], sys.argv[3]
    shared = waits_for == "process"
    store = ep.Store.open(path, fence_wait_ms=600_000, shared=shared)
    if shared:
        # Another process holds the fence until it reads a line.
        holder = subprocess.Popen([sys.executable, "-c", sys.argv[4], path], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True)
        assert holder.stdout.readline().strip() == "held"
        release = lambda: (holder.stdin.write("go\\n"), holder.stdin.flush(), holder.wait())
    else:
        opened, go = threading.Event(), threading.Event()
        def hold():
            with store.fence() as fence:
                fence.append(("acct:1", "eu"), "fenced", {"n": 1})
                opened.set()
                go.wait()
        thread = threading.Thread(target=hold)
        thread.start()
        opened.wait()
        release = lambda: (go.set(), thread.join())
    try:
        # Inside the try: a signal that lands just after the print is handled the same way.
        print("waiting", flush=True)
        if call == "append":
            store.append(("acct:2", "eu"), "plain", {"n": 2})
        else:
            with store.fence() as fence:
                fence.append(("acct:2", "eu"), "plain", {"n": 2})
        print("not interrupted", flush=True)
    except KeyboardInterrupt:
        print("interrupted", flush=True)
    release()
    print(",".join(e.kind for e in store.query(ep.Region.all())), flush=True)
    store.append(("acct:3", "eu"), "after", {"n": 3})
    print(",".join(e.kind for e in store.query(ep.Region.all())), flush=True)
    store.close()
"""

HOLD_FENCE_SCRIPT = """
import sys
import eventpak as ep

store = ep.Store.open(sys.argv[1], shared=True)
with store.fence() as fence:
    fence.append(("acct:1", "eu"), "fenced", {"n": 1})
    print("held", flush=True)
    sys.stdin.readline()
store.close()
"""


@pytest.mark.parametrize(
    ("waits_for", "call"),
    [("thread", "append"), ("thread", "fence"), ("process", "append"), ("process", "fence")],
)
def test_ctrl_c_interrupts_a_main_thread_waiting_for_a_fence(
    tmp_path: Path, waits_for: str, call: str
) -> None:
    """The wait for another thread's or process's fence lasts up to ``fence_wait_ms`` (ten
    minutes here); Ctrl-C ends it, and the interrupted call has written nothing."""
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(WAIT_FOR_FENCE_SCRIPT),
            str(tmp_path / "data"),
            waits_for,
            call,
            HOLD_FENCE_SCRIPT,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "waiting"
        _wait_until_sleeping(child.pid)  # blocked in the call: the holder is waiting already
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=60)
    finally:
        child.kill()  # and its holder, through the closed pipe, when the wait was not cut short
    assert child.returncode == 0, err
    assert out.split() == ["interrupted", "fenced", "fenced,after"]


@pytest.mark.parametrize("shared", [False, True], ids=["exclusive", "shared"])
def test_a_closed_store_kept_referenced_holds_no_descriptor_and_no_segment_mapping(
    open_store: Any, data_dir: Path, shared: bool
) -> None:
    store = open_store(segment_max_bytes=4096, sync="never", shared=shared)
    for i in range(40):
        store.append_batch([(("e", "s"), "k", {"i": i, "pad": "x" * 200})] * 5)
    store.sync()  # in shared mode, opens the segment its group commit fsyncs
    cursor = store.cursor(ep.Region.all())
    assert len(cursor.poll_batch(1000)) == 200
    kept = store.query(ep.Region.all(), limit=1)[0]  # an event keeps its own segment's mapping
    worker = store.cursor_worker(ep.Region.all(), lambda *args: None)
    segments = str(data_dir / "segments")

    def link(fd: str) -> str:
        try:
            return os.readlink(f"/proc/self/fd/{fd}")
        except FileNotFoundError:  # the descriptor listdir itself used
            return ""

    def held() -> tuple[list[str], set[str]]:
        fds = [link(fd) for fd in os.listdir("/proc/self/fd")]
        maps = Path("/proc/self/maps").read_text().splitlines()
        mapped = {line.split()[-1] for line in maps if segments in line}
        return [f for f in fds if f.startswith(str(data_dir))], mapped

    assert sum(1 for f in held()[0] if f.startswith(segments)) > 20  # one per segment
    store.close()
    fds, mapped = held()
    # The store, its cursor and its worker handle are all still referenced here: no
    # segment, lock file or shared page of the data dir is held open.
    assert fds == [] and mapped <= {str(data_dir / "segments" / "00000000000000000000.seg")}
    assert kept.payload == {"i": 0, "pad": "x" * 200} and not worker.is_alive()
    with pytest.raises(ep.StoreClosed):
        cursor.poll_batch(10)


def test_a_second_ctrl_c_while_exit_waits_for_a_handler_still_closes_the_store(tmp_path: Path) -> None:
    """The first Ctrl-C ends the script; exit then waits (bounded) for a handler still
    running. A second one asks it not to wait: the store is closed all the same (its index
    checkpoint written), and the process ends without an abort."""
    script = """
        import sys, threading, time
        import eventpak as ep

        store = ep.Store.open(sys.argv[1])
        entered = threading.Event()

        def handler(batch, st, witness):
            entered.set()
            threading.Event().wait()  # never returns: exit has to give up on it

        store.cursor_worker(ep.Region.all(), handler, ep.CursorWorkerConfig(checkpoint_id="slow"))
        store.append(("a", "s"), "k", 1)
        entered.wait()
        print("in handler", flush=True)
        time.sleep(3600)
    """
    data_dir = tmp_path / "data"
    child = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script), str(data_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None and child.stderr is not None
    assert child.stdout.readline().strip() == "in handler"
    _wait_until_sleeping(child.pid)
    child.send_signal(signal.SIGINT)
    # The traceback of the first interrupt is printed before the exit hooks run.
    for line in child.stderr:
        if line.strip() == "KeyboardInterrupt":
            break
    _wait_until_sleeping(child.pid)  # in the exit hook, waiting for the handler
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=60)
    assert child.returncode in (-signal.SIGINT, 128 + signal.SIGINT), err
    assert "FATAL" not in err and "Exception ignored in atexit" not in err, err
    with ep.Store.open(data_dir) as store:
        assert store.stats()["index_checkpoint"] == "loaded", "the exit closed the store"
        assert [e.payload for e in store.query(ep.Region.all())] == [1]
