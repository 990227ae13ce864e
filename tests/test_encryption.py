"""Encryption at rest and crypto-shredding (docs/lifecycle.md): sealed payloads on disk,
refusals at open, forget_entity, and reads through every layer."""

from __future__ import annotations

import pickle
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import eventpak as ep
import pytest

R = ep.Region
MARKER = "plaintext-marker-5d1c0e"


def _files_holding(directory: Path, needle: bytes) -> list[str]:
    return [str(p) for p in directory.rglob("*") if p.is_file() and needle in p.read_bytes()]


def _snapshot(directory: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file() and p.name != "LOCK"}


@pytest.fixture
def key() -> bytes:
    return ep.generate_encryption_key()


def test_generated_keys_are_32_random_bytes() -> None:
    first, second = ep.generate_encryption_key(), ep.generate_encryption_key()
    assert isinstance(first, bytes) and len(first) == 32 and first != second


def test_no_payload_plaintext_in_any_file_of_the_data_dir(open_store, data_dir, key) -> None:
    store = open_store(encryption_key=key, sync="always", segment_max_bytes=4096)
    for i in range(60):  # several segments, so seals and rotation are covered too
        store.append((f"user:{i % 7}", "s"), "note", {"text": MARKER, "i": i}, idempotency_key=f"k{i}")
    store.append_batch([((f"user:{i}", "s"), "note", [MARKER, i]) for i in range(5)])
    with store.fence() as fence:
        fence.append(("user:1", "s"), "fenced", MARKER)
    assert len(store.cursor(R.all()).poll_batch(1000)) == 66
    store.close()
    assert not _files_holding(data_dir, MARKER.encode())
    assert (data_dir / "encryption.keys").is_file()
    reopened = open_store(encryption_key=key)
    events = reopened.query(R.all())
    assert [e.payload["text"] for e in events[:60]] == [MARKER] * 60
    assert events[-1].payload == MARKER and events[-1].kind == "fenced"
    assert reopened.verify().ok


def test_wrong_missing_and_clear_store_keys_are_refused(open_store, data_dir, tmp_path, key):
    store = open_store(encryption_key=key)
    store.append(("a", "s"), "k", 1)
    store.close()
    before = _snapshot(data_dir)
    for options in ({"encryption_key": ep.generate_encryption_key()}, {}, {"read_only": True}):
        with pytest.raises(ep.InvalidConfig):
            ep.Store.open(data_dir, **options)
        assert _snapshot(data_dir) == before
    # Even without its key file, the segments say the store is encrypted.
    (data_dir / "encryption.keys").rename(tmp_path / "kept.keys")
    before = _snapshot(data_dir)
    for options in ({"encryption_key": key}, {}):
        with pytest.raises(ep.InvalidConfig):
            ep.Store.open(data_dir, **options)
        assert _snapshot(data_dir) == before
    clear_dir = tmp_path / "clear"
    clear = open_store(clear_dir)
    clear.append(("a", "s"), "k", 1)
    clear.close()
    before = _snapshot(clear_dir)
    with pytest.raises(ep.InvalidConfig, match="without encryption"):
        ep.Store.open(clear_dir, encryption_key=key)
    assert _snapshot(clear_dir) == before


@pytest.mark.parametrize("bad", [b"", b"x" * 31, b"x" * 33, "k" * 32, 7])
def test_a_key_of_the_wrong_length_or_type_is_refused_before_the_disk_is_touched(data_dir, bad: Any) -> None:
    with pytest.raises(ep.InvalidConfig):
        ep.Store.open(data_dir, encryption_key=bad)
    assert not data_dir.exists()


def test_the_key_is_never_shown(data_dir, key) -> None:
    config = ep.StoreConfig(data_dir, encryption_key=key)
    assert key.hex() not in repr(config) and repr(key) not in repr(config)
    with pytest.raises(ep.InvalidConfig) as info:
        ep.Store.open(data_dir, encryption_key=key[:31])
    assert key[:31].hex() not in str(info.value) and repr(key[:31]) not in str(info.value)


