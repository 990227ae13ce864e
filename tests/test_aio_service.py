"""The FastAPI example (examples/aio_service) under ``uvicorn --workers 3``, as a user runs it:
one ``eventpak.aio`` store per worker process opened in the lifespan with ``shared=True``,
concurrent clients posting orders with idempotency keys, a client following the event
stream, and the process running the mailer SIGKILLed midway (uvicorn starts a new one, a
standby mailer in another process takes over).

Checked: every acknowledged order is stored exactly once (retries with the same key write
nothing twice), the stream delivers every acknowledged order, including those appended by
the other processes, every order gets a mail, uvicorn shuts down cleanly (every process
closes its store) and the store verifies.
"""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import eventpak as ep
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
pytest.importorskip("httpx")

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "aio_service"
WORKERS = 3
ORDERS = 400
CONCURRENCY = 32
MAILER_BATCH = 100  # the example's mailer batch_size: the most a killed mailer can mail twice


def load_module() -> ModuleType:
    """examples/aio_service/load.py: the server runner, the client and the checks."""
    spec = importlib.util.spec_from_file_location("aio_service_load", EXAMPLE / "load.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


load = load_module()


def test_uvicorn_workers_share_one_async_store(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    server = load.Server(data_dir, tmp_path / "uvicorn.log", workers=WORKERS)
    try:
        server.wait_ready(timeout=30)  # polls GET /ping until a worker answers
        run = asyncio.run(
            load.load(server.url, ORDERS, CONCURRENCY, kill_after=ORDERS // 2, idle_seconds=0.3)
        )
        assert run.errors == []
        assert len(run.acked) == ORDERS and len(run.killed) == 1
        assert load.stream_failures(run) == []
        assert load.wait_until_mailed(data_dir, ORDERS) == ORDERS
        assert server.stop() == 0, server.log()
    finally:
        if server.process.poll() is None:
            server.kill()
    assert "Traceback" not in server.log(), server.log()

    report = load.check(data_dir, {key: acked.order_id for key, acked in run.acked.items()})
    assert load.failures(report) == [], report
    assert report["stored"] == ORDERS
    # The killed mailer was replaced by a standby elsewhere and mailed at most its last batch twice.
    assert report["mailers"][-1] != str(run.killed[0])
    assert report["duplicate_mails"] <= MAILER_BATCH
    print(f"\n{load.summary(run)}\nmailers {report['mailers']}, {report['duplicate_mails']} duplicate mails")

    with ep.Store.open(data_dir) as store:
        assert store.verify().ok
        assert store.stats()["visible_events"] == ORDERS + report["mails"]
