"""The projection cache (docs/design.md section 7): keys, freshness, NativeCache files, user
caches, failures."""

from __future__ import annotations

import collections
import datetime as dt
import enum
import logging
import pickle
import shutil
import struct
import time
from pathlib import Path
from typing import Any

import eventpak as ep
import pytest
from checksums import crc32c

R = ep.Region
MAGIC = b"EVPKCCH1"
TRAILER_LEN = 8 + 8 + 8 + 4
LOGGER = "eventpak.projection"


def test_crc32c_helper_matches_the_standard_check_value():
    assert crc32c(b"123456789") == 0xE3069283


def common_prefix(keys: list[bytes]) -> bytes:
    first, last = min(keys), max(keys)
    n = 0
    while n < min(len(first), len(last)) and first[n] == last[n]:
        n += 1
    return first[:n]


def now_us() -> int:
    return time.time_ns() // 1000


class Balance(ep.Projection):
    """Counts apply calls and records the sequences it folded."""

    name = "balance"
    version = 1
    kinds = ("deposit", "withdraw")
    incremental = False

    def __init__(self) -> None:
        super().__init__()
        self.applied: list[int] = []

    @property
    def calls(self) -> int:
        return len(self.applied)

    def initial(self) -> dict[str, int]:
        return {"balance": 0, "events": 0}

    def apply(self, state: dict[str, int], event: ep.Event) -> dict[str, int]:
        self.applied.append(event.global_sequence)
        sign = 1 if event.kind == "deposit" else -1
        return {"balance": state["balance"] + sign * event.payload, "events": state["events"] + 1}


class IncrementalBalance(Balance):
    name = "balance-incremental"
    incremental = True


def expected_balance(store: ep.Store, entity: str, kinds: tuple[str, ...] = ("deposit", "withdraw")) -> Any:
    """A plain-Python fold of the entity's relevant events."""
    events = [e for e in store.query(R.all()) if e.entity == entity and e.kind in kinds]
    if not events:
        return None
    balance = sum(e.payload if e.kind == "deposit" else -e.payload for e in events)
    return {"balance": balance, "events": len(events)}


class DictCache:
    """A user cache in memory that records the calls it receives."""

    def __init__(self) -> None:
        self.rows: dict[bytes, tuple[bytes, ep.CacheMeta]] = {}
        self.gets: list[Any] = []
        self.puts: list[tuple[Any, Any, Any]] = []

    def get(self, key: bytes) -> tuple[bytes, ep.CacheMeta] | None:
        self.gets.append(key)
        return self.rows.get(key)

    def put(self, key: bytes, value: bytes, meta: ep.CacheMeta) -> None:
        self.puts.append((key, value, meta))
        self.rows[key] = (value, meta)

    def delete_prefix(self, prefix: bytes) -> int:
        doomed = [k for k in self.rows if k.startswith(prefix)]
        for k in doomed:
            del self.rows[k]
        return len(doomed)

    def sync(self) -> None:
        return None


def cache_files(cache_dir: Path) -> list[Path]:
    return sorted(p for p in cache_dir.rglob("*.bin") if p.is_file() or p.is_symlink())


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    return tmp_path / "cache"


@pytest.fixture
def cached_store(open_store, cache_dir):
    return open_store(projection_cache=ep.NativeCache(cache_dir))


def deposit(store: ep.Store, amount: int, entity: str = "acct:1", kind: str = "deposit") -> ep.AppendReceipt:
    return store.append((entity, "eu"), kind, amount)


# ---------------------------------------------------------------------------------------------
# Hits, stale rows, freshness
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("projection_class", [Balance, IncrementalBalance])
def test_cache_hit_at_current_watermark_does_not_call_apply(cached_store, projection_class):
    for amount in (5, 7, 11):
        deposit(cached_store, amount)
    deposit(cached_store, 1, kind="audit")  # irrelevant: the watermark stays at the last deposit
    projection = projection_class()
    first = cached_store.project("acct:1", projection)
    assert first == {"balance": 23, "events": 3}
    assert projection.calls == 3
    for _ in range(3):
        assert cached_store.project("acct:1", projection) == first
    assert projection.calls == 3
    assert cached_store.project("acct:1", projection_class()) == first  # a fresh instance too
    assert projection.calls == 3


