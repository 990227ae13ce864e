"""The measurement plumbing shared by every case: samples, peers, rows, the interleaved rounds,
the timing loops and the workload pools.

A case builds a list of :class:`Peer` (one ``run(dir) -> Sample`` per system), hands it to
:meth:`Bench.run_case`, which runs every peer once per round in a rotated order, and appends the
:class:`Row` objects that say which samples the table shows, against what and with which aim.
"""

from __future__ import annotations

import argparse
import gc
import math
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgpack

from benches._workload import POOL_MASK, make_coords, make_entities, make_payloads

RESULTS_DIR = Path(__file__).resolve().parent.parent / "results"
WARMUP_CALLS = 20
BULK_CHUNK = 4096
WORKER_BATCH = 1000  # batch size of the deliveries in (g) and (h)
WORKER_TIMEOUT_S = 600.0  # a worker that has not delivered everything by then is reported as an error
LATENCY_WAIT_S = 5.0  # one append that does not reach the handler within this is reported as an error

PAYLOADS = make_payloads()
COORDS = make_coords()
ENTITIES = make_entities()
packb = msgpack.packb
unpackb = msgpack.unpackb
perf = time.perf_counter

# The workload of the projection cases (j) and (k): one entity alone in its store.
PROJ_ENTITY = "acct:bench"
DEPOSIT, NOTE = "deposit", "note"  # every NOTE_EVERY-th event is a note, which the fold skips
NOTE_EVERY = 10


def projection_kind(i: int) -> str:
    """Kind of the i-th event of the (j)/(k) entity: a deposit, except every NOTE_EVERY-th (a note)."""
    return NOTE if i % NOTE_EVERY == NOTE_EVERY - 1 else DEPOSIT


def projection_sum(n: int) -> int:
    """The state every system must reach after the first n events of the (j)/(k) entity."""
    return sum(PAYLOADS[i & POOL_MASK]["amount"] for i in range(n) if projection_kind(i) == DEPOSIT)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


@dataclass
class Sample:
    events: int
    seconds: float
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


@dataclass
class Peer:
    key: str
    system: str
    config: str
    run: Callable[[Path], Sample]


@dataclass
class Row:
    case: str
    key: str
    # "rate" (events/s, higher is better), "seconds", "us" or "ns" (micro-, nanoseconds; lower is better)
    unit: str = "rate"
    ratio: tuple[str, str, str] | None = None  # (numerator key, denominator key, label)
    aim: str = ""
    check: Callable[[float, float | None], bool] | None = None  # (median value, median ratio)
    note: str = ""
    metric: str = ""  # when set, the row's value is ``Sample.extra[metric]`` instead of rate/seconds
    ratio_to: tuple[float, str] | None = None  # (constant, label): ratio = median value / constant

    def value(self, s: Sample) -> float:
        if self.metric:
            return float(s.extra[self.metric])
        return s.seconds if self.unit == "seconds" else s.rate


def timed_read(read: Callable[[], list[Any]], n: int) -> Callable[[Path], Sample]:
    """A peer run that times one ``read()`` and checks it returned all ``n`` events."""

    def run(_dir: Path) -> Sample:
        t0 = perf()
        out = read()
        secs = perf() - t0
        got = len(out)
        del out
        if got != n:
            raise RuntimeError(f"read {got} events, expected {n}")
        return Sample(got, secs)

    return run


def timed_count(read: Callable[[], int], n: int) -> Callable[[Path], Sample]:
    """A peer run that times one ``read()`` returning a count (nothing kept) and checks it is ``n``."""

    def run(_dir: Path) -> Sample:
        t0 = perf()
        got = read()
        secs = perf() - t0
        if got != n:
            raise RuntimeError(f"read {got} events, expected {n}")
        return Sample(got, secs)

    return run


def latency_rows(case: str, key: str, p50_aim_us: float, p99_aim_us: float) -> list[Row]:
    """The p50, p99 and max rows of a latency peer, p50 and p99 against their aims."""

    def shown(us: float) -> str:
        return f"{us / 1000:g} ms" if us >= 1000 else f"{us:g} us"

    return [
        Row(
            case,
            key,
            unit="us",
            metric="p50_us",
            note="p50",
            ratio_to=(p50_aim_us, "p50 / aim"),
            aim=f"<= {shown(p50_aim_us)}",
            check=lambda v, r: v <= p50_aim_us,
        ),
        Row(
            case,
            key,
            unit="us",
            metric="p99_us",
            note="p99",
            ratio_to=(p99_aim_us, "p99 / aim"),
            aim=f"<= {shown(p99_aim_us)}",
            check=lambda v, r: v <= p99_aim_us,
        ),
        Row(case, key, unit="us", metric="max_us", note="max"),
    ]


