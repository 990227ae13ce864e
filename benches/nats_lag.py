"""End-to-end lag over NATS JetStream: from an append returning on the origin store to the
event being visible on an ``eventpak.nats.Replica`` in another process, at paced rates.

    .venv/bin/python -m benches.nats_lag                  # 1k and 20k events/s, 10 s each, 2 rounds
    .venv/bin/python -m benches.nats_lag --quick          # smoke run, 2 s per rate, 1 round
    .venv/bin/python -m benches.nats_lag --rates 1000 --seconds 30

One ``nats-server -js`` on loopback. Per run: a fresh origin store (``sync="batch"``, the
default) in this process with an ``ep.nats.Publisher`` over ``Region.all()`` into a fresh
stream, and an observer in a child process (``spawn``, so neither side's GIL slows the other).
Once the observer is ready, the main thread appends single events (the shared 150-byte
workload) on a fixed schedule of --rate events/s for --seconds: event k is due at t0 + k/rate
and appended at once when late (sleeps below the timer's resolution make bursts of a few
events at 20k/s), and ``time.time_ns()`` is taken when each append returns. The observer stamps
``time.time_ns()`` when each event becomes visible to it; both clocks are the machine's
CLOCK_REALTIME. Lag = visible - append returned, per event, after the first --warmup-seconds.

Observers (peers, interleaved in rotated order each round):

  replica     ``ep.nats.Replica(dir, servers, stream, durable)``; a ``cursor_worker`` on
              ``replica.store`` (batch_size 1024) stamps each batch as it is delivered
              (``--observe wait_for``: a thread calling ``replica.wait_for(next, 0.1)`` and
              stamping everything up to ``replica.store.head()`` instead)
  subscriber  reference without a replica: a nats-py ordered push consumer on the same stream
              stamping each message in its callback (publisher + JetStream delivery alone)

The table shows p50, p99 and max lag (nearest rank), the append rate achieved, and the rate at
which the publisher got JetStream's acks (a publisher slower than the appends makes the lag
grow through the run: then the figures measure its backlog, not a delay).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import sys
import tempfile
import threading
import time
from array import array
from collections.abc import Callable
from pathlib import Path
from typing import Any

import eventpak as ep
import eventpak.nats

from benches._nats import NatsServer, connect, delete_stream, server_version
from benches._workload import KIND, POOL_MASK, make_coords, make_payloads
from benches.compare.harness import RESULTS_DIR, Bench, Peer, Row, Sample, latency_sample, perf
from benches.compare.report import (
    build_rows,
    json_document,
    machine_info,
    machine_lines,
    package_version,
    table_lines,
    write_run,
)

READY_TIMEOUT_S = 60.0


# ------------------------------------------------------------------------- the observer (child)


def _replica_observer(url: str, stream: str, data_dir: str, observe: str, seen: dict[int, int]) -> Any:
    """Starts a Replica and stamps events as they become visible on it; returns a stopper."""
    replica = ep.nats.Replica(data_dir, servers=[url], stream=stream, durable="bench-replica")
    if observe == "worker":

        def handler(batch: list[ep.Event], _store: Any, _witness: Any) -> None:
            now = time.time_ns()  # everything in the batch was visible before this call
            for e in batch:
                seen[e.global_sequence] = now

        config = ep.CursorWorkerConfig(batch_size=1024)
        worker = replica.store.cursor_worker(ep.Region.all(), handler, config)

        def stop() -> None:
            worker.stop_and_join(30)
            replica.stop_and_join(30)

        return stop
    halt = threading.Event()

    def poll() -> None:  # sequences are dense (Region.all() of a fresh origin): next = head + 1
        nxt = 0
        while not halt.is_set():
            if replica.wait_for(nxt, 0.1):
                now, head = time.time_ns(), replica.store.head()
                assert head is not None and head >= nxt
                for s in range(nxt, head + 1):
                    seen[s] = now
                nxt = head + 1

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()

    def stop_polling() -> None:
        halt.set()
        thread.join(30)
        replica.stop_and_join(30)

    return stop_polling


def _subscriber_observer(url: str, stream: str, seen: dict[int, int]) -> Any:
    """A nats-py ordered consumer on its own loop thread, stamping each message on arrival."""
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()

    async def start() -> Any:
        nc = await connect(url)

        async def on_msg(msg: Any) -> None:
            seen[int(msg.headers["Eventpak-global_sequence"])] = time.time_ns()

        await nc.jetstream().subscribe(f"{stream}.events", stream=stream, ordered_consumer=True, cb=on_msg)
        return nc

    nc = asyncio.run_coroutine_threadsafe(start(), loop).result(READY_TIMEOUT_S)

    async def close() -> None:
        await nc.close()
        # The ordered consumer leaves tasks (flow control, activity check) that would be
        # reported as destroyed while pending if the loop stopped under them.
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)

    def stop() -> None:
        asyncio.run_coroutine_threadsafe(close(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)

    return stop


def observer_main(conn: Any, kind: str, url: str, stream: str, data_dir: str, observe: str) -> None:
    """The child: start the observer, say ready, then wait for every sequence up to the one the
    origin names (or its deadline) and send back the arrival stamps (-1: never seen)."""
    seen: dict[int, int] = {}
    if kind == "replica":
        stop = _replica_observer(url, stream, data_dir, observe, seen)
    else:
        stop = _subscriber_observer(url, stream, seen)
    conn.send("ready")
    total, deadline_s = conn.recv()
    deadline = time.monotonic() + deadline_s
    while len(seen) < total and time.monotonic() < deadline:
        time.sleep(0.005)
    done = time.time_ns()
    stamps = array("q", (seen.get(s, -1) for s in range(total)))
    stop()
    conn.send((done, stamps.tobytes()))


# ----------------------------------------------------------------------------- the origin (parent)


def paced_appends(store: ep.Store, rate: float, seconds: float) -> tuple[array[int], float]:
    """Single appends on a fixed schedule; returns the return stamps (index = global sequence)
    and the seconds the appends took."""
    coords, payloads = make_coords(), make_payloads()
    total = int(rate * seconds)
    returned = array("q", bytes(8 * total))
    t0 = perf()
    for k in range(total):
        delay = t0 + k / rate - perf()
        if delay > 0:
            time.sleep(delay)
        receipt = store.append(coords[k & POOL_MASK], KIND, payloads[k & POOL_MASK])
        returned[k] = time.time_ns()
        if receipt.global_sequence != k:
            raise RuntimeError(f"append {k} got global_sequence {receipt.global_sequence}")
    return returned, perf() - t0


def lag_run(b: Bench, kind: str, rate: float) -> Callable[[Path], Sample]:
    def run(d: Path) -> Sample:
        a, url = b.args, b.shared["url"]
        b.shared["runs"] = b.shared.get("runs", 0) + 1
        stream = f"LAG{b.shared['runs']}"
        os.sync()  # an earlier run's dirty pages would slow this run's first fsyncs (ext4)
        store = ep.Store.open(d / "origin")  # sync="batch": visible when append returns
        pub = ep.nats.Publisher(store, ep.Region.all(), servers=[url], stream=stream, checkpoint_id="bench")
        parent, child = mp.get_context("spawn").Pipe()
        args = (child, kind, url, stream, str(d / "replica"), a.observe)
        proc = mp.get_context("spawn").Process(target=observer_main, args=args, daemon=True)
        proc.start()
        try:
            if not parent.poll(READY_TIMEOUT_S) or parent.recv() != "ready":
                raise RuntimeError(f"the {kind} observer did not start")
            t0 = perf()
            returned, secs = paced_appends(store, rate, a.seconds)
            total = len(returned)
            parent.send((total, a.drain_timeout))
            while pub.published < total and perf() - t0 < secs + a.drain_timeout:
                time.sleep(0.001)
            published_s = perf() - t0
            if not parent.poll(a.drain_timeout + 60):
                raise RuntimeError(f"the {kind} observer did not answer")
            done_ns, raw = parent.recv()
        finally:
            pub.stop_and_join(30)
            proc.join(60)
            store.close()
            delete_stream(url, stream)
        seen = array("q")
        seen.frombytes(raw)
        first = int(rate * a.warmup_seconds)
        lag = [seen[k] - returned[k] for k in range(first, total) if seen[k] >= 0]
        sample = latency_sample(lag or [0], secs)
        sample.events = total  # the rate column is the append rate achieved
        sample.extra.update(
            missing=sum(1 for x in seen if x < 0),
            before_return=sum(1 for x in lag if x < 0),
            publish_rate=pub.published / published_s,
            drain_s=(done_ns - returned[-1]) / 1e9,
        )
        if sample.extra["missing"]:
            b.notes.append(f"{kind} at {rate:,.0f}/s: {sample.extra['missing']} events never seen")
        return sample

    return run


def run_bench(b: Bench) -> None:
    a = b.args
    for case, rate in enumerate(a.rates, start=1):
        peers = [
            Peer(
                "replica", "eventpak.nats", f"Replica, observed by {a.observe}", lag_run(b, "replica", rate)
            ),
            Peer("subscriber", "nats-py", "reference: ordered push consumer", lag_run(b, "subscriber", rate)),
        ]
        peers = [p for p in peers if p.key in a.observers]
        title = f"append-to-visible lag at {rate:,.0f} events/s for {a.seconds:g} s"
        b.run_case(str(case), title, peers)
        for p in peers:
            b.rows.append(Row(str(case), p.key, note=f"appends at {rate:,.0f}/s achieved"))
            b.rows.append(Row(str(case), p.key, metric="publish_rate", note="publisher acked"))
            for metric, note in (("p50_us", "p50 lag"), ("p99_us", "p99 lag"), ("max_us", "max lag")):
                both = p.key == "replica" and len(peers) == 2
                ratio = ("replica", "subscriber", "replica / subscriber") if both else None
                b.rows.append(Row(str(case), p.key, unit="us", metric=metric, note=note, ratio=ratio))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benches.nats_lag", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="smoke run: 2 s per rate, 1 round")
    p.add_argument("--rates", default="1000,20000", help="appends per second, comma-separated")
    p.add_argument("--seconds", type=float, help="appending time per run (default 10; quick 2)")
    p.add_argument("--warmup-seconds", type=float, default=1.0, help="first seconds left out (default 1)")
    p.add_argument("--rounds", type=int, help="interleaved rounds (default 2; quick 1)")
    p.add_argument("--observe", choices=("worker", "wait_for"), default="worker", help="see the docstring")
    p.add_argument("--observers", default="replica,subscriber", help="which observers run (default both)")
    p.add_argument("--drain-timeout", type=float, default=300.0, help="seconds allowed after the appends")
    p.add_argument("--dir", help="parent directory of the stores and the server's data")
    p.add_argument("--json", help="default benches/results/nats_lag.json (quick nats_lag-quick.json)")
    a = p.parse_args(argv)
    a.observers = [o.strip() for o in a.observers.split(",") if o.strip()]
    if not a.observers or set(a.observers) - {"replica", "subscriber"}:
        p.error("--observers takes replica and/or subscriber")
    a.rates = [float(r) for r in a.rates.split(",") if r.strip()]
    a.seconds = a.seconds or (2.0 if a.quick else 10.0)
    a.rounds = a.rounds or (1 if a.quick else 2)
    a.warmup_seconds = min(a.warmup_seconds, a.seconds / 2)
    a.json = a.json or str(RESULTS_DIR / ("nats_lag-quick.json" if a.quick else "nats_lag.json"))
    if not a.rates or min(a.rates) <= 0 or a.seconds <= 0 or a.rounds < 1:
        p.error("rates, seconds and rounds must be positive")
    return a


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if "replica" in args.observers and not hasattr(ep.nats, "Replica"):
        raise SystemExit("eventpak.nats.Replica does not exist in this build")
    started = perf()
    with tempfile.TemporaryDirectory(prefix="eventpak-nats-lag-", dir=args.dir) as tmp:
        root = Path(tmp)
        machine = machine_info(root)
        machine["nats_server"], machine["nats_py"] = server_version(), package_version("nats-py")
        b = Bench(args, root)
        with NatsServer(root / "nats") as server:
            b.shared["url"] = server.url
            run_bench(b)
    total = perf() - started
    rows = build_rows(b)
    settings = (
        f"Settings: rates={', '.join(f'{r:,.0f}/s' for r in args.rates)}, {args.seconds:g} s each, "
        f"first {args.warmup_seconds:g} s left out, rounds={args.rounds}, observe={args.observe}, "
        "payload 150 B msgpack"
    )
    table = "\n".join(
        [
            *machine_lines(machine),
            f"nats-server {machine['nats_server']}, nats-py {machine['nats_py']}",
            settings,
            "",
            *table_lines(rows),
            *(f"Note: {note}" for note in b.notes),
        ]
    )
    doc = json_document(b, args, argv, machine, rows, table, total, module="benches.nats_lag")
    write_run(table, total, doc, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