def test_stale_row_under_consistent_is_replayed_when_not_incremental(cached_store):
    for amount in (5, 7):
        deposit(cached_store, amount)
    projection = Balance()
    assert cached_store.project("acct:1", projection) == {"balance": 12, "events": 2}
    deposit(cached_store, 3, kind="withdraw")
    deposit(cached_store, 10)
    projection.applied.clear()
    state = cached_store.project("acct:1", projection)
    all_relevant = [e.global_sequence for e in cached_store.query(R.all())]
    assert projection.applied == all_relevant  # a full replay from the initial state
    assert state == expected_balance(cached_store, "acct:1") == {"balance": 19, "events": 4}

    class ColdBalance(Balance):
        name = "balance-cold"

    assert cached_store.project("acct:1", ColdBalance()) == state


def test_stale_row_under_consistent_is_brought_forward_when_incremental(cached_store):
    for amount in (5, 7):
        deposit(cached_store, amount)
    projection = IncrementalBalance()
    assert cached_store.project("acct:1", projection) == {"balance": 12, "events": 2}
    deposit(cached_store, 100, entity="acct:2")  # another entity
    newer = [deposit(cached_store, 3, kind="withdraw"), deposit(cached_store, 10)]
    deposit(cached_store, 1, kind="audit")  # irrelevant
    projection.applied.clear()
    state = cached_store.project("acct:1", projection)
    assert projection.applied == [r.global_sequence for r in newer]  # only the newer events
    assert state == expected_balance(cached_store, "acct:1") == {"balance": 19, "events": 4}

    class ColdBalance(Balance):
        name = "balance-cold"

    assert cached_store.project("acct:1", ColdBalance()) == state
    projection.applied.clear()
    assert cached_store.project("acct:1", projection) == state  # the brought-forward state was re-cached
    assert projection.applied == []


def test_incremental_region_target_is_brought_forward(cached_store):
    deposit(cached_store, 1, entity="acct:1")
    deposit(cached_store, 2, entity="acct:1:x")
    projection = IncrementalBalance()
    region = R.entity("acct:1")
    assert cached_store.project(region, projection) == {"balance": 3, "events": 2}
    newer = [deposit(cached_store, 4, entity="acct:1:x:y"), deposit(cached_store, 8, entity="acct:1")]
    deposit(cached_store, 16, entity="acct:10")  # outside the namespace
    projection.applied.clear()
    assert cached_store.project(region, projection) == {"balance": 15, "events": 4}
    assert projection.applied == [r.global_sequence for r in newer]


def test_maybe_stale_serves_the_old_state_within_its_age(cached_store):
    deposit(cached_store, 5)
    projection = Balance()
    old = cached_store.project("acct:1", projection)
    assert old == {"balance": 5, "events": 1}
    deposit(cached_store, 7)
    projection.applied.clear()
    stale = cached_store.project("acct:1", projection, freshness=ep.Freshness.maybe_stale(60_000))
    assert stale == old
    assert projection.applied == []
    assert cached_store.project("acct:1", projection) == {"balance": 12, "events": 2}  # CONSISTENT
    assert len(projection.applied) == 2


@pytest.mark.parametrize("projection_class", [Balance, IncrementalBalance])
def test_maybe_stale_replays_after_its_age(open_store, projection_class):
    cache = DictCache()
    store = open_store(projection_cache=cache)
    deposit(store, 5)
    projection = projection_class()
    assert store.project("acct:1", projection) == {"balance": 5, "events": 1}
    ((key, (value, meta)),) = cache.rows.items()
    cache.rows[key] = (value, ep.CacheMeta(meta.watermark, cached_at_us=now_us() - 3_600_000_000))  # 1 h old
    deposit(store, 7)
    projection.applied.clear()
    state = store.project("acct:1", projection, freshness=ep.Freshness.maybe_stale(0))
    assert state == expected_balance(store, "acct:1") == {"balance": 12, "events": 2}
    assert projection.applied  # the state was computed, not served from the old row


def test_maybe_stale_within_its_age_with_a_user_cache(open_store):
    cache = DictCache()
    store = open_store(projection_cache=cache)
    deposit(store, 5)
    projection = Balance()
    old = store.project("acct:1", projection)
    ((key, (value, meta)),) = cache.rows.items()
    cache.rows[key] = (value, ep.CacheMeta(meta.watermark, cached_at_us=now_us()))
    deposit(store, 7)
    projection.applied.clear()
    assert store.project("acct:1", projection, freshness=ep.Freshness.maybe_stale(60_000)) == old
    assert projection.applied == []


