"""A data dir the user may read but not write (a backup or a service's store inspected by
another user): the command refuses in one line naming the permission problem and what the
command needs, without the advice of a failed writer ("reopen the store to recover").

Root passes permission checks through capabilities, so as root the command runs in a child
that first drops CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH and CAP_FOWNER from its own effective
and permitted sets (which any process may do, unlike changing the bounding set) and then runs
the command line in the same process: an exec would give root its capabilities back. Any
other user is simply refused by the modes."""

from __future__ import annotations

import errno
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import eventpak as ep
import pytest
from cli_helpers import TESTS
from eventpak.cli._base import READER_NEEDS, open_refusal

WITHOUT_WRITE = stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH
# Run as `python -c UNPRIVILEGED ARGS...`: drops root's overriding capabilities, then runs
# the command line in their absence, in this process.
UNPRIVILEGED = """
import ctypes, os, sys
if os.geteuid() == 0:
    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]
    class Data(ctypes.Structure):
        _fields_ = [(name, ctypes.c_uint32) for name in ("effective", "permitted", "inheritable")]
    libc = ctypes.CDLL(None, use_errno=True)
    header, data = Header(0x20080522, 0), (Data * 2)()  # _LINUX_CAPABILITY_VERSION_3
    if libc.capget(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capget")
    drop = ~((1 << 1) | (1 << 2) | (1 << 3))  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER
    data[0].effective &= drop
    data[0].permitted &= drop
    if libc.capset(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capset")
from eventpak.cli import main
sys.exit(main(sys.argv[1:], prog="eventpak"))
"""


def _run_unprivileged(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", UNPRIVILEGED, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=TESTS,
    )


@pytest.fixture
def unwritable(data_dir: Path) -> Iterator[Path]:
    """A store whose data dir and files may be read but not written; writable again after."""
    with ep.Store.open(data_dir) as store:
        store.append(("a", "b"), "k", {"x": 1})
    paths = [data_dir, *data_dir.rglob("*")]
    modes = {path: path.stat().st_mode for path in paths}
    for path in paths:
        path.chmod(modes[path] & ~WITHOUT_WRITE)
    yield data_dir
    for path in paths:
        path.chmod(modes[path])


@pytest.mark.parametrize("command", ["stats", "inspect", "verify", "checkpoints", "dead-letters"])
def test_a_read_command_names_the_permission_problem(unwritable: Path, command: str) -> None:
    done = _run_unprivileged(command, str(unwritable))
    assert done.returncode == 1 and done.stdout == "", (done.returncode, done.stdout, done.stderr)
    assert done.stderr == (
        f"eventpak: cannot open {unwritable}: Permission denied (opening the lock file): "
        f"{READER_NEEDS}; run it as a user who may write {unwritable} (such as the service's)\n"
    )


def test_a_backup_and_a_compaction_name_it_too(unwritable: Path, tmp_path: Path) -> None:
    done = _run_unprivileged("backup", str(unwritable), str(tmp_path / "copy"))
    assert done.returncode == 1 and "Permission denied (opening the lock file)" in done.stderr
    assert "reopen" not in done.stderr and len(done.stderr.splitlines()) == 1
    assert not (tmp_path / "copy").exists()
    done = _run_unprivileged("compact", str(unwritable), "--kind", "k")
    assert done.returncode == 1, done.stderr
    assert done.stderr == (
        f"eventpak: cannot open {unwritable}: Permission denied (opening the lock file): compact "
        f"changes the store in place; run it as a user who may write {unwritable} (such as the "
        "service's)\n"
    )


@pytest.mark.parametrize(
    ("code", "ending"),
    [
        (errno.EPERM, "Operation not permitted (creating the shared dir): NEEDS; run it as a user "),
        (errno.EROFS, "Read-only file system (creating the shared dir): NEEDS"),
        (errno.EIO, "Input/output error (creating the shared dir)"),
        (None, "the disk went away (creating the shared dir)"),
    ],
)
def test_the_refusal_of_an_open_that_failed_on_storage(code: int | None, ending: str) -> None:
    failed = ep.StorageFailed("creating the shared dir", code, "the disk went away", "/srv/d")
    message = str(open_refusal(failed, "/srv/d", "NEEDS"))
    assert message.startswith(f"cannot open /srv/d: {ending}")
    assert message.endswith("(such as the service's)") == (code in (errno.EACCES, errno.EPERM))
    assert "reopen" not in message
