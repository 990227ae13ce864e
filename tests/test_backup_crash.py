"""A backup process SIGKILLed at random instants, again and again into one destination: after
each kill the destination opens as the previous backup or as the new one (every event up to
its ``through``, nothing invented, ``verify()`` passes), or refuses to open with an eventpak
error; the next backup into it finishes the job."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from pathlib import Path

import eventpak as ep
import pytest
from backup_support import events_of, fill, held_through, tree
from cli_helpers import assert_refused, run_cli

CHILD = Path(__file__).with_name("backup_child.py")
KILLS = int(os.environ.get("EVENTPAK_BACKUP_KILLS", "24"))


def _run_child(origin: Path, dest: Path, kill_after: float | None) -> int | None:
    """Runs a backup in a child; SIGKILLs it ``kill_after`` seconds after it is ready.
    Returns the ``through`` it reported when it finished first."""
    return _timed_child(origin, dest, kill_after)[0]


def _timed_child(origin: Path, dest: Path, kill_after: float | None) -> tuple[int | None, float]:
    """:func:`_run_child`, and the seconds from ``ready`` to the child's end."""
    child = subprocess.Popen(
        [sys.executable, str(CHILD), str(origin), str(dest)], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    try:
        assert child.stdout.readline() == "ready\n"
        ready = time.monotonic()
        if kill_after is not None:
            time.sleep(kill_after)  # a random instant of the backup, not a synchronisation
            child.kill()
        out = child.stdout.read()
        took = time.monotonic() - ready
    finally:
        child.kill()
        child.wait()
        child.stdout.close()
    if out.startswith("done "):
        through = out.split()[1]
        return (None if through == "None" else int(through)), took
    return None, took


def _state_of(dest: Path, origin_events: list[tuple], candidates: dict[str, int | None]) -> str:
    """Which backup ``dest`` holds (a key of ``candidates``), or ``refused``."""
    try:
        copy = ep.Store.open(dest, read_only=True)
    except ep.EventpakError:
        return "refused"
    with copy:
        held = events_of(copy)
        report = copy.verify()
        assert report.ok, report.problems
    for name, through in candidates.items():
        if held == [e for e in origin_events if through is not None and e[1] <= through]:
            return name
    raise AssertionError(
        f"the destination holds {len(held)} events: neither the previous backup nor the new one"
    )


def test_a_backup_killed_at_any_instant_leaves_the_old_or_the_new_backup(tmp_path: Path) -> None:
    origin, dest = tmp_path / "data", tmp_path / "backup"
    rng = random.Random(int(os.environ.get("EVENTPAK_BACKUP_SEED", "20261202")))
    with ep.Store.open(origin, segment_max_bytes=64 << 10) as store:
        fill(store, 6000)
    # Kill instants are drawn over the time a whole backup takes in a child.
    window = _timed_child(origin, tmp_path / "probe", None)[1] * 1.2
    previous: int | None = -1  # nothing yet: a killed first backup may only refuse to open
    seen: dict[str, int] = {}
    appended = 6000
    for round_ in range(KILLS):
        with ep.Store.open(origin, segment_max_bytes=64 << 10) as store:
            fill(store, 400 + rng.randrange(1200), start=appended)
            appended = store.head() + 1
            cursor = store.cursor(ep.Region.all())
            cursor.poll_batch(rng.randrange(1, appended))
            cursor.commit(f"reader-{round_ % 3}")
            origin_events = events_of(store)
            head = store.head()
        finished = _run_child(origin, dest, rng.uniform(0, window))
        state = _state_of(dest, origin_events, {"previous": previous, "new": head})
        seen[state] = seen.get(state, 0) + 1
        if state == "new" or finished is not None:
            assert finished in (None, head)
            previous = head
    # The next backup into whatever is left finishes it.
    assert _run_child(origin, dest, None) == head
    with ep.Store.open(origin, read_only=True) as store, ep.Store.open(dest, read_only=True) as copy:
        assert events_of(copy) == held_through(store, head)
        assert copy.verify().ok
        for i in range(3):
            name = f"reader-{i}"
            if (origin / "cursors" / f"{name}.ckpt").exists():
                assert (dest / "cursors" / f"{name}.ckpt").read_bytes() == (
                    origin / "cursors" / f"{name}.ckpt"
                ).read_bytes()
    assert seen.get("new", 0) + seen.get("previous", 0) + seen.get("refused", 0) == KILLS


_KILLED_MIDWAY = """
import os, signal, sys
import eventpak as ep

def stop(done: int, total: int) -> None:
    if done > 0:  # some files are staged, none moved in yet
        os.kill(os.getpid(), signal.SIGKILL)

with ep.Store.open(sys.argv[1], read_only=True) as store:
    store.backup(sys.argv[2], progress=stop)
"""


def test_a_first_backup_killed_while_staging_refuses_to_open_until_backed_up_again(tmp_path: Path) -> None:
    origin, dest = tmp_path / "data", tmp_path / "backup"
    with ep.Store.open(origin, segment_max_bytes=16 << 10) as store:
        fill(store, 800)
    child = subprocess.run([sys.executable, "-c", _KILLED_MIDWAY, str(origin), str(dest)], check=False)
    assert child.returncode == -9
    # The lock file names the last process that took the lock: not part of what is compared.
    left = {name: body for name, body in tree(dest).items() if name != "LOCK"}
    assert ".backup.staging" in left and "segments" not in left
    # Neither a new empty store nor a read-only view of nothing: a typed refusal, and the
    # folder stays as the killed backup left it.
    with pytest.raises(ep.InvalidConfig, match="interrupted first backup"):
        ep.Store.open(dest)
    with pytest.raises(ep.InvalidConfig, match="interrupted first backup"):
        ep.Store.open(dest, read_only=True)
    for command in ("verify", "stats"):
        assert_refused(run_cli(command, str(dest)), "interrupted first backup")
    assert {name: body for name, body in tree(dest).items() if name != "LOCK"} == left
    with ep.Store.open(origin, read_only=True) as store:
        report = store.backup(dest)
        assert not report.incremental
        with ep.Store.open(dest, read_only=True) as copy:
            assert events_of(copy) == held_through(store, report.through)
            assert copy.verify().ok


@pytest.mark.parametrize("first", [True, False], ids=["first-backup", "incremental"])
def test_a_folder_a_backup_is_running_into_is_locked_not_unfinished(tmp_path: Path, first: bool) -> None:
    # Staging (a first backup) and `backup.pending` (a later one) are also what a killed
    # backup leaves; while the backup runs, it holds the folder's lock, and that is the answer.
    import threading

    origin, dest = tmp_path / "data", tmp_path / "backup"
    with ep.Store.open(origin, segment_max_bytes=16 << 10) as store:
        fill(store, 800)
        if not first:
            store.backup(dest)
            fill(store, 800)
        inside, release = threading.Event(), threading.Event()

        def hold(done: int, total: int) -> None:
            inside.set()
            release.wait(60)

        running = threading.Thread(target=lambda: store.backup(dest, progress=hold))
        running.start()
        try:
            assert inside.wait(30)
            for options in ({"read_only": True}, {}, {"read_only": True, "shared": True}):
                with pytest.raises(ep.StoreLocked):
                    ep.Store.open(dest, **options)
            if first:
                result = run_cli("stats", str(dest))
                assert result.returncode == 1 and "is locked" in result.stderr
        finally:
            release.set()
            running.join(60)
        with ep.Store.open(dest, read_only=True) as copy:
            assert copy.verify().ok


def test_a_refused_writable_open_leaves_no_process_id_in_the_lock(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with ep.Store.open(data) as store:
        fill(store, 10)
    assert (data / "LOCK").read_text() == ""  # cleared at close
    with pytest.raises(ep.InvalidConfig, match="without encryption"):
        ep.Store.open(data, encryption_key=ep.generate_encryption_key())
    assert (data / "LOCK").read_text() == ""


_READ_AS = """
import os, sys
import eventpak as ep
if len(sys.argv) > 2:  # root may write anything: read as an unprivileged user instead
    os.setgid(65534)
    os.setuid(65534)
with ep.Store.open(sys.argv[1], read_only=True) as store:
    print(store.stats()["events"])
"""


def test_a_read_only_open_locks_a_lock_file_it_may_not_write(tmp_path: Path) -> None:
    # A read-only mount, a snapshot, a user who may only read: `flock` needs no write access.
    import tempfile

    with tempfile.TemporaryDirectory() as outside:  # a folder any user may reach
        data = Path(outside) / "data"
        with ep.Store.open(data) as store:
            fill(store, 10)
        for path in [Path(outside), data, *data.rglob("*")]:
            os.chmod(path, 0o755 if path.is_dir() else 0o444)
        as_other_user = ["nobody"] if os.geteuid() == 0 else []
        child = subprocess.run(
            [sys.executable, "-c", _READ_AS, str(data), *as_other_user], capture_output=True, text=True
        )
        assert child.returncode == 0, child.stderr
        assert child.stdout.strip() == "10"
        assert (data / "LOCK").stat().st_mode & 0o777 == 0o444
        for path in [Path(outside), data, *data.rglob("*")]:
            os.chmod(path, 0o755 if path.is_dir() else 0o644)


_BACKUP_AS = """
import os, resource, signal, sys
import eventpak as ep
if sys.argv[3] == "nobody":  # root may write anything: back up as an unprivileged user instead
    os.setgid(65534)
    os.setuid(65534)
if sys.argv[3] == "small-files":  # a destination that takes no file over 64 KiB
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (64 << 10, resource.RLIM_INFINITY))
with ep.Store.open(sys.argv[1], read_only=sys.argv[3] != "small-files") as store:
    try:
        store.backup(sys.argv[2])
    except ep.EventpakError as exc:
        print(type(exc).__name__, exc)
"""


def test_a_backup_into_a_folder_it_may_not_write_is_refused_naming_it(tmp_path: Path) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as outside:  # a folder any user may reach
        data, dest = Path(outside) / "data", Path(outside) / "dest"
        with ep.Store.open(data) as store:
            fill(store, 10)
        dest.mkdir()
        for path in [Path(outside), data, *data.rglob("*")]:
            os.chmod(path, 0o755 if path.is_dir() else 0o644)
        os.chmod(dest, 0o555)
        who = "nobody" if os.geteuid() == 0 else "me"
        child = subprocess.run(
            [sys.executable, "-c", _BACKUP_AS, str(data), str(dest), who], capture_output=True, text=True
        )
        os.chmod(dest, 0o755)
        assert child.stdout.strip() == (
            f"InvalidConfig invalid config: backup destination {dest}: this process may not write there "
            "(permission denied)"
        ), child.stderr
        assert list(dest.iterdir()) == []


def test_a_backup_failing_in_its_destination_names_it_and_not_the_writer(tmp_path: Path) -> None:
    data, dest = tmp_path / "data", tmp_path / "dest"
    with ep.Store.open(data, segment_max_bytes=1 << 20) as store:
        fill(store, 3000)
    child = subprocess.run(
        [sys.executable, "-c", _BACKUP_AS, str(data), str(dest), "small-files"],
        capture_output=True,
        text=True,
    )
    assert child.stdout.startswith("StorageFailed"), child.stderr
    assert f"(backup: copying into the backup, destination {dest})" in child.stdout
    assert "the store itself is unaffected" in child.stdout and "reopen" not in child.stdout