@pytest.mark.parametrize("change", ["version", "kinds"])
def test_changing_version_or_kinds_misses_the_old_rows(cached_store, change):
    deposit(cached_store, 5)
    deposit(cached_store, 3, kind="withdraw")
    old = Balance()
    assert cached_store.project("acct:1", old) == {"balance": 2, "events": 2}

    if change == "version":

        class Changed(Balance):
            version = 2

        expected = {"balance": 2, "events": 2}
    else:

        class Changed(Balance):
            kinds = ("deposit",)

        expected = {"balance": 5, "events": 1}

    changed = Changed()
    assert cached_store.project("acct:1", changed) == expected
    assert changed.calls == expected["events"]  # a cold replay, the old row was not served
    changed.applied.clear()
    assert cached_store.project("acct:1", changed) == expected  # its own row now
    assert changed.calls == 0


def test_kind_order_does_not_change_the_key(open_store):
    cache = DictCache()
    store = open_store(projection_cache=cache)
    deposit(store, 5)

    class Reordered(Balance):
        kinds = ("withdraw", "deposit")

    assert store.project("acct:1", Balance()) == store.project("acct:1", Reordered())
    assert len(cache.rows) == 1


def test_targets_have_distinct_rows(open_store):
    cache = DictCache()
    store = open_store(projection_cache=cache)
    deposit(store, 5, entity="acct:1")
    deposit(store, 7, entity="acct:1:x")
    projection = Balance()
    assert store.project("acct:1", projection) == {"balance": 5, "events": 1}
    assert store.project(R.entity("acct:1"), projection) == {"balance": 12, "events": 2}
    assert store.project("acct:1:x", projection) == {"balance": 7, "events": 1}
    assert store.project(R.entity("acct:1").with_scope("eu"), projection) == {"balance": 12, "events": 2}
    assert len(cache.rows) == 4
    projection.applied.clear()
    assert store.project("acct:1", projection) == {"balance": 5, "events": 1}
    assert store.project(R.entity("acct:1"), projection) == {"balance": 12, "events": 2}
    assert projection.applied == []


def test_reopened_store_serves_the_cached_state_without_replaying(open_store, data_dir, cache_dir):
    store = open_store(projection_cache=ep.NativeCache(cache_dir))
    for amount in (5, 7, 11):
        deposit(store, amount)
    first = store.project("acct:1", Balance())
    store.close()

    reopened = open_store(projection_cache=ep.NativeCache(cache_dir))
    projection = Balance()
    assert reopened.project("acct:1", projection) == first == {"balance": 23, "events": 3}
    assert projection.calls == 0


@pytest.mark.parametrize(
    "freshness", [ep.Freshness.CONSISTENT, ep.Freshness.maybe_stale(60_000)], ids=["consistent", "stale"]
)
def test_no_relevant_event_is_none_under_any_freshness(open_store, freshness):
    cache = DictCache()
    store = open_store(projection_cache=cache)
    deposit(store, 1, kind="audit")
    assert store.project("acct:1", Balance(), freshness=freshness) is None
    assert store.project(R.entity("acct:2"), Balance(), freshness=freshness) is None


# ---------------------------------------------------------------------------------------------
# Custom encode/decode, NoCache, user caches
# ---------------------------------------------------------------------------------------------


class Members(ep.Projection):
    """A set state: msgpack cannot carry it, so encode/decode are overridden."""

    name = "members"
    kinds = ("joined", "left")
    incremental = True

    def __init__(self) -> None:
        super().__init__()
        self.calls = {"apply": 0, "encode": 0, "decode": 0}

    def initial(self) -> set[str]:
        return set()

    def apply(self, state: set[str], event: ep.Event) -> set[str]:
        self.calls["apply"] += 1
        return state | {event.payload} if event.kind == "joined" else state - {event.payload}

    def encode(self, state: set[str]) -> bytes:
        self.calls["encode"] += 1
        return "\n".join(sorted(state)).encode()

    def decode(self, data: bytes) -> set[str]:
        self.calls["decode"] += 1
        return set(data.decode().split("\n")) if data else set()


