"""Helpers of the command-line tests (tests/test_cli*.py); not a test module.

Commands run in real subprocesses (``python -m eventpak`` or the installed console script) with
their output captured, i.e. not on a terminal. Long-running ones (``tail -f``) and the writer
process (tests/cli_writer.py) are read line by line through a thread; a wait for a line has a
generous safety net (``SAFETY_NET_S``) that fails the test as a hang, never a pass/fail threshold.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import pytest

SAFETY_NET_S = 60.0
TESTS = Path(__file__).resolve().parent
SCRIPT = Path(sys.executable).parent / "eventpak"
ANSI_ESCAPE = "\x1b"


def cli_command(*args: str, script: bool = False) -> list[str]:
    """The command line running eventpak: ``python -m eventpak`` or the console script."""
    if script:
        if not (SCRIPT.is_file() and os.access(SCRIPT, os.X_OK)):
            pytest.fail(f"the console script {SCRIPT} is not installed (run `make build`)")
        return [str(SCRIPT), *args]
    return [sys.executable, "-m", "eventpak", *args]


def run_cli(
    *args: str, script: bool = False, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        cli_command(*args, script=script),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
        cwd=cwd,
    )
    assert "Traceback" not in done.stderr, done.stderr  # (a dead letter's JSON holds one on stdout)
    # Not a terminal: plain lines, never an escape sequence.
    assert ANSI_ESCAPE not in done.stdout and ANSI_ESCAPE not in done.stderr
    return done


def json_lines(text: str) -> list[Any]:
    return [json.loads(line) for line in text.splitlines()]


def snapshot(path: Path, *, data_only: bool = False) -> dict[str, tuple[bool, int, int]]:
    """Every entry under ``path`` (or ``path`` itself) with its kind, size and mtime; with
    ``data_only``, without the shared-mode coordination files (``shared/``: a shared opener,
    even a read-only one, writes its mapped page)."""
    if not path.exists():
        return {}
    if not path.is_dir():
        stat = path.stat()
        return {".": (False, stat.st_size, stat.st_mtime_ns)}
    entries = {}
    for entry in sorted(path.rglob("*")):
        name = str(entry.relative_to(path))
        if data_only and (name == "shared" or name.startswith("shared/")):
            continue
        stat = entry.lstat()
        entries[name] = (entry.is_dir(), stat.st_size, stat.st_mtime_ns)
    return entries


def assert_refused(done: subprocess.CompletedProcess[str], *words: str) -> None:
    """Exit status 1 with one ``eventpak: ...`` line on stderr naming ``words``."""
    assert done.returncode == 1, (done.returncode, done.stdout, done.stderr)
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("eventpak: "), done.stderr
    for word in words:
        assert word in done.stderr, done.stderr


def assert_usage_error(done: subprocess.CompletedProcess[str], *words: str) -> None:
    """Exit status 2 with argparse's usage line and error on stderr."""
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    assert "usage:" in done.stderr and "error:" in done.stderr, done.stderr
    for word in words:
        assert word in done.stderr, done.stderr


class Lines:
    """The lines a process writes to one of its pipes, gathered by a thread."""

    def __init__(self, stream: IO[str]) -> None:
        self.queue: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        self.thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self.thread.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self.queue.put(line.rstrip("\n"))
        self.queue.put(None)

    def next(self, what: str = "a line") -> str:
        try:
            line = self.queue.get(timeout=SAFETY_NET_S)
        except queue.Empty:
            pytest.fail(f"timed out after {SAFETY_NET_S}s waiting for {what}; so far: {self.seen}")
        if line is None:
            pytest.fail(f"the stream ended while waiting for {what}; so far: {self.seen}")
        self.seen.append(line)
        return line

    def take(self, n: int, what: str = "lines") -> list[str]:
        return [self.next(f"{what} ({i + 1} of {n})") for i in range(n)]

    def rest(self) -> list[str]:
        """Every line up to the end of the stream (the process has exited or is exiting)."""
        lines = []
        while (line := self.queue.get(timeout=SAFETY_NET_S)) is not None:
            lines.append(line)
        return lines


class Writer:
    """A process that shares the data dir and appends on order (tests/cli_writer.py)."""

    def __init__(self, data_dir: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(TESTS / "cli_writer.py"), str(data_dir)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.lines = Lines(self.proc.stdout)
        assert self.lines.next("the writer's ready line") == "ready", self.lines.seen

    def append(self, entity: str, kind: str, count: int, scope: str = "s") -> list[int]:
        """Appends ``count`` events in the writer process; returns their global sequences."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"append {entity} {scope} {kind} {count}\n")
        self.proc.stdin.flush()
        answer = self.lines.next("the writer's answer")
        assert answer.startswith("appended "), (answer, self.stderr())
        return [int(seq) for seq in answer.removeprefix("appended ").split(",")]

    def checkpoint(self, checkpoint_id: str, entity: str, count: int) -> int:
        """Moves checkpoint ``checkpoint_id`` (of entity ``entity``'s region) ``count`` events
        on, in the writer process; returns its position."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"checkpoint {checkpoint_id} {entity} {count}\n")
        self.proc.stdin.flush()
        answer = self.lines.next("the writer's answer")
        assert answer.startswith("committed "), (answer, self.stderr())
        return int(answer.removeprefix("committed "))

    def stderr(self) -> str:
        return "" if self.proc.poll() is None or self.proc.stderr is None else self.proc.stderr.read()

    def close(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.write("quit\n")
            self.proc.stdin.close()
            self.proc.wait(timeout=SAFETY_NET_S)
        assert self.proc.returncode == 0, self.stderr()


def start_writers() -> Iterator[Callable[[Path], Writer]]:
    """The body of a ``writers`` fixture: ``writers(data_dir)`` starts a Writer; any still
    running at teardown is killed."""
    started: list[Writer] = []

    def start(data_dir: Path) -> Writer:
        writer = Writer(data_dir)
        started.append(writer)
        return writer

    yield start
    for writer in started:
        if writer.proc.poll() is None:
            writer.proc.kill()
            writer.proc.wait()
