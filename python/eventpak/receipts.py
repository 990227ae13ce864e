"""Verifiable receipts: Ed25519 signing keys, the store's verdict on a receipt, and the
offline signature check that needs no store.

A store opened with ``signing_key=`` signs every receipt it returns; anyone holding its
public key (``public_key(signing_key)``) can check a receipt's signature with
:func:`verify_receipt_signature`, and the store itself says whether a receipt matches its
log with ``Store.verify_receipt``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._native import AppendReceipt, NativeStore, generate_signing_key, public_key, verify_receipt_signature
from ._native import verify_receipt as _native_verify_receipt

__all__ = ["ReceiptCheck", "generate_signing_key", "public_key", "verify_receipt_signature"]


@dataclass(frozen=True)
class ReceiptCheck:
    """What ``Store.verify_receipt`` found. ``ok`` is True when the store vouches for the
    receipt; otherwise ``reason`` is the first problem, in this order: ``"wrong store"``,
    ``"hidden"``, ``"unknown event"``, ``"sequence mismatch"``, ``"hash mismatch"``,
    ``"unknown key"``, ``"bad signature"``. A check is truthy exactly when it is ok, so
    ``if store.verify_receipt(r):`` reads as it should."""

    ok: bool
    reason: str | None = None

    def __bool__(self) -> bool:
        return self.ok


_OK = ReceiptCheck(ok=True)


def check_receipt(store: NativeStore, receipt: AppendReceipt) -> ReceiptCheck:
    """The store's verdict on ``receipt`` (see ``Store.verify_receipt``)."""
    reason = _native_verify_receipt(store, receipt)
    return _OK if reason is None else ReceiptCheck(ok=False, reason=reason)
