"""Model-based test: a hypothesis state machine drives the store (appends, batches,
compare-and-set, idempotent retries, fences, cursors, checkpoints, close/reopen) and a
plain-Python model side by side, and checks after every step that they agree.

500 examples of up to 20 steps by default; ``EVENTPAK_EXTENDED=1`` runs 5000 of up to 40.
"""

from __future__ import annotations

import itertools
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import eventpak as ep
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import event as note
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

EXTENDED = os.environ.get("EVENTPAK_EXTENDED", "") not in ("", "0")

ENTITIES = ("acct", "acct:1", "acct:2", "acct2", "user:7")
SCOPES = ("s1", "s2")
KINDS = ("k1", "k2", "deposit")
# str and bytes keys with the same bytes are the same key.
KEYS: tuple[str | bytes, ...] = ("key-a", "key-b", b"key-a", b"\xffraw", "key-c")
REGIONS: dict[str, ep.Region] = {
    "all": ep.Region.all(),
    "acct": ep.Region.entity("acct"),
    "acct:1": ep.Region.entity("acct:1"),
    "s2": ep.Region.scope("s2"),
    "k1|deposit": ep.Region.all().with_kinds(["k1", "deposit"]),
    "k-prefix": ep.Region.all().with_kind_prefix("k"),
    "acct clock 1..2": ep.Region.entity("acct").with_clock_range(1, 2),
}
CURSOR_REGIONS = ("all", "acct", "s2", "k1|deposit", "acct clock 1..2")
# Ways to make one item invalid: reserved kind, bad entity, unserializable payloads.
INVALID = ("kind", "entity", "payload", "int")
STORE_OPTIONS: dict[str, Any] = {"sync": "never", "segment_max_bytes": 4096}
ZERO_HASH = bytes(32)

payloads = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=8)
    | st.binary(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)
cas = st.sampled_from(["none", "none", "right", "wrong_up", "wrong_down"])
keys = st.none() | st.sampled_from(KEYS)


def key_bytes(key: str | bytes | None) -> bytes | None:
    return key.encode() if isinstance(key, str) else key


def region_matches(name: str, entity: str, scope: str, kind: str, clock: int) -> bool:
    in_acct = entity == "acct" or entity.startswith("acct:")
    return {
        "all": True,
        "acct": in_acct,
        "acct:1": entity == "acct:1" or entity.startswith("acct:1:"),
        "s2": scope == "s2",
        "k1|deposit": kind in ("k1", "deposit"),
        "k-prefix": kind.startswith("k"),
        "acct clock 1..2": in_acct and 1 <= clock <= 2,
    }[name]


@dataclass
class MEvent:
    seq: int
    entity: str
    scope: str
    kind: str
    payload: bytes
    entity_sequence: int
    visible: bool
    key: bytes | None
    receipt: ep.AppendReceipt | None = None


@dataclass
class MFence:
    obj: ep.Fence
    start: int
    keys: dict[bytes, int] = field(default_factory=dict)


@dataclass
class MCursor:
    region: str
    cursor: ep.Cursor
    position: int = 0
    started: bool = False
    saved: tuple[int, bool] | None = None


@dataclass
class Item:
    """One append request as the test builds it."""

    entity: str
    scope: str
    kind: str
    payload: Any
    cas: str = "none"
    key: str | bytes | None = None
    invalid: str | None = None


class Rejected(Exception):
    """What the model predicts the store raises."""

    def __init__(self, error: type[BaseException]) -> None:
        super().__init__(error.__name__)
        self.error = error


class EventpakModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        shm = Path("/dev/shm")
        self.tmp = tempfile.TemporaryDirectory(
            prefix="eventpak-model-", dir=shm if shm.is_dir() and os.access(shm, os.W_OK) else None
        )
        self.path = Path(self.tmp.name) / "data"
        self.store = ep.Store.open(self.path, **STORE_OPTIONS)
        self.events: list[MEvent] = []
        self.keys: dict[bytes, int] = {}
        self.fence: MFence | None = None
        self.cursors = [MCursor(name, self.store.cursor(REGIONS[name])) for name in CURSOR_REGIONS]
        # Events covered by the newest index checkpoint (None: never written), and whether
        # the open store writes one at close.
        self.checkpointed: int | None = None
        self.store_writes_checkpoint = True
        # Keyed calls the store accepted, for idempotent retries: (items, was a batch).
        self.keyed_calls: list[tuple[list[Item], bool]] = []

    def teardown(self) -> None:
        self.store.close()
        self.tmp.cleanup()

    # --- the model ------------------------------------------------------------------------

    def clock(self, entity: str, fenced: bool) -> int:
        """The entity's next entity_sequence: its visible events, plus the open fence's own
        events when appending through the fence."""
        n = sum(1 for e in self.events if e.entity == entity and e.visible)
        if fenced and self.fence is not None:
            n += sum(1 for e in self.events[self.fence.start :] if e.entity == entity)
        return n

    def key_lookup(self, key: bytes, fenced: bool) -> int | None:
        if key in self.keys:
            return self.keys[key]
        if fenced and self.fence is not None:
            return self.fence.keys.get(key)
        return None

    def expected_value(self, item: Item, clock: int) -> int | None:
        return {"none": None, "right": clock, "wrong_up": clock + 1 + len(item.kind) % 3}.get(
            item.cas, clock - 1 if clock > 0 else clock + 7
        )

    def predict(self, items: list[Item], fenced: bool, batch: bool) -> list[MEvent] | list[ep.AppendReceipt]:
        """New events to write, or the receipts of a replay; raises `Rejected`."""
        for item in items:
            if item.invalid is not None:
                raise Rejected(
                    {
                        "kind": ep.InvalidKind,
                        "entity": ep.InvalidCoordinate,
                        "payload": ep.PayloadNotSerializable,
                        "int": ep.PayloadNotSerializable,
                    }[item.invalid]
                )
        item_keys = [key_bytes(i.key) for i in items]
        if batch:
            keyed = [k for k in item_keys if k is not None]
            if keyed and (len(keyed) != len(items) or len(set(keyed)) != len(keyed)):
                raise Rejected(ep.InvalidIdempotencyKey)
        if not items:
            return []
        if (self.fence is not None) != fenced:
            raise Rejected(ep.FenceActive if self.fence is not None else ep.FenceClosed)
        found = [self.key_lookup(k, fenced) if k is not None else None for k in item_keys]
        hits = [f for f in found if f is not None]
        if hits:
            if len(hits) != len(items):
                raise Rejected(ep.IdempotencyConflict)
            receipts = []
            for item, seq in zip(items, hits, strict=True):
                stored = self.events[seq]
                content = (item.entity, item.scope, item.kind, ep._native.encode_payload(item.payload))
                if content != (stored.entity, stored.scope, stored.kind, stored.payload):
                    raise Rejected(ep.IdempotencyConflict)
                assert stored.receipt is not None
                receipts.append(stored.receipt)
            return receipts
        heads: dict[str, int] = {}
        new: list[MEvent] = []
        for item, key in zip(items, item_keys, strict=True):
            clock = heads.get(item.entity, self.clock(item.entity, fenced))
            expected = self.expected_value(item, clock)
            if expected is not None and expected != clock:
                raise Rejected(ep.ConcurrencyConflict)
            heads[item.entity] = clock + 1
            payload = ep._native.encode_payload(item.payload)
            seq = len(self.events) + len(new)
            new.append(MEvent(seq, item.entity, item.scope, item.kind, payload, clock, not fenced, key))
        return new

    def request(self, item: Item, clock: int) -> ep.AppendRequest:
        """The request for `item`, appended when the entity's next clock is `clock`."""
        entity = "bad/entity" if item.invalid == "entity" else item.entity
        kind = "eventpak.reserved" if item.invalid == "kind" else item.kind
        payload = {"object": object()} if item.invalid == "payload" else item.payload
        payload = [2**70] if item.invalid == "int" else payload
        return ep.AppendRequest(
            (entity, item.scope),
            kind,
            payload,
            idempotency_key=item.key,
            expected_sequence=self.expected_value(item, clock),
        )

    def apply(self, items: list[Item], fenced: bool, batch: bool) -> None:
        """Runs the call on the store and checks it against the model's prediction."""
        try:
            predicted = self.predict(items, fenced, batch)
        except Rejected as rejected:
            predicted_error: type[BaseException] | None = rejected.error
        else:
            predicted_error = None
        before = self.store.stats()["events"]
        # Expected sequences are computed per item as the batch moves the clocks.
        requests = []
        heads: dict[str, int] = {}
        for item in items:
            clock = heads.get(item.entity, self.clock(item.entity, fenced))
            requests.append(self.request(item, clock))
            heads[item.entity] = clock + 1
        target: Any = self.fence.obj if fenced and self.fence is not None else self.store
        call = f"{'fence ' if fenced else ''}{'batch' if batch else 'append'}"
        try:
            if batch:
                receipts = target.append_batch(requests)
            else:
                r = requests[0]
                receipts = [
                    target.append(
                        r.coord,
                        r.kind,
                        r.payload,
                        idempotency_key=r.idempotency_key,
                        expected_sequence=r.expected_sequence,
                    )
                ]
        except ep.EventpakError as error:
            note(f"{call}: {type(error).__name__}")
            assert predicted_error is not None, f"store raised {error!r}, model expected success"
            assert isinstance(error, predicted_error), f"store raised {error!r}, model {predicted_error}"
            assert self.store.stats()["events"] == before, "a refused append wrote something"
            return
        assert predicted_error is None, f"store accepted what the model refuses with {predicted_error}"
        assert self.store.stats()["events"] == before + sum(isinstance(p, MEvent) for p in predicted)
        replay = bool(predicted) and isinstance(predicted[0], ep.AppendReceipt)
        note(f"{call}: {'replayed' if replay else 'ok'}")
        if predicted and isinstance(predicted[0], ep.AppendReceipt):
            assert receipts == predicted, "an idempotent retry must return the original receipts"
            return
        assert len(receipts) == len(predicted)
        if predicted and all(i.key is not None for i in items):
            self.keyed_calls.append((items, batch))
        for receipt, event in zip(receipts, predicted, strict=True):
            assert isinstance(event, MEvent)
            assert (receipt.global_sequence, receipt.entity_sequence) == (event.seq, event.entity_sequence)
            event.receipt = receipt
            self.events.append(event)
            if event.key is not None:
                if fenced and self.fence is not None:
                    self.fence.keys[event.key] = event.seq
                else:
                    self.keys[event.key] = event.seq

    # --- rules ----------------------------------------------------------------------------

    @rule(
        entity=st.sampled_from(ENTITIES),
        scope=st.sampled_from(SCOPES),
        kind=st.sampled_from(KINDS),
        payload=payloads,
        cas=cas,
        key=keys,
    )
    def append(self, entity: str, scope: str, kind: str, payload: Any, cas: str, key: str | None) -> None:
        self.apply([Item(entity, scope, kind, payload, cas, key)], fenced=False, batch=False)

    @rule(
        entity=st.sampled_from(ENTITIES),
        kind=st.sampled_from(KINDS),
        payload=payloads,
        key=keys,
        invalid=st.sampled_from(INVALID),
    )
    def append_invalid(self, entity: str, kind: str, payload: Any, key: str | None, invalid: str) -> None:
        self.apply([Item(entity, "s1", kind, payload, "none", key, invalid)], fenced=False, batch=False)

    @rule(
        items=st.lists(
            st.builds(
                Item,
                st.sampled_from(ENTITIES),
                st.sampled_from(SCOPES),
                st.sampled_from(KINDS),
                payloads,
                cas,
            ),
            max_size=4,
        ),
        keying=st.sampled_from(["none", "none", "all", "some"]),
        key_picks=st.lists(st.sampled_from(KEYS), min_size=4, max_size=4, unique=True),
        invalid=st.none()
        | st.tuples(st.integers(0, 3), st.sampled_from(["kind", "entity", "payload", "int"])),
    )
    def append_batch(
        self, items: list[Item], keying: str, key_picks: list[str | bytes], invalid: tuple[int, str] | None
    ) -> None:
        if keying != "none":
            for i, item in enumerate(items):
                if keying == "all" or i % 2 == 0:
                    item.key = key_picks[i]
        if invalid is not None and items:
            items[invalid[0] % len(items)].invalid = invalid[1]
        self.apply(items, fenced=False, batch=True)

    @precondition(lambda self: bool(self.keyed_calls))
    @rule(
        pick=st.integers(0, 1000),
        change=st.sampled_from(["same", "same", "payload", "kind"]),
        cas=cas,
        through_fence=st.booleans(),
    )
    def retry_keyed_call(self, pick: int, change: str, cas: str, through_fence: bool) -> None:
        """Re-sends a keyed call the store accepted: the same content returns the original
        receipts (whatever expected_sequence says), other content is an IdempotencyConflict."""
        items, batch = self.keyed_calls[pick % len(self.keyed_calls)]
        again = [Item(i.entity, i.scope, i.kind, i.payload, cas, i.key) for i in items]
        if change == "payload":
            again[pick % len(again)].payload = ["changed", again[pick % len(again)].payload]
        elif change == "kind":
            item = again[pick % len(again)]
            item.kind = KINDS[(KINDS.index(item.kind) + 1) % len(KINDS)]
        fenced = through_fence and self.fence is not None
        self.apply(again, fenced=fenced, batch=batch or fenced)

    @precondition(lambda self: self.fence is None)
    @rule()
    def begin_fence(self) -> None:
        fence = self.store.fence()
        fence.__enter__()
        self.fence = MFence(fence, len(self.events))

    @precondition(lambda self: self.fence is not None)
    @rule()
    def a_second_fence_is_refused(self) -> None:
        with pytest.raises(ep.FenceActive):
            self.store.fence().__enter__()

    @precondition(lambda self: self.fence is not None)
    @rule(
        items=st.lists(
            st.builds(
                Item,
                st.sampled_from(ENTITIES),
                st.sampled_from(SCOPES),
                st.sampled_from(KINDS),
                payloads,
                cas,
                keys,
            ),
            min_size=1,
            max_size=3,
        ),
        single=st.booleans(),
    )
    def fence_append(self, items: list[Item], single: bool) -> None:
        if single:
            self.apply(items[:1], fenced=True, batch=False)
        else:
            self.apply(items, fenced=True, batch=True)

    @precondition(lambda self: self.fence is not None)
    @rule(how=st.sampled_from(["commit", "cancel", "exception"]))
    def end_fence(self, how: str) -> None:
        assert self.fence is not None
        fence, start = self.fence, self.fence.start
        if how == "commit":
            fence.obj.__exit__(None, None, None)
            assert fence.obj.state == "committed"
            for event in self.events[start:]:
                event.visible = True
            self.keys.update(fence.keys)
        elif how == "cancel":
            fence.obj.cancel()
            assert fence.obj.state == "cancelled"
        else:
            error = RuntimeError("handler failed")
            fence.obj.__exit__(RuntimeError, error, None)
            assert fence.obj.state == "cancelled"
        self.fence = None

    @rule(index=st.integers(0, len(CURSOR_REGIONS) - 1), most=st.integers(0, 5))
    def poll_cursor(self, index: int, most: int) -> None:
        mc = self.cursors[index]
        expected = [
            e.seq
            for e in self.events
            if e.visible
            and (not mc.started or e.seq > mc.position)
            and region_matches(mc.region, e.entity, e.scope, e.kind, e.entity_sequence)
        ][:most]
        delivered = [e.global_sequence for e in mc.cursor.poll_batch(most)]
        assert delivered == expected, f"cursor {mc.region}"
        if expected:
            mc.position, mc.started = expected[-1], True
        assert (mc.cursor.position, mc.cursor.started) == (mc.position, mc.started)

    @rule(index=st.integers(0, len(CURSOR_REGIONS) - 1))
    def save_checkpoint(self, index: int) -> None:
        mc = self.cursors[index]
        identity = REGIONS[mc.region].checkpoint_identity
        ep.Cursor.save_checkpoint(
            self.path, f"c{index}", ep.CursorCheckpoint(mc.position, mc.started, None, identity)
        )
        mc.saved = (mc.position, mc.started)

    @rule(index=st.integers(0, len(CURSOR_REGIONS) - 1))
    def load_checkpoint(self, index: int) -> None:
        mc = self.cursors[index]
        loaded = ep.Cursor.load_checkpoint(self.path, f"c{index}")
        if mc.saved is None:
            assert loaded is None
        else:
            identity = REGIONS[mc.region].checkpoint_identity
            assert loaded == ep.CursorCheckpoint(*mc.saved, None, identity)

    @rule(enable_index_checkpoint=st.booleans())
    def close_and_reopen(self, enable_index_checkpoint: bool) -> None:
        # The store being closed decides whether close() wrote a checkpoint; the reopened one
        # uses it (or not) and decides for the next close.
        self.store.close()
        assert self.store.closed
        with pytest.raises(ep.StoreClosed):
            self.store.append(("acct", "s1"), "k1", 1)
        if self.store_writes_checkpoint:
            self.checkpointed = len(self.events)
        if self.fence is not None:
            # close() cancels an open fence: its events stay hidden for good.
            self.fence = None
        self.store = ep.Store.open(
            self.path, enable_index_checkpoint=enable_index_checkpoint, **STORE_OPTIONS
        )
        self.store_writes_checkpoint = enable_index_checkpoint
        stats = self.store.stats()
        if not enable_index_checkpoint:
            expected = ("disabled", len(self.events))
        elif self.checkpointed is None:
            expected = ("missing", len(self.events))
        else:
            expected = ("loaded", len(self.events) - self.checkpointed)
        assert (stats["index_checkpoint"], stats["scanned_events"]) == expected
        note(f"reopen: checkpoint {expected[0]}")
        assert stats["torn_tail_bytes"] == 0
        # Cursors resume from their durable checkpoint (at-least-once), or from the start.
        for index, mc in enumerate(self.cursors):
            mc.cursor = self.store.cursor(REGIONS[mc.region])
            loaded = ep.Cursor.load_checkpoint(self.path, f"c{index}")
            if mc.saved is None:
                assert loaded is None
                mc.position, mc.started = 0, False
            else:
                assert loaded is not None and (loaded.position, loaded.started) == mc.saved
                mc.cursor.seek(loaded.position, loaded.started)
                mc.position, mc.started = mc.saved

    # --- invariants -----------------------------------------------------------------------

    @invariant()
    def the_log_agrees_with_the_model(self) -> None:
        assert self.store.stats()["events"] == len(self.events)
        visible = [e for e in self.events if e.visible]
        got = self.store.query(ep.Region.all())
        assert [
            (e.global_sequence, e.entity, e.scope, e.kind, e.payload_bytes, e.entity_sequence) for e in got
        ] == [(m.seq, m.entity, m.scope, m.kind, m.payload, m.entity_sequence) for m in visible]
        for event in got:
            assert event.payload == ep._native.decode_payload(event.payload_bytes)
        for name, region in REGIONS.items():
            expected = [
                m.seq for m in visible if region_matches(name, m.entity, m.scope, m.kind, m.entity_sequence)
            ]
            assert [e.global_sequence for e in self.store.query(region)] == expected, name
        for m in self.events:
            if not m.visible and m.receipt is not None:
                with pytest.raises(ep.EventNotFound):
                    self.store.get(m.receipt.event_id)

    @invariant()
    def every_entity_chain_verifies(self) -> None:
        newest: dict[str, ep.Event] = {}
        for event in self.store.query(ep.Region.all()):
            newest[event.entity] = event
        for entity, event in newest.items():
            chain = self.store.walk_ancestors(event.event_id)
            assert [e.entity_sequence for e in chain] == list(range(event.entity_sequence, -1, -1)), entity
            for newer, older in itertools.pairwise(chain):
                assert newer.prev_hash == older.hash, entity
            assert chain[-1].prev_hash == ZERO_HASH


EventpakModel.TestCase.settings = settings(
    max_examples=5000 if EXTENDED else 500,
    stateful_step_count=40 if EXTENDED else 20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)
TestEventpakModel = EventpakModel.TestCase
