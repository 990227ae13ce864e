"""Connecting to NATS, for the publisher and the replica: nats-py's connect, bounded in time,
keeping the errors the servers give meanwhile (nats-py hands them to a callback and retries),
so a connect that fails says why, e.g. wrong credentials, and not only that time ran out."""

from __future__ import annotations

import logging
from typing import Any

from ._loop import bounded
from ._options import shown

__all__ = ["Connector"]

log = logging.getLogger("eventpak.nats")


class Connector:
    """Makes the connections of one publisher or replica to ``servers``; ``options`` go to
    ``nats.connect`` beside the reconnect settings both use."""

    def __init__(self, servers: list[str], **options: Any) -> None:
        self.servers = servers
        self.where = ", ".join(shown(url) for url in servers)
        self.options = options
        self.last: BaseException | None = None  # the last error of the connect in progress
        self.last_said = False  # `last` is what a server answered, not a transport error
        self.warned: set[str] = set()

    async def connect(self, timeout: float) -> Any:
        """A connection, or ``TimeoutError`` after ``timeout`` seconds naming the last error
        the servers gave (an unreachable server would keep the first connect retrying for
        ever)."""
        import nats

        self.last, self.last_said = None, False
        connecting = nats.connect(
            servers=self.servers, connect_timeout=2, allow_reconnect=True, max_reconnect_attempts=-1,
            reconnect_time_wait=0.25, error_cb=self._on_error, disconnected_cb=_changed,
            reconnected_cb=_changed, **self.options,
        )  # fmt: skip
        try:
            return await bounded(connecting, timeout, f"connecting to NATS at {self.where}")
        except TimeoutError as exc:
            if self.last is None:
                raise
            raise TimeoutError(f"{exc}; the last error: {self.last}") from self.last

    async def _on_error(self, exc: Exception) -> None:
        from nats import errors

        # What a server answered (wrong credentials, a permission refused) is worth a warning,
        # once for each text; the transport's comings and goings while a server is down are not.
        quiet = (errors.UnexpectedEOF, errors.StaleConnectionError, errors.ConnectionClosedError)
        said = isinstance(exc, errors.Error) and not isinstance(exc, (*quiet, errors.TimeoutError))
        # A server that refused the credentials then resets the connection: its answer, not the
        # reset after it, is why the connect fails.
        if said or not self.last_said:
            self.last, self.last_said = exc, said
        if said and str(exc) not in self.warned:
            self.warned.add(str(exc))
            log.warning("eventpak.nats: NATS at %s: %s", self.where, exc)
        else:
            log.debug("nats: %s", exc)


async def _changed() -> None:
    log.debug("nats: connection state changed")
