"""A child process for the backup crash tests: opens DIR read-only, says ``ready``, backs it up
into DEST and says ``done <through>``; the test SIGKILLs it at a random instant. Not a test
module."""

from __future__ import annotations

import sys

import eventpak as ep


def main() -> None:
    data_dir, dest = sys.argv[1], sys.argv[2]
    with ep.Store.open(data_dir, read_only=True) as store:
        print("ready", flush=True)
        report = store.backup(dest)
    print(f"done {report.through}", flush=True)


if __name__ == "__main__":
    main()
