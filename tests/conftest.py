"""Shared fixtures and helpers of the eventpak test suite."""

from __future__ import annotations

import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import eventpak as ep
import pytest

SEGMENT_HEADER_LEN = 40
FRAME_HEADER_LEN = 24


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """The data dir of the test's store (not created: the store creates it)."""
    return tmp_path / "data"


@pytest.fixture
def open_store(data_dir: Path) -> Iterator[Callable[..., ep.Store]]:
    """A factory opening stores (by default on ``data_dir``); every store it opened is closed at
    teardown."""
    opened: list[ep.Store] = []

    def _open(path: Any = None, **options: Any) -> ep.Store:
        store = ep.Store.open(data_dir if path is None else path, **options)
        opened.append(store)
        return store

    yield _open
    for store in reversed(opened):
        store.close()


@pytest.fixture
def store(open_store: Callable[..., ep.Store]) -> ep.Store:
    """A fresh store on ``data_dir`` with default options, closed at teardown."""
    return open_store()


@pytest.fixture
def coord() -> Callable[..., ep.Coordinate]:
    """``coord(entity, scope="main")`` builds a coordinate."""

    def _coord(entity: str, scope: str = "main") -> ep.Coordinate:
        return ep.Coordinate(entity, scope)

    return _coord


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    """Waits until ``predicate()`` is true, observing state only; fails the test after ``timeout``
    seconds (a safety net against hangs, never a pass/fail threshold)."""
    deadline = time.monotonic() + timeout
    tick = threading.Event()  # never set: wait() only paces the observation loop
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        tick.wait(0.001)


@pytest.fixture(name="wait_until")
def wait_until_fixture() -> Callable[..., None]:
    return wait_until


def event_key(event: ep.Event) -> tuple[Any, ...]:
    """Everything that identifies a stored event, for comparing two reads of the same log."""
    return (
        event.event_id,
        event.global_sequence,
        event.coordinate,
        event.kind,
        event.entity_sequence,
        event.timestamp_us,
        event.causation_id,
        event.correlation_id,
        event.prev_hash,
        event.hash,
        event.payload_bytes,
        event.payload,
    )


@pytest.fixture(name="event_key")
def event_key_fixture() -> Callable[[ep.Event], tuple[Any, ...]]:
    return event_key


@dataclass(frozen=True)
class Frame:
    """One frame of a segment file, as found on disk."""

    offset: int
    body_len: int
    crc: int
    global_sequence: int
    batch_index: int
    batch_len: int

    @property
    def end(self) -> int:
        return self.offset + FRAME_HEADER_LEN + self.body_len


def segment_paths(data_dir: Path) -> list[Path]:
    """The segment files of a data dir, oldest first."""
    return sorted((data_dir / "segments").glob("*.seg"))


def read_frames(path: Path) -> list[Frame]:
    """Walks the frames of a complete, valid segment file."""
    data = path.read_bytes()
    frames = []
    offset = SEGMENT_HEADER_LEN
    while offset < len(data):
        body_len, crc, seq, batch_index, batch_len = struct.unpack_from("<IIQII", data, offset)
        frame = Frame(offset, body_len, crc, seq, batch_index, batch_len)
        assert frame.end <= len(data), f"frame at {offset} runs past the end of {path}"
        frames.append(frame)
        offset = frame.end
    return frames


def dir_bytes(directory: Path) -> dict[str, bytes]:
    """Every regular file under ``directory`` (except the LOCK file) with its content."""
    return {
        str(p.relative_to(directory)): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file() and p.name != "LOCK"
    }


@pytest.fixture(name="segment_paths")
def segment_paths_fixture() -> Callable[[Path], list[Path]]:
    return segment_paths


@pytest.fixture(name="read_frames")
def read_frames_fixture() -> Callable[[Path], list[Frame]]:
    return read_frames


@pytest.fixture(name="dir_bytes")
def dir_bytes_fixture() -> Callable[[Path], dict[str, bytes]]:
    return dir_bytes
