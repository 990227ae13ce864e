"""A ``nats-server -js`` process for the NATS benches: one node on a free loopback port with a
temp store dir, ready once a client connects and JetStream answers (never a fixed sleep).

The start logic follows ``tests/nats_support.py``, copied rather than imported because that
module is pytest support (it imports pytest and defines fixtures) and the benches run without it.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

NATS_SERVER = shutil.which("nats-server")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_version() -> str:
    if NATS_SERVER is None:
        return "not installed"
    out = subprocess.run([NATS_SERVER, "--version"], capture_output=True, text=True, timeout=10)
    return out.stdout.strip().removeprefix("nats-server: ")


async def _quiet(exc: Exception) -> None:
    pass


async def connect(url: str, **kwargs: Any) -> Any:
    """A nats-py client that does not print every connection error on stderr."""
    import nats

    return await nats.connect(servers=[url], connect_timeout=2, error_cb=_quiet, **kwargs)


class NatsServer:
    """One ``nats-server -js`` listening on 127.0.0.1 only; a context manager."""

    def __init__(self, root: Path) -> None:
        if NATS_SERVER is None:
            raise SystemExit("nats-server is not installed (it must be on PATH)")
        self.store_dir = root / "js"
        self.store_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = root / "nats-server.log"
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> None:
        assert NATS_SERVER is not None
        cmd = [NATS_SERVER, "-js", "-a", "127.0.0.1", "-p", str(self.port), "-sd", str(self.store_dir)]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nats-server exited with {self.proc.returncode}; see {self.log_path}")
            if asyncio.run(self._answers()):
                return
            time.sleep(0.05)
        raise TimeoutError(f"nats-server at {self.url} not ready after {timeout}s")

    async def _answers(self) -> bool:
        try:
            nc = await connect(self.url, allow_reconnect=False, max_reconnect_attempts=1)
        except Exception:
            return False
        try:
            await nc.jetstream().account_info()
            return True
        except Exception:
            return False
        finally:
            await nc.close()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def __enter__(self) -> NatsServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def delete_stream(url: str, stream: str) -> None:
    """Deletes ``stream`` (after a run: its messages would otherwise fill the temp dir)."""

    async def go() -> None:
        nc = await connect(url)
        try:
            await nc.jetstream().delete_stream(stream)
        finally:
            await nc.close()

    asyncio.run(go())
