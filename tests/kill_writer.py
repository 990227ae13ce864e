"""Child program of the kill harness (tests/test_kill_harness.py); not a test module.

Run as ``python kill_writer.py '<json config>'``. It opens a store and writes to it forever
(single appends, batches, fences that commit or cancel, ``sync()`` barriers, clean
close/reopen cycles, optionally with a durable worker running), reporting every step to the
parent on stdout, one JSON object per line, until the parent SIGKILLs it:

- ``start`` (before ``Store.open``), ``open`` (after it: ``n`` = events in the log, hidden
  ones included),
- ``att`` *before* an append is called (op id, op type, fence id, the events; the payload's
  bytes as hex; each event's cause and explicit correlation id, see below), ``ack`` after it
  returned (the receipts),
- ``fbeg`` before a fence is entered, ``fcommit`` as the last statement inside its ``with``
  block (the commit is requested next), ``fack`` after the block exited (committed);
  ``fcancel`` before a fence is cancelled, ``fcancelled`` after,
- ``sync`` before ``store.sync()``, ``synced`` after it returned,
- ``close`` / ``closed`` around a clean ``store.close()``,
- ``att`` of a consume-transform-produce op (type ``ctp``) also carries ``trk`` (the tracking
  position it records: the last input it read) and ``in`` (the input sequences it read): it
  reads the worker region's events after ``store.tracking_position("ctp")``, turns some of
  them into output events on ``ctp:out`` (payload key ``in``: the input's sequence; caused by
  the input) and appends them, possibly none, with ``tracking=ep.Tracking("ctp", trk)``,
- from the worker thread: ``del`` (the sequences of a batch handed to the handler) and
  ``ckpt`` (the end of the previous batch, whose checkpoint the worker persisted before it
  pulled this batch; after a clean close, the end of the last batch).

Causal links: about half of the events name a cause, reported as ``[what, value, how]``:
``what`` is ``"id"`` (an earlier acknowledged event of this store, visible, hidden or in the
open fence; ``value`` its id as hex), ``"foreign"`` (a random id that names no event here) or
``"prior"`` (``value`` = the index of an earlier item of the same batch); ``how`` is
``"causation_id"`` or ``"caused_by:<form>"`` with the form ``event``, ``receipt``, ``uuid``,
``str`` or ``prior``. Only ``causation_id`` names an event of the open fence. Some events carry
an explicit correlation id (hex; from a small pool, or an earlier event's id).

Each line is written with one ``os.write`` of less than PIPE_BUF bytes, so lines from the two
threads never interleave and a line is either whole or absent when the kill lands.
"""

from __future__ import annotations

import json
import random
import sys
import threading
import uuid
from typing import Any

import eventpak as ep
from child_report import emit

