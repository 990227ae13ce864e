"""The standard streams of the command line: what it does when one is missing (the process was
started with it closed, ``>&-``), when output stops being read (``| head``), and with
characters the output's encoding cannot carry."""

from __future__ import annotations

import contextlib
import errno
import io
import os
import sys

__all__ = ["flush_stdout", "quiet_stdout", "standard_streams"]


class _ClosedOutput(io.TextIOBase):
    """``sys.stdout`` of a process started without one: writing to it is writing to a pipe
    nobody reads, so the command ends as it does when ``| head`` stops reading."""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        raise BrokenPipeError(errno.EPIPE, "stdout is closed")

    def isatty(self) -> bool:
        return False


def _reserve_standard_fds() -> None:
    """Opens /dev/null on each of fds 0, 1 and 2 that is closed, so that no file the store opens
    gets one of those numbers, where anything written to stdout or stderr (a message of the
    native code, a child's output) would land in it."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)  # the lowest free number: fd itself, or below
            if null != fd:
                os.dup2(null, fd)
                os.close(null)


def standard_streams() -> None:
    """Makes the standard streams safe to use. A closed stdout becomes one whose first write
    raises ``BrokenPipeError``; a closed stderr, /dev/null (messages have nowhere to go, and
    ``print(file=None)`` would otherwise put them on stdout). A character the output's encoding
    cannot carry (an entity name on a Latin-1 terminal) is written as a backslash escape
    instead of failing the command."""
    missing = sys.stdout is None or sys.stderr is None
    if missing:
        _reserve_standard_fds()
    if sys.stdout is None:
        sys.stdout = _ClosedOutput()
    if sys.stderr is None:
        sys.stderr = open(os.devnull, "w")  # noqa: SIM115 (the process's stderr, open to the end)
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            with contextlib.suppress(Exception):
                reconfigure(errors="backslashreplace")


def flush_stdout() -> None:
    """Flushes what was printed so far, so it comes before the error message."""
    with contextlib.suppress(OSError, ValueError):
        sys.stdout.flush()


def quiet_stdout() -> None:
    """stdout went away (``| head``): keep Python's exit-time flush from complaining."""
    with contextlib.suppress(OSError, ValueError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
