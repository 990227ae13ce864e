"""The command line on a real terminal: commands run inside tmux (a 120x40 pane) and the screen is
read back with ``tmux capture-pane``. Checked: the ``inspect`` and ``stats`` tables (box
characters, columns, values), ``verify``'s progress bar in its final state, and the plain
fallback on a terminal without rich.

tmux is required: the test skips only where no tmux can be found, and fails instead under CI
(``CI`` set), whose script installs it.
"""

from __future__ import annotations

import itertools
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import eventpak as ep
import pytest
from cli_helpers import SAFETY_NET_S
from conftest import read_frames, segment_paths

WIDTH, HEIGHT = 120, 40
_sessions = itertools.count()


@pytest.fixture
def terminal() -> Iterator[Callable[[list[str]], str]]:
    """``terminal(argv)`` runs ``argv`` in a fresh tmux pane and returns the screen once it has
    exited, followed by a line ``exit=<status>``."""
    tmux = shutil.which("tmux")
    if tmux is None:
        if os.environ.get("CI"):
            pytest.fail("tmux is not installed: .ci/run installs it")
        pytest.skip("tmux is not installed")
    sockets: list[str] = []

    def run(argv: list[str]) -> str:
        # A server of its own for each run: a second session on a server whose last session
        # was just killed can meet that server while it exits ("server exited unexpectedly").
        socket = f"eventpak-test-{os.getpid()}-{next(_sessions)}"
        sockets.append(socket)
        # The pane signals "done" once the command has exited and waits (holding the screen as
        # it is) until the server is killed at teardown.
        # The command sees the pane's size, not a COLUMNS or LINES its shell may have set.
        script = (
            f"env -u COLUMNS -u LINES {shlex.join(argv)}; echo exit=$?; "
            f"{tmux} -L {socket} wait-for -S done; {tmux} -L {socket} wait-for release"
        )
        base = [tmux, "-L", socket]
        subprocess.run(
            [
                *base,
                "-f",
                "/dev/null",
                "new-session",
                "-d",
                "-s",
                "cli",
                "-x",
                str(WIDTH),
                "-y",
                str(HEIGHT),
                script,
            ],
            check=True,
            timeout=SAFETY_NET_S,
        )
        subprocess.run([*base, "wait-for", "done"], check=True, timeout=SAFETY_NET_S)
        screen = subprocess.run(
            [*base, "capture-pane", "-p", "-t", "cli"],
            check=True,
            capture_output=True,
            text=True,
            timeout=SAFETY_NET_S,
        ).stdout
        return screen

    yield run
    for socket in sockets:
        subprocess.run(
            [tmux, "-L", socket, "kill-server"], check=False, capture_output=True, timeout=SAFETY_NET_S
        )


def eventpak(*args: str) -> list[str]:
    return [sys.executable, "-m", "eventpak", *args]


