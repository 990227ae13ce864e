"""Interpreter exit while a daemon thread runs Python code called from inside eventpak: an
upcaster, a backup's progress callback, a compaction predicate, ``default=``, the ``uuid``
of an event id. Such code may have to take the GIL back at any moment, and CPython ends a
daemon thread that does so during finalization with a forced unwind, which aborts the
process when it crosses native frames. Exit waits for that code to return, and the thread
then stays out of Python: the script ends with its normal status.

Each case runs in a child interpreter, several times, so that an abort shows up as what it is."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import eventpak as ep
import pytest

RUNS = 3

# The child: `start(in_callback)` starts a daemon thread that keeps running the callback and
# sets `in_callback` from inside it; the main thread ends as soon as it is set, so exit
# comes while the thread is in or between callbacks.
PRELUDE = """
    import sys, threading
    import eventpak as ep

    data_dir = sys.argv[1]
    in_callback = threading.Event()

    def busy():
        # Python code long enough to be running when exit comes, and to hand the GIL over.
        in_callback.set()
        return sum(i for i in range(20_000))
"""

CASES = {
    "upcaster": """
        def upcast(payload):
            busy()
            return {**payload, "upcast": True}

        store = ep.Store.open(data_dir, upcasters=ep.Upcasters().add("k", 0, upcast))
        store.append_batch([(("a:1", "s"), "k", {"i": i}) for i in range(200)])
        events = store.query(ep.Region.all())

        def run():
            while True:
                for event in events:
                    assert event.payload["upcast"]
    """,
    "progress": """
        store = ep.Store.open(data_dir, segment_max_bytes=1 << 20, sync="never")
        for _ in range(20):
            store.append_batch([((f"a:{i % 50}", "s"), "k", {"pad": "x" * 200}) for i in range(1000)])

        def run():
            n = 0
            while True:
                n += 1
                store.backup(f"{data_dir}-backup-{n}", progress=lambda done, total: busy())
    """,
    "predicate": """
        store = ep.Store.open(data_dir, segment_max_bytes=1 << 20, sync="never")
        for _ in range(20):
            store.append_batch([((f"a:{i % 50}", "s"), "k", {"pad": "x" * 200}) for i in range(1000)])

        def run():
            while True:
                store.compact(ep.Retention(predicate=lambda event: busy() < 0))
    """,
    "default": """
        class Money:
            pass

        store = ep.Store.open(data_dir, default=lambda value: busy(), sync="never")

        def run():
            while True:
                store.append(("a:1", "s"), "k", {"amount": Money()})
    """,
    "event_id": """
        store = ep.Store.open(data_dir)
        store.append_batch([(("a:1", "s"), "k", i) for i in range(200)])
        events = store.query(ep.Region.all())

        def run():
            while True:
                for event in events:
                    in_callback.set()
                    event.event_id, event.correlation_id
    """,
}

START = """
    threading.Thread(target=run, daemon=True).start()
    assert in_callback.wait(60)
    print("exiting", flush=True)
"""


def _run_child(case: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    script = textwrap.dedent(PRELUDE) + textwrap.dedent(CASES[case]) + textwrap.dedent(START)
    return subprocess.run(
        [sys.executable, "-c", script, str(data_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("case", sorted(CASES))
def test_exit_while_a_daemon_thread_runs_python_code_called_by_eventpak_is_normal(
    tmp_path: Path, case: str
) -> None:
    for run in range(RUNS):
        data_dir = tmp_path / f"data-{run}"
        done = _run_child(case, data_dir)
        assert done.returncode != -signal.SIGABRT, done.stderr
        assert "FATAL" not in done.stderr and "Fatal Python error" not in done.stderr, done.stderr
        assert "panicked" not in done.stderr, done.stderr
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "exiting"
        # The store the thread was using is whole.
        with ep.Store.open(data_dir) as store:
            assert store.verify().ok


FORK_SCRIPT = """
    import os, sys, threading
    import eventpak as ep

    inside, release = threading.Event(), threading.Event()

    def upcast(payload):
        inside.set()
        release.wait(60)  # in the upcaster when the process forks
        return payload

    store = ep.Store.open(sys.argv[1], upcasters=ep.Upcasters().add("k", 0, upcast))
    store.append(("a:1", "s"), "k", {"i": 1})
    (event,) = store.query(ep.Region.all())
    threading.Thread(target=lambda: event.payload, daemon=True).start()
    assert inside.wait(60)
    pid = os.fork()
    if pid == 0:
        sys.exit(0)  # a normal exit, through the exit hooks
    _, status = os.waitpid(pid, 0)
    release.set()
    print(os.waitstatus_to_exitcode(status))
"""


def test_a_child_forked_while_another_thread_runs_an_upcaster_does_not_wait_for_it_at_exit(
    tmp_path: Path,
) -> None:
    # The upcaster's thread does not exist in the child: its call never returns there, and
    # exit would wait out its whole bound for it, then warn.
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(FORK_SCRIPT), str(tmp_path / "data")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "0"
    assert "still running" not in done.stderr, done.stderr


CLOSED_SCRIPT = """
    import sys, threading
    import eventpak as ep

    store = ep.Store.open(sys.argv[1])
    threads = int(sys.argv[2])
    started = threading.Barrier(threads + 1)

    def wait_for_events(k):
        cursor = store.cursor(ep.Region.entity(f"w:{k}", exact=True))
        started.wait()
        try:
            while True:
                cursor.pull_batch(10, 0.5)
        except ep.StoreClosed:
            pass

    for k in range(threads):
        threading.Thread(target=wait_for_events, args=(k,), daemon=True).start()
    started.wait()
    store.close()  # every waiting cursor wakes to StoreClosed while the script ends
"""


def test_exit_right_after_close_wakes_many_waiting_cursors_is_normal(tmp_path: Path) -> None:
    # Each woken thread takes the GIL back and builds its StoreClosed (Python code) as the
    # interpreter begins to exit: exit waits for those, and parks the ones that come later.
    for run in range(RUNS):
        done = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(CLOSED_SCRIPT), str(tmp_path / f"data-{run}"), "200"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode != -signal.SIGABRT, done.stderr
        assert "FATAL" not in done.stderr and "Fatal Python error" not in done.stderr, done.stderr
        assert done.returncode == 0, done.stderr


def test_the_exit_mark_takes_a_timeout_too_long_to_reach() -> None:
    # In a child: the mark makes the process exiting for good.
    script = "import eventpak._native as n; print(n.mark_exiting(float('inf')), n.mark_exiting(1e300))"
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "True"]
