"""The replica machine of the two-machine example: applies the origin's JetStream stream into a
local read-only store with ``eventpak.nats.Replica`` and keeps a revenue report from it with a
cursor worker, as any reader of an eventpak store would (rebuilt from the start at each start).

    python replica.py replica-data --servers nats://ORIGIN-HOST:4222

The replica opens its data dir with ``shared=True``, so other processes on this machine can read
it while it grows (``eventpak tail -f replica-data``). SIGTERM or Ctrl-C stop it.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections import Counter

import eventpak as ep
import eventpak.nats


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data_dir")
    parser.add_argument("--servers", default="nats://127.0.0.1:4222", help="comma-separated")
    parser.add_argument("--stream", default="ORDERS")
    parser.add_argument("--durable", default="replica-1", help="this replica's consumer name")
    args = parser.parse_args()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    replica = ep.nats.Replica(
        args.data_dir, servers=args.servers.split(","), stream=args.stream, durable=args.durable, shared=True
    )
    revenue: Counter[str] = Counter()

    def report(batch: list[ep.Event], store: ep.Store, witness: object) -> ep.CursorWorkerAction:
        for event in batch:
            if event.kind == "placed":
                revenue[event.payload["item"]] += event.payload["qty"] * event.payload["price_cents"]
        return ep.CursorWorkerAction.CONTINUE

    config = ep.CursorWorkerConfig(batch_size=256)
    worker = replica.store.cursor_worker(ep.Region.entity("order"), report, config)
    try:
        last = None
        while not stop.wait(0.2) and replica.is_alive():
            head = replica.store.head()
            if head != last:
                print(f"head {head} applied {replica.applied} revenue {sum(revenue.values())}", flush=True)
                last = head
    finally:
        worker.stop_and_join(timeout=10)
    try:
        replica.stop_and_join(timeout=30)
    except ep.ReplicationRefused as refused:  # a message it could not follow stopped it
        print(f"stopped: {refused}", file=sys.stderr, flush=True)
        return 1
    print(f"stopped: head {last}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
