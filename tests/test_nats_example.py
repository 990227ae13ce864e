"""examples/nats_replica run as a user runs it: the origin program and the replica program in
processes of their own against a real nats-server, the replica SIGKILLed twice and the origin
once on the way and each restarted; at the end the replica holds exactly the origin's order
events, verifies, and both programs stop cleanly on SIGTERM or when done."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import eventpak as ep
from nats_support import NatsServer, nats_server_fixture  # noqa: F401 (the nats_server fixture)

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "nats_replica"


class Program:
    """One example program in a child process; its progress lines are read by a thread."""

    def __init__(self, script: str, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(EXAMPLE / script), *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        self.lines: queue.Queue[str] = queue.Queue()
        self.errors: list[str] = []
        # Both pipes are drained by threads (stderr too, so a chatty child never blocks on a
        # full pipe); only they read the pipes, to their ends.
        self.readers = [
            threading.Thread(target=self._read, daemon=True),
            threading.Thread(target=self._read_errors, daemon=True),
        ]
        for reader in self.readers:
            reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)

    def _read_errors(self) -> None:
        assert self.proc.stderr is not None
        self.errors.extend(self.proc.stderr)

    def wait_for_head(self, at_least: int, timeout: float = 60.0) -> None:
        """Returns once the program printed a head of at least ``at_least``."""
        deadline = time.monotonic() + timeout
        while True:
            line = self.lines.get(timeout=max(deadline - time.monotonic(), 0.001))
            found = re.search(r"head (\d+)", line)
            if found and int(found.group(1)) >= at_least:
                return

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def finish(self, timeout: float = 60.0) -> str:
        self.proc.wait(timeout=timeout)
        for reader in self.readers:
            reader.join(timeout)  # the pipes end with the process
        err = "".join(self.errors)
        assert self.proc.returncode == 0, err
        return err


def fields(e: ep.Event) -> tuple[object, ...]:
    return (e.event_id, e.global_sequence, e.coordinate, e.kind, e.entity_sequence, e.timestamp_us,
            e.prev_hash, e.hash, e.payload_bytes)  # fmt: skip


def test_the_two_machine_example_survives_kills_of_both_sides(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    servers = ["--servers", ",".join(nats_server.urls)]
    origin_dir, replica_dir = str(tmp_path / "orders-data"), str(tmp_path / "replica-data")
    replica = Program("replica.py", replica_dir, *servers)
    origin = Program("origin.py", origin_dir, *servers, "--orders", "1500", "--rate", "1000")
    replica.wait_for_head(100)
    replica.kill()  # mid-stream, between applies and acks
    replica = Program("replica.py", replica_dir, *servers)
    origin.wait_for_head(900)
    origin.kill()  # between appends and the publisher's checkpoint
    replica.wait_for_head(400)
    replica.kill()
    replica = Program("replica.py", replica_dir, *servers)
    origin = Program("origin.py", origin_dir, *servers, "--orders", "1500", "--rate", "3000", "--drain")
    origin.finish()
    with ep.Store.open(origin_dir, read_only=True) as store:
        wanted = [fields(e) for e in store.query(ep.Region.entity("order"))]
        assert len(store.query(ep.Region.entity("order").with_kind("placed"))) == 1500
    replica.wait_for_head(wanted[-1][1])  # type: ignore[arg-type]
    replica.proc.send_signal(signal.SIGTERM)
    replica.finish()
    with ep.Store.open(replica_dir, read_only=True) as store:
        assert [fields(e) for e in store.query(ep.Region.all())] == wanted
        assert store.verify().ok
        assert os.path.exists(os.path.join(replica_dir, "replica.origin"))
