"""A compacting process SIGKILLed at random instants: after each kill the store reopens, every
acknowledged event that no compaction could select (``keep`` events) is there with its bytes,
nothing is invented, and ``verify()`` passes. The child is ``compact_child.py``."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import eventpak as ep

CHILD = Path(__file__).with_name("compact_child.py")
KILLS = 12


def run_child(data: Path, seed: int, rng: random.Random) -> list[dict[str, str]]:
    """Runs the child until a random instant during or after its ``k``-th compaction, kills
    it, and returns every line it reported."""
    proc = subprocess.Popen([sys.executable, str(CHILD), str(data), str(seed)], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    lines: list[dict[str, str]] = []
    compactions, target = 0, rng.randrange(1, 4)
    try:
        while compactions < target:
            raw = proc.stdout.readline()
            if not raw:
                break
            lines.append(json.loads(raw))
            compactions += lines[-1]["t"] == "compact"
        # The kill instant is random: inside the compaction that just began, or a little after.
        time.sleep(rng.uniform(0, 0.04))
        proc.send_signal(signal.SIGKILL)
        for raw in proc.stdout:
            lines.append(json.loads(raw))
    finally:
        proc.kill()
        proc.wait()
    assert compactions == target, f"the child stopped early (exit {proc.returncode})"
    return lines


def test_sigkilled_compactions_keep_every_unselected_event_and_invent_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    known: dict[int, tuple[str, str, bytes, bytes]] = {}
    store = ep.Store.open(data, segment_max_bytes=64 * 1024, sync="never")
    for i in range(4000):
        kind = "tick" if i % 3 else "keep"
        r = store.append((f"e{i % 8}", "s"), kind, {"n": i, "pad": "p" * (i % 150)})
        known[r.global_sequence] = (f"e{i % 8}", kind, store.get(r.event_id).payload_bytes, r.hash)
    store.close()
    rng = random.Random(20261202)
    removed_somewhere = False
    for round_no in range(KILLS):
        pending: tuple[str, str, bytes] | None = None
        for line in run_child(data, round_no, rng):
            if line["t"] == "att":
                pending = (line["entity"], line["kind"], bytes.fromhex(line["payload"]))
            elif line["t"] == "ack":
                assert pending is not None
                known[int(line["seq"])] = (*pending, bytes.fromhex(line["hash"]))
                pending = None
        with ep.Store.open(data) as store:
            report = store.verify()
            assert report.ok, (round_no, report.problems[:3])
            present = {e.global_sequence: e for e in store.query(ep.Region.all())}
            for seq, event in present.items():
                found = (event.entity, event.kind, event.payload_bytes)
                if seq not in known:
                    # Only the one append in flight at the kill may have landed unacknowledged.
                    assert pending is not None and found == pending, f"invented event {seq}"
                    known[seq] = (*pending, event.hash)
                    continue
                assert (*found, event.hash) == known[seq], f"event {seq} changed"
            missing = [s for s, (_, kind, _, _) in known.items() if kind == "keep" and s not in present]
            assert not missing, f"round {round_no}: unselected events lost: {missing[:5]}"
            # A kill may land before a round's first compaction commits, so removal is only
            # required of the run as a whole (a round whose kill follows its second
            # compaction has one finished compaction behind it).
            removed_somewhere = removed_somewhere or len(present) < len(known)
    assert removed_somewhere, "no compaction removed anything: the kills tested nothing"
