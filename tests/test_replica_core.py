"""The core's replica mode seen from Python across processes, beyond what
tests/test_nats_replica.py covers through NATS."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import eventpak as ep
import pytest


def test_a_shared_opener_from_before_the_dir_became_a_replica_cannot_append(tmp_path: Path) -> None:
    data = tmp_path / "replica"
    earlier = ep.Store.open(data, shared=True)
    try:
        become = (
            "import sys, eventpak as ep\n"
            "with ep.Store.open(sys.argv[1], shared=True) as s:\n"
            "    s._native._become_replica('EVENTS')\n"
        )
        subprocess.run([sys.executable, "-c", become, str(data)], check=True)
        with pytest.raises(ep.ReadOnlyStore):
            earlier.append(("acct:1", "s"), "opened", {})
    finally:
        earlier.close()
    with ep.Store.open(data) as store:
        assert store._native._replica_origin() == ("EVENTS", None)
        assert store.head() is None  # a replica holds only what replication applied
