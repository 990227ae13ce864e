"""Drives the order service (app.py) as its users would, and checks what it stored.

    python load.py serve --workers 3 --orders 2000 --kill-after 1000   # all of it, on a free port
    python load.py run --url http://127.0.0.1:8000 --orders 2000       # against a running server
    python load.py check --data-dir orders-data                          # after stopping it

A run: GET /ping is timed from a separate process (one new connection per request, so every
server process serves some) while nothing else happens, then during a burst of POST /orders
from ``--concurrency`` concurrent requests, each with its own ``Idempotency-Key`` and retried
with the same key when a connection breaks or the server answers 503. A client follows GET
/events/stream meanwhile (reconnecting with ``Last-Event-ID`` when its server process dies)
and must receive every acknowledged order, whichever process appended it. With
``--kill-after N``, the process running the mailer is SIGKILLed after N acknowledged orders
(uvicorn starts a new one; a standby mailer in another process takes over). The check, on
the stopped server's data dir: every acknowledged order is stored exactly once, every order
has a mail, and ``verify()`` passes.

Needs httpx (and fastapi, uvicorn for the server): ``.venv/bin/pip install -r
requirements-dev.txt`` from the repository root.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import eventpak as ep
import httpx

HERE = Path(__file__).resolve().parent
PLACED = ep.Region.entity("order").with_kind("placed")
MAILS = ep.Region.entity("order").with_kind("mail_sent")
PING_EVERY_S = 0.01
RETRY_FOR_S = 30.0  # how long one order is retried through broken connections and 503s


# ------------------------------------------------------------------------------------------ server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """``uvicorn --workers N app:app`` on a loopback port, in its own process group."""

    def __init__(self, data_dir: Path, log_path: Path, workers: int = 3, append_mode: str = "aio") -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        command = [sys.executable, "-m", "uvicorn", "app:app", "--app-dir", str(HERE)]
        command += ["--host", "127.0.0.1", "--port", str(self.port), "--workers", str(workers)]
        # An open event stream would hold a graceful shutdown for ever: cut it after 5 s.
        command += ["--timeout-graceful-shutdown", "5", "--no-access-log"]
        env = {
            **os.environ,
            "ORDERS_DATA_DIR": str(data_dir),
            "ORDERS_APPEND_MODE": append_mode,
            "PYTHONUNBUFFERED": "1",
        }
        with open(log_path, "wb") as log:
            self.process = subprocess.Popen(
                command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def ready(self) -> bool:
        """True once a worker answers GET /ping."""
        if self.process.poll() is not None:
            raise RuntimeError(f"uvicorn exited with {self.process.returncode}:\n{self.log()}")
        try:
            return ping(self.url)[1] == 200
        except OSError:
            return False

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not self.ready():
            if time.monotonic() > deadline:
                raise TimeoutError(f"uvicorn did not answer within {timeout} s:\n{self.log()}")
            time.sleep(0.05)

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM: uvicorn stops its workers gracefully (each closes its store); SIGKILL to the
        whole group if that hangs."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise
        # With one worker, uvicorn re-raises the SIGTERM once it has shut down gracefully.
        return 0 if code == -signal.SIGTERM else code

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


def ping(url: str) -> tuple[float, int, int]:
    """One GET /ping on a new connection: (seconds, status, pid of the answering process)."""
    parts = urlsplit(url)
    t0 = time.perf_counter()
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=10)
    try:
        conn.request("GET", "/ping")
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    seconds = time.perf_counter() - t0
    pid = json.loads(body)["pid"] if response.status == 200 else 0
    return seconds, response.status, pid


# ------------------------------------------------------------------------------------------- probe


class Probe:
    """GET /ping every PING_EVERY_S from a separate process (``load.py probe``), so the load
    this process makes does not delay the measurement; stopped by closing its stdin."""

    def __init__(self, url: str) -> None:
        command = [sys.executable, str(Path(__file__).resolve()), "probe", "--url", url]
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        if self.process.stdout.readline().strip() != "ready":  # it has made its first ping
            raise RuntimeError(f"the probe failed to start ({self.process.wait()})")

    def stop(self) -> list[float]:
        """The round-trip times in seconds."""
        out, _ = self.process.communicate(timeout=60)
        if self.process.returncode != 0:
            raise RuntimeError(f"the probe failed ({self.process.returncode})")
        times: list[float] = json.loads(out)["seconds"]
        return times


def probe_main(url: str) -> int:
    times: list[float] = []
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    ping(url)  # connects once untimed, then says it is ready
    print("ready", flush=True)
    while not stop.wait(PING_EVERY_S):
        # A server process killed while it connects or answers (refused, reset, or a response
        # cut short: http.client.IncompleteRead): that ping is not counted.
        with contextlib.suppress(OSError, http.client.HTTPException):
            seconds, status, _ = ping(url)
            if status == 200:
                times.append(seconds)
    print(json.dumps({"seconds": times}))
    return 0


def percentiles(times: list[float]) -> dict[str, float]:
    """p50, p90, p99 and max in milliseconds."""
    if not times:
        return {}
    ordered = sorted(times)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    return {"n": len(ordered), "p50": at(0.5), "p90": at(0.9), "p99": at(0.99), "max": ordered[-1] * 1000}


# -------------------------------------------------------------------------------------- the client


@dataclass
class Acked:
    order_id: str
    global_sequence: int
    pid: int


@dataclass
class Run:
    """What one load run saw."""

    url: str
    acked: dict[str, Acked] = field(default_factory=dict)  # Idempotency-Key -> the answer
    retries: int = 0
    errors: list[str] = field(default_factory=list)
    streamed: dict[int, str] = field(default_factory=dict)  # global_sequence -> entity, placed only
    stream_pids: list[int] = field(default_factory=list)  # the processes that served the stream
    stream_connects: int = 0
    killed: list[int] = field(default_factory=list)
    post_seconds: float = 0.0
    post_times: list[float] = field(default_factory=list)  # each order's POST, retries included
    idle_ping: dict[str, float] = field(default_factory=dict)
    burst_ping: dict[str, float] = field(default_factory=dict)


class Connection:
    """A minimal HTTP/1.1 client on asyncio streams: one keep-alive connection, one request at a
    time, JSON in and out. The burst uses it to keep the client's own CPU small next to the
    server's: an ``httpx.AsyncClient`` shared by 64 concurrent requests spends most of its time
    in its connection pool's bookkeeping, and on a 2-core machine shared with the server and
    other work it can set the pace of the burst itself (``--client httpx`` to compare)."""

    # Requests per connection before it is made again: the kernel hands a new connection to
    # any worker process, and 32 kept for the whole burst all landed in one process in about
    # one run of ten, leaving nothing appended by a process other than the stream's.
    REQUESTS_PER_CONNECTION = 20

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.requests = 0

    async def post(self, path: str, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, Any]:
        """(status, decoded JSON body); ``ConnectionError`` when the connection broke."""
        data = json.dumps(body).encode()
        head = f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\n"
        head += "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        head += f"Content-Length: {len(data)}\r\n\r\n"
        try:
            if self.writer is None:
                self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
            assert self.reader is not None
            self.writer.write(head.encode() + data)
            lines = (await self.reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
            fields = dict(line.lower().split(": ", 1) for line in lines[1:] if ": " in line)
            answer = await self.reader.readexactly(int(fields["content-length"]))
        except (OSError, asyncio.IncompleteReadError) as exc:
            await self.close()
            raise ConnectionError(f"POST {path}: {exc!r}") from exc
        self.requests += 1
        if fields.get("connection") == "close" or self.requests % self.REQUESTS_PER_CONNECTION == 0:
            await self.close()
        return int(lines[0].split()[1]), json.loads(answer)

    async def close(self) -> None:
        writer, self.reader, self.writer = self.writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


Post = Callable[[str, dict[str, Any], dict[str, str]], Awaitable[tuple[int, Any]]]


def httpx_post(client: httpx.AsyncClient) -> Post:
    async def post(path: str, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, Any]:
        try:
            response = await client.post(path, json=body, headers=headers)
        except httpx.TransportError as exc:
            raise ConnectionError(f"POST {path}: {exc!r}") from exc
        return response.status_code, response.json()

    return post


async def post_order(post: Post, run: Run, key: str, n: int) -> None:
    """POST one order under ``key``, retried with the same key until it is acknowledged."""
    body = {"item": f"item-{n % 97}", "qty": 1 + n % 5}
    t0 = time.perf_counter()
    deadline = time.monotonic() + RETRY_FOR_S
    while True:
        try:
            status, answer = await post("/orders", body, {"Idempotency-Key": key})
            if status == 201:
                run.acked[key] = Acked(answer["order_id"], answer["global_sequence"], answer["pid"])
                run.post_times.append(time.perf_counter() - t0)
                return
            if status != 503:
                run.errors.append(f"{key}: {status} {answer}")
                return
        except ConnectionError:  # the connection broke (a killed process): same key again
            pass
        if time.monotonic() > deadline:
            run.errors.append(f"{key}: not acknowledged within {RETRY_FOR_S} s")
            return
        run.retries += 1
        await asyncio.sleep(0.05)


async def follow_stream(run: Run, after: int | None, connected: asyncio.Event) -> None:
    """GET /events/stream until cancelled; records every placed order it is sent and
    reconnects with Last-Event-ID when the connection breaks."""
    last = after
    async with httpx.AsyncClient(base_url=run.url, timeout=httpx.Timeout(10, read=None)) as client:
        while True:
            headers = {} if last is None else {"Last-Event-ID": str(last)}
            try:
                async with client.stream("GET", "/events/stream", headers=headers) as response:
                    run.stream_pids.append(int(response.headers["x-served-by"]))
                    run.stream_connects += 1
                    connected.set()
                    seq, kind = None, None
                    async for line in response.aiter_lines():
                        if line.startswith("id: "):
                            seq = int(line[4:])
                        elif line.startswith("event: "):
                            kind = line[7:]
                        elif line.startswith("data: ") and seq is not None:
                            if kind == "placed":
                                run.streamed[seq] = json.loads(line[6:])["entity"]
                            last = seq
            except (httpx.TransportError, httpx.HTTPStatusError):
                pass
            await asyncio.sleep(0.05)


async def mailer_pid(url: str, timeout: float = 20) -> int:
    """The pid of the process running the mailer (asks /stats until that process answers)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.TransportError):
            async with httpx.AsyncClient(base_url=url) as client:  # a new connection each time
                answer = (await client.get("/stats")).json()
                if answer["mailer_active"]:
                    return int(answer["pid"])
        await asyncio.sleep(0.01)
    raise TimeoutError("no process said it runs the mailer")


