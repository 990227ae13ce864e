"""The order service as an ASGI app: ``uvicorn --workers 4 asgi:app`` (see README.md).

uvicorn starts each worker as a new process, which opens the store at lifespan startup (or
on the first request, if the server runs no lifespan) and closes it at shutdown. Store calls
release the GIL; they run in a thread so the event loop keeps serving.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orders


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await asyncio.to_thread(orders.open_store)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await asyncio.to_thread(orders.close_store)
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}
    status, answer = await asyncio.to_thread(orders.handle, scope["method"], scope["path"], headers, body)
    data = orders.to_json(answer)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": data})
