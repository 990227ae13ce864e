"""pytest-benchmark cases for eventpak's hot paths.

    .venv/bin/python -m pytest benches --benchmark-only -q

The payload codec's cases use the order payload of ``benches.codec`` (``benches._shapes.ORDER``),
which compares the codec with other msgpack libraries side by side.

Not collected by a plain ``pytest`` run (``testpaths = ["tests"]``). Each case stays well under 5 s.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import eventpak as ep
import pytest
from eventpak import _native

from benches._shapes import ORDER
from benches._workload import KIND, POOL_MASK, make_coords, make_payloads

PAYLOADS = make_payloads()
COORDS = make_coords()
ENTITY_COUNT = 100  # the 10k-event store spreads its events over 100 entities (100 events each)


def _fill(store: ep.Store, n: int, entities: int = len(COORDS)) -> list[ep.AppendReceipt]:
    receipts: list[ep.AppendReceipt] = []
    for start in range(0, n, 4096):
        receipts += store.append_batch(
            [
                (COORDS[i % entities], KIND, PAYLOADS[i & POOL_MASK])
                for i in range(start, min(n, start + 4096))
            ]
        )
    return receipts


@pytest.fixture
def store_never(tmp_path: Path) -> Iterator[ep.Store]:
    with ep.Store.open(str(tmp_path / "store"), sync="never") as store:
        yield store


@pytest.fixture
def store_batch(tmp_path: Path) -> Iterator[ep.Store]:
    with ep.Store.open(str(tmp_path / "store"), sync="batch") as store:
        yield store


@pytest.fixture
def store_1k(tmp_path: Path) -> Iterator[ep.Store]:
    with ep.Store.open(str(tmp_path / "store"), sync="never") as store:
        _fill(store, 1_000)
        yield store


@pytest.fixture
def store_10k(tmp_path: Path) -> Iterator[tuple[ep.Store, list[ep.AppendReceipt]]]:
    with ep.Store.open(str(tmp_path / "store"), sync="never") as store:
        receipts = _fill(store, 10_000, entities=ENTITY_COUNT)
        yield store, receipts


def test_append_single_sync_never(benchmark, store_never: ep.Store) -> None:
    counter = itertools.count()
    append = store_never.append

    def one() -> ep.AppendReceipt:
        i = next(counter) & POOL_MASK
        return append(COORDS[i], KIND, PAYLOADS[i])

    receipt = benchmark(one)
    assert receipt.durable is False


def test_append_single_sync_batch(benchmark, store_batch: ep.Store) -> None:
    counter = itertools.count()
    append = store_batch.append

    def one() -> ep.AppendReceipt:
        i = next(counter) & POOL_MASK
        return append(COORDS[i], KIND, PAYLOADS[i])

    benchmark(one)


def test_append_batch_100_sync_never(benchmark, store_never: ep.Store) -> None:
    items = [(COORDS[i], KIND, PAYLOADS[i]) for i in range(100)]
    receipts = benchmark(store_never.append_batch, items)
    assert len(receipts) == 100


def test_query_1000_with_payload_decode(benchmark, store_1k: ep.Store) -> None:
    region = ep.Region.all()

    def read() -> list[object]:
        return [e.payload for e in store_1k.query(region)]

    payloads = benchmark(read)
    assert len(payloads) == 1_000
    assert payloads[0] == PAYLOADS[0]


def test_get_by_id(benchmark, store_10k: tuple[ep.Store, list[ep.AppendReceipt]]) -> None:
    store, receipts = store_10k
    ids = itertools.cycle([r.event_id for r in receipts[::97]])
    get = store.get

    event = benchmark(lambda: get(next(ids)))
    assert event.kind == KIND


def test_query_entity_region_in_10k(benchmark, store_10k: tuple[ep.Store, list[ep.AppendReceipt]]) -> None:
    store, _ = store_10k
    region = ep.Region.entity(COORDS[42].entity)

    events = benchmark(store.query, region)
    assert len(events) == 10_000 // ENTITY_COUNT
    assert all(e.entity == COORDS[42].entity for e in events)


def test_encode_order_payload(benchmark) -> None:
    data = benchmark(_native.encode_payload, ORDER)
    assert _native.decode_payload(data) == ORDER


def test_decode_order_payload(benchmark) -> None:
    data = _native.encode_payload(ORDER)
    assert benchmark(_native.decode_payload, data) == ORDER
