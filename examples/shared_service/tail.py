"""Prints orders and mails as the service writes them, from a separate read-only process:
``python tail.py [DATA_DIR]``. A read-only shared open writes nothing and runs
no worker; its cursor wakes when any process appends. Ctrl-C to stop."""

from __future__ import annotations

import sys

import eventpak as ep
from orders import DATA_DIR


def main() -> None:
    data_dir = sys.argv[1] if len(sys.argv) > 1 else DATA_DIR
    with ep.Store.open(data_dir, shared=True, read_only=True) as store:
        cursor = store.cursor(ep.Region.entity("order"))
        try:
            while True:
                for event in cursor.pull_batch(100, 1.0):  # waits up to 1 s for a commit
                    print(event.global_sequence, event.entity, event.kind, event.payload, flush=True)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
