"""An encrypted store written by an older build keeps opening, reading, appending and
forgetting: the committed fixture ``tests/fixtures/keys_v1_store`` (key file version 1,
payloads sealed with AES-256-GCM-SIV; made once by ``make_keys_v1_store.py``) against
``keys_v1_expected.json``. A store keeps the payload cipher it was made with: appends and
forgets leave its key file at version 1. A fixture is only ever opened through a copy."""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path
from typing import Any

import eventpak as ep
import pytest

FIXTURES = Path(__file__).resolve().parent / "fixtures"
EXPECTED: dict[str, Any] = json.loads((FIXTURES / "keys_v1_expected.json").read_text(encoding="utf-8"))
KEY = bytes.fromhex(EXPECTED["key_hex"])
EVENTS: list[dict[str, Any]] = EXPECTED["events"]
FORGOTTEN = EXPECTED["forgotten_entity"]
R = ep.Region


@pytest.fixture
def store_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "keys_v1_store"
    shutil.copytree(FIXTURES / "keys_v1_store", copy)
    return copy


def _key_file_version(data_dir: Path) -> int:
    magic, version = struct.unpack_from("<8sI", (data_dir / "encryption.keys").read_bytes())
    assert magic == b"EVPKKEY\0"
    return int(version)


def _check_reads(store: ep.Store, events: list[dict[str, Any]]) -> None:
    read = store.query(R.all())
    assert [e.global_sequence for e in read[: len(events)]] == [w["global_sequence"] for w in events]
    for event, want in zip(read, events, strict=False):
        where = f"event {want['global_sequence']}"
        assert (event.entity, event.scope, event.kind) == (want["entity"], want["scope"], want["kind"]), where
        assert str(event.event_id) == want["event_id"], where
        assert event.entity_sequence == want["entity_sequence"], where
        assert event.hash.hex() == want["hash"], where
        if want["forgotten"]:
            with pytest.raises(ep.PayloadForgotten):
                event.payload  # noqa: B018
        else:
            assert event.payload == want["payload"], where


def test_the_fixture_is_what_its_expectations_say() -> None:
    assert EXPECTED["key_file"]["version"] == 1
    assert {s["version"] for s in EXPECTED["segments"]} == {4}
    assert any(e["forgotten"] for e in EVENTS) and any(e["entity"] == FORGOTTEN for e in EVENTS)
    assert len({e["nonce"] for e in EVENTS}) == len(EVENTS)


def test_a_version_1_store_opens_and_reads_as_it_was_written(store_copy: Path) -> None:
    with ep.Store.open(store_copy, encryption_key=KEY, read_only=True) as store:
        _check_reads(store, EVENTS)
        assert store.verify().ok
        assert store.stats()["visible_events"] == len(EVENTS)
    with pytest.raises(ep.InvalidConfig):
        ep.Store.open(store_copy, encryption_key=ep.generate_encryption_key())


def test_a_version_1_store_takes_appends_and_forgets_and_keeps_its_cipher(store_copy: Path) -> None:
    with ep.Store.open(store_copy, encryption_key=KEY, sync="always") as store:
        store.append(("alice", "accounts"), "deposit", {"amount": 1})
        store.append_batch([(("erin", "accounts"), "opened", {"i": i}) for i in range(3)])
        assert store.forget_entity("bob") is None
        _check_reads(store, [e | {"forgotten": e["forgotten"] or e["entity"] == "bob"} for e in EVENTS])
    # The cipher (version 1) is kept; the rewrite lists what the file forgot (bit 8), carol's
    # key, forgotten by the older build without a tombstone, included.
    assert _key_file_version(store_copy) == 1 | 1 << 8
    with ep.Store.open(store_copy, encryption_key=KEY) as store:
        tail = store.query(R.all())[len(EVENTS) :]
        assert [(e.entity, e.payload) for e in tail] == [("alice", {"amount": 1})] + [
            ("erin", {"i": i}) for i in range(3)
        ]
        for event in store.query(R.entity("bob")):
            with pytest.raises(ep.PayloadForgotten):
                event.payload  # noqa: B018
        assert store.verify().ok
    assert _key_file_version(store_copy) == 1 | 1 << 8
