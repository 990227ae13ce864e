"""Load and check the order service the way a user would: many concurrent clients, a worker
process SIGKILLed in the middle, then a look at the data dir.

    python load.py --url http://127.0.0.1:8000 --orders 3000 --threads 16 \\
        --kill-mailer-after 1000 --kill-worker-after 1500 --kill-mailer-after 2000

Every order is posted with its own Idempotency-Key and retried with the same key when the
connection breaks (a killed worker) or the answer is 503, so each order is acknowledged once.
After the load it waits for the mailer to catch up and prints a report, read from the data
dir by a read-only shared open while the service keeps running. Exits 1 when a check fails.
Start the service on a fresh data dir: the checks count every order in it.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import sys
import threading
import time
import urllib.parse
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import eventpak as ep

# What a killed or restarting worker looks like to a client: retry with the same key.
RETRYABLE = (ConnectionError, http.client.RemoteDisconnected, http.client.IncompleteRead, TimeoutError)


def call(url: str, method: str, path: str, body: Any = None, key: str | None = None) -> tuple[int, Any]:
    """One request on a new connection: ``(status, decoded JSON body)``."""
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        headers = {"Content-Type": "application/json"}
        if key is not None:
            headers["Idempotency-Key"] = key
        conn.request(method, path, None if body is None else json.dumps(body), headers)
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def call_retrying(
    url: str, method: str, path: str, body: Any = None, key: str | None = None
) -> tuple[int, Any, int]:
    """:func:`call`, retried on a broken connection or a 503 for up to 30 s: ``(status, body, retries)``."""
    deadline = time.monotonic() + 30
    retries = 0
    while True:
        try:
            status, answer = call(url, method, path, body, key)
            if status != 503 or time.monotonic() > deadline:
                return status, answer, retries
        except RETRYABLE:
            if time.monotonic() > deadline:
                raise
        retries += 1
        time.sleep(0.05)


class Load:
    """Posts orders from many threads; records what was acknowledged."""

    def __init__(self, url: str, run: str) -> None:
        self.url, self.run = url, run
        self.acked: dict[str, str] = {}  # idempotency key -> order id
        self.retries = 0
        self.stale_reads = 0  # an acknowledged order another request could not read back
        self.errors: list[str] = []
        self._lock = threading.Lock()

    def place(self, n: int) -> None:
        key = f"{self.run}-{n}"
        status, answer, retries = call_retrying(
            self.url, "POST", "/orders", {"item": f"item-{n}", "qty": 1 + n % 3}, key
        )
        if status != 201:
            with self._lock:
                self.errors.append(f"POST {key}: {status} {answer}")
            return
        order_id = answer["order_id"]
        # Read-your-writes: a new connection, most likely served by another worker process.
        read_status, _, read_retries = call_retrying(self.url, "GET", f"/orders/{order_id}")
        with self._lock:
            self.acked[key] = order_id
            self.retries += retries + read_retries
            if read_status != 200:
                self.stale_reads += 1

    def run_all(self, count: int, threads: int, on_progress: Any = None) -> None:
        with ThreadPoolExecutor(threads) as pool:
            for done, _ in enumerate(pool.map(self.place, range(count)), 1):
                if on_progress is not None:
                    on_progress(done)


def mailer_pid(url: str, order_id: str, timeout: float = 10) -> int:
    """The process that mailed ``order_id`` (waits for the mail)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, answer, _ = call_retrying(url, "GET", f"/orders/{order_id}")
        if status == 200 and answer["mailed_by"]:
            return int(answer["mailed_by"][-1])
        time.sleep(0.01)
    raise TimeoutError(f"order {order_id} was not mailed within {timeout} s")


