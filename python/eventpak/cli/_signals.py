"""Ctrl-C and SIGTERM around an operation that commits: before its point of no return they
stop it (and it changes nothing); after it, the operation finishes and reports instead of
being called interrupted."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

__all__ = ["Held", "signals_held"]

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Held:
    """The signals that arrived while an operation was running (see :func:`signals_held`)."""

    def __init__(self, previous: dict[int, Callable[[int, FrameType | None], object]]) -> None:
        self._previous = previous
        self._armed = False
        self._pending: list[tuple[int, FrameType | None]] = []

    def _arrived(self, signum: int, frame: FrameType | None) -> None:
        if not self._armed:
            self._previous[signum](signum, frame)  # not started yet: as if nothing were held
            return
        self._pending.append((signum, frame))

    def raise_pending(self) -> None:
        """Acts on the first signal held so far as it would have been acted on when it came
        (Ctrl-C raises ``KeyboardInterrupt``)."""
        if self._pending:
            signum, frame = self._pending[0]
            self._previous[signum](signum, frame)

    def start(self) -> None:
        """The operation starts: from now on signals are held."""
        self._armed = True

    def progress(self, draw: Callable[[int, int], None]) -> Callable[[int, int], None]:
        """Starts holding signals (:meth:`start`); returns the operation's ``progress(done,
        total)`` callback: ``draw``, after raising for a signal held so far. The engine calls
        it only before its point of no return, where an exception stops the operation with
        nothing changed; a signal that comes after the last call no longer stops anything."""
        self.start()

        def report(done: int, total: int) -> None:
            self.raise_pending()
            draw(done, total)

        return report

    @property
    def arrived(self) -> bool:
        """Whether a signal was held."""
        return bool(self._pending)


@contextmanager
def signals_held(what: str) -> Iterator[Held]:
    """While the block runs, Ctrl-C and SIGTERM act as usual until the operation starts
    (``held.start()`` or ``held.progress()``); from then on they are held, and raised from the operation's
    progress callback (a signal handler runs only between Python steps, and during a native
    call those are the callback's). When the block ends normally with a signal held (it came past the
    operation's last callback, i.e. once it had committed), one line on stderr says that
    ``what`` was finished anyway. Does nothing outside the main thread (which alone gets
    signals)."""
    if threading.current_thread() is not threading.main_thread():
        yield Held({})
        return
    # Only signals with a Python handler are held: an ignored or default one stays so.
    previous: dict[int, Callable[[int, FrameType | None], object]] = {
        s: h for s in _SIGNALS if callable(h := signal.getsignal(s))
    }
    held = Held(previous)
    for signum in previous:
        signal.signal(signum, held._arrived)
    try:
        yield held
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if held.arrived:
        print(f"eventpak: {what} had committed when the signal came; it was finished", file=sys.stderr)