@dataclass
class Bench:
    args: argparse.Namespace
    root: Path
    samples: dict[str, dict[str, list[Sample]]] = field(default_factory=dict)
    peers: dict[str, dict[str, Peer]] = field(default_factory=dict)
    titles: dict[str, str] = field(default_factory=dict)
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    setup: dict[str, Any] = field(default_factory=dict)  # untimed set-up figures, for the JSON only
    shared: dict[str, Any] = field(default_factory=dict)  # set-ups shared by several cases (not in the JSON)

    def fresh_dir(self, label: str) -> Path:
        return Path(tempfile.mkdtemp(prefix=f"{label}-", dir=self.root))

    def run_case(
        self, case: str, title: str, peers: list[Peer], rounds: int | None = None, warmup: bool = False
    ) -> None:
        """Run every peer once per round, rotating the order each round.

        With ``warmup``, every peer first runs once unmeasured (the first pass of a read that
        materialises a million objects pays the process's first-touch page faults).
        """
        rounds = self.args.rounds if rounds is None else rounds
        self.titles[case] = title
        self.peers[case] = {p.key: p for p in peers}
        out: dict[str, list[Sample]] = {p.key: [] for p in peers}
        log(f"== ({case}) {title}")
        if warmup:
            for peer in peers:
                d = self.fresh_dir(f"{case}-{peer.key}-warmup")
                try:
                    gc.collect()
                    peer.run(d)
                finally:
                    shutil.rmtree(d, ignore_errors=True)
            log(f"   warm-up pass done ({len(peers)} systems, not measured)")
        for r in range(rounds):
            shift = r % len(peers)
            for peer in peers[shift:] + peers[:shift]:
                d = self.fresh_dir(f"{case}-{peer.key}")
                try:
                    gc.collect()
                    sample = peer.run(d)
                finally:
                    shutil.rmtree(d, ignore_errors=True)
                out[peer.key].append(sample)
                shown = f"{sample.seconds:.3f} s" if sample.events == 0 else f"{sample.rate:,.0f} ev/s"
                if "p50_us" in sample.extra:
                    shown = f"p50 {sample.extra['p50_us']:.1f} us, p99 {sample.extra['p99_us']:.1f} us"
                log(f"   round {r + 1}/{rounds} {peer.key:<22} {sample.events:>9,} ev {shown}")
        self.samples[case] = out


def median_ratio(b: Bench, row: Row) -> float | None:
    """The median of the per-round ratios of the row's numerator and denominator samples."""
    assert row.ratio is not None
    num, den = row.ratio[0], row.ratio[1]
    xs, ys = b.samples[row.case].get(num), b.samples[row.case].get(den)
    if not xs or not ys:
        return None
    val = row.value
    pairs = [(val(x), val(y)) for x, y in zip(xs, ys, strict=False) if val(y) > 0]
    return statistics.median(x / y for x, y in pairs) if pairs else None


# ------------------------------------------------------------------------------------ timing loops


def timed_calls(step: Callable[[int], object], budget_s: float, max_calls: int) -> tuple[int, float]:
    """Call ``step(n)`` until the time budget or the call cap runs out; returns (calls, seconds)."""
    for n in range(WARMUP_CALLS):
        step(-1 - n)
    t0 = perf()
    end = t0 + budget_s
    n = 0
    while n < max_calls:
        step(n)
        n += 1
        if perf() >= end:
            break
    return n, perf() - t0


def timed_threads(
    steps: list[Callable[[int], object]], budget_s: float, max_calls: int
) -> tuple[int, float, list[int]]:
    """Run one ``timed_calls``-style loop per thread, all released together by a barrier."""
    nthreads = len(steps)
    per_thread = max(1, max_calls // nthreads)
    counts = [0] * nthreads
    errors: list[BaseException] = []
    barrier = threading.Barrier(nthreads + 1)
    deadline = [0.0]

    def worker(t: int) -> None:
        step = steps[t]
        try:
            for n in range(WARMUP_CALLS // 4):
                step(-1 - n)
        except BaseException as exc:
            errors.append(exc)
        barrier.wait()
        if errors:
            return
        try:
            end = deadline[0]
            n = 0
            while n < per_thread:
                step(n)
                n += 1
                if perf() >= end:
                    break
            counts[t] = n
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(t,), daemon=True) for t in range(nthreads)]
    for th in threads:
        th.start()
    t0 = perf()
    deadline[0] = t0 + budget_s
    barrier.wait()
    for th in threads:
        th.join()
    elapsed = perf() - t0
    if errors:
        raise errors[0]
    return sum(counts), elapsed, counts


def percentile(ordered: list[int], q: float) -> int:
    """Nearest-rank percentile of an ascending list."""
    return ordered[max(0, min(len(ordered) - 1, math.ceil(len(ordered) * q / 100) - 1))]


def latency_sample(lat_ns: list[int], seconds: float) -> Sample:
    ordered = sorted(lat_ns)
    extra: dict[str, Any] = {f"p{q:g}_us": percentile(ordered, q) / 1000 for q in (50, 90, 99, 99.9)}
    extra["max_us"] = ordered[-1] / 1000
    extra["mean_us"] = statistics.fmean(ordered) / 1000
    return Sample(len(ordered), seconds, extra)