def test_forget_entity_leaves_neighbours_and_verify_intact(open_store, data_dir, key) -> None:
    store = open_store(encryption_key=key)
    store.append(("alice", "s"), "k", {"who": "alice", "n": 1}, tags=["t"])
    store.append(("bob", "s"), "k", {"who": "bob"})
    store.append(("alice", "s"), "k", {"who": "alice", "n": 2})
    held = store.query(R.entity("alice"))
    assert held[0].payload == {"who": "alice", "n": 1}  # cached: read before the forget
    store.forget_entity("alice")
    store.forget_entity("alice")  # idempotent
    store.forget_entity("nobody")  # an entity without key: nothing to destroy
    assert store.verify().ok
    receipt = store.append(("alice", "s"), "k", {"who": "alice", "n": 3})
    assert receipt.entity_sequence == 2  # clocks are unaffected

    def check(s: ep.Store) -> None:
        events = s.query(R.all())
        forgotten = [e for e in events if e.entity == "alice" and e.entity_sequence < 2]
        assert len(forgotten) == 2
        for event in forgotten:
            with pytest.raises(ep.PayloadForgotten) as info:
                _ = event.payload
            assert (info.value.entity, info.value.global_sequence) == ("alice", event.global_sequence)
            with pytest.raises(ep.PayloadForgotten):
                _ = event.payload_bytes
            # Everything else about the event is still there.
            assert event.kind == "k" and len(event.hash) == 32 and event.event_id is not None
        assert forgotten[0].tags == ("t",) and forgotten[1].prev_hash == forgotten[0].hash
        assert s.query(R.entity("bob"))[0].payload == {"who": "bob"}
        assert s.query(R.entity("alice"))[-1].payload == {"who": "alice", "n": 3}
        assert [e.global_sequence for e in s.walk_ancestors(events[-1].event_id)] == [3, 2, 0]
        assert s.verify().ok

    check(store)
    store.close()
    reopened = open_store(encryption_key=key)
    check(reopened)
    reopened.close()
    check(open_store(encryption_key=key, read_only=True))


