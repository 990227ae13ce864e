"""The shared-mode example service (examples/shared_service) under gunicorn, as a user runs it:
4 worker processes on one data dir, concurrent clients, workers SIGKILLed mid-load.

Checked: every acknowledged order is in the store exactly once and readable at once from any
worker (read-your-writes), every order gets a mail, one mailer at a time (the standby takes
over from the killed one), duplicate mails only from a killed mailer's last batch, and the
store verifies after shutdown.
"""

from __future__ import annotations

import importlib.util
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import eventpak as ep
import pytest

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "shared_service"
ORDERS = 800
THREADS = 16
MAILER_BATCH = 100  # the example's mailer batch_size: the most a killed mailer can send twice


def load_module() -> ModuleType:
    """examples/shared_service/load.py: the client and the checks the example documents."""
    spec = importlib.util.spec_from_file_location("shared_service_load", EXAMPLE / "load.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


load = load_module()


class Server:
    """gunicorn serving the example on a free loopback port."""

    def __init__(self, data_dir: Path, log_path: Path, preload: bool) -> None:
        self.log_path = log_path
        command = [sys.executable, "-m", "gunicorn", "--config", str(EXAMPLE / "gunicorn.conf.py")]
        command += ["--chdir", str(EXAMPLE), "--bind", "127.0.0.1:0", "--workers", "4"]
        command += ["--no-control-socket", "--graceful-timeout", "10"]
        command += ["--preload", "app:application"] if preload else ["app:application"]
        env = {**os.environ, "ORDERS_DATA_DIR": str(data_dir), "PYTHONUNBUFFERED": "1"}
        with open(log_path, "wb") as log:
            self.process = subprocess.Popen(
                command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.url = ""

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def listening(self) -> bool:
        """True once gunicorn said where it listens and a worker answers there."""
        assert self.process.poll() is None, f"gunicorn exited:\n{self.log()}"
        if not self.url:
            found = re.search(r"Listening at: (http://127\.0\.0\.1:\d+)", self.log())
            if found is None:
                return False
            self.url = found.group(1)
        try:
            return load.call(self.url, "GET", "/stats")[0] == 200
        except OSError:
            return False

    def stop(self, timeout: float = 20) -> int:
        """SIGTERM (graceful: workers close their stores); SIGKILL to the group if it hangs."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
            raise


@pytest.fixture
def server(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Callable[[bool], Server]]:
    started: list[Server] = []

    def start(preload: bool) -> Server:
        server = Server(tmp_path / "data", tmp_path / "gunicorn.log", preload)
        started.append(server)
        return server

    yield start
    for server in started:
        if server.process.poll() is None:
            os.killpg(server.process.pid, signal.SIGKILL)
            server.process.wait()


def other_worker(url: str) -> int:
    """The pid of a worker process that is not running the mailer (asks /stats until one answers)."""
    while True:
        status, answer, _ = load.call_retrying(url, "GET", "/stats")
        if status == 200 and not answer["mailer_active"]:
            return int(answer["pid"])


@pytest.mark.parametrize("preload", [False, True], ids=["fork-then-import", "preload"])
def test_gunicorn_workers_share_one_store(
    server: Callable[[bool], Server], tmp_path: Path, wait_until: Callable[..., None], preload: bool
) -> None:
    gunicorn = server(preload)
    wait_until(gunicorn.listening, timeout=30, what="gunicorn to accept requests")

    client = load.Load(gunicorn.url, run="test")
    killed: dict[str, int] = {}

    def kill_midway(done: int) -> None:
        if done == ORDERS // 3:
            with client._lock:
                last_order = list(client.acked.values())[-1]
            killed["mailer"] = load.mailer_pid(gunicorn.url, last_order, timeout=20)
            os.kill(killed["mailer"], signal.SIGKILL)
        elif done == 2 * ORDERS // 3:
            killed["worker"] = other_worker(gunicorn.url)
            os.kill(killed["worker"], signal.SIGKILL)

    client.run_all(ORDERS, THREADS, kill_midway)
    assert client.errors == []
    assert client.stale_reads == 0, "an acknowledged order could not be read back from another worker"
    assert len(client.acked) == ORDERS and set(killed) == {"mailer", "worker"}

    with ep.Store.open(tmp_path / "data", shared=True, read_only=True) as reader:
        load.wait_until_mailed(reader, ORDERS, timeout=30)
        report = load.check(reader, client.acked)
    assert load.failures(report) == [], report
    runs: list[str] = report["mailer_runs"]
    # The killed mailer was replaced by a standby in another process, never ran again, and
    # sent at most its last batch twice.
    assert len(runs) >= 2 and runs[0].startswith(f"{killed['mailer']}.")
    assert not any(run.startswith(f"{killed['mailer']}.") for run in runs[1:])
    assert report["duplicate_mails"] <= MAILER_BATCH
    print(
        f"\n{ORDERS} orders ({'--preload' if preload else 'no --preload'}), killed {killed}, "
        f"{client.retries} client retries, {report['duplicate_mails']} duplicate mails, mailers {runs}"
    )

    assert gunicorn.stop() == 0, gunicorn.log()
    assert "Traceback" not in gunicorn.log(), gunicorn.log()
    with ep.Store.open(tmp_path / "data") as store:  # exclusive: every worker closed its store
        verified = store.verify()
        assert verified.ok, verified
        assert verified.events == ORDERS + report["mails"] == store.stats()["visible_events"]
