"""Child program of tests/test_nats_publisher.py; not a test module.

``python nats_kill_publisher.py <data_dir> <server urls, comma-separated> <stream>``: opens the
store, starts a publisher over ``Region.all()`` and appends events for ever (small batches,
payloads of varied size) until the parent SIGKILLs it."""

from __future__ import annotations

import random
import sys
import time

import eventpak as ep
import eventpak.nats


def main() -> None:
    data_dir, urls, stream = sys.argv[1], sys.argv[2].split(","), sys.argv[3]
    store = ep.Store.open(data_dir)
    ep.nats.Publisher(store, ep.Region.all(), servers=urls, stream=stream, window=64)
    print("ready", flush=True)
    rng = random.Random()
    n = 0
    while True:
        for _ in range(rng.randint(1, 20)):
            store.append(ep.Coordinate(f"e{n % 7}", "s"), "k", {"n": n, "pad": "x" * rng.randint(0, 300)})
            n += 1
        time.sleep(rng.uniform(0, 0.01))


if __name__ == "__main__":
    main()