def test_custom_encode_decode_for_a_set_state(cached_store, cache_dir):
    for kind, who in [("joined", "ann"), ("joined", "bob"), ("left", "ann"), ("joined", "cy")]:
        cached_store.append(("room:1", "eu"), kind, who)
    projection = Members()
    assert cached_store.project("room:1", projection) == {"bob", "cy"}
    assert projection.calls == {"apply": 4, "encode": 1, "decode": 0}
    ((path,),) = [cache_files(cache_dir)]
    assert path.read_bytes()[:-TRAILER_LEN] == b"bob\ncy"  # the custom encoding is what is cached

    served = cached_store.project("room:1", projection)
    assert served == {"bob", "cy"}
    assert isinstance(served, set)
    assert projection.calls == {"apply": 4, "encode": 1, "decode": 1}

    cached_store.append(("room:1", "eu"), "joined", "dee")
    assert cached_store.project("room:1", projection) == {"bob", "cy", "dee"}  # decoded, brought forward
    assert projection.calls == {"apply": 5, "encode": 2, "decode": 2}


def test_set_state_without_custom_encode_still_projects(open_store, caplog):
    class RawMembers(Members):
        name = "raw-members"
        encode = ep.Projection.encode
        decode = ep.Projection.decode

    store = open_store(projection_cache=DictCache())
    store.append(("room:1", "eu"), "joined", "ann")
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert store.project("room:1", RawMembers()) == {"ann"}
    assert any(r.name == LOGGER and r.levelno == logging.WARNING for r in caplog.records)


def test_no_cache_always_misses(open_store):
    cache = ep.NoCache()
    meta = ep.CacheMeta(3, now_us())
    cache.put(b"key", b"value", meta)
    assert cache.get(b"key") is None
    assert cache.delete_prefix(b"") == 0
    cache.sync()

    store = open_store(projection_cache=cache)
    deposit(store, 5)
    projection = Balance()
    for _ in range(3):
        assert store.project("acct:1", projection) == {"balance": 5, "events": 1}
    assert projection.calls == 3


def test_default_store_has_no_cache(store):
    deposit(store, 5)
    projection = IncrementalBalance()
    for _ in range(3):
        assert store.project("acct:1", projection) == {"balance": 5, "events": 1}
    assert projection.calls == 3


def test_user_cache_protocol(open_store):
    cache = DictCache()
    store = open_store(projection_cache=cache)
    deposit(store, 5)
    last = deposit(store, 2, kind="withdraw")
    deposit(store, 1, kind="audit")  # irrelevant: not the watermark
    before = now_us()
    assert store.project("acct:1", Balance()) == {"balance": 3, "events": 2}
    after = now_us()

    assert len(cache.gets) == 1 and len(cache.puts) == 1
    (key, value, meta) = cache.puts[0]
    assert type(cache.gets[0]) is bytes and type(key) is bytes and type(value) is bytes
    assert cache.gets[0] == key
    assert isinstance(meta, ep.CacheMeta)
    assert meta.watermark == last.global_sequence
    assert before <= meta.cached_at_us <= after

    # the row is served back as is; a hit writes nothing
    projection = Balance()
    assert store.project("acct:1", projection) == {"balance": 3, "events": 2}
    assert projection.calls == 0
    assert len(cache.gets) == 2 and len(cache.puts) == 1


class PickledCache(DictCache):
    """A user cache that keeps its entries pickled, as one backed by a file or a cache server does."""

    def __init__(self) -> None:
        super().__init__()
        self.pickled: dict[bytes, bytes] = {}

    def get(self, key: bytes) -> tuple[bytes, ep.CacheMeta] | None:
        self.gets.append(key)
        row = self.pickled.get(key)
        return None if row is None else pickle.loads(row)

    def put(self, key: bytes, value: bytes, meta: ep.CacheMeta) -> None:
        self.puts.append((key, value, meta))
        self.pickled[key] = pickle.dumps((value, meta))


def test_a_user_cache_may_keep_its_entries_pickled(open_store):
    cache = PickledCache()
    store = open_store(projection_cache=cache)
    last = deposit(store, 5)
    assert store.project("acct:1", Balance()) == {"balance": 5, "events": 1}
    value, meta = pickle.loads(next(iter(cache.pickled.values())))
    assert (value, meta) == cache.puts[0][1:] and meta.watermark == last.global_sequence
    projection = Balance()
    assert store.project("acct:1", projection) == {"balance": 5, "events": 1}
    assert projection.calls == 0  # served from the unpickled entry


