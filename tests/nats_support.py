"""Real ``nats-server -js`` processes for the NATS tests: a single node or a three-node
JetStream cluster, on free loopback ports with temp store dirs. Readiness is waited for by
connecting (never a fixed sleep); a node can be killed and restarted on the same ports and dir.
Nothing listens beyond 127.0.0.1."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nats
import pytest

NATS_SERVER = shutil.which("nats-server")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class NatsNode:
    """One ``nats-server`` process; ``start()`` may be called again after ``kill()``."""

    name: str
    store_dir: Path
    port: int = field(default_factory=free_port)
    cluster_port: int | None = None
    routes: list[int] = field(default_factory=list)
    cluster_name: str | None = None
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        assert NATS_SERVER is not None
        cmd = [NATS_SERVER, "-js", "-a", "127.0.0.1", "-p", str(self.port), "-sd", str(self.store_dir)]
        cmd += ["-n", self.name]
        if self.cluster_port is not None:
            cmd += [
                "--cluster_name",
                self.cluster_name or "ep",
                "--cluster",
                f"nats://127.0.0.1:{self.cluster_port}",
            ]
            cmd += ["--routes", ",".join(f"nats://127.0.0.1:{p}" for p in self.routes)]
        return cmd

    def start(self) -> None:
        assert self.proc is None or self.proc.poll() is not None
        log = open(self.store_dir.parent / f"{self.name}.log", "ab")  # noqa: SIM115 (kept by the child)
        self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT)
        log.close()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


async def _quiet(exc: Exception) -> None:
    pass


def wait_connectable(urls: list[str], *, jetstream: bool = True, timeout: float = 30.0) -> None:
    """Returns once a client connects to ``urls`` and (with ``jetstream``) JetStream answers an
    account-info request; raises ``TimeoutError`` otherwise."""

    async def attempt() -> bool:
        try:
            nc = await nats.connect(
                servers=urls,
                connect_timeout=1,
                allow_reconnect=False,
                max_reconnect_attempts=1,  # 0 would retry the first connect for ever
                reconnect_time_wait=0.05,
                error_cb=_quiet,
            )
        except Exception:
            return False
        try:
            if jetstream:
                await nc.jetstream().account_info()
            return True
        except Exception:
            return False
        finally:
            await nc.close()

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if asyncio.run(attempt()):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nats-server at {urls} not ready after {timeout}s")


class NatsServer:
    """A single JetStream node."""

    def __init__(self, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.node = NatsNode("n1", root / "js")
        self.node.store_dir.mkdir()

    @property
    def urls(self) -> list[str]:
        return [self.node.url]

    def start(self) -> None:
        self.node.start()
        wait_connectable(self.urls)

    def kill(self) -> None:
        self.node.kill()

    def stop(self) -> None:
        self.node.stop()


class NatsCluster:
    """Three JetStream nodes routed to each other on loopback."""

    def __init__(self, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        cluster_ports = [free_port() for _ in range(3)]
        self.nodes = []
        for i in range(3):
            store = root / f"js{i + 1}"
            store.mkdir()
            self.nodes.append(
                NatsNode(f"n{i + 1}", store, cluster_port=cluster_ports[i], routes=cluster_ports)
            )

    @property
    def urls(self) -> list[str]:
        return [n.url for n in self.nodes]

    def start(self) -> None:
        for n in self.nodes:
            n.start()
        for n in self.nodes:
            wait_connectable([n.url], jetstream=False)
        # JetStream answers once the meta group has a leader.
        wait_connectable(self.urls, timeout=60)

    def restart(self, i: int) -> None:
        """Starts node ``i`` again (after ``nodes[i].kill()``) and waits until it answers."""
        self.nodes[i].start()
        wait_connectable([self.nodes[i].url], jetstream=False)

    def stop(self) -> None:
        for n in self.nodes:
            n.stop()


def stream_messages(urls: list[str], stream: str) -> list[Any]:
    """Every message of ``stream`` in stream order (with headers), read by an ordered consumer."""

    async def read() -> list[Any]:
        nc = await nats.connect(servers=urls, connect_timeout=2, error_cb=_quiet)
        try:
            js = nc.jetstream()
            deadline = time.monotonic() + 30
            while True:  # a cluster may still be electing the stream's leader
                try:
                    info = await js.stream_info(stream)
                    break
                except nats.errors.TimeoutError:
                    if time.monotonic() > deadline:
                        raise
            want = info.state.messages
            while True:
                try:
                    return await read_all(js, want)
                except nats.errors.TimeoutError:
                    # A cluster that lost a node may stall a new consumer's deliveries while
                    # the node catches up: read again from the start, with a new consumer.
                    if time.monotonic() > deadline + 60:
                        raise
        finally:
            await nc.close()

    async def read_all(js: Any, want: int) -> list[Any]:
        out: list[Any] = []
        if want == 0:
            return out
        sub = await js.subscribe(">", stream=stream, ordered_consumer=True)
        try:
            while len(out) < want:
                out.append(await sub.next_msg(timeout=10))
        finally:
            await sub.unsubscribe()
        return out

    return asyncio.run(read())


def jsm_call(urls: list[str], call: Callable[[Any], Any]) -> Any:
    """Runs ``call(jsm)`` (a JetStream management coroutine) on a connection of its own."""

    async def run() -> Any:
        nc = await nats.connect(servers=urls)
        try:
            return await call(nc.jsm())
        finally:
            await nc.close()

    return asyncio.run(run())


def stream_leader(urls: list[str], stream: str) -> str:
    """The server name (``n1``...) of the node leading ``stream``'s raft group."""

    async def ask() -> str:
        nc = await nats.connect(servers=urls, connect_timeout=2, error_cb=_quiet)
        try:
            info = await nc.jetstream().stream_info(stream)
            assert info.cluster is not None and info.cluster.leader is not None
            return str(info.cluster.leader)
        finally:
            await nc.close()

    return asyncio.run(ask())


def require_nats_server() -> None:
    """Fails (never skips) without the server: the NATS tests are part of `make test`."""
    if NATS_SERVER is None:
        pytest.fail("nats-server is not on PATH: install it (`apt-get install nats-server`, as .ci/run does)")


@pytest.fixture(name="nats_server")
def nats_server_fixture(tmp_path: Path) -> Iterator[NatsServer]:
    require_nats_server()
    server = NatsServer(tmp_path / "nats")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(name="nats_cluster")
def nats_cluster_fixture(tmp_path: Path) -> Iterator[NatsCluster]:
    require_nats_server()
    cluster = NatsCluster(tmp_path / "cluster")
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
