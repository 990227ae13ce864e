"""The documented layout of ``AppendReceipt.to_bytes()`` (docs/format.md, "Receipt bytes")
and helpers that edit a receipt through it, for the receipt tests."""

from __future__ import annotations

import eventpak as ep

RECEIPT_LEN = 170
FLAGS = 1
STORE_ID = slice(2, 18)
EVENT_ID = slice(18, 34)
GLOBAL_SEQUENCE = slice(34, 42)
ENTITY_SEQUENCE = slice(42, 50)
TIMESTAMP = slice(50, 58)
HASH = slice(58, 90)
KEY_ID = slice(90, 106)
SIGNATURE = slice(106, 170)
DURABLE, HAS_KEY_ID, HAS_SIGNATURE = 1, 2, 4

FIELDS = (
    "event_id",
    "global_sequence",
    "entity_sequence",
    "hash",
    "timestamp_us",
    "durable",
    "store_id",
    "key_id",
    "signature",
)


def edit(receipt: ep.AppendReceipt, where: slice | int, value: bytes) -> ep.AppendReceipt:
    """The receipt with ``value`` written at ``where`` of its bytes, parsed again."""
    data = bytearray(receipt.to_bytes())
    if isinstance(where, int):
        where = slice(where, where + len(value))
    data[where] = value
    return ep.AppendReceipt.from_bytes(bytes(data))


def flip(receipt: ep.AppendReceipt, where: slice) -> ep.AppendReceipt:
    """The receipt with the lowest bit of the field at ``where`` flipped."""
    return edit(receipt, where.start, bytes([receipt.to_bytes()[where.start] ^ 0x01]))


def with_flags(receipt: ep.AppendReceipt, flags: int) -> ep.AppendReceipt:
    """The receipt with these flags; a field they mark absent is zeroed first (the bytes
    would not parse otherwise)."""
    if not flags & HAS_KEY_ID:
        receipt = edit(receipt, KEY_ID, bytes(16))
    if not flags & HAS_SIGNATURE:
        receipt = edit(receipt, SIGNATURE, bytes(64))
    return edit(receipt, FLAGS, bytes([flags]))


def unsigned(receipt: ep.AppendReceipt) -> ep.AppendReceipt:
    """The receipt without key id and signature."""
    return with_flags(receipt, receipt.durable * DURABLE)


def durable_flipped(receipt: ep.AppendReceipt) -> ep.AppendReceipt:
    """The receipt with ``durable`` flipped and everything else kept."""
    kept = receipt.to_bytes()[FLAGS] & (HAS_KEY_ID | HAS_SIGNATURE)
    return edit(receipt, FLAGS, bytes([kept | (not receipt.durable) * DURABLE]))


def u64(value: int) -> bytes:
    return value.to_bytes(8, "little")


def fields(receipt: ep.AppendReceipt) -> list[object]:
    return [getattr(receipt, name) for name in FIELDS]


def reason(store: ep.Store, receipt: ep.AppendReceipt) -> str | None:
    """``store.verify_receipt(receipt).reason``, after checking the check is consistent."""
    check = store.verify_receipt(receipt)
    assert isinstance(check, ep.ReceiptCheck)
    assert check.ok == (check.reason is None) == bool(check)
    return check.reason
