"""The command line with a standard stream closed (``>&-``, as some daemons and cron wrappers
start programs): no traceback, ever. Output that cannot be written ends the command as a
closed pipe does (quietly, exit status 1); a command that has nothing to print finishes as
usual; with stderr closed, error messages are dropped, never moved to stdout."""

from __future__ import annotations

import subprocess
from pathlib import Path

import eventpak as ep
import pytest
from cli_helpers import cli_command


def _run_closed(stream: int, *args: str) -> subprocess.CompletedProcess[str]:
    """Runs the command with file descriptor ``stream`` (1 or 2) closed, through the shell's
    ``N>&-``; the other one is captured."""
    shell = f'exec "$@" {stream}>&-'
    return subprocess.run(
        ["sh", "-c", shell, "sh", *cli_command(*args)],
        stdout=subprocess.PIPE if stream == 2 else None,
        stderr=subprocess.PIPE if stream == 1 else None,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def one_event(data_dir: Path) -> Path:
    with ep.Store.open(data_dir, segment_max_bytes=4096) as store:
        store.append(("a", "b"), "k", {"x": 1})
    return data_dir


@pytest.mark.parametrize(
    "args",
    [("stats",), ("stats", "--json"), ("inspect",), ("tail",), ("verify",), ("verify", "--json")],
)
def test_output_to_a_closed_stdout_ends_quietly_with_status_1(one_event: Path, args: tuple[str, ...]) -> None:
    done = _run_closed(1, args[0], str(one_event), *args[1:])
    assert (done.returncode, done.stderr) == (1, "")


def test_a_command_with_nothing_to_print_finishes_as_usual(one_event: Path) -> None:
    done = _run_closed(1, "inspect", str(one_event), "--kind", "none-of-these")
    assert (done.returncode, done.stderr) == (0, "")
    done = _run_closed(1, "dead-letters", str(one_event))
    assert (done.returncode, done.stderr) == (0, "")


def test_a_closed_stdout_keeps_the_error_and_the_store_intact(one_event: Path, tmp_path: Path) -> None:
    done = _run_closed(1, "verify", str(tmp_path / "missing"))
    assert done.returncode == 1
    assert done.stderr == f"eventpak: {tmp_path / 'missing'}: no such directory\n"
    done = _run_closed(1, "compact", str(one_event), "--kind", "k")  # the report cannot be printed
    assert (done.returncode, done.stderr) == (1, "")
    with ep.Store.open(one_event, read_only=True) as store:
        assert store.verify().ok and len(store.query(ep.Region.all())) == 1


def test_with_stderr_closed_errors_go_nowhere_and_not_to_stdout(one_event: Path, tmp_path: Path) -> None:
    done = _run_closed(2, "stats", str(tmp_path / "missing"))
    assert (done.returncode, done.stdout) == (1, "")
    done = _run_closed(2, "inspect", str(one_event), "--limit", "0")  # a usage error
    assert (done.returncode, done.stdout) == (2, "")
    done = _run_closed(2, "stats", str(one_event), "--json")
    assert done.returncode == 0 and '"visible_events": 1' in done.stdout
