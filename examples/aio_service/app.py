"""An order service on FastAPI and ``eventpak.aio``: ``uvicorn --workers 3 app:app`` (README.md).

Each uvicorn worker process opens ONE store for its lifetime in the lifespan
(``async with ep.aio.open(dir, shared=True)``: every process appends to and reads the same
log) and keeps it in ``app.state``. Every endpoint awaits the store, so the event loop keeps
serving other requests while an append waits for its fsync; appends of concurrent requests
share one fsync. The "mailer" worker is started in every process with ``standby=True``: one
runs, the others take over from its checkpoint when its process stops or dies.

Configuration comes from the environment: ``ORDERS_DATA_DIR`` (default ``./orders-data``).
``ORDERS_APPEND_MODE`` exists only to compare with what the async API replaces:
``aio`` (the default), ``to_thread`` (the sync ``Store.append`` through
``asyncio.to_thread``) or ``blocking`` (the sync ``Store.append`` called right in the
``async def``, which stalls the loop for every fsync: don't do this).
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import eventpak as ep
from fastapi import FastAPI, Header, HTTPException, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field

DATA_DIR = os.environ.get("ORDERS_DATA_DIR", "orders-data")
APPEND_MODE = os.environ.get("ORDERS_APPEND_MODE", "aio")
SCOPE = "shop"
ORDERS = ep.Region.entity("order")  # every event of every order: placed, mail_sent
PLACED = ORDERS.with_kind("placed")
# Order ids made from an idempotency key: the same key always names the same order.
KEY_NAMESPACE = uuid.UUID("0b7e3f4c-2d9a-4c61-8f0e-5a3b9d2c7e14")


class Order(BaseModel):
    item: str = Field(min_length=1, max_length=200)
    qty: int = Field(default=1, ge=1, le=10_000)


class OrderView(ep.Projection[dict[str, Any]]):
    """What ``GET /orders/{id}`` shows: the order and who mailed it."""

    name = "order-view"
    kinds = ("placed", "mail_sent")

    def initial(self) -> dict[str, Any]:
        return {"mailed_by": []}

    def apply(self, state: dict[str, Any], event: ep.Event) -> dict[str, Any]:
        if event.kind == "placed":
            return {**state, **event.payload, "global_sequence": event.global_sequence}
        return {**state, "mailed_by": [*state["mailed_by"], event.payload["mailer"]]}


async def mail(batch: list[ep.Event], store: ep.aio.AsyncStore, witness: ep.AtLeastOnce | None) -> None:
    """The mailer: "sends" one mail per placed order and records it as a ``mail_sent`` event
    caused by the order, naming the process that sent it. At least once: a batch handled by a
    process that died before the worker's checkpoint is mailed again by the next mailer."""
    mailer = f"{os.getpid()}"
    await store.append_batch(
        [
            ep.AppendRequest(event.coordinate, "mail_sent", {"mailer": mailer}, caused_by=event)
            for event in batch
        ]
    )


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    async with ep.aio.open(DATA_DIR, shared=True, sync="always") as store:
        app.state.store = store
        config = ep.CursorWorkerConfig(checkpoint_id="mailer", standby=True, batch_size=100)
        app.state.mailer = store.worker(PLACED, mail, config)
        yield
    # Leaving the block stopped the mailer (a standby in another process takes over) and
    # closed the store.


app = FastAPI(title="eventpak.aio order service", lifespan=lifespan)


@app.exception_handler(ep.IdempotencyConflict)
async def conflict(request: Request, exc: ep.IdempotencyConflict) -> JSONResponse:
    return JSONResponse({"error": "this Idempotency-Key was used for another order"}, status_code=409)


@app.exception_handler(ep.InvalidIdempotencyKey)
async def bad_key(request: Request, exc: ep.InvalidIdempotencyKey) -> JSONResponse:
    return JSONResponse({"error": str(exc)}, status_code=400)


@app.exception_handler(ep.StorageFailed)
async def storage_failed(request: Request, exc: ep.StorageFailed) -> JSONResponse:
    # Nothing acknowledged is lost; the client retries with its Idempotency-Key.
    return JSONResponse({"error": f"storage unavailable, retry: {exc}"}, status_code=503)


@app.post("/orders", status_code=201)
async def place_order(
    order: Order, request: Request, idempotency_key: Annotated[str | None, Header()] = None
) -> dict[str, Any]:
    """Appends the order, durably (``sync="always"``), once per ``Idempotency-Key``: a retry
    with the same key gets the first receipt back and writes nothing."""
    store: ep.aio.AsyncStore = request.app.state.store
    order_id = (uuid.uuid5(KEY_NAMESPACE, idempotency_key) if idempotency_key else uuid.uuid4()).hex
    args = ((f"order:{order_id}", SCOPE), "placed", order.model_dump())
    if APPEND_MODE == "aio":
        receipt = await store.append(*args, idempotency_key=idempotency_key)
    elif APPEND_MODE == "to_thread":
        receipt = await asyncio.to_thread(store.sync_store.append, *args, idempotency_key=idempotency_key)
    else:  # "blocking": the loop waits for the fsync, every other request with it
        receipt = store.sync_store.append(*args, idempotency_key=idempotency_key)
    return {"order_id": order_id, "global_sequence": receipt.global_sequence, "pid": os.getpid()}


@app.get("/orders/{order_id}")
async def get_order(order_id: str, request: Request) -> dict[str, Any]:
    """The order, read back from whichever process serves the request (an order acknowledged
    by any process is visible to every other at once)."""
    store: ep.aio.AsyncStore = request.app.state.store
    view = await store.project(f"order:{order_id}", OrderView())
    if view is None or "item" not in view:
        raise HTTPException(404, f"no order {order_id}")
    return {"order_id": order_id, **view, "pid": os.getpid()}


@app.get("/events/stream")
async def stream(
    request: Request,
    after: Annotated[int | None, Query(ge=-1)] = None,
    last_event_id: Annotated[int | None, Header(ge=0)] = None,
) -> StreamingResponse:
    """Server-sent events: every order event committed after global sequence ``after`` (-1:
    from the first; default: from now), by any process. An EventSource that reconnects sends
    ``Last-Event-ID`` and resumes after it."""
    store: ep.aio.AsyncStore = request.app.state.store
    start = last_event_id if last_event_id is not None else after
    if start is None:
        start = await store.head()  # None while the store is empty: from the first
    elif start == -1:
        start = None

    async def events() -> AsyncIterator[str]:
        # Waiting for commits holds no thread; a client that goes away cancels this generator.
        async with store.subscribe(ORDERS, after=start) as sub:
            async for batch in sub.batches():
                yield "".join(server_sent(event) for event in batch)

    headers = {"Cache-Control": "no-cache", "X-Served-By": str(os.getpid())}
    return StreamingResponse(events(), media_type="text/event-stream", headers=headers)


def server_sent(event: ep.Event) -> str:
    data = {"entity": event.entity, "kind": event.kind, "payload": event.payload}
    return f"id: {event.global_sequence}\nevent: {event.kind}\ndata: {json.dumps(data)}\n\n"


@app.get("/ping")
async def ping() -> dict[str, Any]:
    """A cheap endpoint that touches no store: its latency shows how free the loop is."""
    return {"pid": os.getpid()}


@app.get("/stats")
async def stats(request: Request) -> dict[str, Any]:
    store: ep.aio.AsyncStore = request.app.state.store
    return {
        "pid": os.getpid(),
        "mailer_active": request.app.state.mailer.is_active,
        "head": await store.head(),
        "append_mode": APPEND_MODE,
    }
