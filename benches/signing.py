"""What signed receipts cost: durable (``sync="always"``) single appends and batches of 1,000,
with and without ``signing_key``, side by side in one run.

Durable appends wait for fsync, whose latency drifts a lot on a shared machine. So each round
opens one store of each mode (fresh directories, same file system) and alternates between
them in short chunks (50 single appends, or one batch), starting with the other mode at each
chunk: both modes see the same disk at the same moments. A round's ratio is its signed rate
over its unsigned rate; the table shows the median of the rounds and their range.

A signing store signs a receipt when its signature is first needed, so the append columns
show the cost of carrying the key; the "+ signatures" columns then touch every receipt's
``.signature`` and count that time too.

    .venv/bin/python -m benches.signing                  # 5 rounds, about a minute
    .venv/bin/python -m benches.signing --rounds 2 --singles 500 --batches 6
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import eventpak as ep

from benches._workload import KIND, POOL_MASK, SCOPE, make_entities, make_payloads

BATCH = 1000
SINGLES_PER_CHUNK = 50
COORDS = [ep.Coordinate(e, SCOPE) for e in make_entities()]
PAYLOADS = make_payloads()
ITEMS = [(COORDS[j & POOL_MASK], KIND, PAYLOADS[j & POOL_MASK]) for j in range(BATCH)]

# One chunk of work on a store: appends, returns the receipts.
Chunk = Callable[[ep.Store], list[ep.AppendReceipt]]


def single_chunk(store: ep.Store) -> list[ep.AppendReceipt]:
    append = store.append
    return [append(COORDS[i & POOL_MASK], KIND, PAYLOADS[i & POOL_MASK]) for i in range(SINGLES_PER_CHUNK)]


def batch_chunk(store: ep.Store) -> list[ep.AppendReceipt]:
    return store.append_batch(ITEMS)


def touch(receipts: list[ep.AppendReceipt]) -> float:
    """Seconds to read every receipt's signature (signing the ones not signed yet)."""
    start = time.perf_counter()
    for receipt in receipts:
        receipt.signature  # noqa: B018 - the access is what is measured
    return time.perf_counter() - start


def run_round(root: Path, key: bytes, chunk: Chunk, chunks: int) -> dict[str, float]:
    """Events/s of each mode in one round, chunks alternating between the two stores."""
    modes = {"plain": None, "signed": key}
    stores = {m: ep.Store.open(root / m, sync="always", signing_key=k) for m, k in modes.items()}
    seconds = dict.fromkeys(modes, 0.0)
    receipts: dict[str, list[ep.AppendReceipt]] = {m: [] for m in modes}
    try:
        for store in stores.values():
            chunk(store)  # warm-up: first segment, first fsync
        for i in range(chunks):
            for mode in list(modes) if i % 2 == 0 else list(modes)[::-1]:
                start = time.perf_counter()
                got = chunk(stores[mode])
                seconds[mode] += time.perf_counter() - start
                receipts[mode] += got
    finally:
        for store in stores.values():
            store.close()
    events = len(receipts["plain"])
    return {
        "plain": events / seconds["plain"],
        "signed": events / seconds["signed"],
        "touched": events / (seconds["signed"] + touch(receipts["signed"])),
    }


def show(values: list[float]) -> str:
    return f"{statistics.median(values):,.0f} ({min(values):,.0f}-{max(values):,.0f})"


def show_ratio(values: list[float]) -> str:
    return f"{statistics.median(values):.3f} ({min(values):.2f}-{max(values):.2f})"


def main() -> None:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=raw)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--singles", type=int, default=2000, help="single appends per mode and round")
    parser.add_argument("--batches", type=int, default=20, help="batches of 1,000 per mode and round")
    parser.add_argument("--dir", default=None, help="where the temporary stores go")
    args = parser.parse_args()
    key = ep.generate_signing_key()
    cases = [
        ("durable single appends", single_chunk, max(args.singles // SINGLES_PER_CHUNK, 1)),
        ("durable batches of 1,000", batch_chunk, args.batches),
    ]
    print(f"{args.rounds} rounds, sync='always'; events/s: median of the rounds (min-max)\n")
    print("| case | unsigned | signed | signed / unsigned | signed + signatures | ratio |")
    print("|---|---|---|---|---|---|")
    for name, chunk, chunks in cases:
        rounds = []
        for _ in range(args.rounds):
            with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
                rounds.append(run_round(Path(tmp), key, chunk, chunks))
        rate = {m: [r[m] for r in rounds] for m in ("plain", "signed", "touched")}
        ratio = {m: [r[m] / r["plain"] for r in rounds] for m in ("signed", "touched")}
        print(
            f"| {name} | {show(rate['plain'])} | {show(rate['signed'])} | {show_ratio(ratio['signed'])} "
            f"| {show(rate['touched'])} | {show_ratio(ratio['touched'])} |"
        )


if __name__ == "__main__":
    main()