def test_verify_finds_payloads_whose_key_the_key_file_lost(open_store, data_dir, key) -> None:
    # A key file cut short (a restore of an older copy beside newer segments): every
    # event's hash still holds, but payloads sealed with the lost keys never open again.
    store = open_store(encryption_key=key)
    for i in range(20):
        store.append((f"user:{i}", "s"), "k", {"i": i})
    assert store.verify().ok
    store.close()
    keys = data_dir / "encryption.keys"
    keys.write_bytes(keys.read_bytes()[: keys.stat().st_size // 2])
    store = open_store(encryption_key=key, read_only=True)
    report = store.verify()
    assert not report.ok
    damaged = sorted(p.sequence for p in report.problems)
    assert damaged and all("payload does not open" in p.reason for p in report.problems)
    for event in store.query(ep.Region.all()):
        if event.global_sequence in damaged:
            with pytest.raises(ep.CorruptSegment):
                _ = event.payload
        else:
            assert event.payload == {"i": event.global_sequence}


def test_forget_entity_needs_an_encrypted_writable_store_and_an_exact_entity(open_store, tmp_path, key):
    clear = open_store(tmp_path / "clear")
    clear.append(("alice", "s"), "k", 1)
    with pytest.raises(ep.InvalidConfig):
        clear.forget_entity("alice")
    store = open_store(encryption_key=key)
    store.append(("alice", "s"), "k", 1)
    store.append(("alice:1", "s"), "k", 2)
    with pytest.raises(ep.InvalidCoordinate):
        store.forget_entity("")
    store.forget_entity("alice")
    assert store.query(R.entity("alice:1"))[0].payload == 2  # exact entity: a prefix is not forgotten
    store.close()
    reader = open_store(encryption_key=key, read_only=True)
    with pytest.raises(ep.ReadOnlyStore, match="forgetting an entity is refused"):
        reader.forget_entity("alice:1")


def test_cursors_aio_free_read_and_pickles_open_payloads(open_store, key) -> None:
    store = open_store(encryption_key=key)
    store.append(("a", "s"), "k", {"v": 1})
    store.append(("b", "s"), "k", {"v": 2})
    store.forget_entity("b")
    batch = store.cursor(R.all()).poll_batch(10)
    assert batch[0].payload == {"v": 1}
    with pytest.raises(ep.PayloadForgotten):
        _ = batch[1].payload
    copy = pickle.loads(pickle.dumps(batch[0]))
    assert copy.payload == {"v": 1} and copy.hash == batch[0].hash
    with pytest.raises(ep.PayloadForgotten):
        pickle.dumps(batch[1])
    assert store.get(batch[0].event_id).payload_bytes == ep._native.encode_payload({"v": 1})


def test_idempotent_retry_returns_the_original_receipt(open_store, key) -> None:
    store = open_store(encryption_key=key)
    first = store.append(("a", "s"), "k", {"v": 1}, idempotency_key="once")
    assert store.append(("a", "s"), "k", {"v": 1}, idempotency_key="once") == first
    with pytest.raises(ep.IdempotencyConflict):
        store.append(("a", "s"), "k", {"v": 2}, idempotency_key="once")
    store.forget_entity("a")
    # A forgotten payload cannot be compared: the retry is taken as the same one.
    assert store.append(("a", "s"), "k", {"v": 1}, idempotency_key="once").global_sequence == 0


def test_worker_handlers_get_payload_forgotten_and_may_catch_it(open_store, key) -> None:
    store = open_store(encryption_key=key)
    for entity in ("a", "gone", "b"):
        store.append((entity, "s"), "k", entity)
    store.forget_entity("gone")
    seen: list[Any] = []

    def handler(batch, _store, _witness):
        for event in batch:
            try:
                seen.append(event.payload)
            except ep.PayloadForgotten as exc:
                seen.append(("forgotten", exc.entity))
        return ep.CursorWorkerAction.STOP if batch[-1].global_sequence == 2 else None

    config = ep.CursorWorkerConfig(batch_size=1, idle_sleep=0.001, restart=ep.RestartPolicy.once())
    store.cursor_worker(R.all(), handler, config).join(timeout=30)
    assert seen == ["a", ("forgotten", "gone"), "b"]


def test_a_handler_that_does_not_catch_it_fails_with_it(open_store, key) -> None:
    store = open_store(encryption_key=key)
    store.append(("gone", "s"), "k", 1)
    store.forget_entity("gone")

    def handler(batch, _store, _witness):
        return [e.payload for e in batch]

    config = ep.CursorWorkerConfig(batch_size=1, idle_sleep=0.001, restart=ep.RestartPolicy.never())
    handle = store.cursor_worker(R.all(), handler, config)
    with pytest.raises(Exception) as info:
        handle.join(timeout=30)
    chain = [info.value, info.value.__cause__, info.value.__context__]
    assert any(isinstance(e, ep.PayloadForgotten) for e in chain)


class Notes(ep.Projection):
    name = "notes"
    version = 1
    kinds = ("note",)

    def initial(self) -> list[Any]:
        return []

    def apply(self, state: list[Any], event: ep.Event) -> list[Any]:
        try:
            return [*state, event.payload]
        except ep.PayloadForgotten:
            return [*state, None]


def test_projections_decrypt_and_see_forgotten_payloads(open_store, key) -> None:
    store = open_store(encryption_key=key)
    store.append(("a", "s"), "note", "one")
    store.append(("a", "s"), "note", "two")
    assert store.project("a", Notes()) == ["one", "two"]
    store.forget_entity("a")
    store.append(("a", "s"), "note", "three")
    assert store.project("a", Notes()) == [None, None, "three"]


def test_upcasters_run_on_opened_payloads(open_store, key) -> None:
    up = ep.Upcasters().add("k", 0, lambda p: {**p, "up": True})
    store = open_store(encryption_key=key, upcasters=up)
    store.append(("a", "s"), "k", {"v": 1})
    assert store.query(R.all())[0].payload == {"v": 1, "up": True}


def test_an_encrypted_store_refuses_to_publish_or_replicate(open_store, tmp_path, key) -> None:
    store = open_store(encryption_key=key)
    with pytest.raises(ep.InvalidConfig):
        store._native._become_replica("EVENTS")
    nats = pytest.importorskip("eventpak.nats")
    with pytest.raises(ep.InvalidConfig):
        nats.Publisher(store, R.all(), servers=["nats://127.0.0.1:1"])


def test_asyncio_reads_open_payloads_and_forgets(data_dir, key) -> None:
    import asyncio

    async def main() -> None:
        async with ep.aio.open(data_dir, encryption_key=key) as store:
            await store.append(("a", "s"), "k", {"v": 1})
            assert [e.payload for e in await store.query(R.all())] == [{"v": 1}]
            await store.forget_entity("a")
            (event,) = await store.query(R.all())
            with pytest.raises(ep.PayloadForgotten):
                _ = event.payload

    asyncio.run(main())


def test_the_command_line_reads_an_encrypted_store_with_its_key_from_the_environment(data_dir, key) -> None:
    import json
    import os

    from cli_helpers import run_cli

    with ep.Store.open(data_dir, encryption_key=key) as store:
        store.append(("a", "s"), "k", {"v": 1})
        store.append(("gone", "s"), "k", {"v": 2})
        store.forget_entity("gone")
    env = {k: v for k, v in os.environ.items() if k != "EVENTPAK_ENCRYPTION_KEY"}
    refused = run_cli("inspect", str(data_dir), "--json", env=env)
    assert refused.returncode != 0 and "encrypted" in refused.stderr
    done = run_cli("inspect", str(data_dir), "--json", env={**env, "EVENTPAK_ENCRYPTION_KEY": key.hex()})
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(r["entity"], r["payload"]) for r in records] == [("a", {"v": 1}), ("gone", None)]
    assert key.hex() not in done.stdout + done.stderr + refused.stderr


def test_the_command_line_names_its_key_variable_when_the_key_is_missing_short_wrong_or_not_wanted(
    data_dir, key, tmp_path
) -> None:
    import os

    from cli_helpers import run_cli

    with ep.Store.open(data_dir, encryption_key=key) as store:
        store.append(("a", "s"), "k", {"v": 1})
    clear_dir = tmp_path / "clear"
    with ep.Store.open(clear_dir) as store:
        store.append(("a", "s"), "k", {"v": 1})
    env = {k: v for k, v in os.environ.items() if k != "EVENTPAK_ENCRYPTION_KEY"}

    def stderr(command: str, target, value: str | None) -> str:
        extra = {} if value is None else {"EVENTPAK_ENCRYPTION_KEY": value}
        rule = ["--kind", "k"] if command == "compact" else []
        done = run_cli(command, str(target), *rule, env={**env, **extra})
        assert done.returncode == 1, done.stdout
        return done.stderr.strip()

    for command in ("stats", "verify", "compact"):
        assert stderr(command, data_dir, None) == (
            f"eventpak: {data_dir} is encrypted: set EVENTPAK_ENCRYPTION_KEY to its store key (64 hex digits)"
        )
        # Hex of the wrong length is refused as the variable's fault, before the store is opened.
        assert stderr(command, data_dir, key.hex()[:-2]) == (
            "eventpak: EVENTPAK_ENCRYPTION_KEY must hold the store key as 64 hex digits"
        )
        assert stderr(command, data_dir, "ab" * 32) == (
            "eventpak: EVENTPAK_ENCRYPTION_KEY is not the key this store was encrypted with"
        )
        assert stderr(command, clear_dir, key.hex()) == (
            f"eventpak: {clear_dir} was created without encryption: unset EVENTPAK_ENCRYPTION_KEY"
        )
    with ep.Store.open(data_dir, encryption_key=key, read_only=True) as store:
        assert [e.payload for e in store.query(ep.Region.all())] == [{"v": 1}]


_RACER = r"""
import sys, time
import eventpak as ep
data_dir, key, start = sys.argv[1], sys.argv[2], float(sys.argv[3])
options = {"shared": True}
if key != "-":
    options["encryption_key"] = bytes.fromhex(key)
while time.time() < start:  # both processes open at the same instant
    pass
try:
    store = ep.Store.open(data_dir, **options)
except ep.EventpakError as e:
    print("refused", type(e).__name__)
    sys.exit(0)
for i in range(5):
    store.append(("e", "s"), "k", {"i": i})
store.close()
print("opened")
"""


def test_a_new_shared_store_opened_at_once_with_and_without_a_key_refuses_one_of_them(tmp_path, key) -> None:
    # Both find the data dir new before either has made anything; the first to reach the
    # session's open lock decides the store's mode, and the other is refused there.
    for attempt in range(10):
        data_dir = tmp_path / f"store-{attempt}"
        start = time.time() + 0.5
        keys = [key.hex(), "-"] if attempt % 2 == 0 else ["-", key.hex()]
        racers = [
            subprocess.Popen(
                [sys.executable, "-c", _RACER, str(data_dir), k, str(start)],
                stdout=subprocess.PIPE,
                text=True,
            )
            for k in keys
        ]
        outcomes = [racer.communicate(timeout=120)[0].strip() for racer in racers]
        assert sorted(outcomes) == ["opened", "refused InvalidConfig"], outcomes
        winner_key = key if outcomes[keys.index(key.hex())] == "opened" else None
        with ep.Store.open(data_dir, encryption_key=winner_key) as store:
            assert [e.payload["i"] for e in store.query(ep.Region.all())] == list(range(5))
            assert store.verify().ok
