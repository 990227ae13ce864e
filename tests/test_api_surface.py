"""The public surface: ``Store`` wraps a native handle and shows only its API, options have
one set of defaults (the engine's), the version comes from the build, and errors keep
their fields and the operating system's errno."""

from __future__ import annotations

import errno
import subprocess
import sys
import tomllib
import typing
from pathlib import Path

import eventpak as ep
import pytest
from eventpak import _native
from mypy import api as mypy_api

ROOT = Path(__file__).resolve().parent.parent

PUBLIC_STORE_API = {
    "append",
    "append_batch",
    "append_denial",
    "append_typed",
    "backup",
    "causes",
    "checkpoints",
    "close",
    "correlated",
    "closed",
    "compact",
    "cursor",
    "cursor_guaranteed",
    "cursor_worker",
    "dead_letters",
    "descendants",
    "effects",
    "encrypted",
    "fence",
    "forget_entity",
    "get",
    "head",
    "metrics",
    "next_sequence",
    "open",
    "path",
    "project",
    "project_if_changed",
    "query",
    "reset_checkpoint",
    "rotate_encryption_key",
    "stats",
    "store_id",
    "sync",
    "tracking_position",
    "verify",
    "verify_receipt",
    "walk_ancestors",
}


def test_store_shows_only_its_public_api() -> None:
    shown = {name for name in dir(ep.Store) if not name.startswith("__")}
    assert shown == PUBLIC_STORE_API
    assert not issubclass(ep.Store, _native.NativeStore)


def test_an_open_store_hides_the_native_methods(store: ep.Store) -> None:
    for private in (
        "query_hits_after",
        "pause_syncs",
        "_sync_through",
        "_fence_begin",
        "_replay",
        "_append_reserved_batch",
    ):
        assert not hasattr(ep.Store, private)
    assert {name for name in dir(store) if not name.startswith("_")} == PUBLIC_STORE_API


def test_the_package_exports_the_gate_api() -> None:
    for name in ("Gate", "GateSet", "Pipeline", "Proposal", "Denial", "PayloadNotDecodable"):
        assert name in ep.__all__ and getattr(ep, name) is not None
    assert ep.Denial is ep.errors.Denial and ep.PayloadNotDecodable is ep.errors.PayloadNotDecodable
    assert set(ep.errors.__all__) <= set(ep.__all__)


def test_the_errors_of_tags_conditions_and_tracking_keep_their_fields() -> None:
    bad = ep.InvalidTag("tag '' must not be empty")
    assert isinstance(bad, ValueError) and isinstance(bad, ep.EventpakError) and bad.reason
    failed = ep.AppendConditionFailed(7)
    assert failed.global_sequence == 7 and "event 7" in str(failed) and not isinstance(failed, ValueError)
    conflict = ep.TrackingConflict("upstream", 3, 5)
    assert (conflict.name, conflict.position, conflict.recorded) == ("upstream", 3, 5)
    assert "already processed" in str(conflict)
    for cls in (ep.InvalidTag, ep.AppendConditionFailed, ep.TrackingConflict):
        assert cls is getattr(ep.errors, cls.__name__) and cls.__module__ == "eventpak.errors"
    assert ep.AppendCondition(ep.Region.all()).after is None
    assert ep.Tracking("upstream", 3) == ep.Tracking("upstream", 3) != ep.Tracking("upstream", 4)


def test_a_store_is_only_built_by_open(data_dir: Path) -> None:
    with pytest.raises(TypeError, match=r"ep\.Store\.open"):
        ep.Store(str(data_dir))  # type: ignore[call-arg]
    assert not data_dir.exists()


def test_store_config_defaults_are_the_engines() -> None:
    config = ep.StoreConfig("unused")
    defaults = _native.store_defaults()
    assert config.engine_options() == defaults
    assert defaults["sync"] == "batch"


