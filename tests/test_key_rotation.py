"""Rotating the store key (docs/lifecycle.md, "Keys"): ``store.rotate_encryption_key`` and
``eventpak rotate-key``. Every payload reads under the new key and the old one is refused; bad
input and the wrong kind of store are refused with nothing changed; a process killed at any
instant of a rotation leaves a data dir that opens with exactly one of the two keys."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import eventpak as ep
import pytest
from cli_helpers import assert_refused, run_cli

R = ep.Region


def _snapshot(directory: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file() and p.name != "LOCK"}


def _payloads(store: ep.Store) -> list[Any]:
    out: list[Any] = []
    for event in store.query(R.all()):
        try:
            out.append(event.payload)
        except ep.PayloadForgotten:
            out.append("forgotten")
    return out


def _fill(store: ep.Store) -> list[Any]:
    for i in range(12):
        store.append((f"user:{i % 4}", "s"), "note", {"i": i})
    store.forget_entity("user:3")
    return _payloads(store)


def _opens_with(data_dir: Path, key: bytes) -> bool:
    try:
        with ep.Store.open(data_dir, encryption_key=key, read_only=True):
            return True
    except ep.InvalidConfig:
        return False


def test_after_a_rotation_only_the_new_key_opens_and_every_payload_reads(data_dir: Path) -> None:
    old, new = ep.generate_encryption_key(), ep.generate_encryption_key()
    with ep.Store.open(data_dir, encryption_key=old) as store:
        expected = _fill(store)
        assert store.rotate_encryption_key(new) == 3  # user:0..2; user:3's key is gone
        assert _payloads(store) == expected
        store.append(("user:9", "s"), "note", {"i": 99})  # a new key, wrapped by the new store key
        expected.append({"i": 99})
    with pytest.raises(ep.InvalidConfig):
        ep.Store.open(data_dir, encryption_key=old)
    with ep.Store.open(data_dir, encryption_key=new) as store:
        assert _payloads(store) == expected
        assert store.verify().ok
        store.append(("user:3", "s"), "note", "after")  # a forgotten entity still gets a new key
    with ep.Store.open(data_dir, encryption_key=new) as store:
        assert _payloads(store)[-1] == "after"


def test_a_refused_rotation_changes_nothing(data_dir: Path, tmp_path: Path) -> None:
    key = ep.generate_encryption_key()
    with ep.Store.open(data_dir, encryption_key=key) as store:
        expected = _fill(store)
    before = _snapshot(data_dir)
    with ep.Store.open(data_dir, encryption_key=key) as store:
        for bad in (b"short", bytes(33), b""):
            with pytest.raises(ep.InvalidConfig, match="32 bytes"):
                store.rotate_encryption_key(bad)
        for wrong_type in ("k" * 32, bytearray(32), None):
            with pytest.raises(ep.InvalidConfig, match="bytes"):
                store.rotate_encryption_key(wrong_type)  # type: ignore[arg-type]
    with (
        ep.Store.open(data_dir, encryption_key=key, shared=True) as store,
        pytest.raises(ep.InvalidConfig, match="to itself"),
    ):
        store.rotate_encryption_key(ep.generate_encryption_key())
    with (
        ep.Store.open(data_dir, encryption_key=key, read_only=True) as store,
        pytest.raises(ep.ReadOnlyStore),
    ):
        store.rotate_encryption_key(ep.generate_encryption_key())
    store = ep.Store.open(data_dir, encryption_key=key)
    store.close()
    with pytest.raises(ep.StoreClosed):
        store.rotate_encryption_key(ep.generate_encryption_key())
    # The log and the key file as they were (opening rewrites the index checkpoint, a shared
    # open adds its coordination files).
    assert _snapshot(data_dir / "segments") == {k: v for k, v in before.items() if "/segments/" in k}
    key_file = str(data_dir / "encryption.keys")
    assert (data_dir / "encryption.keys").read_bytes() == before[key_file]
    with ep.Store.open(data_dir, encryption_key=key) as store:
        assert _payloads(store) == expected

    clear_dir = tmp_path / "clear"
    with ep.Store.open(clear_dir) as clear:
        clear.append(("a", "s"), "k", 1)
        with pytest.raises(ep.InvalidConfig, match="encrypted store"):
            clear.rotate_encryption_key(key)
    assert not (clear_dir / "encryption.keys").exists()


def test_an_asyncio_store_rotates_on_its_pool(data_dir: Path) -> None:
    old, new = ep.generate_encryption_key(), ep.generate_encryption_key()

    async def main() -> int:
        async with await ep.aio.open(data_dir, encryption_key=old) as store:
            await store.append(("a", "s"), "k", {"v": 1})
            return await store.rotate_encryption_key(new)

    assert asyncio.run(main()) == 1
    assert _opens_with(data_dir, new) and not _opens_with(data_dir, old)


# Rotates back and forth between two keys for ever, reporting each rotation that returned.
_ROTATOR = """
import sys, eventpak as ep
path, a, b = sys.argv[1], bytes.fromhex(sys.argv[2]), bytes.fromhex(sys.argv[3])
store = ep.Store.open(path, encryption_key=a)
keys = (b, a)
i = 0
while True:
    store.rotate_encryption_key(keys[i % 2])
    print(keys[i % 2].hex(), flush=True)
    i += 1
