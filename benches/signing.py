"""What signed receipts cost: durable (``sync="always"``) single appends and batches of 1,000,
with and without ``signing_key``, side by side in one run.

Each round runs both modes on fresh stores, in an order that alternates round by round, so
a noisy machine affects both sides of a ratio alike; a ratio is the median of the per-round
ratios. A signing store signs a receipt when its signature is first needed, so appending
alone shows the cost of carrying the key; the "+ signatures" rows then touch every
receipt's ``.signature`` and count that time too.

    .venv/bin/python -m benches.signing                  # 5 rounds
    .venv/bin/python -m benches.signing --rounds 2 --singles 500 --batches 5
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
WARMUP = 20
ENTITIES = make_entities()
PAYLOADS = make_payloads()
COORDS = [ep.Coordinate(e, SCOPE) for e in ENTITIES]


def _touch(receipts: list[ep.AppendReceipt]) -> float:
    start = time.perf_counter()
    for receipt in receipts:
        receipt.signature  # noqa: B018 - the access is what is measured
    return time.perf_counter() - start


def singles(store: ep.Store, n: int) -> tuple[float, float]:
    """Seconds for ``n`` single appends, then for touching their signatures."""
    append = store.append
    for i in range(WARMUP):
        append(COORDS[i & POOL_MASK], KIND, PAYLOADS[i & POOL_MASK])
    receipts = []
    start = time.perf_counter()
    for i in range(n):
        receipts.append(append(COORDS[i & POOL_MASK], KIND, PAYLOADS[i & POOL_MASK]))
    return time.perf_counter() - start, _touch(receipts)


def batches(store: ep.Store, n: int) -> tuple[float, float]:
    """Seconds for ``n`` batches of 1,000, then for touching their receipts' signatures."""
    items = [(COORDS[j & POOL_MASK], KIND, PAYLOADS[j & POOL_MASK]) for j in range(BATCH)]
    store.append_batch(items)
    receipts: list[ep.AppendReceipt] = []
    start = time.perf_counter()
    for _ in range(n):
        receipts += store.append_batch(items)
    return time.perf_counter() - start, _touch(receipts)


def run_round(
    root: Path, label: str, key: bytes | None, work: Callable[[ep.Store, int], tuple[float, float]], n: int
) -> tuple[float, float]:
    with ep.Store.open(root / label, sync="always", signing_key=key) as store:
        return work(store, n)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--singles", type=int, default=2000, help="single appends per mode and round")
    parser.add_argument("--batches", type=int, default=20, help="batches of 1,000 per mode and round")
    parser.add_argument("--dir", default=None, help="where the temporary stores go")
    args = parser.parse_args()
    key = ep.generate_signing_key()
    cases = [
        ("durable single appends", singles, args.singles, 1),
        ("durable batches of 1,000", batches, args.batches, BATCH),
    ]
    print(f"{args.rounds} rounds; sync='always'; events/s, median of rounds (min-max)\n")
    print("| case | unsigned | signed | ratio | signed + signatures | ratio |")
    print("|---|---|---|---|---|---|")
    for name, work, n, per_call in cases:
        rates: dict[str, list[float]] = {"plain": [], "signed": [], "touched": []}
        ratios: dict[str, list[float]] = {"signed": [], "touched": []}
        for r in range(args.rounds):
            with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
                order = [("plain", None), ("signed", key)]
                results = {}
                for label, k in order if r % 2 == 0 else order[::-1]:
                    results[label] = run_round(Path(tmp), label, k, work, n)
            events = n * per_call
            plain = events / results["plain"][0]
            signed = events / results["signed"][0]
            touched = events / sum(results["signed"])
            rates["plain"].append(plain)
            rates["signed"].append(signed)
            rates["touched"].append(touched)
            ratios["signed"].append(signed / plain)
            ratios["touched"].append(touched / plain)

        def show(values: list[float]) -> str:
            return f"{statistics.median(values):,.0f} ({min(values):,.0f}-{max(values):,.0f})"

        def ratio(values: list[float]) -> str:
            return f"{statistics.median(values):.3f} ({min(values):.2f}-{max(values):.2f})"

        print(
            f"| {name} | {show(rates['plain'])} | {show(rates['signed'])} | {ratio(ratios['signed'])} "
            f"| {show(rates['touched'])} | {ratio(ratios['touched'])} |"
        )


if __name__ == "__main__":
    main()
