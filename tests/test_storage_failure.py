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


def test_a_failed_write_poisons_the_writer_and_reopen_recovers(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(data_dir), "20000"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
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
