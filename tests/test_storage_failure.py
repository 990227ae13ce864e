"""A failed write poisons the writer: nothing after it is acknowledged, reopening recovers.

The failure is real: a child process lowers RLIMIT_FSIZE so the kernel refuses the write
that would grow a segment past the limit (EFBIG), exactly as a full disk would.
"""

from __future__ import annotations

import errno
import itertools
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import eventpak as ep

CHILD = textwrap.dedent(
    """
    import json, resource, signal, sys
    import eventpak as ep

    data_dir, limit = sys.argv[1], int(sys.argv[2])
    store = ep.Store.open(data_dir, sync="always")  # creates the first segment under no limit
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)     # get EFBIG instead of being killed
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    acked, failures = [], []
    coord = ep.Coordinate("acct:1", "eu")
    for i in range(10_000):
        try:
            receipt = store.append(coord, "deposit", {"i": i, "pad": "x" * 200})
            acked.append(receipt.global_sequence)
        except ep.StorageFailed as exc:
            failures.append([exc.errno, str(exc)])
            if len(failures) == 3:
                break
    try:
        store.append_batch([(coord, "deposit", {"after": True})])
        batch_refused = False
    except ep.StorageFailed:
        batch_refused = True
    stats = store.stats()
    print(json.dumps({"acked": acked, "failures": failures, "batch_refused": batch_refused,
                      "writer_failure": stats["writer_failure"], "events": stats["events"]}))
    """
)


def _child_report(script: str, *args: str) -> Any:
    """Runs ``script`` in a child interpreter (its file-size limit must not reach this one)
    and returns the JSON it printed."""
    done = subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_a_failed_write_poisons_the_writer_and_reopen_recovers(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    report = _child_report(CHILD, str(data_dir), "20000")
    acked = report["acked"]
    assert acked == list(range(len(acked))) and len(acked) > 10
    # Every append after the failure is refused, single or batch: the writer is poisoned.
    assert len(report["failures"]) == 3
    # The first failure and every refusal after it carry the kernel's errno (EFBIG here).
    assert [code for code, _ in report["failures"]] == [errno.EFBIG] * 3
    assert report["batch_refused"] is True
    assert report["writer_failure"] is not None
    assert report["events"] == len(acked)

    with ep.Store.open(data_dir) as store:
        events = store.query(ep.Region.all())
        # Nothing acknowledged is lost, nothing is invented, the chain still verifies.
        assert [e.global_sequence for e in events] == acked
        assert [e.payload["i"] for e in events] == list(range(len(acked)))
        assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(events))
        receipt = store.append(ep.Coordinate("acct:1", "eu"), "deposit", {"i": len(acked)})
        assert receipt.global_sequence == len(acked)
        assert receipt.entity_sequence == len(acked)


ADVICE_CHILD = textwrap.dedent(
    """
    import json, resource, signal, sys
    import eventpak as ep

    data_dir, fresh_dir = sys.argv[1], sys.argv[2]
    store = ep.Store.open(data_dir, sync="always")
    store.append_batch([(("acct:1", "eu"), "deposit", {"i": i}) for i in range(100)])
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1, 1))  # no file may grow past one byte
    messages = {}
    try:
        store.close()  # everything is fsynced; the index checkpoint cannot be written
    except ep.StorageFailed as exc:
        messages["close"] = [exc.context, str(exc)]
    try:
        ep.Store.open(fresh_dir)
    except ep.StorageFailed as exc:
        messages["open"] = [exc.context, str(exc)]
    print(json.dumps(messages))
    """
)


def test_failures_of_open_and_of_the_checkpoint_at_close_do_not_advise_reopening(tmp_path: Path) -> None:
    """Reopening is the advice for a writer that stopped: what it acknowledged is recovered by
    the next open. A failed open has no store to reopen, and a checkpoint that could not be
    written at close loses nothing (the log was fsynced first)."""
    data_dir = tmp_path / "data"
    messages = _child_report(ADVICE_CHILD, str(data_dir), str(tmp_path / "fresh"))
    context, message = messages["close"]
    assert context == "writing the index checkpoint"
    assert "reopen" not in message and "every event is durable" in message, message
    context, message = messages["open"]
    assert "reopen" not in message and message.endswith("the store was not opened"), message
    with ep.Store.open(data_dir) as store:
        assert store.stats()["index_checkpoint"] == "missing"
        assert [e.payload["i"] for e in store.query(ep.Region.all())] == list(range(100))
