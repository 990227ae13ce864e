"""Option values the command line itself can judge are usage errors (exit status 2, with the
usage line), refused before the store is opened: a kind no event can have, a sequence or a
count beyond what the store counts to (2**64 - 1)."""

from __future__ import annotations

from pathlib import Path

import eventpak as ep
import pytest
from cli_helpers import assert_usage_error, run_cli, snapshot

TOO_LARGE = str(2**64)
LARGEST = str(2**64 - 1)


@pytest.fixture
def small_store(data_dir: Path) -> Path:
    with ep.Store.open(data_dir, segment_max_bytes=4096) as store:
        for i in range(60):
            store.append(("a", "b"), "heartbeat", {"i": i, "pad": "x" * 100})
    return data_dir


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("compact", "--kind", ""), ("--kind", "must not be empty")),
        (("compact", "--kind", "heartbeat", "--kind", "k" * 300), ("--kind", "at most 255")),
        (("compact", "--keep-last", TOO_LARGE), ("--keep-last", f"at most {LARGEST}")),
        (("inspect", "--after", TOO_LARGE), ("--after", f"at most {LARGEST}")),
        (("inspect", "--clock", TOO_LARGE), ("too large",)),
        (("tail", "--kind", ""), ("must not be empty",)),
    ],
)
def test_values_out_of_range_are_usage_errors_before_the_store_is_opened(
    small_store: Path, args: tuple[str, ...], words: tuple[str, ...]
) -> None:
    before = snapshot(small_store)
    assert_usage_error(run_cli(args[0], str(small_store), *args[1:]), *words)
    assert snapshot(small_store) == before  # not even opened: no shared-mode file was made


def test_the_largest_values_are_taken(small_store: Path) -> None:
    done = run_cli("inspect", str(small_store), "--after", LARGEST)
    assert (done.returncode, done.stdout) == (0, "")
    done = run_cli("compact", str(small_store), "--kind", "heartbeat", "--keep-last", LARGEST)
    assert done.returncode == 0 and done.stdout.startswith("removed 0 events"), done.stderr