ENTITIES = ("acct:0", "acct:1", "acct:2", "misc:0")
SCOPES = ("main", "audit")
KINDS = ("deposit", "withdraw", "note")
TEXT = "abcxyz éü€😀 "
RECENT = 32  # most causes are among the newest acknowledged events
CTP_NAME = "ctp"  # the consume-transform-produce op's tracking name
CTP_OUT = ("ctp:out", "main")  # where its output events go (outside the worker region)


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
        # Acknowledged events that can be named as causes: id -> "visible", "hidden" or
        # "fenced" (in the open fence); receipts of this process's appends by id.
        self.known: dict[uuid.UUID, str] = {}
        self.known_ids: list[uuid.UUID] = []
        self.fenced: list[uuid.UUID] = []  # events of the open fence
        self.receipts: dict[uuid.UUID, ep.AppendReceipt] = {}
        self.foreign = [self.random_id() for _ in range(3)]
        self.correlations = [self.random_id() for _ in range(3)]

    # --- events ---------------------------------------------------------------------------

    def random_id(self) -> uuid.UUID:
        return uuid.UUID(int=self.rng.getrandbits(128), version=4)

    def cause(self, position: int) -> tuple[dict[str, Any], list[Any] | None]:
        """The causal options of the item at ``position`` of its batch, and their report."""
        rng = self.rng
        r = rng.random()
        if r < 0.3 and self.known_ids:
            ids = self.known_ids
            cause = rng.choice(ids[-RECENT:] if rng.random() < 0.7 else ids)
            status = self.known[cause]
            forms = ["uuid", "str"]
            if cause in self.receipts:
                forms.append("receipt")
            if status == "visible":
                forms.append("event")
            # An event of the open fence is named by id only (nothing is inherited from it).
            how = "causation_id" if status == "fenced" else rng.choice(["causation_id", *forms])
            if how == "causation_id":
                value: Any = cause
            elif how == "event":
                assert self.store is not None
                value = self.store.get(cause)
            elif how == "receipt":
                value = self.receipts[cause]
            else:
                value = cause if how == "uuid" else str(cause)
            option = "causation_id" if how == "causation_id" else "caused_by"
            how = how if how == "causation_id" else f"caused_by:{how}"
            return {option: value}, ["id", cause.hex, how]
        if r < 0.45 and position > 0:
            k = rng.randrange(position)
            option = rng.choice(["causation_id", "caused_by"])
            how = "causation_id" if option == "causation_id" else "caused_by:prior"
            return {option: ep.PriorItem(k)}, ["prior", k, how]
        if r < 0.52:
            foreign = rng.choice(self.foreign) if rng.random() < 0.5 else self.random_id()
            option = rng.choice(["causation_id", "caused_by"])
            how = "causation_id" if option == "causation_id" else "caused_by:uuid"
            return {option: foreign}, ["foreign", foreign.hex, how]
        return {}, None

    def correlation(self) -> uuid.UUID | None:
        rng = self.rng
        if rng.random() >= 0.12:
            return None
        if self.known_ids and rng.random() < 0.4:
            return rng.choice(self.known_ids[-RECENT:])
        return rng.choice(self.correlations)

    def event(self, tag: str, position: int) -> tuple[tuple[str, str], str, Any, dict[str, Any], list[Any]]:
        """One event: coordinate, kind, payload, the append options and its report."""
        rng = self.rng
        payload = {
            "tag": tag,
            "n": rng.randint(-(2**40), 2**40),
            "f": rng.random(),
            "s": "".join(rng.choice(TEXT) for _ in range(rng.randint(0, 24))),
            "b": rng.randbytes(rng.randint(0, 24)),
            "l": [None, True, rng.randint(0, 9)],
        }
        coord, kind = (rng.choice(ENTITIES), rng.choice(SCOPES)), rng.choice(KINDS)
        options, cause = self.cause(position)
        correlation = self.correlation()
        if correlation is not None:
            options["correlation_id"] = correlation
        report = [*coord, kind, {**payload, "b": payload["b"].hex()}, cause, correlation and correlation.hex]
        return coord, kind, payload, options, report

    def new_op(self, op_type: str, count: int, fence: str | None) -> tuple[str, list[Any]]:
        op_id = f"{self.prefix}.{self.ops}"
        self.ops += 1
        events = [self.event(f"{op_id}.{i}", i) for i in range(count)]
        emit({"t": "att", "op": op_id, "type": op_type, "fence": fence, "ev": [e[4] for e in events]})
        return op_id, [e[:4] for e in events]

    @staticmethod
    def item(coord: tuple[str, str], kind: str, payload: Any, options: dict[str, Any]) -> Any:
        """A batch item: a plain tuple when it has no options."""
        return ep.AppendRequest(coord, kind, payload, **options) if options else (coord, kind, payload)

    def ack(self, op_id: str, receipts: list[ep.AppendReceipt], fenced: bool = False) -> None:
        rows = [
            [r.global_sequence, r.event_id.hex, r.entity_sequence, r.hash.hex(), r.timestamp_us, r.durable]
            for r in receipts
        ]
        emit({"t": "ack", "op": op_id, "r": rows})
        for r in receipts:
            self.remember(r.event_id, "fenced" if fenced else "visible")
            self.receipts[r.event_id] = r
            if fenced:
                self.fenced.append(r.event_id)

    def remember(self, event_id: uuid.UUID, status: str) -> None:
        if event_id not in self.known:
            self.known_ids.append(event_id)
        self.known[event_id] = status

    def settle_fence(self, status: str) -> None:
        """The open fence committed (``"visible"``) or was cancelled (``"hidden"``)."""
        for event_id in self.fenced:
            self.known[event_id] = status
        self.fenced.clear()

    # --- store and worker -----------------------------------------------------------------

    def open(self) -> None:
        config = self.config
        self.store = ep.Store.open(
            config["data_dir"], sync=config["sync"], segment_max_bytes=config["segment_max_bytes"]
        )
        emit({"t": "open", "n": self.store.stats()["events"]})
        if not self.known:  # causes from earlier rounds: the newest visible events
            head = self.store.head()
            after = head - 64 if head is not None and head >= 64 else None
            for e in self.store.query(ep.Region.all(), after=after):
                self.remember(e.event_id, "visible")
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
        op_id, [(coord, kind, payload, options)] = self.new_op("append", 1, None)
        self.ack(op_id, [self.store.append(coord, kind, payload, **options)])

    def op_batch(self) -> None:
        assert self.store is not None
        op_id, events = self.new_op("batch", self.rng.randint(2, 8), None)
        self.ack(op_id, self.store.append_batch([self.item(*e) for e in events]))

    def fenced_appends(self, fence: ep.Fence, fence_id: str) -> None:
        for _ in range(self.rng.randint(1, 3)):
            if self.rng.random() < 0.5:
                op_id, [(coord, kind, payload, options)] = self.new_op("fence", 1, fence_id)
                if "caused_by" in options:  # Fence.append takes causation_id, not caused_by
                    self.ack(op_id, fence.append_batch([self.item(coord, kind, payload, options)]), True)
                else:
                    self.ack(op_id, [fence.append(coord, kind, payload, **options)], True)
            else:
                op_id, events = self.new_op("fence", self.rng.randint(1, 4), fence_id)
                self.ack(op_id, fence.append_batch([self.item(*e) for e in events]), True)

    def op_fence(self) -> None:
        assert self.store is not None
        fence_id = f"{self.prefix}.f{self.fences}"
        self.fences += 1
        emit({"t": "fbeg", "f": fence_id})
        with self.store.fence() as fence:
            self.fenced_appends(fence, fence_id)
            emit({"t": "fcommit", "f": fence_id})
        emit({"t": "fack", "f": fence_id})
        self.settle_fence("visible")

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
        self.settle_fence("hidden")

    def op_ctp(self) -> None:
        """Consume-transform-produce: the next few inputs after the tracking position, some
        turned into output events, committed with the position of the last one read."""
        assert self.store is not None
        rng = self.rng
        position = self.store.tracking_position(CTP_NAME)
        region = ep.Region.entity(self.config["region_prefix"])
        inputs = self.store.query(region, after=position, limit=rng.randint(1, 6))
        if not inputs:
            return
        op_id = f"{self.prefix}.{self.ops}"
        self.ops += 1
        events = []
        for e in [e for e in inputs if rng.random() < 0.6]:
            _, _, payload, _, report = self.event(f"{op_id}.{len(events)}", 0)
            payload["in"] = e.global_sequence
            cause = ["id", e.event_id.hex, "caused_by:event"]
            report = [*CTP_OUT, "derived", {**report[3], "in": e.global_sequence}, cause, None]
            events.append((CTP_OUT, "derived", payload, {"caused_by": e}, report))
        tracking = ep.Tracking(CTP_NAME, inputs[-1].global_sequence)
        emit(
            {
                "t": "att",
                "op": op_id,
                "type": "ctp",
                "fence": None,
                "ev": [e[4] for e in events],
                "trk": tracking.position,
                "in": [e.global_sequence for e in inputs],
            }
        )
        receipts = self.store.append_batch([self.item(*e[:4]) for e in events], tracking=tracking)
        self.ack(op_id, receipts)

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
