"""Verifiable receipts: Ed25519 signing keys, receipts that carry the store id, key id and
signature, their bytes/dict/pickle forms, ``Store.verify_receipt`` with every reason in
its order, key rotation, and offline checks in another process."""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable
from pathlib import Path

import eventpak as ep
import pytest
from receipt_bytes import (
    ENTITY_SEQUENCE,
    EVENT_ID,
    FLAGS,
    GLOBAL_SEQUENCE,
    HASH,
    KEY_ID,
    RECEIPT_LEN,
    SIGNATURE,
    STORE_ID,
    TIMESTAMP,
    fields,
    flip,
    u64,
    unsigned,
)

OpenStore = Callable[..., ep.Store]


@pytest.fixture
def key() -> bytes:
    return ep.generate_signing_key()


@pytest.fixture
def signing_store(open_store: OpenStore, key: bytes) -> ep.Store:
    return open_store(signing_key=key, sync="always")


# --- keys ----------------------------------------------------------------------------------------


def test_signing_keys_are_random_seeds_with_a_stable_public_key() -> None:
    first, second = ep.generate_signing_key(), ep.generate_signing_key()
    assert isinstance(first, bytes) and len(first) == 32 and first != second
    public = ep.public_key(first)
    assert isinstance(public, bytes) and len(public) == 32
    assert ep.public_key(first) == public != ep.public_key(second)


def test_public_key_refuses_what_is_not_a_seed() -> None:
    with pytest.raises(ep.InvalidArgument) as refused:
        ep.public_key(bytes(31))
    assert refused.value.argument == "signing_key" and isinstance(refused.value, ValueError)
    with pytest.raises(TypeError):
        ep.public_key("0" * 32)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("options", "says"),
    [
        ({"signing_key": bytes(31)}, "signing_key: a signing key is a 32-byte Ed25519 seed, not 31 bytes"),
        ({"signing_key": "k" * 32}, "signing_key must be bytes, not str"),
        ({"signing_key": 7}, "signing_key must be bytes, not int"),
        ({"verify_keys": bytes(32)}, "verify_keys must be a list of bytes, not bytes"),
        ({"verify_keys": [bytes(33)]}, r"verify_keys\[0\]: a public key holds 32 bytes, not 33"),
        ({"verify_keys": ["k" * 32]}, r"verify_keys\[0\] must be bytes, not str"),
        ({"verify_keys": [bytes(32)]}, r"verify_keys\[0\]: not an Ed25519 public key"),
    ],
)
def test_bad_keys_are_invalid_config_and_create_nothing(
    data_dir: Path, options: dict[str, object], says: str
) -> None:
    with pytest.raises(ep.InvalidConfig, match=says):
        ep.Store.open(data_dir, **options)  # type: ignore[arg-type]
    with pytest.raises(ep.InvalidConfig, match=says):
        ep.StoreConfig(data_dir, **options)  # type: ignore[arg-type]
    assert not data_dir.exists()


def test_a_config_never_shows_its_signing_key(data_dir: Path, key: bytes) -> None:
    config = ep.StoreConfig(data_dir, signing_key=key, verify_keys=[ep.public_key(key)])
    shown = repr(config) + str(config)
    assert repr(key) not in shown and key.hex() not in shown and "signing_key" not in shown
    assert config.verify_keys == (ep.public_key(key),)
    with ep.Store.open(config) as store:
        assert ep.verify_receipt_signature(store.append(("a", "s"), "k", 1), ep.public_key(key))


# --- what a store returns --------------------------------------------------------------------------


def test_an_unsigned_store_vouches_for_its_own_receipts(store: ep.Store) -> None:
    receipt = store.append(("acct:1", "eu"), "deposit", 1)
    assert receipt.store_id == store.store_id
    assert (receipt.key_id, receipt.signature) == (None, None)
    assert store.verify_receipt(receipt) == ep.ReceiptCheck(ok=True, reason=None)


def test_every_receipt_of_a_signing_store_is_signed(signing_store: ep.Store, key: bytes) -> None:
    public = ep.public_key(key)
    store = signing_store
    single = store.append(("a", "s"), "k", 1, idempotency_key="once")
    replayed = store.append(("a", "s"), "k", 1, idempotency_key="once")
    batch = store.append_batch([(("b", "s"), "k", 2), (("c", "s"), "k", 3)])
    keyed = [ep.AppendRequest(("d", "s"), "k", i, idempotency_key=f"b{i}") for i in range(2)]
    keyed_batch = store.append_batch(keyed)
    keyed_replay = store.append_batch(keyed)
    with store.fence() as fence:
        fenced = fence.append(("e", "s"), "k", 4)
    receipts = [single, replayed, *batch, *keyed_batch, *keyed_replay, fenced]
    key_ids = {r.key_id for r in receipts}
    assert len(key_ids) == 1 and len(key_ids.pop() or b"") == 16
    for receipt in receipts:
        assert receipt.store_id == store.store_id
        assert isinstance(receipt.signature, bytes) and len(receipt.signature) == 64
        assert ep.verify_receipt_signature(receipt, public), receipt
        assert store.verify_receipt(receipt).ok, receipt
    assert replayed == single and replayed.signature == single.signature
    assert [r.signature for r in keyed_replay] == [r.signature for r in keyed_batch]
    assert store.stats()["events"] == 6  # the replays wrote nothing


