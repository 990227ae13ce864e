"""The JetStream publisher: a durable supervised worker over a region whose handler publishes
each batch through a pipelined window of requests and returns only once JetStream has
acknowledged all of it, so the worker's checkpoint never covers an unacknowledged event."""

from __future__ import annotations

import concurrent.futures
import logging
import math
import threading
import time
from typing import TYPE_CHECKING

from .._native import Event, Region
from ..errors import InvalidConfig, ReadOnlyStore, ReplicationRefused
from ..restart import RestartPolicy, check_count
from ..worker_config import AtLeastOnce, CursorWorkerAction, CursorWorkerConfig
from ._link import Link
from ._loop import LoopThread
from ._options import check_servers, check_stream_name, check_subject
from ._wire import event_headers

if TYPE_CHECKING:
    from ..store import Store

__all__ = ["Publisher", "event_headers"]

log = logging.getLogger("eventpak.nats")

# What retrying cannot mend: a stream that does not continue the store's log, or does not
# take the publisher's subject.
REFUSALS = (ReplicationRefused, InvalidConfig)


def check_seconds(name: str, value: object) -> None:
    """Raises ``ep.InvalidConfig`` unless ``value`` is a finite number of seconds above 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidConfig(f"{name} must be a number of seconds, not {type(value).__name__}")
    if not math.isfinite(value) or value <= 0:
        raise InvalidConfig(f"{name} must be a finite number of seconds above 0, got {value!r}")


class Publisher:
    """Publishes every event of ``region`` to the JetStream ``stream`` (created with
    ``replicas`` replicas when missing), as a durable worker on ``checkpoint_id``: it starts at
    once, resumes after the last acknowledged event, and retries (with backoff) while the
    server is down. At most ``window`` messages (and about ``window_bytes``) are in flight."""

    def __init__(
        self,
        store: Store,
        region: Region,
        *,
        servers: list[str],
        stream: str = "EVENTS",
        checkpoint_id: str = "nats-out",
        replicas: int = 1,
        subject: str | None = None,
        window: int = 512,
        window_bytes: int = 4 * 1024 * 1024,
        ack_timeout: float = 5.0,
    ) -> None:
        if store._native.read_only:  # its checkpoint could never be saved: refused before anything connects
            raise ReadOnlyStore(store.path, "publishing to NATS (a durable worker)")
        if store.encrypted:
            # Its frames hold sealed payloads a replica could neither read nor re-hash, and
            # publishing them opened would put plaintext outside the store: refused.
            raise InvalidConfig("an encrypted store cannot publish to NATS (see docs/lifecycle.md)")
        # Checked here, before anything connects, so each refusal names the argument given.
        servers = check_servers(servers)
        check_stream_name(stream)
        check_count("replicas", replicas, 1)
        check_count("window", window, 1)
        check_count("window_bytes", window_bytes, 1)
        check_seconds("ack_timeout", ack_timeout)
        subject = f"{stream}.events" if subject is None else subject
        check_subject(subject)
        config = CursorWorkerConfig(
            batch_size=window,
            checkpoint_id=checkpoint_id,
            restart=RestartPolicy.unlimited(backoff_ms=(50, 1_000)),
        )  # checks checkpoint_id, which also names the publisher's mark file
        self._lock = threading.Lock()
        self._published = 0
        self._counted_through = -1  # a retried batch acknowledges events again: count each once
        self._window, self._window_bytes = window, window_bytes
        self._loop = LoopThread(f"eventpak-nats-{checkpoint_id}")
        self._link = Link(servers, stream, subject, replicas, ack_timeout, store, region, checkpoint_id)
        self._error: Exception | None = None
        self._running: concurrent.futures.Future[None] | None = None  # the batch on the loop
        self._stopping = False
        try:
            # Creates the stream at once when the server is up; otherwise the first batch will.
            self._loop.run(self._link.ready(), timeout=ack_timeout + 5)
        except REFUSALS:
            self._shutdown()
            raise
        except Exception as exc:
            where = self._link.connector.where
            log.warning("eventpak.nats: publishing via %s cannot start yet (%s); retrying", where, exc)
        try:
            self._worker = store.cursor_worker(region, self._handle, config)
        except BaseException:
            self._shutdown()
            raise

    @property
    def published(self) -> int:
        """Events acknowledged by JetStream (or found already in the stream) since this
        publisher started, each counted once."""
        with self._lock:
            return self._published

    @property
    def position(self) -> int | None:
        """The last global_sequence checkpointed (acknowledged by JetStream)."""
        return self._worker.position

    def _acked(self, events: list[Event]) -> None:
        with self._lock:
            through = self._counted_through
            self._published += sum(1 for e in events if e.global_sequence > through)
            self._counted_through = max(through, events[-1].global_sequence)

    @property
    def error(self) -> Exception | None:
        """What stopped the publisher: ``ep.ReplicationRefused`` (a stream that does not
        continue the store's log) or ``ep.InvalidConfig`` (a stream that does not capture its
        subject); ``None`` while it runs and after a plain stop."""
        with self._lock:
            return self._error

    def _handle(self, batch: list[Event], store: Store, witness: AtLeastOnce | None) -> CursorWorkerAction:
        running = self._loop.submit(self._link.publish(batch, self._window, self._window_bytes, self._acked))
        with self._lock:
            self._running = running
            if self._stopping:
                running.cancel()
        try:
            running.result()
        except concurrent.futures.CancelledError:
            return CursorWorkerAction.STOP_WITH_ROLLBACK  # stopped: the batch comes again next time
        except REFUSALS as exc:
            # Retrying cannot mend it: the worker stops, checkpointing nothing of the batch.
            log.error("eventpak.nats: publisher to stream %s stopped: %s", self._link.stream, exc)
            with self._lock:
                self._error = exc
            return CursorWorkerAction.STOP_WITH_ROLLBACK
        finally:
            with self._lock:
                self._running = None
        return CursorWorkerAction.CONTINUE

    def is_alive(self) -> bool:
        """True until the publisher stopped (asked to, or refused: see :attr:`error`)."""
        return self._worker.is_alive()

    def stop(self) -> None:
        """Asks the publisher to stop, without waiting. A batch waiting on the server (acks, a
        connect) is given up, unacknowledged, and comes again from the checkpoint next time."""
        with self._lock:
            self._stopping = True
            if self._running is not None:
                self._running.cancel()
        self._worker.stop()

    def stop_and_join(self, timeout: float | None = None) -> None:
        """Stops publishing and waits for the worker (raising its errors, as ``join`` does,
        and ``TimeoutError`` after ``timeout`` seconds, closing the connection within them),
        then raises the refusal that stopped it, if any (see :attr:`error`)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        self.stop()
        try:
            self._worker.stop_and_join(timeout)
        finally:
            self._shutdown(deadline)
        if self.error is not None:
            raise self.error

    def _shutdown(self, deadline: float | None = None) -> None:
        """Closes the connection and the loop, each given 5 s at most, and together no more
        than is left until ``deadline`` (monotonic)."""

        def left() -> float:
            return 5.0 if deadline is None else max(0.0, min(5.0, deadline - time.monotonic()))

        try:
            self._loop.run(self._link.close(), timeout=left())
        except Exception as exc:  # closing a dead connection: nothing left to flush
            log.debug("eventpak.nats: close: %s", exc)
        self._loop.close(left())
