"""The command line (`python -m eventpak ...`): demo, stats, --version, --help, and how it refuses.

Exit status 0 on success, 1 when the store refuses (one `eventpak: ...` line on stderr), 2 for a
usage error (argparse's usage message); never a Python traceback.
"""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import eventpak as ep
import pytest

REPO = Path(__file__).parents[1]
SMALL = ("--accounts", "3", "--events", "30")


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "eventpak", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=cwd,
    )


def snapshot(path: Path) -> dict[str, tuple[bool, int, int]]:
    """Every entry under ``path`` (or ``path`` itself, if it is a file) with its kind, size and
    modification time, to show that a command changed nothing."""
    if not path.is_dir():
        stat = path.stat()
        return {".": (False, stat.st_size, stat.st_mtime_ns)}
    entries = {}
    for entry in sorted(path.rglob("*")):
        stat = entry.lstat()
        entries[str(entry.relative_to(path))] = (entry.is_dir(), stat.st_size, stat.st_mtime_ns)
    return entries


def assert_unchanged_but_shared(path: Path, before: dict[str, tuple[bool, int, int]]) -> None:
    """A read command joined the store as a shared reader: every entry that was there is
    unchanged, and the only new ones are the lock and coordination files that any shared opener
    makes (``LOCK``, which a store made before it had none, and ``shared/``)."""
    after = snapshot(path)
    assert {k: v for k, v in after.items() if k in before} == before
    added = set(after) - set(before)
    assert all(name in ("LOCK", "shared") or name.startswith("shared/") for name in added), added


def assert_refused(done: subprocess.CompletedProcess[str], status: int, *words: str) -> None:
    assert done.returncode == status, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr and "Traceback" not in done.stdout
    if status == 1:
        lines = done.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("eventpak: "), done.stderr
    else:
        assert "usage:" in done.stderr and "error:" in done.stderr, done.stderr
    for word in words:
        assert word in done.stderr, done.stderr


def test_demo_appends_reads_and_reopens(tmp_path: Path) -> None:
    data_dir = tmp_path / "demo"
    done = run_cli("demo", "--data-dir", str(data_dir), *SMALL)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert "idempotent retry returned the original receipt: True" in done.stdout
    assert "compare-and-set refused a stale write" in done.stdout
    assert "index checkpoint loaded" in done.stdout
    # After the reopen, the projection comes from the NativeCache: nothing is replayed.
    after_reopen = done.stdout.split("project after reopen (served from the cache)")[1]
    assert "(0 events applied)" in after_reopen.splitlines()[1]
    with ep.Store.open(data_dir) as store:
        # 3 account openings, 30 mixed events, 2 CAS/idempotent appends that were written.
        assert store.stats()["events"] == 3 + 30 + 2
        assert len(store.query(ep.Region.entity("acct:0").with_kind("account.opened"))) == 1


def test_demo_runs_again_on_its_own_data_dir(tmp_path: Path) -> None:
    data_dir = tmp_path / "demo"
    assert run_cli("demo", "--data-dir", str(data_dir), *SMALL).returncode == 0
    again = run_cli("demo", "--data-dir", str(data_dir), *SMALL)
    assert again.returncode == 0, again.stderr
    assert "the store already holds 35 events; appending more" in again.stdout


@pytest.mark.parametrize(("accounts", "events"), [(1, 1), (45, 45), (50, 60)])
def test_demo_gives_every_account_an_event(tmp_path: Path, accounts: int, events: int) -> None:
    # The sampled account is acct:42 (or the last one): it must have a balance to project.
    done = run_cli(
        "demo", "--data-dir", str(tmp_path / "d"), "--accounts", str(accounts), "--events", str(events)
    )
    assert done.returncode == 0, done.stderr
    with ep.Store.open(tmp_path / "d", read_only=True) as store:
        for n in range(accounts):
            assert store.query(ep.Region.entity(f"acct:{n}").with_kinds(["deposit", "withdraw"]), limit=1)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("--accounts", "0"), ("--accounts", "at least 1")),
        (("--events", "0"), ("--events", "at least 1")),
        (("--accounts", "-5"), ("--accounts", "at least 1")),
        (("--events", "-1"), ("--events", "at least 1")),
        (("--accounts", "many"), ("--accounts", "whole number")),
        (("--events", "1e3"), ("--events", "whole number")),
        (("--events", "10", "--accounts", "50"), ("--events (10) must be at least --accounts (50)",)),
    ],
)
def test_demo_refuses_bad_sizes_with_a_usage_message(
    tmp_path: Path, args: tuple[str, ...], words: tuple[str, ...]
) -> None:
    data_dir = tmp_path / "demo"
    done = run_cli("demo", "--data-dir", str(data_dir), *args)
    assert_refused(done, 2, "usage: python -m eventpak demo", *words)
    assert not data_dir.exists()


