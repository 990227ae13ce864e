"""The lmdb peer (py-lmdb): keys are 8-byte big-endian sequence numbers written with ``append=True``,
values the msgpack payloads. ``AVAILABLE`` is false when lmdb is not installed; its rows are then
left out.
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benches._workload import PAYLOAD_BYTES, POOL_MASK
from benches.compare.harness import BULK_CHUNK, PAYLOADS, packb, perf, unpackb

try:
    import lmdb
except ImportError:  # pragma: no cover - lmdb is in requirements-dev.txt
    lmdb = None

AVAILABLE = lmdb is not None
U64 = struct.Struct(">Q")  # lmdb keys: big-endian sequence numbers, so key order = commit order


def versions() -> tuple[Any, Any]:
    """(the LMDB library version, the py-lmdb version), or (None, None) without lmdb."""
    if lmdb is None:
        return None, None
    return lmdb.version(), getattr(lmdb, "__version__", None)


def map_size_for(events: int) -> int:
    return max(1 << 30, events * (PAYLOAD_BYTES + 128) * 2)


def open_env(d: Path, sync: bool, map_size: int = 1 << 31) -> Any:
    """A new environment in ``d/lmdb``; ``sync`` sets both ``sync`` and ``metasync``."""
    return lmdb.open(str(d / "lmdb"), map_size=map_size, sync=sync, metasync=sync, lock=True)


def open_readonly(d: Path, events: int) -> Any:
    """The environment a bulk load left in ``d/lmdb``, read-only."""
    return lmdb.open(str(d / "lmdb"), map_size=map_size_for(events), readonly=True)


# ------------------------------------------------------------------------------------------ writes


def put_step(env: Any) -> Callable[[int], None]:
    """(a): one put per write transaction per call."""
    begin, keys = env.begin, itertools.count()

    def step(n: int) -> None:
        with begin(write=True) as txn:
            txn.put(U64.pack(next(keys)), packb(PAYLOADS[n & POOL_MASK]), append=True)

    return step


def putmulti_step(env: Any, idx: list[int]) -> Callable[[int], None]:
    """(c): one ``cursor.putmulti`` of ``len(idx)`` values in one write transaction per call."""
    begin, keys = env.begin, itertools.count()

    def step(n: int) -> None:
        with begin(write=True) as txn:
            txn.cursor().putmulti([(U64.pack(next(keys)), packb(PAYLOADS[j])) for j in idx], append=True)

    return step


def putmulti_prepacked_step(env: Any, idx: list[int]) -> Callable[[int], None]:
    """(c): ``putmulti_step`` given values packed once, before the timed loop: only the keys
    and the transaction are made per call."""
    begin, keys = env.begin, itertools.count()
    values = [packb(PAYLOADS[j]) for j in idx]

    def step(n: int) -> None:
        with begin(write=True) as txn:
            txn.cursor().putmulti([(U64.pack(next(keys)), v) for v in values], append=True)

    return step


def put_loop(env: Any, n: int) -> float:
    """(d): n timed puts, one write transaction each; returns the seconds."""
    begin = env.begin
    t0 = perf()
    for i in range(n):
        with begin(write=True) as txn:
            txn.put(U64.pack(i), packb(PAYLOADS[i & POOL_MASK]), append=True)
    return perf() - t0


def bulk_load(env: Any, n: int) -> None:
    """(load): n values in ``putmulti`` chunks of BULK_CHUNK, then a forced sync."""
    for start in range(0, n, BULK_CHUNK):
        with env.begin(write=True) as txn:
            txn.cursor().putmulti(
                [
                    (U64.pack(i), packb(PAYLOADS[i & POOL_MASK]))
                    for i in range(start, min(n, start + BULK_CHUNK))
                ],
                append=True,
            )
    env.sync(True)


# ------------------------------------------------------------------------------------------- reads


def read_payloads(env: Any) -> Callable[[], list[Any]]:
    """(e): every value in key order (``buffers=True``), decoded with ``msgpack.unpackb``."""

    def read() -> list[Any]:
        with env.begin(buffers=True) as txn:
            return [unpackb(v) for v in txn.cursor().iternext(keys=False, values=True)]

    return read


def deliver(env: Any, size: int, handler: Callable[..., Any]) -> None:
    """(g): ``cursor.iternext()`` in lists of ``size`` (values not decoded), each handed to ``handler``."""
    with env.begin(buffers=True) as txn:
        items = txn.cursor().iternext(keys=True, values=True)
        while batch := list(itertools.islice(items, size)):
            handler(batch, None, None)