def test_user_cache_keys_share_the_projection_prefix_and_differ_by_target(open_store):
    cache = DictCache()
    store = open_store(projection_cache=cache)
    deposit(store, 5, entity="acct:1")
    deposit(store, 5, entity="acct:2")

    class Other(Balance):
        name = "other"

    store.project("acct:1", Balance())
    store.project("acct:2", Balance())
    store.project("acct:1", Other())
    k1, k2, k3 = (put[0] for put in cache.puts)
    assert len({k1, k2, k3}) == 3
    assert cache.delete_prefix(common_prefix([k1, k2])) == 2  # both rows of Balance
    assert list(cache.rows) == [k3]
    projection = Balance()
    assert store.project("acct:1", projection) == {"balance": 5, "events": 1}
    assert projection.calls == 1  # deleted rows are misses


# ---------------------------------------------------------------------------------------------
# NativeCache files
# ---------------------------------------------------------------------------------------------


def test_native_cache_file_layout(open_store, cache_dir):
    cache = ep.NativeCache(cache_dir)
    recorder = DictCache()

    class Tee(DictCache):
        def get(self, key):
            recorder.get(key)
            return cache.get(key)

        def put(self, key, value, meta):
            recorder.put(key, value, meta)
            cache.put(key, value, meta)

    store = open_store(projection_cache=Tee())
    receipt = deposit(store, 5)
    store.project("acct:1", Balance())
    ((key, value, meta),) = recorder.puts
    path = cache_dir / key.hex()[:2] / f"{key.hex()}.bin"
    assert cache_files(cache_dir) == [path]
    data = path.read_bytes()
    assert data[:-TRAILER_LEN] == value
    watermark, cached_at_us, magic, crc = struct.unpack("<Qq8sI", data[-TRAILER_LEN:])
    assert (watermark, cached_at_us) == (receipt.global_sequence, meta.cached_at_us)
    assert magic == MAGIC
    assert crc == crc32c(data[:-4])
    assert cache.get(key) == (value, meta)


def test_native_cache_round_trip(cache_dir):
    cache = ep.NativeCache(cache_dir)
    meta = ep.CacheMeta(42, 1_700_000_000_000_000)
    assert cache.get(b"\x01\x02") is None
    cache.put(b"\x01\x02", b"state", meta)
    assert cache.get(b"\x01\x02") == (b"state", meta)
    cache.put(b"\x01\x02", b"", ep.CacheMeta(43, -5))  # replaced; empty values are fine
    assert cache.get(b"\x01\x02") == (b"", ep.CacheMeta(43, -5))
    cache.sync()
    assert ep.NativeCache(cache_dir).get(b"\x01\x02") == (b"", ep.CacheMeta(43, -5))


def _valid_file(value: bytes, magic: bytes = MAGIC) -> bytes:
    body = value + struct.pack("<Qq", 1, 2) + magic
    return body + struct.pack("<I", crc32c(body))