"""


def test_a_rotation_killed_at_any_instant_leaves_one_key_that_opens_everything(data_dir: Path) -> None:
    a, b = ep.generate_encryption_key(), ep.generate_encryption_key()
    with ep.Store.open(data_dir, encryption_key=a) as store:
        expected = _fill(store)
    current = a
    rng = random.Random(11)
    for _ in range(12):
        other = b if current == a else a
        child = subprocess.Popen(
            [sys.executable, "-c", _ROTATOR, str(data_dir), current.hex(), other.hex()],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert child.stdout is not None
        acknowledged = None
        for _ in range(rng.randrange(1, 6)):
            line = child.stdout.readline()
            if not line:
                break
            acknowledged = bytes.fromhex(line.strip())
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        opening = [k for k in (a, b) if _opens_with(data_dir, k)]
        assert len(opening) == 1, "exactly one of the two keys opens the data dir"
        current = opening[0]
        assert acknowledged is not None
        with ep.Store.open(data_dir, encryption_key=current) as store:
            assert _payloads(store) == expected
            assert store.verify().ok


def test_the_command_line_rotates_with_both_keys_from_the_environment(data_dir: Path) -> None:
    old, new = ep.generate_encryption_key(), ep.generate_encryption_key()
    with ep.Store.open(data_dir, encryption_key=old) as store:
        expected = _fill(store)
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVENTPAK_")}
    no_new = run_cli("rotate-key", str(data_dir), env={**env, "EVENTPAK_ENCRYPTION_KEY": old.hex()})
    assert_refused(no_new, "EVENTPAK_NEW_ENCRYPTION_KEY")
    no_old = run_cli("rotate-key", str(data_dir), env={**env, "EVENTPAK_NEW_ENCRYPTION_KEY": new.hex()})
    assert_refused(no_old, "EVENTPAK_ENCRYPTION_KEY")
    both = {**env, "EVENTPAK_ENCRYPTION_KEY": old.hex(), "EVENTPAK_NEW_ENCRYPTION_KEY": new.hex()}
    with ep.Store.open(data_dir, encryption_key=old, shared=True):
        assert_refused(run_cli("rotate-key", str(data_dir), env=both), "rotate-key needs", "stop the service")
    assert _opens_with(data_dir, old)
    done = run_cli("rotate-key", str(data_dir), "--json", env=both)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == '{"data_keys": 3}'
    assert old.hex() not in done.stdout + done.stderr and new.hex() not in done.stdout + done.stderr
    with ep.Store.open(data_dir, encryption_key=new) as store:
        assert _payloads(store) == expected