def wait_until_mailed(store: ep.Store, orders: int, timeout: float = 30) -> None:
    """Waits (bounded) until the log holds a mail for each of ``orders`` orders."""
    placed, mails = (
        ep.Region.entity("order").with_kind("placed"),
        ep.Region.entity("order").with_kind("mail_sent"),
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        mailed = {e.entity for e in store.query(mails)}
        if len(store.query(placed)) >= orders and len(mailed) >= orders:
            return
        time.sleep(0.05)
    raise TimeoutError(f"the mailer did not mail {orders} orders within {timeout} s")


def check(store: ep.Store, acked: dict[str, str]) -> dict[str, Any]:
    """What the log says about the acknowledged orders and their mails."""
    events = store.query(ep.Region.entity("order"))
    placed = Counter(e.entity for e in events if e.kind == "placed")
    mail_events = [e for e in events if e.kind == "mail_sent"]
    mails = Counter(e.entity for e in mail_events)
    wanted = {f"order:{order_id}" for order_id in acked.values()}
    # The mailers in log order: [A, B] after one takeover. A mailer that comes back after
    # another one mailed ([A, B, A]) means two mailers ran at the same time.
    runs: list[str] = []
    for event in mail_events:
        mailer = event.payload["mailer"]
        if not runs or runs[-1] != mailer:
            runs.append(mailer)
    return {
        "acked": len(acked),
        "orders_in_store": len(placed),
        "acked_missing": sorted(wanted - placed.keys()),
        "acked_twice": sorted(e for e in wanted if placed[e] > 1),
        "unacked_in_store": sorted(placed.keys() - wanted),
        "mails": len(mail_events),
        "orders_without_mail": sorted(e for e in placed if mails[e] == 0),
        "duplicate_mails": sum(n - 1 for n in mails.values() if n > 1),
        "mailer_runs": runs,
        "mailer_overlap": len(runs) != len(set(runs)),
    }


def failures(report: dict[str, Any]) -> list[str]:
    """The checks a report fails (duplicate mails are allowed: delivery is at least once)."""
    failed = [
        name
        for name in ("acked_missing", "acked_twice", "unacked_in_store", "orders_without_mail")
        if report[name]
    ]
    if report["mailer_overlap"]:
        failed.append("mailer_overlap")
    if report["orders_in_store"] != report["acked"]:
        failed.append("orders_in_store")
    return failed


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--data-dir", default=os.environ.get("ORDERS_DATA_DIR", "orders-data"))
    parser.add_argument("--orders", type=int, default=3000)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument(
        "--kill-mailer-after",
        type=int,
        action="append",
        default=[],
        metavar="N",
        help="SIGKILL the worker process running the mailer after N acknowledged orders (repeatable)",
    )
    parser.add_argument(
        "--kill-worker-after",
        type=int,
        action="append",
        default=[],
        metavar="N",
        help="SIGKILL a worker process not running the mailer after N acknowledged orders (repeatable)",
    )
    args = parser.parse_args()

    load = Load(args.url, run=f"run{os.getpid()}-{time.time_ns()}")
    killed: list[int] = []

    def on_progress(done: int) -> None:
        for _ in range(args.kill_mailer_after.count(done)):
            with load._lock:
                last_order = list(load.acked.values())[-1]  # mailed by the current mailer
            pid = mailer_pid(args.url, last_order)
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
            print(f"killed the mailer's process {pid} after {done} orders", flush=True)
        for _ in range(args.kill_worker_after.count(done)):
            while True:  # ask /stats until a worker that is not the mailer answers
                _, answer, _ = call_retrying(args.url, "GET", "/stats")
                if not answer["mailer_active"]:
                    break
            os.kill(answer["pid"], signal.SIGKILL)
            killed.append(answer["pid"])
            print(f"killed worker process {answer['pid']} after {done} orders", flush=True)

    started = time.monotonic()
    load.run_all(args.orders, args.threads, on_progress)
    elapsed = time.monotonic() - started
    print(
        f"{len(load.acked)} orders acknowledged in {elapsed:.1f} s "
        f"({2 * args.orders / elapsed:.0f} requests/s), "
        f"{load.retries} retries, {load.stale_reads} stale reads, {len(load.errors)} errors",
        flush=True,
    )
    for error in load.errors[:10]:
        print("  ", error)

    with ep.Store.open(args.data_dir, shared=True, read_only=True) as store:
        wait_until_mailed(store, len(load.acked))
        report = check(store, load.acked)
        ok = store.verify().ok
    print(json.dumps({**report, "killed": killed, "verify_ok": ok}, indent=1, default=str)[:4000])
    failed = (
        failures(report)
        + ([] if ok else ["verify"])
        + (["errors"] if load.errors or load.stale_reads else [])
    )
    print("FAILED: " + ", ".join(failed) if failed else "all checks passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
