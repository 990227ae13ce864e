"""Child program of the kill harness (tests/test_kill_harness.py); not a test module.

Run as ``python kill_writer.py '<json config>'``. It opens a store and writes to it forever
(single appends, batches, fences that commit or cancel, ``sync()`` barriers, clean
close/reopen cycles, optionally with a durable worker running), reporting every step to the
parent on stdout, one JSON object per line, until the parent SIGKILLs it:

- ``start`` (before ``Store.open``), ``open`` (after it: ``n`` = events in the log, hidden
  ones included),
- ``att`` *before* an append is called (op id, op type, fence id, the events; the payload's
  bytes as hex), ``ack`` after it returned (the receipts),
- ``fbeg`` before a fence is entered, ``fcommit`` as the last statement inside its ``with``
  block (the commit is requested next), ``fack`` after the block exited (committed);
  ``fcancel`` before a fence is cancelled, ``fcancelled`` after,
- ``sync`` before ``store.sync()``, ``synced`` after it returned,
- ``close`` / ``closed`` around a clean ``store.close()``,
- from the worker thread: ``del`` (the sequences of a batch handed to the handler) and
  ``ckpt`` (the end of the previous batch, whose checkpoint the worker persisted before it
  pulled this batch; after a clean close, the end of the last batch).

Each line is written with one ``os.write`` of less than PIPE_BUF bytes, so lines from the two
threads never interleave and a line is either whole or absent when the kill lands.
"""

from __future__ import annotations

import json
import os
import random
import sys
import threading
from typing import Any

import eventpak as ep

ENTITIES = ("acct:0", "acct:1", "acct:2", "misc:0")
SCOPES = ("main", "audit")
KINDS = ("deposit", "withdraw", "note")
TEXT = "abcxyz éü€😀 "
PIPE_BUF = 4096


def emit(obj: dict[str, Any]) -> None:
    data = (json.dumps(obj, separators=(",", ":"), ensure_ascii=False) + "\n").encode()
    if len(data) >= PIPE_BUF:  # a longer write could be torn by the kill
        raise RuntimeError(f"report line of {len(data)} bytes")
    os.write(1, data)