@pytest.mark.parametrize(
    ("option", "value", "says"),
    [
        ("sync_every_n_events", True, "must be an int, not bool"),
        ("segment_max_bytes", 1024, "at least 4096"),
        ("max_batch_events", 0, "at least 1"),
        ("sync", "sometimes", "sync must be"),
        ("create", 1, "must be a bool"),
        ("max_event_bytes", -1, "out of range"),
    ],
)
def test_bad_options_are_refused_by_the_one_validator(
    data_dir: Path, option: str, value: object, says: str
) -> None:
    with pytest.raises(ep.InvalidConfig, match=says):
        ep.StoreConfig(data_dir, **{option: value})  # type: ignore[arg-type]
    with pytest.raises(ep.InvalidConfig, match=says):
        ep.Store.open(data_dir, **{option: value})  # type: ignore[misc]
    assert not data_dir.exists()


def test_version_comes_from_cargo() -> None:
    cargo = tomllib.loads((ROOT / "Cargo.toml").read_text())
    assert ep.__version__ == cargo["workspace"]["package"]["version"] == _native.__version__
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" in pyproject["project"]["dynamic"]


def test_stats_keys_are_the_typed_dict(store: ep.Store) -> None:
    store.append(("e", "s"), "k", 1)
    stats = store.stats()
    assert set(stats) == set(typing.get_type_hints(ep.StoreStats))
    assert stats["events"] == 1 and stats["sync"] == "batch"


def test_storage_failed_is_an_os_error_with_errno_and_path() -> None:
    err = ep.StorageFailed("writing frames", errno.ENOSPC, "No space left on device (os error 28)", "/data")
    assert isinstance(err, OSError) and isinstance(err, ep.EventpakError)
    assert (err.errno, err.path, err.filename, err.context) == (
        errno.ENOSPC,
        "/data",
        "/data",
        "writing frames",
    )
    assert "reopen the store to recover" in str(err) and "/data" in str(err)


def test_errors_keep_their_fields(store: ep.Store) -> None:
    store.append(("acct:1", "eu"), "deposit", 1)
    with pytest.raises(ep.ConcurrencyConflict) as conflict:
        store.append(("acct:1", "eu"), "deposit", 1, expected_sequence=0)
    assert (conflict.value.entity, conflict.value.expected, conflict.value.actual) == ("acct:1", 0, 1)
    with pytest.raises(ep.InvalidCoordinate) as bad:
        store.append(("a/b", "eu"), "deposit", 1)
    assert "'/'" in bad.value.reason and str(bad.value).startswith("invalid coordinate: ")
    with pytest.raises(ep.EventTooLarge) as large:
        store.append(("acct:1", "eu"), "deposit", b"x" * (17 << 20))
    assert large.value.max_bytes == 16 << 20 and large.value.size > large.value.max_bytes
    store.close()
    with pytest.raises(ep.StoreClosed) as closed:
        store.append(("acct:1", "eu"), "deposit", 1)
    assert closed.value.path == store.path


@pytest.mark.parametrize("bad", [-1, 2**64])
def test_store_integer_arguments_are_checked_and_named(store: ep.Store, bad: int) -> None:
    store.append(("acct:1", "eu"), "deposit", 1)
    first = store.query(ep.Region.all())[0]
    calls = {
        "expected_sequence": lambda: store.append(("acct:1", "eu"), "deposit", 1, expected_sequence=bad),
        "after": lambda: store.query(ep.Region.all(), after=bad),
        "limit": lambda: store.query(ep.Region.all(), limit=bad),
        "limit ": lambda: store.walk_ancestors(first.event_id, bad),
    }
    for name, call in calls.items():
        with pytest.raises(ep.InvalidArgument) as refused:
            call()
        assert refused.value.argument == name.strip()
        assert isinstance(refused.value, ValueError) and not isinstance(refused.value, OverflowError)
    assert store.stats()["events"] == 1  # nothing was written


