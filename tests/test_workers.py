"""Supervised cursor workers: durable checkpoints (fail closed on corrupt or foreign
checkpoints, resume across reopen, surface write failures), witness, handler appends, idling
without busy polling, close/join/stop semantics and named daemon threads."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import eventpak as ep
import pytest

R = ep.Region
A = ep.CursorWorkerAction


class Recorder:
    """A handler that records every batch (and witness) and answers with ``decide(batch)``."""

    def __init__(self, decide=None):
        self._decide = decide or (lambda batch: A.CONTINUE)
        self._lock = threading.Lock()
        self.batches: list[list[int]] = []
        self.witnesses: list = []
        self.stores: list = []

    def __call__(self, batch, store, witness):
        with self._lock:
            self.batches.append([e.global_sequence for e in batch])
            self.witnesses.append(witness)
            self.stores.append(store)
        return self._decide(batch)

    @property
    def seqs(self) -> list[int]:
        with self._lock:
            return [s for b in self.batches for s in b]

    @property
    def calls(self) -> int:
        with self._lock:
            return len(self.batches)


def _config(**overrides):
    options = {"batch_size": 1, "idle_sleep": 0.001, "restart": ep.RestartPolicy.once()}
    options.update(overrides)
    return ep.CursorWorkerConfig(**options)


def _ckpt_path(data_dir: Path, checkpoint_id: str) -> Path:
    return data_dir / "cursors" / f"{checkpoint_id}.ckpt"


@pytest.fixture
def cwd(tmp_path, monkeypatch) -> Path:
    """An empty working directory: checkpoints must never land in it."""
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


def _assert_no_stray_checkpoint(cwd: Path) -> None:
    assert list(cwd.rglob("*")) == [], "checkpoint writes must stay under the store's data dir"


def _assert_checkpoint(data_dir, checkpoint_id, position, region):
    checkpoint = ep.Cursor.load_checkpoint(data_dir, checkpoint_id)
    assert checkpoint is not None
    assert checkpoint.position == position
    assert checkpoint.started is True
    assert checkpoint.region_identity == region.checkpoint_identity


# --- seed scenarios: durable checkpoints ---------------------------------------------------------


def test_worker_fails_closed_on_corrupt_checkpoint_before_the_handler_runs(open_store, data_dir, cwd, coord):
    checkpoint_id = "batpak-test-corrupt-start"
    path = _ckpt_path(data_dir, checkpoint_id)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not-msgpack")
    store = open_store(enable_index_checkpoint=False)
    # one matching event, so a worker that silently skipped the load would reach the handler
    store.append(coord("entity:cursor-corrupt", "scope:test"), "k", {"i": 0})
    handler = Recorder(lambda batch: A.STOP)
    handle = store.cursor_worker(
        R.entity("entity:cursor-corrupt"), handler, _config(checkpoint_id=checkpoint_id)
    )
    with pytest.raises(ep.CursorCheckpointCorrupt) as info:
        handle.join(timeout=10)
    assert Path(info.value.path).resolve() == path.resolve()
    assert info.value.reason
    assert handler.calls == 0, "the handler ran although the checkpoint is corrupt"
    assert not handle.is_alive()
    assert path.read_bytes() == b"not-msgpack"  # nothing overwrote the damaged checkpoint
    with pytest.raises(ep.CursorCheckpointCorrupt):
        handle.stop_and_join(timeout=10)
    store.close()
    _assert_no_stray_checkpoint(cwd)


def test_worker_resumes_from_checkpoint_across_reopen(open_store, data_dir, cwd, coord, wait_until):
    checkpoint_id = "batpak-test-durable-cursor"
    region = R.entity("entity:cursor-durable")
    target = coord("entity:cursor-durable", "scope:test")

    # phase 1: 100 events (sequences 0..99); a durable worker stops after exactly 50 of them
    store = open_store(enable_index_checkpoint=False)
    for i in range(100):
        store.append(target, "k", {"i": i})
    processed = []

    def first_pass(batch, _store, _witness):
        processed.extend(e.global_sequence for e in batch)
        return A.STOP if len(processed) >= 50 else A.CONTINUE

    handle = store.cursor_worker(region, first_pass, _config(checkpoint_id=checkpoint_id))
    handle.join(timeout=30)
    assert processed == list(range(50))
    _assert_checkpoint(data_dir, checkpoint_id, 49, region)
    store.close()

    # phase 2: reopen, append 50 more (100..149); a new worker with the same id sees only the
    # 100 events after the checkpoint
    store = open_store(enable_index_checkpoint=False)
    for i in range(100, 150):
        assert store.append(target, "k", {"i": i}).global_sequence == i
    second = Recorder()
    handle = store.cursor_worker(region, second, _config(batch_size=8, checkpoint_id=checkpoint_id))
    wait_until(lambda: len(second.seqs) >= 100, timeout=30, what="second pass to see 100 events")
    handle.stop_and_join(timeout=10)
    assert set(second.seqs).isdisjoint(processed), "events acked before the checkpoint came again"
    assert second.seqs == list(range(50, 150))
    assert all(len(b) <= 8 for b in second.batches)
    _assert_checkpoint(data_dir, checkpoint_id, 149, region)
    store.close()
    _assert_no_stray_checkpoint(cwd)


def test_checkpoint_id_reused_for_a_different_region_fails_closed(open_store, data_dir, cwd, coord):
    checkpoint_id = "batpak-test-region-bound"
    store = open_store(enable_index_checkpoint=False)
    store.append(coord("entity:cursor-a", "scope:test"), "k", {"i": 0})
    store.append(coord("entity:cursor-b", "scope:test"), "k", {"i": 1})
    region_a, region_b = R.entity("entity:cursor-a"), R.entity("entity:cursor-b")

    first = Recorder(lambda batch: A.STOP)
    store.cursor_worker(region_a, first, _config(checkpoint_id=checkpoint_id)).join(timeout=10)
    assert first.seqs == [0]
    _assert_checkpoint(data_dir, checkpoint_id, 0, region_a)
    saved = _ckpt_path(data_dir, checkpoint_id).read_bytes()

    second = Recorder(lambda batch: A.STOP)
    handle = store.cursor_worker(region_b, second, _config(checkpoint_id=checkpoint_id))
    with pytest.raises(ep.CursorCheckpointRegionMismatch) as info:
        handle.join(timeout=10)
    assert "entity:cursor-b" in info.value.expected
    assert info.value.expected == region_b.checkpoint_identity
    assert info.value.stored == region_a.checkpoint_identity
    assert Path(info.value.path).resolve() == _ckpt_path(data_dir, checkpoint_id).resolve()
    assert second.calls == 0
    assert _ckpt_path(data_dir, checkpoint_id).read_bytes() == saved
    store.close()
    _assert_no_stray_checkpoint(cwd)


def test_checkpoint_without_region_identity_fails_closed(open_store, data_dir, coord):
    store = open_store()
    store.append(coord("a"), "k", 0)
    ep.Cursor.save_checkpoint(data_dir, "anonymous", ep.CursorCheckpoint(0, False))
    handler = Recorder()
    handle = store.cursor_worker(R.entity("a"), handler, _config(checkpoint_id="anonymous"))
    with pytest.raises(ep.CursorCheckpointRegionMismatch) as info:
        handle.join(timeout=10)
    assert info.value.stored is None
    assert info.value.expected == R.entity("a").checkpoint_identity
    assert handler.calls == 0


def test_checkpoint_of_a_narrower_region_is_a_mismatch(open_store, data_dir, coord):
    store = open_store()
    store.append(coord("a"), "k", 0)
    store.cursor_worker(
        R.entity("a").with_kind("k"), Recorder(lambda b: A.STOP), _config(checkpoint_id="c")
    ).join(timeout=10)
    handle = store.cursor_worker(R.entity("a"), Recorder(), _config(checkpoint_id="c"))
    with pytest.raises(ep.CursorCheckpointRegionMismatch):
        handle.join(timeout=10)


def test_checkpoint_write_failure_surfaces_through_join(open_store, data_dir, cwd, coord):
    checkpoint_id = "batpak-test-checkpoint-write-fails"
    store = open_store(enable_index_checkpoint=False)
    blocker = _ckpt_path(data_dir, checkpoint_id)
    blocker.parent.mkdir(parents=True, exist_ok=True)
    processed = []

    def handler(batch, _store, _witness):
        processed.append(len(batch))
        blocker.mkdir(exist_ok=True)  # the rename onto the checkpoint path must now fail
        return A.STOP

    handle = store.cursor_worker(
        R.entity("entity:cursor-ckpt-fail"), handler, _config(checkpoint_id=checkpoint_id)
    )
    store.append(coord("entity:cursor-ckpt-fail", "scope:test"), "k", {"i": 0})
    with pytest.raises(ep.CheckpointWriteFailed) as info:
        handle.join(timeout=10)
    assert info.value.checkpoint_id == checkpoint_id
    assert info.value.cause
    assert processed == [1], "exactly one batch before the checkpoint failure surfaces"
    store.close()
    _assert_no_stray_checkpoint(cwd)


def test_checkpoint_write_failure_after_continue_stops_the_worker(open_store, data_dir, coord):
    checkpoint_id = "ckpt-fails-on-continue"
    store = open_store()
    for i in range(5):
        store.append(coord("a"), "k", i)
    blocker = _ckpt_path(data_dir, checkpoint_id)

    def decide(batch):
        blocker.mkdir(parents=True, exist_ok=True)
        return A.CONTINUE

    handler = Recorder(decide)
    handle = store.cursor_worker(R.entity("a"), handler, _config(checkpoint_id=checkpoint_id))
    with pytest.raises(ep.CheckpointWriteFailed) as info:
        handle.join(timeout=10)
    assert info.value.checkpoint_id == checkpoint_id
    assert handler.seqs == [0], "the worker went on after it could not persist its position"
    assert not handle.is_alive()


def test_symlinked_cursors_dir_fails_the_worker(open_store, data_dir, tmp_path, coord):
    store = open_store()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (data_dir / "cursors").symlink_to(elsewhere, target_is_directory=True)
    store.append(coord("a"), "k", 0)
    handler = Recorder()
    handle = store.cursor_worker(R.all(), handler, _config(checkpoint_id="linked"))
    with pytest.raises(ep.CheckpointWriteFailed) as info:
        handle.join(timeout=10)
    assert info.value.checkpoint_id == "linked"
    assert list(elsewhere.iterdir()) == []


# --- durable progress ----------------------------------------------------------------------------


def test_continue_persists_before_the_next_batch(open_store, data_dir, coord):
    store = open_store()
    for i in range(4):
        store.append(coord("a"), "k", i)
    seen_checkpoints = []

    def handler(batch, _store, _witness):
        saved = ep.Cursor.load_checkpoint(data_dir, "progress")
        seen_checkpoints.append(None if saved is None else (saved.position, saved.started))
        return A.STOP if batch[-1].global_sequence == 3 else None  # None counts as CONTINUE

    store.cursor_worker(R.entity("a"), handler, _config(checkpoint_id="progress")).join(timeout=10)
    assert seen_checkpoints == [None, (0, True), (1, True), (2, True)]
    _assert_checkpoint(data_dir, "progress", 3, R.entity("a"))


def test_stop_persists_the_position(open_store, data_dir, coord):
    store = open_store()
    for i in range(6):
        store.append(coord("a"), "k", i)
    handler = Recorder(lambda batch: A.STOP)
    store.cursor_worker(R.entity("a"), handler, _config(batch_size=4, checkpoint_id="stopper")).join(
        timeout=10
    )
    assert handler.batches == [[0, 1, 2, 3]]
    _assert_checkpoint(data_dir, "stopper", 3, R.entity("a"))
    again = Recorder(lambda batch: A.STOP)
    store.cursor_worker(R.entity("a"), again, _config(batch_size=4, checkpoint_id="stopper")).join(timeout=10)
    assert again.batches == [[4, 5]]


def test_a_resumed_durable_worker_reports_its_checkpoint_as_its_position_from_the_start(open_store, coord):
    store = open_store()
    for i in range(10):
        store.append(coord("a"), "k", i)
    cursor = store.cursor(R.entity("a"))
    cursor.poll_batch(100)
    cursor.commit("resumed")  # saved at 9
    for _ in range(20):
        # Read at once, before or after the worker's thread resumed its cursor: the same.
        handle = store.cursor_worker(R.entity("a"), Recorder(), _config(checkpoint_id="resumed"))
        assert handle.position == 9
        assert handle.lag == 0
        handle.stop()
        handle.join(timeout=10)
        assert handle.position == 9


def test_stop_with_rollback_on_the_first_batch_persists_nothing(open_store, data_dir, coord):
    store = open_store()
    store.append(coord("a"), "k", 0)
    handler = Recorder(lambda batch: A.STOP_WITH_ROLLBACK)
    store.cursor_worker(R.entity("a"), handler, _config(checkpoint_id="rb")).join(timeout=10)
    assert handler.seqs == [0]
    assert ep.Cursor.load_checkpoint(data_dir, "rb") is None
    again = Recorder(lambda batch: A.STOP)
    store.cursor_worker(R.entity("a"), again, _config(checkpoint_id="rb")).join(timeout=10)
    assert again.seqs == [0], "sequence 0 must come again after a rollback"


@pytest.mark.parametrize(("started", "first"), [(False, 0), (True, 1)])
def test_worker_honours_the_started_flag_of_its_checkpoint(open_store, data_dir, coord, started, first):
    store = open_store()
    for i in range(3):
        store.append(coord("a"), "k", i)
    region = R.entity("a")
    ep.Cursor.save_checkpoint(
        data_dir, "s", ep.CursorCheckpoint(0, started, None, region.checkpoint_identity)
    )
    handler = Recorder(lambda batch: A.STOP)
    store.cursor_worker(region, handler, _config(checkpoint_id="s")).join(timeout=10)
    assert handler.seqs == [first]


def test_non_durable_worker_writes_no_checkpoint(open_store, data_dir, coord):
    store = open_store()
    for i in range(3):
        store.append(coord("a"), "k", i)
    handler = Recorder(lambda batch: A.STOP if batch[-1].global_sequence == 2 else A.CONTINUE)
    store.cursor_worker(R.all(), handler, _config()).join(timeout=10)
    assert handler.seqs == [0, 1, 2]
    assert not (data_dir / "cursors").exists()


def test_non_durable_worker_starts_from_the_beginning_each_time(store, coord):
    for i in range(3):
        store.append(coord("a"), "k", i)
    for _ in range(2):
        handler = Recorder(lambda batch: A.STOP)
        store.cursor_worker(R.all(), handler, _config(batch_size=10)).join(timeout=10)
        assert handler.seqs == [0, 1, 2]


# --- delivery ------------------------------------------------------------------------------------


def test_worker_delivers_matching_events_in_order_within_batch_size(store, coord, wait_until):
    for i in range(100):
        store.append(coord("a" if i % 3 else "b"), "k", i)
    handler = Recorder()
    handle = store.cursor_worker(R.entity("a"), handler, _config(batch_size=7))
    expected = [e.global_sequence for e in store.query(R.entity("a"))]
    wait_until(lambda: len(handler.seqs) >= len(expected), timeout=10, what="all matching events")
    handle.stop_and_join(timeout=10)
    assert handler.seqs == expected
    assert all(1 <= len(b) <= 7 for b in handler.batches)


def test_worker_delivers_events_appended_while_it_runs(store, coord, wait_until):
    handler = Recorder()
    handle = store.cursor_worker(R.all(), handler, _config(batch_size=5))
    for i in range(30):
        store.append(coord("a"), "k", i)
        if i % 10 == 0:
            wait_until(lambda i=i: i in handler.seqs, timeout=10, what=f"delivery of {i}")
    wait_until(lambda: len(handler.seqs) >= 30, timeout=10, what="all 30 events")
    handle.stop_and_join(timeout=10)
    assert handler.seqs == list(range(30))


def test_worker_is_woken_by_a_commit_not_by_its_idle_timer(store, coord, wait_until):
    handler = Recorder(lambda batch: A.STOP)
    handle = store.cursor_worker(R.all(), handler, _config(idle_sleep=600.0))
    assert handle.is_alive()
    store.append(coord("a"), "k", 0)
    handle.join(timeout=10)  # would take 600 s if the worker only noticed events on its timer
    assert handler.seqs == [0]


def test_stop_wakes_an_idle_worker(store):
    handle = store.cursor_worker(R.all(), Recorder(), _config(idle_sleep=600.0))
    assert handle.is_alive()
    handle.stop_and_join(timeout=10)
    assert not handle.is_alive()


def test_witness_is_present_iff_the_worker_is_durable(store, coord):
    store.append(coord("a"), "k", 0)
    durable = Recorder(lambda batch: A.STOP)
    store.cursor_worker(R.all(), durable, _config(checkpoint_id="witnessed")).join(timeout=10)
    (witness,) = durable.witnesses
    assert isinstance(witness, ep.AtLeastOnce)
    assert witness.checkpoint_id == "witnessed"
    plain = Recorder(lambda batch: A.STOP)
    store.cursor_worker(R.all(), plain, _config()).join(timeout=10)
    assert plain.witnesses == [None]


def test_handler_receives_the_store(store, coord):
    store.append(coord("a"), "k", 0)
    handler = Recorder(lambda batch: A.STOP)
    store.cursor_worker(R.all(), handler, _config()).join(timeout=10)
    assert handler.stores == [store]
    assert handler.stores[0] is store


def test_handler_may_append_to_the_store(store, coord):
    out = []

    def handler(batch, handler_store, _witness):
        for event in batch:
            out.append(event.payload)
            if event.payload < 5:
                handler_store.append(coord("loop"), "k", event.payload + 1)
                handler_store.append(coord("elsewhere"), "audit", event.payload)
        return A.STOP if out[-1] == 5 else A.CONTINUE

    handle = store.cursor_worker(R.entity("loop"), handler, _config(batch_size=3))
    store.append(coord("loop"), "k", 0)
    handle.join(timeout=10)
    assert out == [0, 1, 2, 3, 4, 5], "the worker must see the events its handler appended"
    assert [e.payload for e in store.query(R.entity("elsewhere"))] == [0, 1, 2, 3, 4]
    assert [e.entity_sequence for e in store.query(R.entity("loop"))] == list(range(6))


def test_idle_worker_does_not_burn_cpu(store, coord):
    for i in range(200):
        store.append(coord("busy"), "k", i)  # plenty of events, none of them in the region
    handler = Recorder()
    handle = store.cursor_worker(R.entity("nothing-matches"), handler, _config(idle_sleep=0.01))
    assert handle.is_alive()
    wall_start, cpu_start = time.monotonic(), time.process_time()
    threading.Event().wait(1.0)  # idle period being measured, not a synchronisation
    cpu_used, wall = time.process_time() - cpu_start, time.monotonic() - wall_start
    handle.stop_and_join(timeout=10)
    assert handler.calls == 0
    assert cpu_used < 0.3 * wall, f"an idle worker used {cpu_used:.3f} s CPU in {wall:.3f} s"


# --- lifecycle -----------------------------------------------------------------------------------


def test_join_with_timeout_raises_timeout_error_and_does_not_stop(store, coord, wait_until):
    handler = Recorder()
    handle = store.cursor_worker(R.all(), handler, _config())
    with pytest.raises(TimeoutError):
        handle.join(timeout=0.05)
    assert handle.is_alive(), "join() must not stop the worker"
    store.append(coord("a"), "k", 0)
    wait_until(lambda: handler.seqs == [0], timeout=10, what="the worker to keep working")
    handle.stop_and_join(timeout=10)
    assert not handle.is_alive()


def test_stop_then_join(store):
    handle = store.cursor_worker(R.all(), Recorder(), _config())
    handle.stop()
    handle.join(timeout=10)
    assert not handle.is_alive()


def test_worker_thread_is_a_named_daemon(store):
    durable = store.cursor_worker(R.all(), Recorder(), _config(checkpoint_id="named-one"))
    first = store.cursor_worker(R.all(), Recorder(), _config())
    second = store.cursor_worker(R.all(), Recorder(), _config())
    threads = {t.name: t for t in threading.enumerate()}
    assert durable.name == "eventpak-worker-named-one"
    assert re.fullmatch(r"eventpak-worker-#\d+", first.name)
    assert re.fullmatch(r"eventpak-worker-#\d+", second.name)
    assert first.name != second.name
    for handle in (durable, first, second):
        assert handle.name in threads
        assert threads[handle.name].daemon is True
    for handle in (durable, first, second):
        handle.stop_and_join(timeout=10)
    names = {t.name for t in threading.enumerate()}
    assert not names & {durable.name, first.name, second.name}


def test_store_close_joins_workers_without_raising_their_errors(open_store, data_dir, coord, wait_until):
    store = open_store()
    store.append(coord("fail"), "k", 0)
    corrupt = _ckpt_path(data_dir, "corrupt")
    corrupt.parent.mkdir(parents=True, exist_ok=True)
    corrupt.write_bytes(b"garbage")

    def failing(batch, _store, _witness):
        raise RuntimeError("handler failure")

    failed = store.cursor_worker(R.entity("fail"), failing, _config(restart=ep.RestartPolicy.never()))
    broken = store.cursor_worker(R.all(), Recorder(), _config(checkpoint_id="corrupt"))
    idle = store.cursor_worker(R.entity("idle"), Recorder(), _config(idle_sleep=600.0))
    durable_handler = Recorder()
    durable = store.cursor_worker(R.entity("fail"), durable_handler, _config(checkpoint_id="kept"))
    wait_until(lambda: not failed.is_alive() and not broken.is_alive(), timeout=10, what="failing workers")
    wait_until(lambda: durable_handler.seqs == [0], timeout=10, what="durable worker")
    assert idle.is_alive() and durable.is_alive()

    store.close()  # must neither raise the workers' errors nor leave a worker running
    assert store.closed
    for handle in (failed, broken, idle, durable):
        assert not handle.is_alive()
    with pytest.raises(ep.RestartBudgetExhausted):
        failed.join(timeout=10)
    with pytest.raises(ep.CursorCheckpointCorrupt):
        broken.join(timeout=10)
    idle.join(timeout=10)
    durable.join(timeout=10)
    _assert_checkpoint(data_dir, "kept", 0, R.entity("fail"))


def test_store_context_exit_stops_its_workers(data_dir, coord):
    with ep.Store.open(data_dir) as store:
        handle = store.cursor_worker(R.all(), Recorder(), _config(idle_sleep=600.0))
        store.append(coord("a"), "k", 0)
    assert not handle.is_alive()
    handle.join(timeout=10)


def test_worker_steps_over_hidden_ranges_and_is_woken_by_fence_commits(
    open_store, data_dir, coord, wait_until
):
    store = open_store()
    handler = Recorder()
    config = _config(
        batch_size=4,
        idle_sleep=600.0,  # only commits can wake it
        checkpoint_id="fenced",
        gap_observation=ep.CursorGapConfig.enabled(4),
    )
    handle = store.cursor_worker(R.all(), handler, config)
    store.append(coord("a"), "k", "v0")
    wait_until(lambda: handler.seqs == [0], timeout=10, what="v0")
    with store.fence() as fence:
        fence.append_batch([(coord("a"), "k", "h1"), (coord("b"), "k", "h2")])
        fence.cancel()
    with store.fence() as fence:
        fence.append(coord("a"), "k", "c3")
        fence.append(coord("b"), "k", "c4")
    wait_until(lambda: handler.seqs == [0, 3, 4], timeout=10, what="the committed fence's events")
    # The jump over the cancelled fence, read through the handle.
    (gap,) = handle.take_gaps()
    assert (gap.expected_sequence, gap.delivered_sequence, gap.cancelled_ranges) == (1, 3, [(1, 3)])
    assert handle.take_gaps() == []
    store.append(coord("a"), "k", "v5")
    wait_until(lambda: handler.seqs == [0, 3, 4, 5], timeout=10, what="v5")
    handle.stop_and_join(timeout=10)
    assert handler.seqs == [0, 3, 4, 5], "hidden events must never reach a worker"
    _assert_checkpoint(data_dir, "fenced", 5, R.all())


@pytest.mark.parametrize(
    "args",
    [
        ("not a region", lambda *a: None, None),
        (ep.Region.all(), None, None),
        (ep.Region.all(), lambda *a: None, {"batch_size": 10}),
    ],
    ids=["region", "handler", "config"],
)
def test_bad_worker_arguments_raise_before_a_thread_starts(open_store, args) -> None:
    store = open_store()
    threads = threading.active_count()
    with pytest.raises(TypeError):
        store.cursor_worker(*args)
    assert threading.active_count() == threads


@pytest.mark.parametrize(
    "option",
    [
        {"gap_observation": "x"},
        {"idle_sleep": True},
        {"standby": 1},
        {"batch_size": 0},
        {"batch_size": 2**64},
        {"checkpoint_id": "c", "dead_letter_after": 2**64},
        {"standby": True},
    ],
    ids=[
        "gap_observation",
        "idle_sleep",
        "standby",
        "batch_size 0",
        "batch_size 2**64",
        "dead_letter_after 2**64",
        "standby without a checkpoint_id",
    ],
)
def test_bad_worker_config_values_raise_invalid_config(option) -> None:
    with pytest.raises(ep.InvalidConfig):
        ep.CursorWorkerConfig(**option)


def test_a_durable_worker_on_a_read_only_store_is_refused_at_start(open_store) -> None:
    store = open_store()
    store.append(("a", "s"), "k", 1)
    store.close()
    reader = open_store(read_only=True)
    config = ep.CursorWorkerConfig(checkpoint_id="cp")
    with pytest.raises(ep.ReadOnlyStore, match="starting a durable worker is refused"):
        reader.cursor_worker(ep.Region.all(), lambda *args: None, config)
    seen = threading.Event()
    plain = reader.cursor_worker(ep.Region.all(), lambda *args: seen.set())  # no checkpoint: reads
    assert seen.wait(30)
    plain.stop_and_join(timeout=30)
