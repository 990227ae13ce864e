"""NATS JetStream publish throughput: ``eventpak.nats.Publisher`` side by side with plain
nats-py publish loops sending the same messages to the same local server, in one run.

    .venv/bin/python -m benches.nats_publish            # 200,000 events, 3 rounds, ~4 min on 2 cores
    .venv/bin/python -m benches.nats_publish --quick    # smoke run, 20,000 events, 2 rounds, < 30 s

One ``nats-server -js`` on a loopback port (file storage, started and stopped by the bench) and
one eventpak store holding --events events of the shared workload (150-byte msgpack payloads),
appended untimed with ``sync="never"`` before the first round. Every system publishes them in
commit order, each run into its own fresh stream (deleted afterwards), with the publisher's
headers: ``event_headers(event, store_id)`` (14 headers, ~630 B) plus ``Nats-Expected-Last-Msg-Id`` on
every message but the first. The plain loops build those headers inside the timed loop from
the same events (read before the clock starts), as a hand-written publisher would.

  eventpak       Publisher(store, Region.all(), ...) timed from its construction until
                 ``publisher.published == N`` (polled every ms)
  naive          ``await js.publish(...)`` one at a time (--naive-events, default 20,000: the
                 rate is per event, and 200,000 would take a minute per round)
  gather         windows of 512 ``js.publish`` run together by ``asyncio.gather``
  publish_async  ``js.publish_async`` with ``publish_async_max_pending=512``, then
                 ``publish_async_completed()``; every ack future checked
  inbox          ``nc.publish(reply=inbox.<n>)`` with a sliding window of 512 unacknowledged
                 messages, acks read by one subscription callback (``json.loads``, error check)
  inbox-min      reference: ``inbox`` with ``Nats-Msg-Id`` as the only header

Rounds are interleaved (the order rotates) and each ratio is the median of the per-round
ratios, with benches.compare's harness and report. Every run checks that its stream ends with
exactly N messages. CPU time per event of the bench process (all its threads) and of
nats-server is recorded for every run, to say which side limits a figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import eventpak as ep
import eventpak.nats
from eventpak.nats._wire import event_headers

from benches._nats import NatsServer, connect, delete_stream, server_version
from benches._workload import KIND, POOL_MASK, make_coords, make_payloads
from benches.compare.harness import RESULTS_DIR, Bench, Peer, Row, Sample, log, perf
from benches.compare.report import (
    build_rows,
    json_document,
    machine_info,
    machine_lines,
    package_version,
    table_lines,
    write_run,
)

WINDOW = 512  # the publisher's default window, used by every pipelined peer
AIM = 50_000.0  # events/s
SUBJECT = "{}.events"
Sends = Iterable[tuple[ep.Event, dict[str, str]]]  # each event with its headers


def fill(path: Path, n: int) -> ep.Store:
    coords, payloads = make_coords(), make_payloads()
    store = ep.Store.open(path, sync="never")
    for start in range(0, n, 1000):
        rows = range(start, min(n, start + 1000))
        store.append_batch([(coords[i & POOL_MASK], KIND, payloads[i & POOL_MASK]) for i in rows])
    return store


class Meter:
    """CPU seconds of this process (every thread) and of nats-server around one run."""

    def __init__(self, server: NatsServer) -> None:
        assert server.proc is not None
        self.stat = Path(f"/proc/{server.proc.pid}/stat")
        self.ticks = 100.0  # USER_HZ
        self.client0, self.server0 = time.process_time(), self._server()

    def _server(self) -> float:
        fields = self.stat.read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / self.ticks  # utime + stime

    def sample(self, n: int, secs: float) -> Sample:
        client, server = time.process_time() - self.client0, self._server() - self.server0
        return Sample(n, secs, {"client_cpu_us": client / n * 1e6, "server_cpu_us": server / n * 1e6})


def settle() -> None:
    """Writes back dirty pages before a run: on ext4 the publisher's first checkpoint fsyncs
    would otherwise wait for the bulk-loaded store (or an earlier run's stream) to reach the
    disk, which made the first run of a full bench 3x slower than the others."""
    os.sync()


def stream_count(url: str, stream: str) -> int:
    async def ask() -> int:
        nc = await connect(url)
        try:
            return int((await nc.jetstream().stream_info(stream)).state.messages)
        finally:
            await nc.close()

    return asyncio.run(ask())


def names(b: Bench) -> str:
    b.shared["runs"] = b.shared.get("runs", 0) + 1
    return f"B{b.shared['runs']}"


def checked(b: Bench, stream: str, n: int, sample: Sample) -> Sample:
    got = stream_count(b.shared["url"], stream)
    delete_stream(b.shared["url"], stream)
    if got != n:
        raise RuntimeError(f"stream {stream} holds {got} messages, expected {n}")
    return sample


def eventpak_run(b: Bench, n: int) -> Callable[[Path], Sample]:
    def run(_d: Path) -> Sample:
        stream, url, store = names(b), b.shared["url"], b.shared["store"]
        settle()
        meter = Meter(b.shared["server"])
        t0 = perf()
        pub = ep.nats.Publisher(store, ep.Region.all(), servers=[url], stream=stream, checkpoint_id=stream)
        try:
            while pub.published < n:
                if perf() - t0 > 600 or not pub.is_alive():
                    raise RuntimeError(f"publisher stalled at {pub.published} of {n}")
                time.sleep(0.001)
            secs = perf() - t0
            sample = meter.sample(n, secs)
        finally:
            pub.stop_and_join(30)
        return checked(b, stream, n, sample)

    return run


def chained(
    events: list[ep.Event], store_id: bytes, minimal: bool = False
) -> Iterator[tuple[ep.Event, dict[str, str]]]:
    """Each event with the headers the publisher sends with it, built lazily (inside the timed
    loop) as the publisher builds them; ``minimal``: ``Nats-Msg-Id`` only, no order check."""
    last = None
    for e in events:
        if minimal:
            yield e, {"Nats-Msg-Id": str(e.event_id)}
            continue
        h = event_headers(e, store_id)
        if last is not None:
            h["Nats-Expected-Last-Msg-Id"] = last
        last = h["Nats-Msg-Id"]
        yield e, h


async def naive(js: Any, subject: str, sends: Sends) -> None:
    for e, h in sends:
        await js.publish(subject, e.payload_bytes, headers=h)  # raises on a refusal


async def gather(js: Any, subject: str, sends: Sends) -> None:
    window: list[Any] = []
    for e, h in sends:
        window.append(js.publish(subject, e.payload_bytes, headers=h))
        if len(window) == WINDOW:
            await asyncio.gather(*window)
            window = []
    await asyncio.gather(*window)


async def publish_async(js: Any, subject: str, sends: Sends) -> None:
    futures = [await js.publish_async(subject, e.payload_bytes, headers=h) for e, h in sends]
    await js.publish_async_completed()
    for f in futures:
        f.result()  # raises the APIError of a refused message


async def inbox_window(nc: Any, subject: str, sends: Sends, n: int) -> None:
    """A sliding window of WINDOW unacknowledged messages; acks counted by one callback."""
    inbox, state = nc.new_inbox(), {"sent": 0, "acked": 0, "error": None}
    room, done = asyncio.Event(), asyncio.Event()

    async def on_ack(msg: Any) -> None:
        answer = json.loads(msg.data) if msg.data else {"error": "no ack"}
        if "error" in answer and state["error"] is None:
            state["error"] = answer["error"]
        state["acked"] += 1
        if state["sent"] - state["acked"] < WINDOW:
            room.set()
        if state["acked"] == n:
            done.set()

    await nc.subscribe(inbox + ".*", cb=on_ack)
    for i, (e, h) in enumerate(sends):
        while state["sent"] - state["acked"] >= WINDOW:
            room.clear()
            await asyncio.wait_for(room.wait(), 10)
        await nc.publish(subject, e.payload_bytes, reply=f"{inbox}.{i}", headers=h)
        state["sent"] += 1
    await asyncio.wait_for(done.wait(), 30)
    if state["error"] is not None:
        raise RuntimeError(f"JetStream refused a message: {state['error']}")


def plain_run(b: Bench, n: int, kind: str) -> Callable[[Path], Sample]:
    def run(_d: Path) -> Sample:
        from nats.js.api import StreamConfig

        stream, url = names(b), b.shared["url"]
        events = b.shared["events"][:n]
        # inbox-min builds its headers before the clock: the reference is NATS alone
        store_id = b.shared["store"].store_id
        sends = list(chained(events, store_id, True)) if kind == "inbox-min" else chained(events, store_id)

        async def main() -> Sample:
            nc = await connect(url, pending_size=8 * 1024 * 1024)  # as the publisher connects
            try:
                js = nc.jetstream(publish_async_max_pending=WINDOW)
                await js.add_stream(StreamConfig(name=stream, subjects=[SUBJECT.format(stream)]))
                settle()
                meter = Meter(b.shared["server"])
                t0 = perf()
                subject = SUBJECT.format(stream)
                if kind == "naive":
                    await naive(js, subject, sends)
                elif kind == "gather":
                    await gather(js, subject, sends)
                elif kind == "publish_async":
                    await publish_async(js, subject, sends)
                else:
                    await inbox_window(nc, subject, sends, n)
                return meter.sample(n, perf() - t0)
            finally:
                await nc.close()

        return checked(b, stream, n, asyncio.run(main()))

    return run


def run_bench(b: Bench) -> None:
    a = b.args
    n, naive_n = a.events, min(a.events, a.naive_events)
    w = f"window {WINDOW}"
    plain = "nats-py"
    peers = [
        Peer("eventpak", "eventpak.nats", f"Publisher(Region.all()), {w}", eventpak_run(b, n)),
        Peer("naive", plain, "await js.publish(...) one at a time", plain_run(b, naive_n, "naive")),
        Peer("gather", plain, f"asyncio.gather of {WINDOW} js.publish per window", plain_run(b, n, "gather")),
        Peer(
            "publish_async",
            plain,
            f"js.publish_async, max pending {WINDOW}",
            plain_run(b, n, "publish_async"),
        ),
        Peer("inbox", plain, f"nc.publish(reply=inbox.n), sliding {w}", plain_run(b, n, "inbox")),
        Peer("inbox-min", plain, "reference: inbox with Nats-Msg-Id only", plain_run(b, n, "inbox-min")),
    ]
    b.run_case("1", f"publish {n:,} stored events to a local JetStream stream, acks awaited", peers)
    b.rows.append(Row("1", "eventpak", aim=f">= {AIM:,.0f} ev/s", check=lambda v, r: v >= AIM))
    for p in peers[1:]:
        b.rows.append(Row("1", p.key, ratio=("eventpak", p.key, f"eventpak / {p.key}")))
    for p in peers:
        for metric, side in (("client_cpu_us", "bench process"), ("server_cpu_us", "nats-server")):
            b.rows.append(Row("1", p.key, unit="us", metric=metric, note=f"CPU per event, {side}"))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benches.nats_publish", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="smoke run: 20,000 events, 2 rounds")
    p.add_argument("--events", type=int, help="events published per run (default 200,000; quick 20,000)")
    p.add_argument(
        "--naive-events", type=int, default=20_000, help="events of the naive loop (default 20,000)"
    )
    p.add_argument("--rounds", type=int, help="interleaved rounds (default 3; quick 2)")
    p.add_argument("--dir", help="parent directory of the store and the server's data")
    p.add_argument("--json", help="default benches/results/nats_publish.json (quick nats_publish-quick.json)")
    a = p.parse_args(argv)
    a.events = a.events or (20_000 if a.quick else 200_000)
    a.rounds = a.rounds or (2 if a.quick else 3)
    a.json = a.json or str(RESULTS_DIR / ("nats_publish-quick.json" if a.quick else "nats_publish.json"))
    if min(a.events, a.naive_events, a.rounds) < 1:
        p.error("sizes must be positive")
    return a


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = perf()
    with tempfile.TemporaryDirectory(prefix="eventpak-nats-bench-", dir=args.dir) as tmp:
        root = Path(tmp)
        machine = machine_info(root)
        machine["nats_server"], machine["nats_py"] = server_version(), package_version("nats-py")
        b = Bench(args, root)
        log(f"filling a store with {args.events:,} events (sync='never', untimed)")
        b.shared["store"] = store = fill(root / "store", args.events)
        b.shared["events"] = store.query(ep.Region.all())  # views; payloads are never decoded
        with NatsServer(root / "nats") as server:
            b.shared["server"], b.shared["url"] = server, server.url
            run_bench(b)
        del b.shared["events"]
        store.close()
    total = perf() - started
    rows = build_rows(b)
    table = "\n".join(
        [
            *machine_lines(machine),
            f"nats-server {machine['nats_server']}, nats-py {machine['nats_py']}",
            f"Settings: events={args.events:,} (naive {min(args.events, args.naive_events):,}), "
            f"rounds={args.rounds}, payload 150 B msgpack, publisher headers",
            "",
            *table_lines(rows),
        ]
    )
    doc = json_document(b, args, argv, machine, rows, table, total, module="benches.nats_publish")
    write_run(table, total, doc, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
