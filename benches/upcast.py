"""Read rate with and without an upcaster, side by side in one run.

    .venv/bin/python -m benches.upcast                 # 200,000 events, 7 interleaved rounds
    .venv/bin/python -m benches.upcast --events 20000 --rounds 3

One store holds N events of one kind stored at payload version 0 (the 150-byte payload of the
shared workload). Each round opens it twice, in an order that alternates round by round: once
without upcasters, once with one upcaster of that kind (version 0 to 1, adding a field, as a
schema change usually does), and times ``query(Region.all())`` plus reading every event's
``payload``. Opening and closing are outside the timed part. The ratio is the median of the
per-round ratios (upcast rate / plain rate), so a drifting machine affects both sides alike.
"""

from __future__ import annotations

import argparse
import gc
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import eventpak as ep

from benches._workload import KIND, POOL_MASK, make_coords, make_payloads

TARGET_RATIO = 0.8


def add_fee(payload: dict[str, Any]) -> dict[str, Any]:
    """Version 0 to 1: payloads gained a ``fee`` field, 0 for events stored before it."""
    payload["fee"] = 0
    return payload


def fill(path: Path, n: int) -> None:
    coords, payloads = make_coords(), make_payloads()
    with ep.Store.open(path, sync="never") as store:
        for start in range(0, n, 1000):
            batch = [
                (coords[i & POOL_MASK], KIND, payloads[i & POOL_MASK])
                for i in range(start, min(n, start + 1000))
            ]
            store.append_batch(batch)


def read_rate(path: Path, upcasters: ep.Upcasters | None, n: int) -> float:
    """Events per second of one query over the whole store, touching every payload."""
    with ep.Store.open(path, upcasters=upcasters) as store:
        gc.collect()
        start = time.perf_counter()
        events = store.query(ep.Region.all())
        for event in events:
            event.payload  # noqa: B018 -- the read being measured
        elapsed = time.perf_counter() - start
        assert len(events) == n
        if upcasters is not None:
            assert events[0].payload_version == 1 and events[0].payload["fee"] == 0
        del events
    return n / elapsed


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benches.upcast", description=__doc__.split("\n\n")[0])
    p.add_argument("--events", type=int, default=200_000, help="events in the store (default 200,000)")
    p.add_argument("--rounds", type=int, default=7, help="interleaved rounds (default 7)")
    p.add_argument("--dir", type=Path, default=None, help="where the temporary store goes")
    args = p.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="eventpak-upcast-", dir=args.dir))
    try:
        path = root / "store"
        fill(path, args.events)
        upcasters = ep.Upcasters().add(KIND, 0, add_fee)
        read_rate(path, None, args.events)  # warm the page cache and the allocator, unmeasured
        plain: list[float] = []
        upcast: list[float] = []
        for round_no in range(args.rounds):
            order = [(None, plain), (upcasters, upcast)]
            for registry, rates in order if round_no % 2 == 0 else reversed(order):
                rates.append(read_rate(path, registry, args.events))
            print(
                f"round {round_no + 1}: plain {plain[-1]:,.0f}/s, upcast {upcast[-1]:,.0f}/s", file=sys.stderr
            )
    finally:
        shutil.rmtree(root)
    ratio = statistics.median(u / q for u, q in zip(upcast, plain, strict=True))
    print(f"events: {args.events:,}, rounds: {args.rounds}")
    print(f"without upcasters: {statistics.median(plain):,.0f} events/s (median)")
    print(f"with one upcaster: {statistics.median(upcast):,.0f} events/s (median)")
    print(f"ratio: {ratio:.2f} (target >= {TARGET_RATIO})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
