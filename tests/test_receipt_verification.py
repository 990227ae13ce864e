"""Checking receipts: ``Store.verify_receipt`` gives every reason in its documented order and
never raises for a bad receipt, key rotation keeps old receipts good, and a receipt sent as
bytes to another process verifies there with the public key alone."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import eventpak as ep
import pytest
from checksums import crc32c
from receipt_bytes import (
    DURABLE,
    ENTITY_SEQUENCE,
    EVENT_ID,
    GLOBAL_SEQUENCE,
    HAS_KEY_ID,
    HAS_SIGNATURE,
    HASH,
    KEY_ID,
    SIGNATURE,
    STORE_ID,
    TIMESTAMP,
    durable_flipped,
    edit,
    flip,
    reason,
    u64,
    unsigned,
    with_flags,
)

OpenStore = Callable[..., ep.Store]


@pytest.fixture
def key() -> bytes:
    return ep.generate_signing_key()


def test_every_reason_in_its_order(open_store: OpenStore, key: bytes, dir_bytes, data_dir: Path) -> None:
    store = open_store(signing_key=key)
    store.append(("acct:1", "eu"), "deposit", 1)
    good = store.append(("acct:1", "eu"), "deposit", 2)
    store.sync()
    before = dir_bytes(data_dir)
    plain = good.durable * DURABLE
    cases = [
        ("wrong store", flip(good, STORE_ID)),
        ("unknown event", flip(good, EVENT_ID)),
        ("sequence mismatch", edit(good, GLOBAL_SEQUENCE, u64(0))),
        ("sequence mismatch", edit(good, ENTITY_SEQUENCE, u64(7))),
        ("hash mismatch", flip(good, HASH)),
        ("hash mismatch", edit(good, TIMESTAMP, u64(good.timestamp_us + 1))),
        ("unknown key", flip(good, KEY_ID)),
        ("bad signature", flip(good, SIGNATURE)),
        # a key id without a signature; a signature that names no key
        ("bad signature", with_flags(good, plain | HAS_KEY_ID)),
        ("unknown key", with_flags(good, plain | HAS_SIGNATURE)),
        # the first reason that applies wins
        ("wrong store", flip(flip(flip(good, SIGNATURE), HASH), STORE_ID)),
        ("unknown event", flip(flip(good, EVENT_ID), GLOBAL_SEQUENCE)),
        ("sequence mismatch", flip(flip(good, GLOBAL_SEQUENCE), HASH)),
        ("hash mismatch", flip(flip(good, HASH), KEY_ID)),
        ("unknown key", flip(flip(good, KEY_ID), SIGNATURE)),
    ]
    for i, (expected, receipt) in enumerate(cases):
        assert reason(store, receipt) == expected, f"case {i}"
    assert reason(store, good) is None
    # `durable` is not signed: it says when the receipt was made.
    assert reason(store, durable_flipped(good)) is None
    # Unsigned, with matching content: the store itself is the witness.
    assert reason(store, unsigned(good)) is None
    assert store.stats()["events"] == 2 and dir_bytes(data_dir) == before


def test_events_of_a_cancelled_fence_are_hidden(open_store: OpenStore, key: bytes) -> None:
    store = open_store(signing_key=key)
    with store.fence() as fence:
        fenced = fence.append(("acct:1", "eu"), "deposit", 1)
        assert reason(store, fenced) == "hidden"  # not visible until the fence commits
        fence.cancel()
    with pytest.raises(ep.EventNotFound):
        store.get(fenced.event_id)
    assert ep.verify_receipt_signature(fenced, ep.public_key(key))
    assert reason(store, fenced) == "hidden"
    assert reason(store, flip(fenced, STORE_ID)) == "wrong store"
    store.close()
    assert reason(open_store(signing_key=key), fenced) == "hidden"


def test_another_stores_receipts_are_refused(open_store: OpenStore, key: bytes, tmp_path: Path) -> None:
    original = open_store(tmp_path / "a", signing_key=key)
    receipt = original.append(("acct:1", "eu"), "deposit", 1)
    original.close()
    # A copy of the log under another identity holds the same event.
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    other_id = os.urandom(16)  # docs/format.md, "Store identity": magic | id | CRC-32C
    ident = b"EVPKSID\0" + other_id
    (tmp_path / "b" / "store.id").write_bytes(ident + struct.pack("<I", crc32c(ident)))
    copy = open_store(tmp_path / "b", signing_key=key)
    assert copy.store_id == other_id != receipt.store_id and copy.get(receipt.event_id).hash == receipt.hash
    assert reason(copy, receipt) == "wrong store"
    repointed = edit(receipt, STORE_ID, copy.store_id)
    assert reason(copy, repointed) == "bad signature"  # the signature covers the store id
    copy.close()
    assert reason(open_store(tmp_path / "b"), repointed) == "unknown key"
    assert reason(open_store(tmp_path / "c", signing_key=key), receipt) == "wrong store"


def test_a_rotated_key_still_verifies_old_receipts(open_store: OpenStore, data_dir: Path) -> None:
    old_key, new_key, other_key = (ep.generate_signing_key() for _ in range(3))
    store = open_store(signing_key=old_key)
    old = store.append(("acct:1", "eu"), "deposit", 1)
    store.close()
    store = open_store(signing_key=new_key, verify_keys=[ep.public_key(old_key)])
    new = store.append(("acct:1", "eu"), "deposit", 2)
    assert old.key_id != new.key_id
    assert reason(store, old) is None and reason(store, new) is None
    store.close()
    store = open_store(signing_key=new_key)
    assert reason(store, old) == "unknown key" and reason(store, new) is None
    store.close()
    store = open_store(signing_key=other_key, verify_keys=(ep.public_key(new_key),))
    assert reason(store, old) == "unknown key" and reason(store, new) is None
    store.close()
    reader = open_store(read_only=True, verify_keys=[ep.public_key(old_key), ep.public_key(new_key)])
    assert reason(reader, old) is None and reason(reader, new) is None


def test_verify_receipt_refuses_what_is_not_a_receipt(store: ep.Store) -> None:
    receipt = store.append(("a", "s"), "k", 1)
    for bad in (None, receipt.to_bytes(), receipt.to_dict(), store.get(receipt.event_id)):
        with pytest.raises(TypeError):
            store.verify_receipt(bad)  # type: ignore[arg-type]
    store.close()
    with pytest.raises(ep.StoreClosed):
        store.verify_receipt(receipt)


def test_signature_checks_need_the_right_key(open_store: OpenStore, key: bytes) -> None:
    public = ep.public_key(key)
    receipt = open_store(signing_key=key).append(("a", "s"), "k", 1)
    assert ep.verify_receipt_signature(receipt, public)
    assert not ep.verify_receipt_signature(receipt, ep.public_key(ep.generate_signing_key()))
    assert not ep.verify_receipt_signature(flip(receipt, SIGNATURE), public)
    assert not ep.verify_receipt_signature(flip(receipt, GLOBAL_SEQUENCE), public)
    assert not ep.verify_receipt_signature(flip(receipt, KEY_ID), public)
    assert not ep.verify_receipt_signature(unsigned(receipt), public)
    assert ep.verify_receipt_signature(durable_flipped(receipt), public)
    with pytest.raises(ep.InvalidArgument) as refused:
        ep.verify_receipt_signature(receipt, public[:31])
    assert refused.value.argument == "public_key"
    with pytest.raises(ep.InvalidArgument, match="not an Ed25519 public key"):
        ep.verify_receipt_signature(receipt, bytes(32))
    with pytest.raises(TypeError):
        ep.verify_receipt_signature(receipt.to_bytes(), public)  # type: ignore[arg-type]


OFFLINE_CHECK = """
    import sys
    import eventpak as ep

    public_key = bytes.fromhex(sys.argv[1])
    for line in sys.stdin:
        receipt = ep.AppendReceipt.from_bytes(bytes.fromhex(line.strip()))
        print(receipt.global_sequence, ep.verify_receipt_signature(receipt, public_key), flush=True)
"""


def test_a_receipt_verifies_offline_in_another_process(open_store: OpenStore, key: bytes) -> None:
    receipts = open_store(signing_key=key).append_batch([(("a", "s"), "k", i) for i in range(3)])
    sent = [r.to_bytes().hex() for r in receipts] + [flip(receipts[1], HASH).to_bytes().hex()]
    child = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(OFFLINE_CHECK), ep.public_key(key).hex()],
        input="\n".join(sent) + "\n",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert child.returncode == 0, child.stderr
    assert child.stdout.split("\n")[:-1] == ["0 True", "1 True", "2 True", "1 False"]