def test_demo_refuses_a_data_dir_that_is_a_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("mine\n")
    before = snapshot(tmp_path)
    done = run_cli("demo", "--data-dir", str(path), *SMALL)
    assert_refused(done, 2, "is a file, not a directory")
    assert snapshot(tmp_path) == before


def test_demo_refuses_a_directory_of_other_files(tmp_path: Path) -> None:
    (tmp_path / "project").mkdir()
    (tmp_path / "project" / "main.py").write_text("print('hi')\n")
    before = snapshot(tmp_path)
    done = run_cli("demo", "--data-dir", str(tmp_path / "project"), *SMALL)
    assert_refused(done, 2, "holds files but no eventpak store")
    assert snapshot(tmp_path) == before


def test_demo_uses_an_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    done = run_cli("demo", "--data-dir", str(tmp_path / "empty"), *SMALL)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "empty" / "segments").is_dir()


def test_demo_on_a_locked_store_exits_1(tmp_path: Path) -> None:
    with ep.Store.open(tmp_path / "d") as store:
        store.append(("a", "s"), "k", 1)
        done = run_cli("demo", "--data-dir", str(tmp_path / "d"), *SMALL)
        assert_refused(done, 1, "locked")
        assert store.stats()["events"] == 1


def test_demo_where_no_store_can_be_created_exits_1(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    done = run_cli("demo", "--data-dir", str(tmp_path / "file" / "data"), *SMALL)
    assert_refused(done, 1, "Not a directory")


def test_stats_prints_the_event_count(tmp_path: Path) -> None:
    with ep.Store.open(tmp_path / "d") as store:
        store.append(ep.Coordinate("a", "s"), "k", 1)
    before = snapshot(tmp_path / "d")
    done = run_cli("stats", str(tmp_path / "d"))
    assert done.returncode == 0, done.stderr
    assert "events: 1" in done.stdout
    assert_unchanged_but_shared(tmp_path / "d", before)  # read-only: nothing changed


def test_stats_of_an_empty_store_prints_zeros(tmp_path: Path) -> None:
    with ep.Store.open(tmp_path / "d"):
        pass
    done = run_cli("stats", str(tmp_path / "d"))
    assert done.returncode == 0, done.stderr
    assert "events: 0" in done.stdout


def test_stats_reads_the_format_v1_fixture_without_changing_it(tmp_path: Path) -> None:
    fixture = tmp_path / "v1_store"
    shutil.copytree(REPO / "tests" / "fixtures" / "v1_store", fixture)
    before = snapshot(fixture)
    done = run_cli("stats", str(fixture))
    assert done.returncode == 0, done.stderr
    assert "events: 27" in done.stdout
    assert_unchanged_but_shared(fixture, before)


@pytest.mark.parametrize("kind", ["empty dir", "dir of other files", "file", "missing", "segments folder"])
def test_stats_refuses_what_is_not_a_data_dir(tmp_path: Path, kind: str) -> None:
    target = tmp_path / "target"
    if kind == "empty dir":
        target.mkdir()
    elif kind == "dir of other files":
        target.mkdir()
        (target / "notes.txt").write_text("mine\n")
        (target / "cursors").mkdir()
    elif kind == "file":
        target.write_text("mine\n")
    elif kind == "segments folder":
        with ep.Store.open(tmp_path / "store") as store:
            store.append(("a", "s"), "k", 1)
        target = tmp_path / "store" / "segments"
    before = snapshot(tmp_path)
    done = run_cli("stats", str(target))
    assert_refused(done, 1, str(target))
    assert done.stdout == ""
    assert snapshot(tmp_path) == before  # nothing created, nothing changed


def test_stats_of_a_locked_store_exits_1(tmp_path: Path) -> None:
    with ep.Store.open(tmp_path / "d"):
        done = run_cli("stats", str(tmp_path / "d"))
    assert_refused(done, 1, "locked")


def test_stats_and_verify_join_a_store_that_running_processes_share(tmp_path: Path) -> None:
    with ep.Store.open(tmp_path / "d", shared=True) as store:
        for i in range(3):
            store.append(ep.Coordinate("a", "s"), "k", i)
        stats = run_cli("stats", str(tmp_path / "d"))
        verify = run_cli("verify", str(tmp_path / "d"))
        store.append(ep.Coordinate("a", "s"), "k", "the service goes on")
    assert stats.returncode == 0, stats.stderr
    assert "events: 3" in stats.stdout
    assert verify.returncode == 0, verify.stderr
    assert "ok: no problem found" in verify.stdout


def test_version() -> None:
    done = run_cli("--version")
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"eventpak {ep.__version__}\n"


COMMANDS = ["demo", "stats", "inspect", "tail", "verify", "checkpoints", "dead-letters", "bench"]
# What each command's help must name, beyond the usage line.
HELP_WORDS = {
    "demo": ("--accounts", "--data-dir"),
    "stats": ("DIR", "--json"),
    "inspect": ("DIR", "--json", "--entity", "--exact", "--scope", "--kind", "--kind-prefix", "--clock"),
    "tail": ("DIR", "-f", "-n", "--json", "--entity", "130", "143"),
    "verify": ("DIR", "--json", "exit status 1"),
    "checkpoints": ("DIR", "--json", "lag"),
    "dead-letters": ("DIR", "CHECKPOINT_ID", "--json", "traceback"),
    "bench": ("DIR", "--events", "--durable-events", "--json", "temporary"),
}


@pytest.mark.parametrize("script", [False, True], ids=["python -m", "console script"])
@pytest.mark.parametrize("command", [(), *((c,) for c in COMMANDS)], ids=lambda c: " ".join(c) or "eventpak")
def test_every_command_has_help(command: tuple[str, ...], script: bool) -> None:
    if script:
        executable = Path(sys.executable).parent / "eventpak"
        assert executable.is_file(), "the console script is not installed (run `make build`)"
        done = subprocess.run(
            [str(executable), *command, "--help"], capture_output=True, text=True, timeout=60, check=False
        )
        prog = "eventpak"
    else:
        done = run_cli(*command, "--help")
        prog = "python -m eventpak"
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"usage: {prog} {' '.join(command)}".rstrip())
    text = " ".join(done.stdout.split())
    # Every help ends with the exit statuses.
    assert "Exit status: 0 on success, 1 when the store refuses or a problem is found, 2" in text
    for word in HELP_WORDS.get(command[0] if command else "", ()):
        assert word in text, (command, word)
    if command == ("demo",):
        # The rule for fewer events than accounts is stated (refused, not adjusted).
        assert "must be at least --accounts" in text
    if command == ():
        assert all(c in done.stdout for c in COMMANDS) and "--version" in done.stdout


