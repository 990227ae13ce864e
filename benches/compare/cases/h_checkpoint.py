"""(h) (g) with a durable checkpoint after every batch (``checkpoint_id``), against the worker
without one re-measured in the same rounds. The checkpoint is deleted before each round so every
round delivers all N, and its final position is checked."""

from __future__ import annotations

from pathlib import Path

import eventpak as ep

from benches.compare.cases.load import read_stores
from benches.compare.harness import WORKER_BATCH, Bench, Peer, Row, Sample
from benches.compare.peers import eventpak


def run(b: Bench) -> None:
    n = b.args.events
    store = eventpak.reopen(read_stores(b)["eventpak"])
    size, checkpoint_id = WORKER_BATCH, "bench-h"
    checkpoint_file = Path(store.path) / "cursors" / f"{checkpoint_id}.ckpt"

    def durable(d: Path) -> Sample:
        checkpoint_file.unlink(missing_ok=True)  # every round delivers all n events from the start
        sample = eventpak.deliver_with_worker(
            store, n, ep.CursorWorkerConfig(batch_size=size, checkpoint_id=checkpoint_id)
        )
        saved = ep.Cursor.load_checkpoint(store.path, checkpoint_id)
        sample.extra["checkpoint_position"] = saved.position if saved is not None else None
        return sample

    def plain(d: Path) -> Sample:
        return eventpak.deliver_with_worker(store, n, ep.CursorWorkerConfig(batch_size=size))

    peers = [
        Peer(
            "durable",
            "eventpak",
            f'cursor_worker(batch_size={size}, checkpoint_id="{checkpoint_id}"): '
            "checkpoint file written (fsync + rename + dir fsync) after every batch, no-op handler",
            durable,
        ),
        Peer("plain", "eventpak", f"cursor_worker(batch_size={size}), no checkpoint (= case g)", plain),
    ]
    try:
        title = f"(g) with a durable checkpoint after every batch of {size}"
        b.run_case("h", title, peers, warmup=True)
    finally:
        store.close()
    last = n - 1  # global sequences start at 0
    for s in b.samples["h"]["durable"]:
        if s.extra.get("checkpoint_position") != last:
            b.notes.append(
                f"(h) the checkpoint after a round holds position {s.extra.get('checkpoint_position')!r}, "
                f"expected {last}"
            )
            break
    b.rows += [
        Row("h", "durable", aim=">= 500,000 ev/s", check=lambda v, r: v >= 500_000),
        Row("h", "plain", ratio=("durable", "plain", "with checkpoint / without")),
    ]
