"""A child forked (without exec) from a process sharing a data dir must not keep that
process's locks alive after it dies: the child inherits references to the locked files,
and the store lets go of them in the child right after the fork."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap

import eventpak as ep

HOLDER = textwrap.dedent(
    """
    import os, sys, time
    import eventpak as ep

    store = ep.Store.open(sys.argv[1], shared=True)
    worker = store.cursor_worker(
        ep.Region.all(), lambda batch, s, w: None, ep.CursorWorkerConfig(checkpoint_id="mailer")
    )
    assert worker.is_active or worker.is_alive()
    child = os.fork()
    if child == 0:
        os.read(0, 1)  # stdin is the test's pipe: the child outlives this process
        os._exit(0)
    print(child, flush=True)
    time.sleep(3600)
    """
)


def test_a_forked_child_does_not_keep_a_dead_parents_worker_lease(tmp_path):
    data = str(tmp_path / "data")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, data], stdout=subprocess.PIPE, text=True, stdin=subprocess.PIPE
    )
    assert holder.stdout is not None
    child_pid = int(holder.stdout.readline())
    try:
        with ep.Store.open(data, shared=True) as store:
            noop = lambda batch, s, w: None  # noqa: E731
            config = ep.CursorWorkerConfig(checkpoint_id="mailer")
            try:
                store.cursor_worker(ep.Region.all(), noop, config).stop_and_join(timeout=30)
                raise AssertionError("the lease of a live holder must be refused")
            except ep.CheckpointInUse:
                pass
            holder.send_signal(signal.SIGKILL)
            holder.wait(timeout=30)
            os.kill(child_pid, 0)  # the forked child still lives, holding inherited descriptors
            standby = store.cursor_worker(
                ep.Region.all(), noop, ep.CursorWorkerConfig(checkpoint_id="mailer", standby=True)
            )
            try:
                # The lease is free once the holder is dead, although its child lives on
                # (waits on the handle's activation event).
                assert standby._active.wait(timeout=30)
                assert standby.is_active
            finally:
                standby.stop_and_join(timeout=30)
    finally:
        holder.kill()
        holder.wait(timeout=30)
        with contextlib.suppress(ProcessLookupError):
            os.kill(child_pid, signal.SIGKILL)
