"""Causal queries, the full integrity check, index memory and reopen time.

    .venv/bin/python -m benches.integrity                 # N = 1,000,000 events
    .venv/bin/python -m benches.integrity --events 10000000 --cases reopen
    .venv/bin/python -m benches.integrity --memory-python /path/to/other/venv/bin/python

Cases (``--cases``, default all):

- ``verify``: ``store.verify()`` over N events of the shared workload (150-byte payloads):
  events/s and MB/s, median of ``--rounds``.
- ``causal``: a 1,000-event saga (each event caused by the one before, all in one correlation)
  appended in the middle of N other events; median latency of ``correlated`` of the whole saga
  and of ``effects`` of one of its events, over ``--calls`` calls each.
- ``memory``: anonymous memory (``RssAnon``, so the page cache of the segments is not counted)
  that a store of N events adds to a fresh process once reopened, per event: with no causal
  links, and with every event caused by the one before and correlated with a saga of 100.
  ``--memory-python`` also runs it under another interpreter (another build of eventpak).
- ``reopen``: ``Store.open`` of N events with default options (through the index checkpoint)
  and with ``enable_index_checkpoint=False`` (a full scan), median of ``--rounds``.

Timings are wall-clock on a warm page cache (the stores were just written).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import eventpak as ep

from ._workload import KIND, SCOPE, make_entities, make_payloads

BATCH = 4096


def fill(
    path: Path, events: int, *, chained: bool = False, saga_at: int | None = None
) -> list[ep.AppendReceipt]:
    """Appends ``events`` events of the shared workload; with ``chained`` each one is caused
    by the one before (a saga of 100 per correlation). With ``saga_at``, a 1,000-event saga
    is appended after that many events; its receipts are returned."""
    payloads, entities = make_payloads(), make_entities()
    saga: list[ep.AppendReceipt] = []
    with ep.Store.open(path, sync="never") as store:
        done = 0
        previous: ep.AppendReceipt | None = None
        while done < events:
            if saga_at is not None and not saga and done >= saga_at:
                root = store.append(("saga:1", SCOPE), "started", {"n": 0})
                saga.append(root)
                for i in range(1, 1000):
                    saga.append(store.append(("saga:1", SCOPE), "step", {"n": i}, caused_by=saga[-1]))
            n = min(BATCH, events - done)
            if chained:
                items = []
                for i in range(done, done + n):
                    cause = None if i % 100 == 0 else (ep.PriorItem(len(items) - 1) if items else previous)
                    request = ep.AppendRequest(
                        (entities[i & 1023], SCOPE), KIND, payloads[i & 1023], caused_by=cause
                    )
                    items.append(request)
                previous = store.append_batch(items)[-1]
            else:
                store.append_batch(
                    [((entities[i & 1023], SCOPE), KIND, payloads[i & 1023]) for i in range(done, done + n)]
                )
            done += n
    return saga


def timed(work: Callable[[], object]) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def case_verify(root: Path, events: int, rounds: int) -> dict[str, float]:
    path = root / "verify"
    fill(path, events)
    with ep.Store.open(path, read_only=True) as store:
        seconds = []
        for _ in range(rounds):
            seconds.append(timed(lambda: store.verify()))
        report = store.verify()
    assert report.ok, report.problems[:3]
    best = statistics.median(seconds)
    return {
        "events": report.events,
        "bytes": report.bytes,
        "seconds": best,
        "events_per_s": report.events / best,
        "mb_per_s": report.bytes / best / 1e6,
    }


def case_causal(root: Path, events: int, calls: int) -> dict[str, float]:
    path = root / "causal"
    saga = fill(path, events, saga_at=events // 2)
    with ep.Store.open(path, read_only=True) as store:
        correlation = saga[0].event_id
        assert len(store.correlated(correlation)) == 1000
        middle = saga[500].event_id
        assert len(store.effects(middle)) == 1
        correlated = [timed(lambda: store.correlated(correlation)) for _ in range(calls)]
        effects = [timed(lambda: store.effects(middle)) for _ in range(calls)]
    return {
        "events": events + 1000,
        "correlated_1000_ms": statistics.median(correlated) * 1e3,
        "effects_us": statistics.median(effects) * 1e6,
    }


def rss_anon_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1])
    raise RuntimeError("no RssAnon in /proc/self/status")


def measure_memory(path: str) -> None:
    """Child mode: opens the store at ``path`` and prints the anonymous memory it added."""
    import gc

    gc.collect()
    before = rss_anon_kib()
    store = ep.Store.open(path, read_only=True)
    after = rss_anon_kib()
    events = store.stats()["events"]
    print(json.dumps({"bytes_per_event": (after - before) * 1024 / events, "events": events}))
    store.close()


def _child(python: str, code: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    return subprocess.run([python, "-c", code], capture_output=True, text=True, check=True, env=env).stdout


def case_memory(root: Path, events: int, pythons: list[str]) -> dict[str, float]:
    """Each build writes its own store (an older build may not read this one's format) and
    measures it in a fresh process, reading through the index checkpoint."""
    out: dict[str, float] = {}
    for n, python in enumerate(pythons):
        label = "this build" if python == sys.executable else python
        variants = [("no links", False)] + ([("causal links", True)] if python == sys.executable else [])
        for name, chained in variants:
            path = root / f"memory-{n}-{chained}"
            fill_code = f"b.fill(pathlib.Path({str(path)!r}), {events}, chained={chained})"
            _child(python, f"import benches.integrity as b, pathlib; {fill_code}")
            result = _child(python, f"import benches.integrity as b; b.measure_memory({str(path)!r})")
            out[f"{label}: {name}"] = json.loads(result)["bytes_per_event"]
            shutil.rmtree(path)
    return out


def case_reopen(root: Path, events: int, rounds: int) -> dict[str, float]:
    path = root / "reopen"
    fill(path, events)
    out = {}
    for label, options in (
        ("default (index checkpoint)", {}),
        ("full scan", {"enable_index_checkpoint": False}),
    ):
        seconds = []
        for _ in range(rounds):
            start = time.perf_counter()
            store = ep.Store.open(path, read_only=True, **options)
            seconds.append(time.perf_counter() - start)
            store.close()
        out[label] = statistics.median(seconds)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benches.integrity", description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--cases", default="verify,causal,memory,reopen")
    parser.add_argument("--memory-python", action="append", default=[], metavar="PYTHON")
    parser.add_argument("--dir", default=None, help="where the temporary stores go")
    args = parser.parse_args()
    cases = set(args.cases.split(","))
    results: dict[str, object] = {"events": args.events, "eventpak": ep.__version__}
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        root = Path(tmp)
        if "verify" in cases:
            results["verify"] = case_verify(root, args.events, args.rounds)
        if "causal" in cases:
            results["causal"] = case_causal(root, args.events, args.calls)
        if "memory" in cases:
            results["memory"] = case_memory(root, args.events, [sys.executable, *args.memory_python])
        if "reopen" in cases:
            results["reopen_seconds"] = case_reopen(root, args.events, args.rounds)
    print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