class Writer:
    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.rng = random.Random(config["seed"])
        self.prefix = f"r{config['round']}"
        self.ops = 0
        self.fences = 0
        self.store: ep.Store | None = None
        self.lock = threading.Lock()
        self.last_end: int | None = None  # end of the last batch the worker handled
        self.worker: ep.CursorWorkerHandle | None = None

    # --- events ---------------------------------------------------------------------------

    def event(self, tag: str) -> tuple[tuple[str, str], str, Any]:
        rng = self.rng
        payload = {
            "tag": tag,
            "n": rng.randint(-(2**40), 2**40),
            "f": rng.random(),
            "s": "".join(rng.choice(TEXT) for _ in range(rng.randint(0, 24))),
            "b": rng.randbytes(rng.randint(0, 24)),
            "l": [None, True, rng.randint(0, 9)],
        }
        return (rng.choice(ENTITIES), rng.choice(SCOPES)), rng.choice(KINDS), payload

    def new_op(self, op_type: str, count: int, fence: str | None) -> tuple[str, list[Any]]:
        op_id = f"{self.prefix}.{self.ops}"
        self.ops += 1
        events = [self.event(f"{op_id}.{i}") for i in range(count)]
        reported = [[c[0], c[1], kind, {**payload, "b": payload["b"].hex()}] for c, kind, payload in events]
        emit({"t": "att", "op": op_id, "type": op_type, "fence": fence, "ev": reported})
        return op_id, events

    @staticmethod
    def ack(op_id: str, receipts: list[ep.AppendReceipt]) -> None:
        rows = [
            [r.global_sequence, r.event_id.hex, r.entity_sequence, r.hash.hex(), r.timestamp_us, r.durable]
            for r in receipts
        ]
        emit({"t": "ack", "op": op_id, "r": rows})

    # --- store and worker -----------------------------------------------------------------

    def open(self) -> None:
        config = self.config
        self.store = ep.Store.open(
            config["data_dir"], sync=config["sync"], segment_max_bytes=config["segment_max_bytes"]
        )
        emit({"t": "open", "n": self.store.stats()["events"]})
        if config["worker"]:
            self.worker = self.store.cursor_worker(
                ep.Region.entity(config["region_prefix"]),
                self.handle,
                ep.CursorWorkerConfig(
                    batch_size=config["worker_batch"], checkpoint_id=config["checkpoint_id"]
                ),
            )

    def handle(
        self, batch: list[ep.Event], _store: ep.Store, witness: ep.AtLeastOnce | None
    ) -> ep.CursorWorkerAction:
        if witness is None or witness.checkpoint_id != self.config["checkpoint_id"]:
            raise RuntimeError(f"durable worker got witness {witness!r}")
        with self.lock:
            if self.last_end is not None:
                # The worker persisted the previous batch before it pulled this one.
                emit({"t": "ckpt", "p": self.last_end})
            seqs = [e.global_sequence for e in batch]
            emit({"t": "del", "s": seqs})
            self.last_end = seqs[-1]
        return ep.CursorWorkerAction.CONTINUE

    def close(self) -> None:
        assert self.store is not None
        emit({"t": "close"})
        self.store.close()  # stops and joins the worker: its last batch is persisted
        if self.worker is not None:
            self.worker.join()  # raises what stopped it, if anything did
            with self.lock:
                if self.last_end is not None:
                    emit({"t": "ckpt", "p": self.last_end})
        emit({"t": "closed"})

    # --- operations -----------------------------------------------------------------------

    def op_append(self) -> None:
        assert self.store is not None
        op_id, [(coord, kind, payload)] = self.new_op("append", 1, None)
        self.ack(op_id, [self.store.append(coord, kind, payload)])

    def op_batch(self) -> None:
        assert self.store is not None
        op_id, events = self.new_op("batch", self.rng.randint(2, 8), None)
        self.ack(op_id, self.store.append_batch(events))

    def fenced_appends(self, fence: ep.Fence, fence_id: str) -> None:
        for _ in range(self.rng.randint(1, 3)):
            if self.rng.random() < 0.5:
                op_id, [(coord, kind, payload)] = self.new_op("fence", 1, fence_id)
                self.ack(op_id, [fence.append(coord, kind, payload)])
            else:
                op_id, events = self.new_op("fence", self.rng.randint(1, 4), fence_id)
                self.ack(op_id, fence.append_batch(events))

    def op_fence(self) -> None:
        assert self.store is not None
        fence_id = f"{self.prefix}.f{self.fences}"
        self.fences += 1
        emit({"t": "fbeg", "f": fence_id})
        with self.store.fence() as fence:
            self.fenced_appends(fence, fence_id)
            emit({"t": "fcommit", "f": fence_id})
        emit({"t": "fack", "f": fence_id})

    def op_cancel(self) -> None:
        assert self.store is not None
        fence_id = f"{self.prefix}.f{self.fences}"
        self.fences += 1
        by_exception = self.rng.random() < 0.5
        emit({"t": "fbeg", "f": fence_id})
        try:
            with self.store.fence() as fence:
                self.fenced_appends(fence, fence_id)
                emit({"t": "fcancel", "f": fence_id})
                if by_exception:
                    raise LookupError("cancel this fence")
                fence.cancel()
        except LookupError:
            pass
        emit({"t": "fcancelled", "f": fence_id})

    def op_sync(self) -> None:
        assert self.store is not None
        emit({"t": "sync"})
        self.store.sync()
        emit({"t": "synced"})

    def op_reopen(self) -> None:
        self.close()
        self.open()

    def run(self) -> None:
        emit({"t": "start"})
        self.open()
        weights = self.config["weights"]
        names = sorted(weights)
        ops = [getattr(self, f"op_{name}") for name in names]
        for _ in range(self.config["max_ops"]):
            self.rng.choices(ops, weights=[weights[name] for name in names])[0]()
        emit({"t": "idle"})
        sys.stdin.read()  # the parent kills us; never exit on our own


if __name__ == "__main__":
    Writer(json.loads(sys.argv[1])).run()
