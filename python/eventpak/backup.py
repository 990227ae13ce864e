"""The report of :meth:`Store.backup`, the online backup of a data dir."""

from __future__ import annotations

import os
from dataclasses import dataclass

from ._native import NativeStore
from .verify import Progress, check_progress

__all__ = ["BackupReport", "backup_store"]


@dataclass(frozen=True)
class BackupReport:
    """What :meth:`Store.backup` copied.

    ``through`` is the newest global sequence the backup holds (``None`` when it holds no
    event): every event up to it is in the backup and none after it. ``events`` counts the
    visible events it holds, ``bytes_copied`` the bytes written into the destination, and
    ``incremental`` is true when the destination held an earlier backup of this store whose
    unchanged files were kept."""

    through: int | None
    events: int
    bytes_copied: int
    incremental: bool


def backup_store(
    native: NativeStore, dest: str | os.PathLike[str], progress: Progress | None
) -> BackupReport:
    """Runs the engine's backup into ``dest`` and wraps what it did."""
    check_progress(progress)
    through, events, bytes_copied, incremental = native.backup(os.fspath(dest), progress)
    return BackupReport(through, events, bytes_copied, incremental)