async def load(
    url: str,
    orders: int,
    concurrency: int,
    kill_after: int | None = None,
    idle_seconds: float = 1.0,
    on_ack: Callable[[int], None] | None = None,
    rate: float | None = None,
    client: str = "raw",
) -> Run:
    """One run (see the module docstring): idle pings, then the burst with pings and the stream."""
    run = Run(url)
    probe = await asyncio.to_thread(Probe, url)
    await asyncio.sleep(idle_seconds)
    run.idle_ping = percentiles(await asyncio.to_thread(probe.stop))

    async with httpx.AsyncClient(base_url=url) as client:
        head = (await client.get("/stats")).json()["head"]
    connected = asyncio.Event()
    streaming = asyncio.create_task(follow_stream(run, head, connected))
    await asyncio.wait_for(connected.wait(), 10)
    mailer = await mailer_pid(url) if kill_after is not None else None

    probe = await asyncio.to_thread(Probe, url)
    keys = asyncio.Queue[tuple[int, str]]()
    prefix = uuid.uuid4().hex[:8]
    for n in range(orders):
        keys.put_nowait((n, f"{prefix}-{n}"))

    async def poster(post: Post) -> None:
        while not keys.empty():
            n, key = keys.get_nowait()
            if rate is not None:  # order n is due at t0 + n / rate, whether earlier ones are done or not
                await asyncio.sleep(t0 + n / rate - time.perf_counter())
            await post_order(post, run, key, n)
            done = len(run.acked)
            if kill_after is not None and mailer is not None and done == kill_after and not run.killed:
                run.killed.append(mailer)
                os.kill(mailer, signal.SIGKILL)
            if on_ack is not None:
                on_ack(done)

    t0 = time.perf_counter()
    if client == "httpx":
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as shared:
            await asyncio.gather(*(poster(httpx_post(shared)) for _ in range(concurrency)))
    else:
        connections = [Connection(url) for _ in range(concurrency)]
        try:
            await asyncio.gather(*(poster(c.post) for c in connections))
        finally:
            await asyncio.gather(*(c.close() for c in connections))
    run.post_seconds = time.perf_counter() - t0
    run.burst_ping = percentiles(await asyncio.to_thread(probe.stop))

    # The stream must deliver every acknowledged order, whichever process appended it.
    wanted = {a.global_sequence for a in run.acked.values()}
    deadline = time.monotonic() + 30
    while not wanted <= run.streamed.keys() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    streaming.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await streaming
    return run


