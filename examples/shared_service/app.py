"""The order service as a WSGI app: ``gunicorn -w 4 app:application`` (see README.md).

The store is opened after the fork, in each worker: by the ``post_fork`` hook of
``gunicorn.conf.py``, or on the first request by any other WSGI server. Never at import
time: with ``--preload`` this module is imported in the master, before the fork.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import orders

_REASONS = {
    200: "OK",
    201: "Created",
    400: "Bad Request",
    404: "Not Found",
    409: "Conflict",
    503: "Service Unavailable",
}


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    headers = (
        {"idempotency-key": environ["HTTP_IDEMPOTENCY_KEY"]} if "HTTP_IDEMPOTENCY_KEY" in environ else {}
    )
    status, answer = orders.handle(environ["REQUEST_METHOD"], environ.get("PATH_INFO", ""), headers, body)
    data = orders.to_json(answer)
    start_response(
        f"{status} {_REASONS.get(status, '')}",
        [("Content-Type", "application/json"), ("Content-Length", str(len(data)))],
    )
    return [data]
