"""Child program of the compaction kill test (tests/test_compaction_crash.py); not a test
module.

Run as ``python compact_child.py DATA_DIR SEED``. It opens the store and, until the parent
SIGKILLs it, appends events and compacts: each compaction removes a random share of the
sealed ``tick`` events (``keep`` events are never selected). It reports on stdout, one JSON
line each (see ``child_report.emit``): ``att`` before an append (entity, kind, payload as
hex), ``ack`` after it (sequence, hash as hex), ``compact`` before a compaction starts.
"""

from __future__ import annotations

import random
import sys

import eventpak as ep
from child_report import emit


def main() -> None:
    data_dir, seed = sys.argv[1], int(sys.argv[2])
    rng = random.Random(seed)
    store = ep.Store.open(data_dir, segment_max_bytes=64 * 1024, sync="always")
    emit({"t": "open"})
    n = 0
    while True:
        for _ in range(rng.randrange(1, 30)):
            kind = "tick" if rng.random() < 0.6 else "keep"
            entity = f"e{rng.randrange(8)}"
            payload = {"n": n, "seed": seed, "pad": "z" * rng.randrange(200)}
            emit(
                {
                    "t": "att",
                    "entity": entity,
                    "kind": kind,
                    "payload": ep._native.encode_payload(payload).hex(),
                }
            )
            receipt = store.append((entity, "s"), kind, payload)
            emit({"t": "ack", "seq": receipt.global_sequence, "hash": receipt.hash.hex()})
            n += 1
        share = rng.random() * 0.5
        emit({"t": "compact"})
        store.compact(
            ep.Retention(predicate=lambda e, share=share: e.kind == "tick" and rng.random() < share)
        )


if __name__ == "__main__":
    main()
