"""(f) reopen time of the N-event (load) store: ``Store.open(enable_index_checkpoint=True)`` after a
clean close vs ``enable_index_checkpoint=False`` (a full scan); at least 3 rounds."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from benches.compare.cases.load import read_stores
from benches.compare.harness import Bench, Peer, Row, Sample, perf
from benches.compare.peers import eventpak


def run(b: Bench) -> None:
    path, n = read_stores(b)["eventpak"], b.args.events

    def reopen(checkpoint: bool) -> Callable[[Path], Sample]:
        def run(d: Path) -> Sample:
            t0 = perf()
            store = eventpak.reopen(path, enable_index_checkpoint=checkpoint)
            secs = perf() - t0
            stats = store.stats()
            store.close()  # a clean close: the next checkpointed open has a fresh checkpoint
            if stats["events"] != n:
                raise RuntimeError(f"reopened store has {stats['events']} events, expected {n}")
            extra = {k: stats.get(k) for k in ("index_checkpoint", "scanned_events", "segments", "bytes")}
            return Sample(0, secs, extra)

        return run

    peers = [
        Peer(
            "ckpt", "eventpak", "Store.open(enable_index_checkpoint=True) after a clean close", reopen(True)
        ),
        Peer("nockpt", "eventpak", "Store.open(enable_index_checkpoint=False): full scan", reopen(False)),
    ]
    b.run_case("f", f"reopen a {n:,}-event store (warm page cache)", peers, rounds=max(3, b.args.rounds))
    for s in b.samples["f"]["ckpt"]:
        if s.extra.get("index_checkpoint") != "loaded":
            b.notes.append(
                f"(f) a checkpointed reopen reported index_checkpoint={s.extra.get('index_checkpoint')!r}"
            )
    b.rows += [
        Row("f", "ckpt", unit="seconds", aim="< 1 s (for 1M events)", check=lambda v, r: v < 1.0),
        Row("f", "nockpt", unit="seconds", ratio=("nockpt", "ckpt", "without / with checkpoint")),
    ]
