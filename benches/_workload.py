"""The workload shared by the comparison and the pytest-benchmark cases.

Every system stores the same thing per event: an entity name, a kind and a ~150-byte msgpack
payload. Payloads and coordinates come from small pre-built pools (indexed with ``i & POOL_MASK``)
so that building Python objects does not dominate the loops being measured; every system still
serialises the payload dict on every call (eventpak in Rust, the peers with ``msgpack.packb``).
"""

from __future__ import annotations

from typing import Any

import eventpak as ep
import msgpack

KIND = "Deposited"
SCOPE = "bank"
PAYLOAD_BYTES = 150
POOL_SIZE = 1024
POOL_MASK = POOL_SIZE - 1


def make_payload(i: int, target: int = PAYLOAD_BYTES) -> dict[str, Any]:
    """A payload dict whose msgpack encoding is ``target`` bytes (for targets >= ~80)."""
    payload: dict[str, Any] = {"amount": 100 + i, "currency": "EUR", "ref": f"tx-{i:06d}", "note": ""}
    size = len(msgpack.packb(payload))
    fill = target - size
    # A str of 32..255 bytes takes a 2-byte header instead of the 1-byte fixstr header.
    if fill >= 33:
        fill -= 1
    payload["note"] = "n" * max(fill, 0)
    return payload


def make_payloads(n: int = POOL_SIZE) -> list[dict[str, Any]]:
    return [make_payload(i) for i in range(n)]


def make_entities(n: int = POOL_SIZE) -> list[str]:
    return [f"acct-{i:05d}" for i in range(n)]


def make_coords(n: int = POOL_SIZE) -> list[ep.Coordinate]:
    return [ep.Coordinate(entity, SCOPE) for entity in make_entities(n)]
