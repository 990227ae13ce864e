"""A checkpoint that cannot be read (the process is out of descriptors) is not a corrupt
one: reading it raises ``ep.StorageFailed`` with the OS error, whose message does not send
anyone to delete the file or reopen the store, and the checkpoint reads fine once
descriptors are back. Run in a child whose descriptor limit is lowered."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import eventpak as ep

CHILD = textwrap.dedent(
    """
    import json, os, resource, sys
    import eventpak as ep

    store = ep.Store.open(sys.argv[1])
    cursor = store.cursor(ep.Region.all())
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    held = []
    outcomes = {}
    calls = {
        "load_checkpoint": lambda: ep.Cursor.load_checkpoint(sys.argv[1], "mailer"),
        "resume": lambda: cursor.resume("mailer"),
        "checkpoints": lambda: store.checkpoints(),
        "metrics": lambda: store.metrics(),
    }
    for name, call in calls.items():
        # Every descriptor below the limit taken: the next open fails with EMFILE.
        while True:
            try:
                held.append(os.open(os.devnull, os.O_RDONLY))
            except OSError:
                break
        try:
            call()
            outcome = ["no error"]
        except Exception as exc:
            outcome = [type(exc).__name__, getattr(exc, "errno", None), str(exc)]
        finally:
            while held:
                os.close(held.pop())
        outcomes[name] = outcome
    outcomes["after"] = ep.Cursor.load_checkpoint(sys.argv[1], "mailer").position
    print(json.dumps(outcomes))
    """
)


def test_a_checkpoint_read_without_descriptors_is_a_storage_failure(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with ep.Store.open(data_dir) as store:
        store.append_batch([(("a", "s"), "k", i) for i in range(5)])
        cursor = store.cursor(ep.Region.all())
        assert len(cursor.poll_batch(3)) == 3
        cursor.commit("mailer")
    before = (data_dir / "cursors" / "mailer.ckpt").read_bytes()
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(data_dir)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    outcomes = json.loads(done.stdout)
    assert outcomes.pop("after") == 2  # the same checkpoint, read again with descriptors back
    for name, (kind, errno, message) in outcomes.items():
        assert (kind, errno) == ("StorageFailed", 24), (name, message)
        assert message.endswith("the store itself is unaffected"), (name, message)
        assert "delete" not in message, (name, message)
    assert (data_dir / "cursors" / "mailer.ckpt").read_bytes() == before
