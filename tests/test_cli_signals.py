"""Ctrl-C and SIGTERM during the commands that commit (``compact``, ``backup``,
``rotate-key``): before the point of no return they stop the command with nothing changed
(exit status 130 or 143); once it has committed, the command finishes, prints its report and
exits 0, with one line on stderr saying so, instead of claiming it was interrupted.

The commands run in this process (``eventpak.cli.main``) with the store method wrapped so
that the signal is raised at a known point: from the engine's first progress call (before the
commit), or right after the method returned (past the commit)."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import eventpak as ep
import pytest
from eventpak.cli import main

R = ep.Region
HEARTBEATS = R.all().with_kind("heartbeat")


def _store(data_dir: Path) -> int:
    """A store whose sealed segments hold heartbeats; returns how many events it has."""
    with ep.Store.open(data_dir, segment_max_bytes=4096) as store:
        for i in range(120):
            store.append((f"e{i % 4}", "s"), "heartbeat" if i % 2 else "deposit", {"i": i})
        return len(store.query(R.all()))


def _signal_after(monkeypatch: pytest.MonkeyPatch, method: str, signum: int) -> None:
    """``Store.<method>`` raises ``signum`` right after it returned: the operation committed."""
    real = getattr(ep.Store, method)

    def committed_then_signalled(self: ep.Store, *args: Any, **kwargs: Any) -> Any:
        result = real(self, *args, **kwargs)
        signal.raise_signal(signum)
        return result

    monkeypatch.setattr(ep.Store, method, committed_then_signalled)


def _signal_at_first_progress(monkeypatch: pytest.MonkeyPatch, method: str, signum: int) -> None:
    """``Store.<method>`` raises ``signum`` from the engine's first progress call."""
    real = getattr(ep.Store, method)

    def signalled_early(self: ep.Store, *args: Any, progress: Callable[[int, int], None], **kw: Any) -> Any:
        calls = []

        def first(done: int, total: int) -> None:
            calls.append(done)
            if len(calls) == 1:
                signal.raise_signal(signum)
            progress(done, total)

        return real(self, *args, progress=first, **kw)

    monkeypatch.setattr(ep.Store, method, signalled_early)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_compact_interrupted_after_its_commit_finishes_and_reports(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], signum: int
) -> None:
    before = _store(data_dir)
    _signal_after(monkeypatch, "compact", signum)
    assert main(["compact", str(data_dir), "--kind", "heartbeat"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("removed ") and " events, kept " in out
    assert err == "eventpak: the compaction had committed when the signal came; it was finished\n"
    removed = int(out.split()[1])
    with ep.Store.open(data_dir, read_only=True) as store:
        assert removed > 0 and len(store.query(R.all())) == before - removed
        assert store.verify().ok


@pytest.mark.parametrize(
    ("signum", "status", "message"),
    [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")],
    ids=["SIGINT", "SIGTERM"],
)
def test_compact_interrupted_before_its_commit_changes_nothing(
    data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    signum: int,
    status: int,
    message: str,
) -> None:
    before = _store(data_dir)
    _signal_at_first_progress(monkeypatch, "compact", signum)
    assert main(["compact", str(data_dir), "--kind", "heartbeat", "--json"]) == status
    assert capsys.readouterr() == ("", f"eventpak: {message}\n")
    with ep.Store.open(data_dir, read_only=True) as store:
        assert len(store.query(R.all())) == before


def test_backup_interrupted_once_complete_reports_it(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    events = _store(data_dir)
    dest = tmp_path / "backup"
    _signal_after(monkeypatch, "backup", signal.SIGINT)
    assert main(["backup", str(data_dir), str(dest), "--json"]) == 0
    out, err = capsys.readouterr()
    assert f'"events": {events}' in out
    assert err == "eventpak: the backup had committed when the signal came; it was finished\n"
    with ep.Store.open(dest, read_only=True) as copy:
        assert len(copy.query(R.all())) == events and copy.verify().ok


def test_backup_interrupted_before_its_commit_leaves_no_backup(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _store(data_dir)
    dest = tmp_path / "backup"
    _signal_at_first_progress(monkeypatch, "backup", signal.SIGINT)
    assert main(["backup", str(data_dir), str(dest)]) == 130
    assert capsys.readouterr() == ("", "eventpak: interrupted\n")
    assert not dest.exists()


def test_rotate_key_interrupted_during_the_rotation_says_which_key_opens_the_store(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    old, new = ep.generate_encryption_key(), ep.generate_encryption_key()
    with ep.Store.open(data_dir, encryption_key=old) as store:
        store.append(("user:1", "s"), "profile", {"email": "a@example.com"})
    monkeypatch.setenv("EVENTPAK_ENCRYPTION_KEY", old.hex())
    monkeypatch.setenv("EVENTPAK_NEW_ENCRYPTION_KEY", new.hex())
    _signal_after(monkeypatch, "rotate_encryption_key", signal.SIGINT)
    assert main(["rotate-key", str(data_dir)]) == 0
    out, err = capsys.readouterr()
    assert "wrapped by the new key" in out
    assert err == "eventpak: the key rotation had committed when the signal came; it was finished\n"
    with ep.Store.open(data_dir, read_only=True, encryption_key=new) as store:
        assert store.query(R.all())[0].payload == {"email": "a@example.com"}


def test_the_signal_handlers_are_restored(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _store(data_dir)
    handlers = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))
    assert main(["compact", str(data_dir), "--kind", "heartbeat"]) == 0
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == handlers
    capsys.readouterr()
