"""Child program of tests/test_nats_replica.py; not a test module.

``python nats_kill_replica.py <data_dir> <server urls, comma-separated> <stream> <durable>``:
starts a replica of ``stream`` into ``data_dir`` and prints ``ready``, then the number of
events it applied whenever that changes, until the parent SIGKILLs it."""

from __future__ import annotations

import sys

import eventpak as ep
import eventpak.nats


def main() -> None:
    data_dir, urls, stream, durable = sys.argv[1], sys.argv[2].split(","), sys.argv[3], sys.argv[4]
    replica = ep.nats.Replica(data_dir, servers=urls, stream=stream, durable=durable)
    print("ready", flush=True)
    head = -1
    while True:
        # Blocks until the next event is applied; a bounded wait, so a stopped replica shows.
        if replica.wait_for(head + 1, timeout=1.0):
            head = replica.store.head() or 0
            print(replica.applied, flush=True)
        elif not replica.is_alive():
            replica.stop_and_join()  # raises what stopped it


if __name__ == "__main__":
    main()
