"""Child program of tests/test_shared_crash.py; not a test module.

Run as ``python shared_crash_writer.py '<json config>'``. It opens the data dir with
``shared=True, sync="always"`` and writes to it until the parent SIGKILLs it or tells it to
stop: single appends (some with an idempotency key), batches, compare-and-set appends on
counters every writer shares, and fences that commit or cancel. It reports every step on
stdout, one JSON object per line, each written with one ``os.write`` of less than PIPE_BUF
bytes (so a line is whole or absent when the kill lands):

- ``start`` before ``Store.open``, ``open`` after it,
- ``att`` *before* an append is called (op id, type, fence id, idempotency key, the events),
  then ``ack`` with the receipts once it returned, or ``conflict`` when compare-and-set lost
  (nothing written),
- ``fbeg`` before a fence is entered, ``fcommit`` as the last statement inside its ``with``
  block, ``fack`` after the block exited (committed); ``fcancel`` before a fence is cancelled,
  ``fcancelled`` after.

A ``retry`` op in the config (the last keyed append of a killed writer, unacknowledged) is
appended again first, with the same key and events, as a service retries after a crash.

On stdin the parent says ``stop`` (finish the current op, report ``stopped``), then ``report``
(report ``view``: how many events this process sees, their digest, ``verify().ok``), then
``close`` (close the store, report ``closed``, exit).
"""

from __future__ import annotations

import json
import queue
import random
import sys
import threading
from typing import Any

import eventpak as ep
from child_report import emit
from shared_helpers import digest, rows

ENTITIES = ("acct:0", "acct:1", "acct:2", "misc")
COUNTERS = ("ctr:0", "ctr:1")
TEXT = "abcxyz éü€😀 "


class Writer:
    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.name: str = config["name"]
        self.rng = random.Random(config["seed"])
        self.ops = 0
        self.fences = 0
        self.store: ep.Store | None = None

    def event(self, op_id: str, i: int, entity: str | None = None) -> list[Any]:
        rng = self.rng
        payload = {
            "tag": f"{op_id}.{i}",
            "n": rng.randint(-(2**40), 2**40),
            "f": rng.random(),
            "s": "".join(rng.choice(TEXT) for _ in range(rng.randint(0, 16))),
            "l": [None, True, rng.randint(0, 9)],
        }
        return [
            entity or rng.choice(ENTITIES),
            rng.choice(("main", "audit")),
            rng.choice(("a", "b")),
            payload,
        ]

    def new_op(
        self, op_type: str, count: int, fence: str | None = None, key: str | None = None
    ) -> tuple[str, list[list[Any]]]:
        op_id = f"{self.name}.{self.ops}"
        self.ops += 1
        events = [self.event(op_id, i) for i in range(count)]
        emit({"t": "att", "op": op_id, "type": op_type, "fence": fence, "key": key, "ev": events})
        return op_id, events

    @staticmethod
    def ack(op_id: str, receipts: list[ep.AppendReceipt]) -> None:
        rows_ = [
            [r.global_sequence, r.event_id.hex, r.entity_sequence, r.hash.hex(), r.durable] for r in receipts
        ]
        emit({"t": "ack", "op": op_id, "r": rows_})

    # --- operations ---------------------------------------------------------------------------

    def op_append(self) -> None:
        assert self.store is not None
        key = f"{self.name}.{self.ops}" if self.rng.random() < 0.4 else None  # the op id
        op_id, [(entity, scope, kind, payload)] = self.new_op("append", 1, key=key)
        self.ack(op_id, [self.store.append((entity, scope), kind, payload, idempotency_key=key)])

    def op_batch(self) -> None:
        assert self.store is not None
        op_id, events = self.new_op("batch", self.rng.randint(2, 6))
        self.ack(op_id, self.store.append_batch([((e, s), k, p) for e, s, k, p in events]))

    def op_cas(self) -> None:
        assert self.store is not None
        entity = self.rng.choice(COUNTERS)
        expected = self.store.next_sequence(entity)
        op_id = f"{self.name}.{self.ops}"
        self.ops += 1
        ev = self.event(op_id, 0, entity)
        emit({"t": "att", "op": op_id, "type": "cas", "fence": None, "key": None, "ev": [ev]})
        try:
            receipt = self.store.append((ev[0], ev[1]), ev[2], ev[3], expected_sequence=expected)
        except ep.ConcurrencyConflict:
            emit({"t": "conflict", "op": op_id})
            return
        self.ack(op_id, [receipt])

    def op_fence(self) -> None:
        assert self.store is not None
        fence_id = f"{self.name}.f{self.fences}"
        self.fences += 1
        cancel = self.rng.random() < 0.4
        emit({"t": "fbeg", "f": fence_id})
        with self.store.fence() as fence:
            for _ in range(self.rng.randint(1, 2)):
                op_id, events = self.new_op("fence", self.rng.randint(1, 3), fence=fence_id)
                self.ack(op_id, fence.append_batch([((e, s), k, p) for e, s, k, p in events]))
            if cancel:
                emit({"t": "fcancel", "f": fence_id})
                fence.cancel()
            else:
                emit({"t": "fcommit", "f": fence_id})
        emit({"t": "fcancelled" if cancel else "fack", "f": fence_id})

    def retry(self, op: dict[str, Any]) -> None:
        """Appends a killed writer's unacknowledged keyed append again, under its key."""
        assert self.store is not None
        (entity, scope, kind, payload) = op["ev"][0]
        op_id = f"{self.name}.retry"
        emit({"t": "att", "op": op_id, "type": "retry", "fence": None, "key": op["key"], "ev": op["ev"]})
        receipt = self.store.append((entity, scope), kind, payload, idempotency_key=op["key"])
        self.ack(op_id, [receipt])

    def run(self) -> None:
        commands: queue.Queue[str] = queue.Queue()

        def read_commands() -> None:
            for line in sys.stdin:
                commands.put(line.strip())

        threading.Thread(target=read_commands, daemon=True).start()
        emit({"t": "start"})
        self.store = ep.Store.open(
            self.config["data_dir"],
            shared=True,
            sync="always",
            segment_max_bytes=self.config["segment_max_bytes"],
        )
        emit({"t": "open"})
        if self.config.get("retry"):
            self.retry(self.config["retry"])
        ops = [self.op_append, self.op_batch, self.op_cas, self.op_fence]
        weights = [0.5, 0.25, 0.15, 0.1]
        while commands.empty():
            self.rng.choices(ops, weights=weights)[0]()
        assert commands.get() == "stop"
        emit({"t": "stopped"})
        assert commands.get() == "report"
        events = self.store.query(ep.Region.all())
        ok = self.store.verify().ok
        emit({"t": "view", "n": len(events), "digest": digest(rows(events)), "ok": ok})
        assert commands.get() == "close"
        self.store.close()
        emit({"t": "closed"})


if __name__ == "__main__":
    Writer(json.loads(sys.argv[1])).run()