TYPED_USE = """
from dataclasses import dataclass

import eventpak as ep

@ep.event_type("deposit", version=1)
@dataclass
class Deposit:
    amount: int

def amount(event: ep.Event) -> int:
    return event.decode(Deposit).amount

class Count(ep.Projection[int]):
    name = "count"
    def initial(self) -> int:
        return 0
    def apply(self, state: int, event: ep.Event) -> int:
        return state + 1

def handle(events: list[ep.Event], s: ep.Store, proof: ep.AtLeastOnce | None, /) -> None:
    return None

store = ep.Store.open("/nonexistent", sync="always", fence_wait_ms=10)
total: int | None = store.project("acct:1", Count())
handler: ep.Handler = handle
store.append_typed(("acct:1", "eu"), Deposit(1), idempotency_key="k")
ups: ep.Upcasters = ep.Upcasters().add("deposit", 0, lambda p: p)
ep.Store.open("/nonexistent", upcasters=ups, projection_cache=ep.NativeCache("/nonexistent-cache"))
listed: list[str] = ["acct:1", "eu"]  # a coordinate read from JSON is a list
store.append(listed, "opened", {})
store.append_batch([(listed, "opened", {}), ep.AppendRequest(listed, "opened", {})])
assert ep.Region.all().matches(listed, "opened")

def plain(events: list[ep.Event], s: ep.aio.AsyncStore, proof: ep.AtLeastOnce | None) -> None:
    return None

async def coroutine(events: list[ep.Event], s: ep.aio.AsyncStore, proof: ep.AtLeastOnce | None) -> None:
    return None

async def workers(s: ep.aio.AsyncStore) -> None:
    s.worker(ep.Region.all(), plain, ep.CursorWorkerConfig())  # a plain function works too
    s.worker(ep.Region.all(), coroutine, ep.CursorWorkerConfig())
"""


def test_the_public_api_type_checks_as_documented(tmp_path: Path) -> None:
    good = tmp_path / "good.py"
    good.write_text(TYPED_USE)
    out, _, status = mypy_api.run(["--strict", "--no-incremental", str(good)])
    assert status == 0, out
    bad = tmp_path / "bad.py"
    bad.write_text(
        TYPED_USE
        + 'ep.Store.open("/x", sync="sometimes")\nstore.project("a", Count()) + "s"\n'
        + 'ep.Store.open("/x", projection_cache="/cache")\n'
        + "def wrong(event: ep.Event) -> str:\n    return event.decode(Deposit)\n"
    )
    out, _, status = mypy_api.run(["--strict", "--no-incremental", str(bad)])
    assert status == 1
    assert 'Argument "sync" to "open" of "Store" has incompatible type' in out
    assert 'Unsupported operand types for + ("int" and "str")' in out
    assert 'Argument "projection_cache" to "open" of "Store" has incompatible type "str"' in out
    assert 'Incompatible return value type (got "Deposit", expected "str")' in out


def test_the_package_exports_what_all_names() -> None:
    assert {"Upcasters", "UpcastFailed", "EventType", "event_type"} <= set(ep.__all__)
    assert all(hasattr(ep, name) for name in ep.__all__)
    public = {n for n, v in vars(ep).items() if not n.startswith("_") and not isinstance(v, type(ep))}
    assert public - {"annotations", "atexit", "os", "close_open_stores_at_exit"} <= set(ep.__all__)
    assert issubclass(ep.UpcastFailed, ep.EventpakError) and ep.UpcastFailed is ep.errors.UpcastFailed


def test_aio_and_nats_load_on_first_use() -> None:
    code = (
        "import sys, eventpak as ep\n"
        "assert 'eventpak.nats' not in sys.modules and 'eventpak.aio' not in sys.modules\n"
        "assert ep.nats.Publisher.__module__ == 'eventpak.nats._publisher'\n"
        "assert ep.aio.open is sys.modules['eventpak.aio'].open\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