# ------------------------------------------------------------------------------------------ checks


def wait_until_mailed(data_dir: Path, orders: int, timeout: float = 30) -> int:
    """Waits (reading the live data dir as another process would) until every order has a mail."""
    deadline = time.monotonic() + timeout
    with ep.Store.open(data_dir, shared=True, read_only=True) as reader:
        while True:
            mailed = len({e.entity for e in reader.query(MAILS)})
            if mailed >= orders or time.monotonic() > deadline:
                return mailed
            time.sleep(0.05)


def check(data_dir: Path, acked: dict[str, str]) -> dict[str, Any]:
    """On a stopped server's data dir (``acked``: Idempotency-Key -> order id): every
    acknowledged order is stored once, every stored order was acknowledged, each has a mail,
    ``verify()`` passes. Returns the findings; ``failures(report)`` lists what is wrong."""
    with ep.Store.open(data_dir) as store:  # exclusive: every server process has closed it
        report = store.verify()
        placed = Counter(e.entity for e in store.query(PLACED))
        mails = store.query(MAILS)
    mailed = Counter(e.entity for e in mails)
    wanted = {f"order:{order_id}" for order_id in acked.values()}
    return {
        "verify_ok": report.ok,
        "events": report.events,
        "acked": len(acked),
        "stored": sum(placed.values()),
        "missing": sorted(wanted - placed.keys()),
        "twice": sorted(entity for entity, count in placed.items() if count > 1),
        "unacked": sorted(placed.keys() - wanted),
        "unmailed": sorted(placed.keys() - mailed.keys()),
        "mails": len(mails),
        "duplicate_mails": sum(count - 1 for count in mailed.values()),
        "mailers": list(dict.fromkeys(e.payload["mailer"] for e in mails)),
    }


