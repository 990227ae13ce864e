"""Encryption under crashes and several processes: a SIGKILL during key creation never leaves
an acknowledged event whose key is missing; with ``shared=True``, keys made by one process
open in another, and a forget in one stops the others from opening the entity's payloads."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import eventpak as ep
import pytest

R = ep.Region

# Appends to a new entity each time (so nearly every append creates and fsyncs a data key),
# alone or in batches, and reports each acknowledged event on stdout.
_WRITER = """
import sys, eventpak as ep
path, key, start = sys.argv[1], bytes.fromhex(sys.argv[2]), int(sys.argv[3])
store = ep.Store.open(path, encryption_key=key, sync="always")
i = start
while True:
    if i % 3 == 0:
        items = [((f"e{i}-{j}", "s"), "k", {"i": i, "j": j}) for j in range(3)]
        for r, (coord, _, payload) in zip(store.append_batch(items), items):
            print(r.global_sequence, coord[0], payload["j"], flush=True)
    else:
        r = store.append((f"e{i}", "s"), "k", {"i": i, "j": 0})
        print(r.global_sequence, f"e{i}", 0, flush=True)
    i += 1
"""


def test_a_kill_during_key_creation_never_loses_an_acknowledged_events_key(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    key = ep.generate_encryption_key()
    rng = random.Random(7)
    acked: dict[int, tuple[str, int]] = {}
    for round_ in range(8):
        child = subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(data_dir), key.hex(), str(round_ * 10_000)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert child.stdout is not None
        for _ in range(rng.randrange(1, 40)):
            line = child.stdout.readline()
            if not line:
                break
            seq, entity, j = line.split()
            acked[int(seq)] = (entity, int(j))
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        with ep.Store.open(data_dir, encryption_key=key) as store:
            events = {e.global_sequence: e for e in store.query(R.all())}
            for seq, (entity, j) in acked.items():
                event = events[seq]
                assert event.entity == entity
                assert event.payload["j"] == j  # the key survived: the payload opens
            for event in events.values():  # unacknowledged survivors open too
                assert isinstance(event.payload, dict)
            assert store.verify().ok
    assert len(acked) > 8


# Runs the operations the parent sends on stdin, one line each ("append E" or "forget E"),
# and reports each one that returned.
_STEPPER = """
import sys, eventpak as ep
path, key = sys.argv[1], bytes.fromhex(sys.argv[2])
store = ep.Store.open(path, encryption_key=key, sync="always")
print("open", flush=True)
for line in sys.stdin:
    op, entity = line.split()
    if op == "append":
        print("ok", store.append((entity, "s"), "k", entity).global_sequence, flush=True)
    else:
        store.forget_entity(entity)
        print("ok", flush=True)
"""


def test_a_kill_during_forget_leaves_it_done_or_not_and_every_other_key_intact(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    key = ep.generate_encryption_key()
    rng = random.Random(11)
    acked: dict[int, str] = {}  # sequence -> entity
    forgotten_after: dict[int, bool] = {}  # sequence -> a forget of its entity returned since
    for _ in range(10):
        args = [sys.executable, "-c", _STEPPER, str(data_dir), key.hex()]
        child = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert child.stdin is not None and child.stdout is not None
        assert child.stdout.readline().strip() == "open"
        ops = [
            (rng.choice(["append", "append", "forget"]), f"p{rng.randrange(4)}")
            for _ in range(rng.randrange(1, 12))
        ]
        for op, entity in ops[:-1]:
            child.stdin.write(f"{op} {entity}\n")
            child.stdin.flush()
            reply = child.stdout.readline().split()
            if op == "append":
                acked[int(reply[1])] = entity
                forgotten_after[int(reply[1])] = False
            else:
                for seq, owner in acked.items():
                    forgotten_after[seq] = forgotten_after[seq] or owner == entity
        in_flight = ops[-1]
        child.stdin.write(f"{in_flight[0]} {in_flight[1]}\n")
        child.stdin.flush()
        os.kill(child.pid, signal.SIGKILL)  # the last operation may have run, in part or whole
        child.wait()
        with ep.Store.open(data_dir, encryption_key=key) as store:
            events = {e.global_sequence: e for e in store.query(R.all())}
            for seq, entity in acked.items():
                event = events[seq]
                if forgotten_after[seq]:
                    with pytest.raises(ep.PayloadForgotten):
                        _ = event.payload
                elif in_flight != ("forget", entity):
                    assert event.payload == entity
            if in_flight[0] == "forget":
                # Done whole or not at all: every acknowledged event of the entity agrees.
                outcomes = set()
                for seq, entity in acked.items():
                    if entity == in_flight[1] and not forgotten_after[seq]:
                        try:
                            outcomes.add(events[seq].payload == entity)
                        except ep.PayloadForgotten:
                            outcomes.add("forgotten")
                            forgotten_after[seq] = True
                assert len(outcomes) <= 1, outcomes
            assert store.verify().ok
    assert any(forgotten_after.values()) and not all(forgotten_after.values())


_SHARED = """
import sys, eventpak as ep
path, key = sys.argv[1], bytes.fromhex(sys.argv[2])
store = ep.Store.open(path, encryption_key=key, shared=True)
for line in sys.stdin:
    op, entity = line.split()
    if op == "append":
        store.append((entity, "s"), "k", entity)
        print("ok", flush=True)
    elif op == "forget":
        store.forget_entity(entity)
        print("ok", flush=True)
    elif op == "read":
        try:
            print(repr([e.payload for e in store.query(ep.Region.entity(entity))]), flush=True)
        except ep.PayloadForgotten:
            print("forgotten", flush=True)
"""


def test_shared_processes_see_each_others_keys_and_forgets(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    key = ep.generate_encryption_key()
    args = [sys.executable, "-c", _SHARED, str(data_dir), key.hex()]
    with ep.Store.open(data_dir, encryption_key=key, shared=True) as mine:
        other = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert other.stdin is not None and other.stdout is not None

        def ask(op: str, entity: str) -> str:
            other.stdin.write(f"{op} {entity}\n")  # type: ignore[union-attr]
            other.stdin.flush()  # type: ignore[union-attr]
            return other.stdout.readline().strip()  # type: ignore[union-attr]

        try:
            mine.append(("alice", "s"), "k", "alice")
            assert ask("read", "alice") == "['alice']"  # a key this process made, read there
            assert ask("append", "bob") == "ok"
            assert [e.payload for e in mine.query(R.entity("bob"))] == ["bob"]  # and the other way
            assert ask("forget", "alice") == "ok"
            (event,) = mine.query(R.entity("alice"))
            try:
                _ = event.payload
                raise AssertionError("a payload forgotten by another process still opened")
            except ep.PayloadForgotten:
                pass
            mine.forget_entity("bob")
            assert ask("read", "bob") == "forgotten"
            mine.append(("bob", "s"), "k", "bob again")
            assert ask("append", "alice") == "ok"
            assert [e.entity_sequence for e in mine.query(R.entity("alice"))] == [0, 1]
            assert mine.query(R.entity("alice"))[-1].payload == "alice"
            assert ask("read", "bob") == "forgotten"  # its first payload is gone for good
            assert mine.verify().ok
        finally:
            other.stdin.close()
            other.wait(timeout=30)