DAMAGE = {
    "corrupt": lambda data: data[:1] + bytes([data[1] ^ 0x01]) + data[2:],
    "corrupt-trailer": lambda data: data[:-10] + bytes([data[-10] ^ 0x80]) + data[-9:],
    "truncated": lambda data: data[: len(data) - 3],
    "truncated-short": lambda data: data[:10],
    "empty": lambda data: b"",
    "foreign": lambda data: b"this is not a cache file at all, just some bytes" * 3,
    "foreign-magic": lambda data: _valid_file(b"\x81\xa1a\x01", magic=b"OTHERMAG"),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damaged_native_cache_file_is_a_miss_and_deleted(cache_dir, damage):
    cache = ep.NativeCache(cache_dir)
    key = b"\xab\xcd\xef"
    cache.put(key, b"\x81\xa7balance\x05", ep.CacheMeta(7, now_us()))
    (path,) = cache_files(cache_dir)
    path.write_bytes(DAMAGE[damage](path.read_bytes()))
    assert cache.get(key) is None
    assert not path.exists()
    assert cache.get(key) is None  # and stays a miss


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damaged_cache_file_under_project_is_a_miss_and_deleted(open_store, cache_dir, damage):
    native = ep.NativeCache(cache_dir)

    class ReadThrough(DictCache):
        """NativeCache whose writes can be switched off: what project() leaves on disk shows."""

        writes = True

        def get(self, key):
            return native.get(key)

        def put(self, key, value, meta):
            if self.writes:
                native.put(key, value, meta)

    cache = ReadThrough()
    store = open_store(projection_cache=cache)
    deposit(store, 5)
    deposit(store, 7)
    assert store.project("acct:1", Balance()) == {"balance": 12, "events": 2}
    (path,) = cache_files(cache_dir)
    path.write_bytes(DAMAGE[damage](path.read_bytes()))

    cache.writes = False
    projection = Balance()
    assert store.project("acct:1", projection) == {"balance": 12, "events": 2}
    assert projection.calls == 2  # replayed
    assert not path.exists()


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damaged_cache_file_is_replaced_by_a_fresh_row(cached_store, cache_dir, damage):
    deposit(cached_store, 5)
    deposit(cached_store, 7)
    assert cached_store.project("acct:1", Balance()) == {"balance": 12, "events": 2}
    (path,) = cache_files(cache_dir)
    good = path.read_bytes()
    path.write_bytes(DAMAGE[damage](good))
    projection = Balance()
    assert cached_store.project("acct:1", projection) == {"balance": 12, "events": 2}
    assert projection.calls == 2
    assert path.read_bytes()[:-TRAILER_LEN] == good[:-TRAILER_LEN]
    projection.applied.clear()
    assert cached_store.project("acct:1", projection) == {"balance": 12, "events": 2}
    assert projection.calls == 0


def test_delete_prefix_returns_the_count_then_zero(cache_dir):
    cache = ep.NativeCache(cache_dir)
    meta = ep.CacheMeta(1, now_us())
    for key in (b"\x01\x02a", b"\x01\x02b", b"\x01\x02\xff", b"\x01\x03c", b"\x02\x02a"):
        cache.put(key, b"v", meta)
    assert cache.delete_prefix(b"\x01\x02") == 3
    assert cache.delete_prefix(b"\x01\x02") == 0
    assert cache.get(b"\x01\x02a") is None
    assert cache.get(b"\x01\x03c") == (b"v", meta)
    assert cache.delete_prefix(b"\x01") == 1
    assert cache.delete_prefix(b"\x01") == 0
    assert cache.get(b"\x02\x02a") == (b"v", meta)
    assert cache.delete_prefix(b"\x7f") == 0


def test_delete_prefix_on_a_projection_prefix(open_store, cache_dir):
    native = ep.NativeCache(cache_dir)
    store = open_store(projection_cache=native)
    for entity in ("acct:1", "acct:2", "acct:3"):
        deposit(store, 5, entity=entity)
        store.project(entity, Balance())
    assert len(cache_files(cache_dir)) == 3
    keys = [bytes.fromhex(p.stem) for p in cache_files(cache_dir)]
    prefix = common_prefix(keys)
    assert prefix
    assert native.delete_prefix(prefix) == 3
    assert native.delete_prefix(prefix) == 0
    assert cache_files(cache_dir) == []


def test_symlinked_cache_dir_is_refused(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    link = tmp_path / "link"
    link.symlink_to(real, target_is_directory=True)
    with pytest.raises(ep.CacheFailed):
        ep.NativeCache(link)
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "nowhere", target_is_directory=True)
    with pytest.raises(ep.CacheFailed):
        ep.NativeCache(dangling)
    assert not (tmp_path / "nowhere").exists()


def test_symlinked_cache_file_is_refused_when_touched(tmp_path, cache_dir):
    cache = ep.NativeCache(cache_dir)
    key = b"\x10\x20"
    cache.put(key, b"state", ep.CacheMeta(1, 2))
    (path,) = cache_files(cache_dir)
    elsewhere = tmp_path / "elsewhere.bin"
    elsewhere.write_bytes(path.read_bytes())
    path.unlink()
    path.symlink_to(elsewhere)
    with pytest.raises(ep.CacheFailed):
        cache.get(key)
    with pytest.raises(ep.CacheFailed):
        cache.put(key, b"other", ep.CacheMeta(3, 4))
    assert elsewhere.read_bytes()[:5] == b"state"  # not written through the link


def test_symlinked_cache_file_under_project_warns_and_replays(tmp_path, cached_store, cache_dir, caplog):
    deposit(cached_store, 5)
    assert cached_store.project("acct:1", Balance()) == {"balance": 5, "events": 1}
    (path,) = cache_files(cache_dir)
    elsewhere = tmp_path / "elsewhere.bin"
    elsewhere.write_bytes(path.read_bytes())
    path.unlink()
    path.symlink_to(elsewhere)
    deposit(cached_store, 7)
    projection = Balance()
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert cached_store.project("acct:1", projection) == {"balance": 12, "events": 2}
    assert projection.calls == 2
    assert any(r.name == LOGGER and r.levelno == logging.WARNING for r in caplog.records)


# ---------------------------------------------------------------------------------------------
# Cache failures never fail project()
# ---------------------------------------------------------------------------------------------


class FailingCache(DictCache):
    def __init__(self, fail_get: bool, fail_put: bool) -> None:
        super().__init__()
        self.fail_get, self.fail_put = fail_get, fail_put

    def get(self, key):
        if self.fail_get:
            raise OSError("cache get is broken")
        return super().get(key)

    def put(self, key, value, meta):
        if self.fail_put:
            raise RuntimeError("cache put is broken")
        return super().put(key, value, meta)


@pytest.mark.parametrize(
    ("fail_get", "fail_put"), [(True, False), (False, True), (True, True)], ids=["get", "put", "both"]
)
@pytest.mark.parametrize("projection_class", [Balance, IncrementalBalance])
def test_failing_cache_still_gives_correct_states(open_store, caplog, fail_get, fail_put, projection_class):
    cache = FailingCache(fail_get, fail_put)
    store = open_store(projection_cache=cache)
    projection = projection_class()
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        for amount in (5, 7, 3):
            deposit(store, amount)
            deposit(store, 1, kind="audit")
            assert store.project("acct:1", projection) == expected_balance(store, "acct:1")
            assert store.project("acct:1", projection) == expected_balance(store, "acct:1")
            assert store.project(
                "acct:1", projection, freshness=ep.Freshness.maybe_stale(60_000)
            ) == expected_balance(store, "acct:1")
            _generation, state = store.project_if_changed("acct:1", projection, None)
            assert state == expected_balance(store, "acct:1")
    warnings = [r for r in caplog.records if r.name == LOGGER and r.levelno == logging.WARNING]
    assert warnings


@pytest.mark.parametrize(
    "entry",
    [
        lambda: (b"\xc1 not msgpack", ep.CacheMeta(0, now_us())),
        lambda: (b"\x01", None),
        lambda: (b"\x01", "meta"),
        lambda: (b"\x01", ep.CacheMeta(0, 0), "extra"),
        lambda: 5,
    ],
    ids=["garbage-state", "meta-none", "meta-str", "three-items", "not-a-pair"],
)
def test_a_malformed_entry_from_a_user_cache_is_a_warning_and_a_replay(open_store, caplog, entry):
    class Malformed(DictCache):
        def get(self, key):
            return entry()

    store = open_store(projection_cache=Malformed())
    deposit(store, 5)
    projection = Balance()
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert store.project("acct:1", projection) == {"balance": 5, "events": 1}
    assert projection.calls == 1
    assert any(r.name == LOGGER and r.levelno == logging.WARNING for r in caplog.records)


# ---------------------------------------------------------------------------------------------
# A cached state is recorded at the watermark of the events folded into it
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["cold", "brought-forward"])
def test_append_racing_a_replay_is_not_folded_twice(open_store, path):
    """A writer appends a relevant event after project() read the watermark but before it
    replayed (simulated deterministically from the cache's get). Whatever that call returns,
    the cached row must describe exactly the events folded into it, so later calls equal a
    plain fold (an incremental bring-forward must not apply the racing event a second time)."""
    cache = DictCache()
    store = open_store(projection_cache=cache)
    racing = {"armed": False}
    inner_get = cache.get

    def get(key):
        if racing["armed"]:
            racing["armed"] = False
            deposit(store, 10)  # the concurrent writer
        return inner_get(key)

    cache.get = get
    deposit(store, 1)
    projection = IncrementalBalance()
    if path == "brought-forward":
        assert store.project("acct:1", projection) == {"balance": 1, "events": 1}
        deposit(store, 100)
    racing["armed"] = True
    store.project("acct:1", projection)  # either state (with or without the racing event) is fine
    expected = expected_balance(store, "acct:1")
    assert store.project("acct:1", projection) == expected
    assert store.project("acct:1", projection) == expected


