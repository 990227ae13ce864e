"""(l) batches of ``--batch-size``, not durable: ``append_batch`` with ``sync="never"`` against
msgspec encoding the same payloads alone (no store), ``--write-events`` events per run. What a
batch costs beyond encoding its payloads is the Python boundary's conversion plus the engine."""

from __future__ import annotations

from pathlib import Path

from benches._workload import POOL_MASK
from benches.compare.harness import Bench, Peer, Row, Sample, timed_calls
from benches.compare.peers import eventpak, msgspec

AIM = 0.35


def run(b: Bench) -> None:
    a = b.args
    size = a.batch_size
    calls = -(-a.write_events // size)
    idx = [j & POOL_MASK for j in range(size)]

    def eventpak_(d: Path) -> Sample:
        store = eventpak.open_store(d, sync="never", max_batch_events=max(size, 4096))
        done, secs = timed_calls(eventpak.batch_step(store, idx), float("inf"), calls)
        store.close()
        return Sample(done * size, secs, {"batches": done})

    def msgspec_(d: Path) -> Sample:
        done, secs = timed_calls(msgspec.encode_step(idx), float("inf"), calls)
        return Sample(done * size, secs, {"batches": done})

    peers = [Peer("eventpak", "eventpak", f'append_batch({size}) of payload dicts, sync="never"', eventpak_)]
    if msgspec.AVAILABLE:
        config = f"msgspec.msgpack.Encoder().encode of the same {size} payloads alone, no store (reference)"
        peers.append(Peer("msgspec", "msgspec", config, msgspec_))
    b.run_case("l", f"batches of {size}, not durable, against encoding their payloads alone", peers)
    b.rows.append(Row("l", "eventpak"))
    if msgspec.AVAILABLE:
        b.rows.append(
            Row(
                "l",
                "msgspec",
                ratio=("eventpak", "msgspec", "eventpak / msgspec encode alone"),
                aim=f">= {AIM:g}",
                check=lambda v, r: r >= AIM,
            )
        )
