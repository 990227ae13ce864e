"""Arguments refused with the error the contract names and a message in Python's terms,
leaving the store as it was: a str key that is not valid UTF-8, bad tracking names,
arguments of the wrong type (never a message naming a Rust type), a projection cache that
is not a cache."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import eventpak as ep
import pytest

LONE = "\ud800"  # a lone surrogate: a str with no UTF-8 form


def _count(store: ep.Store) -> int:
    return len(store.query(ep.Region.all()))


def test_a_key_that_is_not_utf8_is_an_invalid_idempotency_key(store: ep.Store) -> None:
    calls: list[Callable[[], object]] = [
        lambda: store.append(("a", "s"), "k", 1, idempotency_key=LONE),
        lambda: store.append_batch([ep.AppendRequest(("a", "s"), "k", 1, idempotency_key=LONE)]),
    ]
    for call in calls:
        with pytest.raises(ep.InvalidIdempotencyKey, match="not valid UTF-8"):
            call()
    with store.fence() as fence, pytest.raises(ep.InvalidIdempotencyKey):
        fence.append(("a", "s"), "k", 1, idempotency_key=LONE)
    assert _count(store) == 0


@pytest.mark.parametrize("name", [LONE, "", "a\x00", "x" * 300])
def test_a_bad_tracking_name_is_an_invalid_argument_everywhere(store: ep.Store, name: str) -> None:
    with pytest.raises(ep.InvalidArgument, match="tracking name"):
        ep.Tracking(name, 1)
    with pytest.raises(ep.InvalidArgument, match="tracking name"):
        store.tracking_position(name)
    with pytest.raises(TypeError, match="tracking name must be a str, not int"):
        store.tracking_position(7)  # type: ignore[arg-type]
    assert store.tracking_position("fine") is None


def _wrong_types(store: ep.Store, cache_dir: Path) -> dict[str, Callable[[], Any]]:
    receipt = store.append(("a", "s"), "k", 1)
    cursor = store.cursor(ep.Region.all())
    cache = ep.NativeCache(str(cache_dir))
    return {
        "data": lambda: ep.AppendReceipt.from_bytes("abc"),  # type: ignore[arg-type]
        "signing_key": lambda: ep.public_key("0" * 64),  # type: ignore[arg-type]
        "public_key": lambda: ep.verify_receipt_signature(receipt, "k"),  # type: ignore[arg-type]
        "key": lambda: cache.get("key"),  # type: ignore[arg-type]
        "started": lambda: cursor.seek(1, "yes"),  # type: ignore[arg-type]
    }


def test_wrong_types_name_the_argument_and_what_it_takes(store: ep.Store, tmp_path: Path) -> None:
    for argument, call in _wrong_types(store, tmp_path / "cache").items():
        with pytest.raises(TypeError) as caught:
            call()
        message = str(caught.value)
        assert f"argument '{argument}'" in message and "not str" in message, message
        assert not re.search(r"'Py[A-Z]\w*'", message), message
    assert _count(store) == 1
    # A bytearray is bytes to these arguments.
    receipt = store.append(("a", "s"), "k", 2)
    assert ep.AppendReceipt.from_bytes(bytearray(receipt.to_bytes())) == receipt


def test_a_projection_cache_that_is_not_a_cache_is_refused_before_the_disk(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with pytest.raises(ep.InvalidConfig, match=r"projection_cache must be a cache .* not str"):
        ep.Store.open(data_dir, projection_cache=str(tmp_path / "cache"))  # type: ignore[arg-type]
    assert not data_dir.exists()
    with ep.Store.open(data_dir, projection_cache=ep.NativeCache(str(tmp_path / "cache"))) as store:
        assert not store.closed
