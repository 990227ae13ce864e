"""The command line: ``eventpak COMMAND DIR [options]``, also ``python -m eventpak``.

Commands: ``demo``, ``stats``, ``inspect``, ``tail [-f]``, ``verify``, ``backup``,
``checkpoints``, ``dead-letters``, ``compact``, ``rotate-key`` and ``bench``; ``eventpak
--version``; ``--help`` on each. ``compact`` and ``rotate-key`` change the store in place and
need it to themselves (an exclusive open). Every other command but ``demo``, ``bench`` and
``backup`` (which writes only its destination) only reads: it opens an existing data dir
read-only and shared, so it works beside running processes that share the dir, and refuses a
path that holds no store without creating anything. Tables and progress bars are drawn only on
a terminal (with ``rich``, from the ``eventpak[cli]`` extra, when it is installed); elsewhere
the output is plain lines, and ``--json`` prints JSON, one object per line.

Exit status, for scripts:

- 0: success (``verify``: no problem found);
- 1: the store refuses or a problem was found: not a data dir, locked by an exclusive opener,
  damaged, an operating-system error, an unknown checkpoint id, ``verify`` found a problem; one
  line ``eventpak: <message>`` on stderr (``verify`` lists its problems on stdout);
- 2: usage error (unknown command or option, a bad value): the usage line and the error on stderr;
- 130: interrupted by Ctrl-C (SIGINT), e.g. to end ``tail -f``;
- 143: ended by SIGTERM.

A signal that comes once ``compact``, ``backup`` or ``rotate-key`` has committed does not
interrupt it: the command finishes, reports, and says on stderr that the signal came late.

No command prints a Python traceback for any of these. Output that cannot be written (a pipe
closed by its reader, a stdout the process was started without) ends the command quietly with
status 1.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from types import FrameType

from .. import EventpakError, __version__
from ..demo import DemoFailed
from . import _bench, _events, _lifecycle, _ops, _store
from ._base import Refused, UsageError
from ._streams import flush_stdout, quiet_stdout, standard_streams

__all__ = ["EXIT_INTERRUPTED", "EXIT_OK", "EXIT_PROBLEM", "EXIT_TERMINATED", "EXIT_USAGE", "main"]

EXIT_OK = 0
EXIT_PROBLEM = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143

EPILOG = (
    "Exit status: 0 on success, 1 when the store refuses or a problem is found, 2 for a usage "
    "error, 130 on Ctrl-C, 143 on SIGTERM."
)


class _Terminated(BaseException):
    """Raised in the main thread by the SIGTERM handler, so that the command unwinds (closing
    its store) as it does on Ctrl-C."""


def _parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="eventpak: an embedded, durable, append-only event log.",
        epilog=EPILOG,
    )
    parser.add_argument("--version", action="version", version=f"eventpak {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _store.register(sub)
    _events.register(sub)
    _ops.register(sub)
    _lifecycle.register(sub)
    _bench.register(sub)
    for command in sub.choices.values():
        command.epilog = EPILOG
    return parser


@contextlib.contextmanager
def _sigterm_unwinds() -> Iterator[None]:
    """While the command runs, SIGTERM raises ``_Terminated`` in the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        raise _Terminated

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: Sequence[str] | None = None, *, prog: str = "eventpak") -> int:
    """Runs the command line; returns the exit status. ``prog`` names it in usage messages."""
    standard_streams()
    parser = _parser(prog)
    args = parser.parse_args(argv)  # usage errors exit with status 2
    try:
        with _sigterm_unwinds():
            status: int = args.run(args)
        sys.stdout.flush()
        return status
    except UsageError as exc:
        command: argparse.ArgumentParser = args.parser
        command.error(str(exc))  # exits with status 2
    except BrokenPipeError:
        quiet_stdout()
        return EXIT_PROBLEM
    except (Refused, DemoFailed, EventpakError, OSError) as exc:
        flush_stdout()
        message = " ".join(str(exc).split()) or type(exc).__name__
        print(f"eventpak: {message}", file=sys.stderr)
        return EXIT_PROBLEM
    except KeyboardInterrupt:
        flush_stdout()
        print("eventpak: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except _Terminated:
        flush_stdout()
        print("eventpak: terminated", file=sys.stderr)
        return EXIT_TERMINATED
    except Exception as exc:  # a bug: still one line, not a traceback
        flush_stdout()
        message = " ".join(str(exc).split())
        print(f"eventpak: unexpected error: {type(exc).__name__}: {message}", file=sys.stderr)
        return EXIT_PROBLEM