def failures(report: dict[str, Any]) -> list[str]:
    out = [] if report["verify_ok"] else ["verify() failed"]
    for what in ("missing", "twice", "unacked", "unmailed"):
        if report[what]:
            out.append(f"{len(report[what])} orders {what}: {report[what][:5]}")
    return out


def stream_failures(run: Run) -> list[str]:
    out = []
    wanted = {a.global_sequence for a in run.acked.values()}
    if not wanted <= run.streamed.keys():
        out.append(f"the stream missed {len(wanted - run.streamed.keys())} acknowledged orders")
    by_others = [a for a in run.acked.values() if a.pid not in run.stream_pids]
    if not by_others:
        out.append("no order was appended by a process other than the stream's")
    return out


# --------------------------------------------------------------------------------------------- CLI


def summary(run: Run) -> str:
    def ms(p: dict[str, float], what: str = "pings") -> str:
        if not p:
            return f"no {what}"
        return f"p50 {p['p50']:.2f} ms, p90 {p['p90']:.2f} ms, p99 {p['p99']:.2f} ms ({p['n']} {what})"

    rate = len(run.acked) / run.post_seconds if run.post_seconds else 0.0
    by_pid = Counter(a.pid for a in run.acked.values())
    return "\n".join(
        [
            f"orders acknowledged: {len(run.acked)} in {run.post_seconds:.2f} s ({rate:,.0f}/s), "
            f"{run.retries} retries, {len(run.errors)} errors; by process {dict(by_pid)}",
            f"POST /orders:          {ms(percentiles(run.post_times), 'orders')}",
            f"GET /ping idle:        {ms(run.idle_ping)}",
            f"GET /ping during POST: {ms(run.burst_ping)}",
            f"stream: {len(run.streamed)} orders from {run.stream_connects} connection(s) to "
            f"{run.stream_pids}, "
            f"{sum(1 for a in run.acked.values() if a.pid not in run.stream_pids)} of them appended by "
            "other processes",
            f"killed: {run.killed or 'none'}",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python load.py", description=(__doc__ or "").split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="start uvicorn, run the load, stop it, check the data dir")
    serve.add_argument("--workers", type=int, default=3)
    serve.add_argument("--append-mode", choices=("aio", "to_thread", "blocking"), default="aio")
    serve.add_argument("--data-dir", help="default: a new temporary directory")
    runp = sub.add_parser("run", help="run the load against a running server")
    runp.add_argument("--url", default="http://127.0.0.1:8000")
    runp.add_argument("--acked", default="acked.json", help="where the acknowledged orders are written")
    for parser in (serve, runp):
        parser.add_argument("--orders", type=int, default=2000)
        parser.add_argument("--concurrency", type=int, default=64)
        parser.add_argument("--kill-after", type=int, help="SIGKILL the mailer's process after N orders")
        parser.add_argument("--idle-seconds", type=float, default=2.0, help="pings before the burst")
        parser.add_argument(
            "--client", choices=("raw", "httpx"), default="raw", help="the POST client (see Connection)"
        )
        parser.add_argument(
            "--rate",
            type=float,
            help="orders per second, each started on schedule (up to --concurrency at once); "
            "default: as fast as they are answered",
        )
    checkp = sub.add_parser("check", help="check a stopped server's data dir")
    checkp.add_argument("--data-dir", default="orders-data")
    checkp.add_argument("--acked", default="acked.json")
    probep = sub.add_parser("probe", help=argparse.SUPPRESS)
    probep.add_argument("--url", required=True)
    a = p.parse_args(argv)

    if a.command == "probe":
        return probe_main(a.url)
    if a.command == "check":
        report = check(Path(a.data_dir), json.loads(Path(a.acked).read_text()))
        problems = failures(report)
        print(json.dumps({k: v for k, v in report.items() if not isinstance(v, list) or k == "mailers"}))
        print("\n".join(problems) if problems else "check: OK")
        return 1 if problems else 0
    if a.command == "run":
        run = asyncio.run(
            load(a.url, a.orders, a.concurrency, a.kill_after, a.idle_seconds, rate=a.rate, client=a.client)
        )
        Path(a.acked).write_text(json.dumps({k: v.order_id for k, v in run.acked.items()}))
        print(summary(run))
        problems = run.errors + stream_failures(run)
        print("\n".join(problems) if problems else f"run: OK (acknowledged orders in {a.acked})")
        return 1 if problems else 0

    with tempfile.TemporaryDirectory(prefix="aio-service-") as tmp:
        data_dir = Path(a.data_dir) if a.data_dir else Path(tmp) / "data"
        server = Server(data_dir, Path(tmp) / "uvicorn.log", a.workers, a.append_mode)
        try:
            server.wait_ready()
            run = asyncio.run(
                load(
                    server.url,
                    a.orders,
                    a.concurrency,
                    a.kill_after,
                    a.idle_seconds,
                    rate=a.rate,
                    client=a.client,
                )
            )
            mailed = wait_until_mailed(data_dir, len(run.acked))
            code = server.stop()
        finally:
            if server.process.poll() is None:
                server.kill()
        report = check(data_dir, {k: v.order_id for k, v in run.acked.items()})
        print(
            f"append mode {a.append_mode!r}, {a.workers} uvicorn workers, {a.concurrency} concurrent POSTs "
            f"({a.client} client, {f'{a.rate:g} orders/s offered' if a.rate else 'as fast as answered'})"
        )
        print(summary(run))
        print(f"mailed {mailed}; mailers {report['mailers']}; duplicate mails {report['duplicate_mails']}")
        problems = run.errors + stream_failures(run) + failures(report)
        if code != 0 or "Traceback" in server.log():
            problems.append(f"uvicorn exited with {code}:\n{server.log()}")
        print(
            "\n".join(problems) if problems else "serve: OK (every acknowledged order stored once, verify OK)"
        )
        return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