def without_rich(*args: str) -> list[str]:
    """The command line with ``import rich`` failing, as where the cli extra is not installed."""
    code = (
        "import sys; sys.modules['rich'] = None; from eventpak.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    return [sys.executable, "-c", code, *args]


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    data_dir = tmp_path / "data"
    with ep.Store.open(data_dir) as store:
        store.append(("acct:1", "eu"), "opened", {"owner": "ann"})
        store.append(("acct:1", "eu"), "deposit", {"amount": 10})
        store.append(("acct:2", "us"), "opened", {"owner": "bob", "note": "x" * 300})
        store.append(("acct:1", "eu"), "withdraw", {"amount": 4})
    return data_dir


def table_rows(screen: str) -> list[list[str]]:
    """The body rows of a rich table on the screen, as lists of stripped cells."""
    return [
        [cell.strip() for cell in line.split("│")[1:-1]]
        for line in screen.splitlines()
        if line.startswith("│")
    ]


def test_inspect_draws_a_table(terminal: Callable[[list[str]], str], data_dir: Path) -> None:
    screen = terminal(eventpak("inspect", str(data_dir)))
    lines = screen.splitlines()
    assert lines[0].startswith("┏━") and lines[0].rstrip().endswith("┓")
    header = [cell.strip() for cell in lines[1].split("┃")[1:-1]]
    assert header == ["seq", "time (UTC)", "entity", "scope", "kind", "clock", "payload"]
    assert lines[2].startswith("┡━")
    rows = table_rows(screen)
    assert [row[0] for row in rows] == ["0", "1", "2", "3"]
    assert [row[2:6] for row in rows] == [
        ["acct:1", "eu", "opened", "0"],
        ["acct:1", "eu", "deposit", "1"],
        ["acct:2", "us", "opened", "0"],
        ["acct:1", "eu", "withdraw", "2"],
    ]
    assert rows[0][6] == '{"owner": "ann"}'
    # The long payload is cut with an ellipsis to fit the terminal; every row is one screen line.
    assert rows[2][6].startswith('{"owner": "bob", "note": "xxx') and rows[2][6].endswith("…")
    assert all(len(line) <= WIDTH for line in lines)
    assert any(line.startswith("└─") for line in lines)
    assert "exit=0" in screen


def test_inspect_filters_on_a_terminal(terminal: Callable[[list[str]], str], data_dir: Path) -> None:
    screen = terminal(eventpak("inspect", str(data_dir), "--entity", "acct:1", "--kind", "deposit"))
    assert [row[:5] for row in table_rows(screen)] == [
        ["1", row_time(data_dir, 1), "acct:1", "eu", "deposit"]
    ]
    assert "exit=0" in screen


def row_time(data_dir: Path, sequence: int) -> str:
    with ep.Store.open(data_dir, read_only=True) as store:
        (event,) = store.query(ep.Region.all(), after=sequence - 1 if sequence else None, limit=1)
    return event.timestamp.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def test_stats_draws_a_table(terminal: Callable[[list[str]], str], data_dir: Path) -> None:
    screen = terminal(eventpak("stats", str(data_dir)))
    assert "┃ statistic" in screen and "┃ value" in screen
    stats = {row[0]: row[1] for row in table_rows(screen)}
    assert (stats["events"], stats["entities"], stats["kinds"], stats["segments"]) == ("4", "2", "3", "1")
    assert "exit=0" in screen


def test_checkpoints_draws_a_lag_table(terminal: Callable[[list[str]], str], data_dir: Path) -> None:
    with ep.Store.open(data_dir) as store:
        cursor = store.cursor(ep.Region.entity("acct:1"))
        assert len(cursor.poll_batch(2)) == 2
        cursor.commit("mailer")
        store.cursor(ep.Region.all().with_kind("opened")).commit("welcome")
    screen = terminal(eventpak("checkpoints", str(data_dir)))
    lines = screen.splitlines()
    assert lines[0].startswith("┏━") and lines[2].startswith("┡━")
    header = [cell.strip() for cell in lines[1].split("┃")[1:-1]]
    assert header == ["checkpoint", "region", "position", "saved (UTC)", "lag events", "lag seconds"]
    rows = table_rows(screen)
    assert [row[:3] + row[4:5] for row in rows] == [
        ["mailer", "entity=acct:1|scope=*|kind=*|clock=*", "1", "1"],
        ["welcome", "entity=*|scope=*|kind=opened|clock=*", "-", "2"],
    ]
    assert all(float(row[5]) > 0 for row in rows)
    assert "exit=0" in screen


def test_verify_leaves_its_progress_bar_complete(
    terminal: Callable[[list[str]], str], data_dir: Path
) -> None:
    screen = terminal(eventpak("verify", str(data_dir)))
    (bar,) = [line for line in screen.splitlines() if line.startswith("verify")]
    assert "100%" in bar and "━━━━━" in bar
    size = sum(p.stat().st_size for p in segment_paths(data_dir))
    assert f"{size / 1000:.1f}/{size / 1000:.1f} kB" in bar  # rich's units: done/total
    assert "4 events, 1 segment(s)" in screen and "ok: no problem found" in screen
    assert "exit=0" in screen


def test_verify_of_a_damaged_store_on_a_terminal(
    terminal: Callable[[list[str]], str], data_dir: Path
) -> None:
    segment = segment_paths(data_dir)[0]
    frame = read_frames(segment)[1]
    data = bytearray(segment.read_bytes())
    data[frame.end - 1] ^= 0x5A
    segment.write_bytes(bytes(data))
    screen = terminal(eventpak("verify", str(data_dir)))
    # Open checks every frame, so the damaged log refuses to open: that is the one problem.
    assert "problem:" in screen
    assert "refuses to open" in screen and "damaged: 1 problem(s)" in screen
    assert "exit=1" in screen


def test_without_rich_a_terminal_gets_plain_lines_and_a_plain_bar(
    terminal: Callable[[list[str]], str], data_dir: Path
) -> None:
    screen = terminal(without_rich("inspect", str(data_dir), "--kind", "opened"))
    assert "┃" not in screen and "│" not in screen
    lines = [line.split() for line in screen.splitlines() if line[:1].isdigit()]
    assert [(f[0], f[3], f[4], f[5]) for f in lines] == [
        ("0", "acct:1", "eu", "opened"),
        ("2", "acct:2", "us", "opened"),
    ]
    screen = terminal(without_rich("verify", str(data_dir)))
    assert "[##############################] 100%" in screen
    assert "ok: no problem found" in screen and "exit=0" in screen