@pytest.mark.parametrize("args", [(), ("frobnicate",), ("stats",), ("stats", "a", "b"), ("demo", "--nope")])
def test_usage_errors_exit_2(args: tuple[str, ...], tmp_path: Path) -> None:
    done = run_cli(*args, cwd=tmp_path)
    assert_refused(done, 2)
    assert list(tmp_path.iterdir()) == []


def test_console_script_entry_point() -> None:
    """``eventpak COMMAND`` works once installed: pyproject names ``eventpak.cli:main``."""
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"]
    module, _, attribute = scripts["eventpak"].partition(":")
    main = getattr(importlib.import_module(module), attribute)
    assert callable(main)
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    # The installed script, where this environment has it (after `make build`).
    script = Path(sys.executable).parent / "eventpak"
    if script.is_file() and os.access(script, os.X_OK):
        done = subprocess.run(
            [str(script), "--version"], capture_output=True, text=True, timeout=60, check=False
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout == f"eventpak {ep.__version__}\n"


def test_main_returns_the_exit_status(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from eventpak.cli import main

    assert main(["stats", str(tmp_path / "missing")]) == 1
    assert capsys.readouterr().err == f"eventpak: {tmp_path / 'missing'}: no such directory\n"
    with ep.Store.open(tmp_path / "d"):
        pass
    assert main(["stats", str(tmp_path / "d")]) == 0
    assert "events: 0" in capsys.readouterr().out


def test_a_payload_nested_past_what_python_recursion_allows_is_shown_with_a_note() -> None:
    # The decoder reads up to 1,024 levels (bytes another msgpack writer made); the encoder
    # writes at most 256. Past 300 the CLI shows a note instead of failing on recursion.
    import json

    from eventpak._native import decode_payload
    from eventpak.cli._base import SHOWN_LEVELS, to_json

    deep = decode_payload(b"\x91" * 1000 + b"\x01")
    shown = json.dumps(to_json(deep))
    assert shown.count("[") == SHOWN_LEVELS + 1
    assert f'"$unshown": "nested deeper than {SHOWN_LEVELS} levels"' in shown
    kept = [[[1]]]
    assert to_json(kept) == kept
