"""The payload shapes of the Python-boundary benchmarks (``benches.codec``, the hot-path cases).

- ``FLAT``: a flat small dict of four scalars (43 bytes of msgpack)
- ``ORDER``: an order with two nested line dicts (149 bytes)
- ``DOCUMENT``: a document of exactly ``DOCUMENT_BYTES`` (4 KiB) encoded: a title, a long
  ASCII body, a list of tags and a few numbers
"""

from __future__ import annotations

from typing import Any

import msgpack

DOCUMENT_BYTES = 4096

FLAT: dict[str, Any] = {"amount": 1250, "currency": "EUR", "ref": "inv-000123", "ok": True}

ORDER: dict[str, Any] = {
    "order_id": "ord-0001234",
    "customer": "cust-42",
    "total": 129.95,
    "currency": "EUR",
    "placed": 1712345678,
    "lines": [
        {"sku": "sku-1", "qty": 2, "price": 19.99},
        {"sku": "sku-22", "qty": 1, "price": 90.0},
    ],
}

WORDS = ("lorem", "ipsum", "dolor", "sit", "amet", "consectetur", "adipiscing", "elit", "sed", "tempor")


def make_document(target: int = DOCUMENT_BYTES) -> dict[str, Any]:
    """A document dict whose msgpack encoding is exactly ``target`` bytes (for targets of
    ~1 KiB to 64 KiB: the body is a str16, so its header stays 3 bytes)."""
    doc: dict[str, Any] = {
        "title": "Quarterly report: payments, refunds and chargebacks",
        "body": "",
        "tags": [f"tag-{i:02d}" for i in range(16)],
        "version": 3,
        "words": 612,
        "score": 0.875,
        "published": 1712345678,
    }
    fill = target - len(msgpack.packb(doc)) - 2  # "" is a 1-byte fixstr, the body a 3-byte str16
    text = " ".join(WORDS[i % len(WORDS)] for i in range(fill))  # more than enough words
    doc["body"] = text[:fill]
    assert len(msgpack.packb(doc)) == target
    return doc


DOCUMENT = make_document()


def order_payloads(n: int) -> list[dict[str, Any]]:
    """``n`` order payloads of ``ORDER``'s shape and size, each with its own ``order_id``."""
    return [{**ORDER, "order_id": f"ord-{i:07d}"} for i in range(n)]
