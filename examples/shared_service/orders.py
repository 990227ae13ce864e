"""A tiny order service on one eventpak data dir shared by every server process.

The HTTP adapters (``app.py`` for WSGI, ``asgi.py`` for ASGI) call :func:`handle`; this module
owns the store. Each process opens its own store lazily, after the server forked or spawned it
(``shared=True``: every worker process appends and reads the same log), and starts the durable
"mailer" worker with ``standby=True``: it runs in one process at a time, and another takes over
from the last checkpoint when that process stops or dies.

Configuration comes from the environment: ``ORDERS_DATA_DIR`` (default ``./orders-data``).
"""

from __future__ import annotations

import functools
import itertools
import json
import logging
import os
import re
import threading
import uuid
from typing import Any

import eventpak as ep

DATA_DIR = os.environ.get("ORDERS_DATA_DIR", "orders-data")
SCOPE = "shop"
PLACED = ep.Region.entity("order").with_kind("placed")
MAILS = ep.Region.entity("order").with_kind("mail_sent")
# Order ids made from an idempotency key: the same key always names the same order.
_KEY_NAMESPACE = uuid.UUID("6f1c1d3e-55a8-4f4e-9a53-0d6b8f1e2c11")
_ORDER_PATH = re.compile(r"^/orders/([0-9a-f]{32})$")

log = logging.getLogger("orders")
_opens = itertools.count(1)  # names each mailer this process starts
_lock = threading.Lock()
_pid: int | None = None
_store: ep.Store | None = None
_mailer: ep.CursorWorkerHandle | None = None


def mail(mailer: str, batch: list[ep.Event], store: ep.Store, witness: ep.AtLeastOnce | None) -> None:
    """The mailer's handler: "sends" one mail per placed order and records it as a
    ``mail_sent`` event caused by the order, naming the process and the mailer that sent it.
    Delivery is at least once: if this process dies after appending and before the worker's
    checkpoint, the next mailer sends the batch again."""
    store.append_batch(
        [
            ep.AppendRequest(
                event.coordinate, "mail_sent", {"pid": os.getpid(), "mailer": mailer}, caused_by=event
            )
            for event in batch
        ]
    )


def open_store() -> ep.Store:
    """This process's store, opened on first use. A store opened before a fork belongs to the
    parent, so the check is by process id: a forked child opens its own."""
    global _pid, _store, _mailer
    with _lock:
        if _store is not None and _pid == os.getpid():
            return _store
        store = ep.Store.open(DATA_DIR, shared=True, sync="always")
        # Started in every process; one runs, the others stand by to take over.
        config = ep.CursorWorkerConfig(checkpoint_id="mailer", standby=True, batch_size=100)
        handler = functools.partial(mail, f"{os.getpid()}.{next(_opens)}")
        _pid, _store, _mailer = os.getpid(), store, store.cursor_worker(PLACED, handler, config)
        return store


def close_store(failed: ep.Store | None = None) -> None:
    """Stops this process's mailer (a standby elsewhere takes over) and closes the store;
    with ``failed``, only if that store is still the one in use."""
    global _store, _mailer
    with _lock:
        if failed is not None and failed is not _store:
            return
        store, _store, _mailer = _store, None, None
        if store is not None and _pid == os.getpid():
            try:
                store.close(timeout=5)
            except ep.EventpakError:  # it is closed all the same; the error was logged or raised before
                log.exception("closing the store failed")


def handle(method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
    """One request: ``(status, JSON body)``. ``headers`` has lower-case names."""
    store = None
    try:
        store = open_store()
        if method == "POST" and path == "/orders":
            return place_order(store, headers.get("idempotency-key"), body)
        if method == "GET" and (match := _ORDER_PATH.match(path)):
            return get_order(store, match.group(1))
        if method == "GET" and path == "/stats":
            return 200, stats(store)
        return 404, {"error": f"no route for {method} {path}"}
    except ep.IdempotencyConflict:
        return 409, {"error": "this Idempotency-Key was used for another order"}
    except (ep.StorageFailed, ep.StoreClosed) as exc:
        # After a failed write the store takes no more appends until it is reopened: close
        # it, and the next request opens it again. The client retries with its key.
        if store is not None:
            close_store(failed=store)
        return 503, {"error": f"storage unavailable, retry: {exc}"}
    except (ValueError, TypeError) as exc:  # bad JSON, bad key (ep.InvalidIdempotencyKey), ...
        return 400, {"error": str(exc)}


def place_order(store: ep.Store, key: str | None, body: bytes) -> tuple[int, dict[str, Any]]:
    order = json.loads(body or b"null")
    if not isinstance(order, dict) or not isinstance(order.get("item"), str):
        raise ValueError('the body must be a JSON object like {"item": "book", "qty": 1}')
    payload = {"item": order["item"], "qty": int(order.get("qty", 1))}
    # With a key, a retry (same key, same order) gets the original receipt back and writes nothing.
    order_id = (uuid.uuid5(_KEY_NAMESPACE, key) if key else uuid.uuid4()).hex
    receipt = store.append((f"order:{order_id}", SCOPE), "placed", payload, idempotency_key=key)
    return 201, {"order_id": order_id, "global_sequence": receipt.global_sequence, "pid": os.getpid()}


def get_order(store: ep.Store, order_id: str) -> tuple[int, dict[str, Any]]:
    # Read-your-writes across processes: an order acknowledged by any worker is visible here.
    events = store.query(ep.Region.entity(f"order:{order_id}", exact=True))
    placed = [e for e in events if e.kind == "placed"]
    if not placed:
        return 404, {"error": f"no order {order_id}"}
    mails = [e.payload["pid"] for e in events if e.kind == "mail_sent"]
    return 200, {"order_id": order_id, **placed[0].payload, "mailed_by": mails, "pid": os.getpid()}


def stats(store: ep.Store) -> dict[str, Any]:
    return {
        "pid": os.getpid(),
        "mailer_active": _mailer is not None and _mailer.is_active,
        "orders": len(store.query(PLACED)),
        "mails": len(store.query(MAILS)),
        "events": store.stats()["events"],
        "head": store.head(),
    }


def to_json(body: dict[str, Any]) -> bytes:
    return json.dumps(body).encode() + b"\n"