class Deposits(ep.Projection):
    """The sum of deposits, folded on from a cached state."""

    name = "deposits"
    kinds = ("deposit",)
    incremental = True

    def initial(self) -> int:
        return 0

    def apply(self, state: int, event: ep.Event) -> int:
        return state + int(event.payload["amount"])


def test_a_state_cached_before_a_restore_is_not_served_once_the_history_went_another_way(
    tmp_path: Path,
) -> None:
    # A backup keeps the store_id, so a restored data dir reads the same cache keys; the
    # cached state at watermark W folds events the restored log no longer holds, and new
    # appends bring the log back to W with other events.
    data, backup, cache = tmp_path / "data", tmp_path / "backup", tmp_path / "cache"
    with ep.Store.open(data, projection_cache=ep.NativeCache(cache)) as store:
        for _ in range(5):
            store.append(("acct:1", "eu"), "deposit", {"amount": 1})
        store.backup(backup)
        for _ in range(5):
            store.append(("acct:1", "eu"), "deposit", {"amount": 100})
        assert store.project("acct:1", Deposits()) == 505
    shutil.rmtree(data)
    shutil.copytree(backup, data)
    with ep.Store.open(data, projection_cache=ep.NativeCache(cache)) as store:
        for _ in range(5):
            store.append(("acct:1", "eu"), "deposit", {"amount": 2})
        assert store.project("acct:1", Deposits()) == 15  # the fold of this log, not 505
        for _ in range(2):
            store.append(("acct:1", "eu"), "deposit", {"amount": 3})
        assert store.project("acct:1", Deposits()) == 21  # cached at 15, then folded on
        assert store.project("acct:1", Deposits()) == 21  # a hit of its own history


