"""The origin machine of the two-machine example: an order service that appends to its own
store and publishes every order event to JetStream with ``eventpak.nats.Publisher``.

    python origin.py orders-data --servers nats://127.0.0.1:4222 --orders 1000 --drain

Orders are numbered on from what the store already holds, so a killed and restarted origin goes
on where it stopped. With ``--drain`` it waits, before it exits, until JetStream acknowledged
every event (the publisher's checkpoint reached the store's head). SIGTERM or Ctrl-C stop it.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time

import eventpak as ep
import eventpak.nats

ITEMS = ("book", "lamp", "mug", "pen")
ORDERS = ep.Region.entity("order")  # every "order" and "order:*" entity: whole entities


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data_dir")
    parser.add_argument("--servers", default="nats://127.0.0.1:4222", help="comma-separated")
    parser.add_argument("--stream", default="ORDERS")
    parser.add_argument("--orders", type=int, default=0, help="stop after this many (0: never)")
    parser.add_argument("--rate", type=float, default=200.0, help="orders per second")
    parser.add_argument("--drain", action="store_true", help="exit once JetStream has every event")
    args = parser.parse_args()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    with ep.Store.open(args.data_dir, sync="always") as store:
        publisher = ep.nats.Publisher(
            store, ORDERS, servers=args.servers.split(","), stream=args.stream, checkpoint_id="nats-out"
        )
        n = len(store.query(ORDERS.with_kind("placed")))
        while not stop.is_set() and (args.orders == 0 or n < args.orders):
            order = ep.Coordinate(f"order:{n}", "shop")
            payload = {"item": ITEMS[n % len(ITEMS)], "qty": 1 + n % 3, "price_cents": 250 + 10 * (n % 7)}
            store.append(order, "placed", payload, idempotency_key=f"order-{n}-placed")
            if n % 3 == 0:
                store.append(order, "paid", {"by": "card"}, idempotency_key=f"order-{n}-paid")
            n += 1
            print(f"orders {n} head {store.head()}", flush=True)
            stop.wait(1 / args.rate)
        while args.drain and not stop.is_set() and publisher.position != store.head():
            time.sleep(0.05)  # (the publisher's position is a property: nothing to wait on)
        publisher.stop_and_join(timeout=30)
        print(f"stopped: orders {n} head {store.head()} published {publisher.position}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