def test_the_key_id_names_the_key(open_store: OpenStore, tmp_path: Path) -> None:
    a, b = ep.generate_signing_key(), ep.generate_signing_key()
    first = open_store(tmp_path / "a", signing_key=a).append(("e", "s"), "k", 1)
    second = open_store(tmp_path / "b", signing_key=a).append(("e", "s"), "k", 1)
    other = open_store(tmp_path / "c", signing_key=b).append(("e", "s"), "k", 1)
    assert first.key_id == second.key_id != other.key_id


# --- bytes, dict, pickle ---------------------------------------------------------------------------


@pytest.mark.parametrize("signed", [True, False])
def test_receipt_bytes_round_trip_every_field(open_store: OpenStore, key: bytes, signed: bool) -> None:
    store = open_store(signing_key=key if signed else None)
    receipt = store.append(("acct:1", "eu"), "deposit", {"amount": 5})
    data = receipt.to_bytes()
    assert isinstance(data, bytes) and len(data) == RECEIPT_LEN and data[0] == 1
    assert data[STORE_ID] == store.store_id and data[EVENT_ID] == receipt.event_id.bytes
    assert data[GLOBAL_SEQUENCE] == u64(receipt.global_sequence)
    assert data[ENTITY_SEQUENCE] == u64(receipt.entity_sequence)
    assert data[TIMESTAMP] == u64(receipt.timestamp_us) and data[HASH] == receipt.hash
    assert data[KEY_ID] == (receipt.key_id or bytes(16))
    assert data[SIGNATURE] == (receipt.signature or bytes(64))
    assert data[FLAGS] == receipt.durable | (signed << 1) | (signed << 2)
    back = ep.AppendReceipt.from_bytes(data)
    assert back == receipt and fields(back) == fields(receipt)
    assert back.to_bytes() == data


@pytest.mark.parametrize("signed", [True, False])
@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_receipts_pickle_with_every_field(
    open_store: OpenStore, key: bytes, signed: bool, protocol: int
) -> None:
    receipt = open_store(signing_key=key if signed else None).append(("a", "s"), "k", 1)
    copy = pickle.loads(pickle.dumps(receipt, protocol=protocol))
    assert copy == receipt and hash(copy) == hash(receipt)
    assert fields(copy) == fields(receipt)


def test_to_dict_is_json_ready(signing_store: ep.Store) -> None:
    receipt = signing_store.append(("a", "s"), "k", 1)
    shown = json.loads(json.dumps(receipt.to_dict()))
    assert shown == {
        "event_id": str(receipt.event_id),
        "global_sequence": receipt.global_sequence,
        "entity_sequence": receipt.entity_sequence,
        "hash": receipt.hash.hex(),
        "timestamp_us": receipt.timestamp_us,
        "durable": receipt.durable,
        "store_id": signing_store.store_id.hex(),
        "key_id": (receipt.key_id or b"").hex(),
        "signature": (receipt.signature or b"").hex(),
    }
    stripped = unsigned(receipt).to_dict()
    assert (stripped["key_id"], stripped["signature"]) == (None, None)


def test_altered_fields_still_parse(signing_store: ep.Store, key: bytes) -> None:
    receipt = signing_store.append(("a", "s"), "k", 1)
    altered = flip(receipt, HASH)
    assert altered.hash != receipt.hash and altered.signature == receipt.signature
    assert not ep.verify_receipt_signature(altered, ep.public_key(key))


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda data: b"", "receipt bytes hold 170 bytes, not 0"),
        (lambda data: data[:-1], "not 169"),
        (lambda data: data + b"\0", "not 171"),
        (lambda data: b"\x02" + data[1:], "unknown receipt version 2"),
        (lambda data: b"\x00" + data[1:], "unknown receipt version 0"),
        (lambda data: data[:1] + b"\x08" + data[2:], "unknown flag bits"),
        (lambda data: data[:1] + b"\x00" + data[2:], "absent key id or signature is not zeros"),
    ],
)
def test_malformed_receipt_bytes_are_refused(
    signing_store: ep.Store, make: Callable[[bytes], bytes], says: str
) -> None:
    data = signing_store.append(("a", "s"), "k", 1).to_bytes()
    with pytest.raises(ep.InvalidArgument, match=says) as refused:
        ep.AppendReceipt.from_bytes(make(data))
    assert refused.value.argument == "data" and isinstance(refused.value, ValueError)


def test_from_bytes_takes_bytes() -> None:
    with pytest.raises(TypeError):
        ep.AppendReceipt.from_bytes("00" * RECEIPT_LEN)  # type: ignore[arg-type]


def test_equality_names_the_store_and_the_event_not_the_signature(signing_store: ep.Store) -> None:
    receipt = signing_store.append(("a", "s"), "k", 1)
    stripped = unsigned(receipt)
    assert stripped == receipt and stripped.signature is None
    assert flip(receipt, STORE_ID) != receipt