class Kinds(ep.Projection[tuple[str, ...]]):
    """An incremental state msgpack cannot carry as it is: a tuple comes back a list."""

    name = "kinds-seen"
    incremental = True

    def initial(self) -> tuple[str, ...]:
        return ()

    def apply(self, state: tuple[str, ...], event: ep.Event) -> tuple[str, ...]:
        return (*state, event.kind)


def test_a_state_msgpack_would_change_is_not_cached_and_project_never_fails(
    cached_store, cache_dir, caplog
) -> None:
    with caplog.at_level("WARNING", logger="eventpak"):
        deposit(cached_store, 1, kind="opened")
        assert cached_store.project("acct:1", Kinds()) == ("opened",)
        assert cached_store.project("acct:1", Kinds()) == ("opened",)
        deposit(cached_store, 2)
        assert cached_store.project("acct:1", Kinds()) == ("opened", "deposit")
    assert cache_files(cache_dir) == []
    warned = [r for r in caplog.records if "kinds-seen is not cached" in r.getMessage()]
    assert len(warned) == 1  # once per projection per process, not on every call


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class LevelSeen(ep.Projection[dict[str, Any]]):
    """A state equal to what msgpack gives back, but not of its types: an IntEnum comes back
    an int, an OrderedDict a dict, a datetime in another zone its UTC twin."""

    name = "level-seen"

    def initial(self) -> dict[str, Any]:
        return {}

    def apply(self, state: dict[str, Any], event: ep.Event) -> dict[str, Any]:
        return {
            "level": Level.HIGH,
            "ordered": collections.OrderedDict(a=1),
            "at": dt.datetime(2024, 1, 1, 12, tzinfo=dt.timezone(dt.timedelta(hours=2))),
        }


def test_a_state_equal_to_its_msgpack_copy_but_of_other_types_is_not_cached(cached_store, cache_dir) -> None:
    deposit(cached_store, 1)
    for _ in range(2):  # the second call would be served from the cache
        state = cached_store.project("acct:1", LevelSeen())
        assert type(state["level"]) is Level
        assert type(state["ordered"]) is collections.OrderedDict
        assert state["at"].utcoffset() == dt.timedelta(hours=2)
    assert cache_files(cache_dir) == []
