"""Workers that do not die silently: every handler exception is logged, restarts back off
and are bounded per window by default, handles say where the worker is, one live worker per
checkpoint id, and a handler cannot wait on its own worker."""

from __future__ import annotations

import logging
import threading

import eventpak as ep
import pytest
from conftest import wait_until
from eventpak.restart import RestartBudget

REGION = ep.Region.all()
FAST = (1, 1)  # backoff_ms for tests that only count restarts


def _append(store: ep.Store, n: int) -> None:
    store.append_batch([(("acct:1", "eu"), "deposit", {"i": i}) for i in range(n)])


def test_every_handler_exception_is_logged_with_its_traceback(
    store: ep.Store, caplog: pytest.LogCaptureFixture
) -> None:
    failures = iter([ValueError("first"), ValueError("second")])

    def flaky(batch: list[ep.Event], _store: ep.Store, _witness: object) -> None:
        failure = next(failures, None)
        if failure is not None:
            raise failure

    config = ep.CursorWorkerConfig(restart=ep.RestartPolicy.bounded(5, 60_000, backoff_ms=FAST))
    with caplog.at_level(logging.ERROR, logger="eventpak.worker"):
        handle = store.cursor_worker(REGION, flaky, config)
        _append(store, 1)
        handle_position = _wait_for_position(handle, 0)
        handle.stop_and_join(timeout=30)
    assert handle_position == 0
    logged = [r for r in caplog.records if r.name == "eventpak.worker"]
    assert [str(r.exc_info[1]) for r in logged if r.exc_info] == ["first", "second"]
    assert all(r.exc_info and r.exc_info[2] is not None for r in logged)  # with traceback
    assert handle.restarts == 2
    assert isinstance(handle.last_error, ValueError) and str(handle.last_error) == "second"


def _wait_for_position(handle: ep.CursorWorkerHandle, position: int) -> int | None:
    # The handle exposes no signal for its commits: observe it (wait_until only paces).
    wait_until(lambda: handle.position == position or not handle.is_alive(), 30, "the worker's commit")
    return handle.position


def test_the_default_policy_is_bounded_five_per_minute() -> None:
    assert ep.CursorWorkerConfig().restart == ep.RestartPolicy.bounded(5, 60_000)
    assert ep.CursorWorkerConfig().restart.backoff_ms == (50, 5_000)


def test_a_bounded_budget_ends_with_the_last_handler_exception_as_cause(store: ep.Store) -> None:
    def always_fails(batch: list[ep.Event], _store: ep.Store, _witness: object) -> None:
        raise RuntimeError("down")

    policy = ep.RestartPolicy.bounded(3, 60_000, backoff_ms=FAST)
    handle = store.cursor_worker(REGION, always_fails, ep.CursorWorkerConfig(restart=policy))
    _append(store, 1)
    with pytest.raises(ep.RestartBudgetExhausted) as exhausted:
        handle.join(timeout=30)
    assert isinstance(exhausted.value.__cause__, RuntimeError)
    assert handle.restarts == 3
    assert handle.position is None  # nothing was ever committed


def test_unlimited_restarts_keep_a_worker_alive_through_many_failures(store: ep.Store) -> None:
    failures_left = [20]
    delivered = threading.Event()

    def recovers(batch: list[ep.Event], _store: ep.Store, _witness: object) -> None:
        if failures_left[0]:
            failures_left[0] -= 1
            raise ConnectionError("transient")
        delivered.set()

    policy = ep.RestartPolicy.unlimited(backoff_ms=FAST)
    handle = store.cursor_worker(REGION, recovers, ep.CursorWorkerConfig(restart=policy))
    _append(store, 3)
    assert delivered.wait(30)
    handle.stop_and_join(timeout=30)
    assert handle.restarts == 20 and handle.position == 2
    assert isinstance(handle.last_error, ConnectionError)  # a success does not clear it


def test_stop_ends_a_restart_backoff_at_once(store: ep.Store) -> None:
    failed = threading.Event()

    def fails(batch: list[ep.Event], _store: ep.Store, _witness: object) -> None:
        failed.set()
        raise RuntimeError("wait a minute before the next try")

    policy = ep.RestartPolicy.unlimited(backoff_ms=(60_000, 60_000))
    handle = store.cursor_worker(REGION, fails, ep.CursorWorkerConfig(restart=policy))
    _append(store, 1)
    assert failed.wait(30)
    handle.stop_and_join(timeout=30)  # would raise TimeoutError if the minute were slept out
    assert handle.restarts == 0


@pytest.mark.parametrize("backoff", [(10**13, 10**13), (2**63, 2**64 - 1)])
def test_a_backoff_longer_than_any_wait_can_be_waits_and_stops(
    store: ep.Store, backoff: tuple[int, int]
) -> None:
    # A policy may name any u64 of milliseconds; a wait that long would make the wait raise.
    failed = threading.Event()

    def fails(batch: list[ep.Event], _store: ep.Store, _witness: object) -> None:
        failed.set()
        raise RuntimeError("come back in a few centuries")

    policy = ep.RestartPolicy.unlimited(backoff_ms=backoff)
    handle = store.cursor_worker(REGION, fails, ep.CursorWorkerConfig(restart=policy))
    _append(store, 1)
    assert failed.wait(30)
    assert handle.is_alive()  # waiting out the backoff, not crashed
    handle.stop_and_join(timeout=30)
    assert handle.restarts == 0 and isinstance(handle.last_error, RuntimeError)
    assert RestartBudget(policy, lambda: 0.0).backoff_s() == threading.TIMEOUT_MAX


def test_backoff_doubles_up_to_its_ceiling_and_a_success_resets_it() -> None:
    budget = RestartBudget(ep.RestartPolicy.unlimited(backoff_ms=(50, 300)), lambda: 0.0)
    assert [budget.backoff_s() for _ in range(5)] == [0.05, 0.1, 0.2, 0.3, 0.3]
    budget.succeeded()
    assert budget.backoff_s() == 0.05


def test_a_bounded_window_starts_again_once_elapsed() -> None:
    now = [0.0]
    budget = RestartBudget(ep.RestartPolicy.bounded(2, 1_000), lambda: now[0])
    assert budget.allow() and budget.allow() and not budget.allow()
    now[0] = 1.0
    assert budget.allow()


@pytest.mark.parametrize(
    "make",
    [
        lambda: ep.RestartPolicy(-1),
        lambda: ep.RestartPolicy("3"),  # type: ignore[arg-type]
        lambda: ep.RestartPolicy(True),
        lambda: ep.RestartPolicy.bounded(-1, 1_000),
        lambda: ep.RestartPolicy.bounded(3, 0),
        lambda: ep.RestartPolicy.bounded(2**64, 1_000),
        lambda: ep.RestartPolicy.bounded(3, 2**64),
        lambda: ep.RestartPolicy.bounded(3, 1.5),  # type: ignore[arg-type]
        lambda: ep.RestartPolicy.unlimited(backoff_ms=(10, 5)),
        lambda: ep.RestartPolicy.once(backoff_ms=(-1, 5)),
        lambda: ep.CursorWorkerConfig(restart="bounded"),  # type: ignore[arg-type]
    ],
)
def test_bad_restart_policies_raise_invalid_config(make) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ep.InvalidConfig):
        make()


def test_backoff_may_be_given_as_a_list_as_configuration_files_give_it() -> None:
    from_config = ep.RestartPolicy.bounded(3, 1_000, backoff_ms=[10, 500])  # type: ignore[arg-type]
    assert from_config.backoff_ms == (10, 500)
    assert from_config == ep.RestartPolicy.bounded(3, 1_000, backoff_ms=(10, 500))
    assert hash(from_config) == hash(ep.RestartPolicy.bounded(3, 1_000, backoff_ms=(10, 500)))
    for bad in ([10], [10, 5], [10, 20, 30], "10,20"):
        with pytest.raises(ep.InvalidConfig):
            ep.RestartPolicy.once(backoff_ms=bad)  # type: ignore[arg-type]


def test_max_restarts_none_means_no_limit() -> None:
    assert ep.RestartPolicy(None) == ep.RestartPolicy.unlimited()
    budget = RestartBudget(ep.RestartPolicy(None), lambda: 0.0)
    assert all(budget.allow() for _ in range(10_000))


def test_handle_position_follows_commits_and_not_rollbacks(store: ep.Store) -> None:
    answers = iter([ep.CursorWorkerAction.CONTINUE, ep.CursorWorkerAction.STOP_WITH_ROLLBACK])
    handle = store.cursor_worker(
        REGION, lambda batch, s, w: next(answers), ep.CursorWorkerConfig(batch_size=2)
    )
    assert handle.position is None
    _append(store, 2)
    assert _wait_for_position(handle, 1) == 1
    _append(store, 2)
    handle.join(timeout=30)  # the rollback stopped it
    assert handle.position == 1


def test_stop_and_join_inside_the_handler_raises_runtime_error_at_once(store: ep.Store) -> None:
    raised: list[BaseException] = []
    holder: list[ep.CursorWorkerHandle] = []
    ready = threading.Event()

    def handler(batch: list[ep.Event], _store: ep.Store, _witness: object) -> ep.CursorWorkerAction:
        ready.wait(30)
        try:
            holder[0].stop_and_join()
        except RuntimeError as exc:
            raised.append(exc)
        return ep.CursorWorkerAction.STOP

    holder.append(store.cursor_worker(REGION, handler))
    ready.set()
    _append(store, 1)
    holder[0].join(timeout=30)
    assert len(raised) == 1 and "own handler" in str(raised[0])


def test_system_exit_in_a_handler_is_a_handler_failure(store: ep.Store) -> None:
    def exits(batch: list[ep.Event], _store: ep.Store, _witness: object) -> None:
        raise SystemExit(3)

    config = ep.CursorWorkerConfig(restart=ep.RestartPolicy.never())
    handle = store.cursor_worker(REGION, exits, config)
    _append(store, 1)
    with pytest.raises(ep.RestartBudgetExhausted) as exhausted:
        handle.join(timeout=30)
    assert isinstance(exhausted.value.__cause__, SystemExit)
    assert isinstance(handle.last_error, SystemExit)


def test_a_second_live_worker_on_one_checkpoint_is_refused(store: ep.Store) -> None:
    config = ep.CursorWorkerConfig(checkpoint_id="mailer")
    first = store.cursor_worker(REGION, lambda *_: None, config)
    with pytest.raises(ep.CheckpointInUse) as in_use:
        store.cursor_worker(REGION, lambda *_: None, config)
    assert in_use.value.checkpoint_id == "mailer"
    # Workers without a checkpoint, or with another one, are not affected.
    others = [
        store.cursor_worker(REGION, lambda *_: None),
        store.cursor_worker(REGION, lambda *_: None),
        store.cursor_worker(REGION, lambda *_: None, ep.CursorWorkerConfig(checkpoint_id="audit")),
    ]
    first.stop_and_join(timeout=30)
    again = store.cursor_worker(REGION, lambda *_: None, config)  # free once the first stopped
    for handle in [again, *others]:
        handle.stop_and_join(timeout=30)


def test_handler_protocol_takes_positional_parameters_of_any_name(store: ep.Store) -> None:
    seen: list[int] = []
    done = threading.Event()

    def handler(events: list[ep.Event], the_store: ep.Store, proof: ep.AtLeastOnce | None, /) -> None:
        seen.extend(e.global_sequence for e in events)
        done.set()

    typed: ep.Handler = handler
    handle = store.cursor_worker(REGION, typed)
    _append(store, 1)
    assert done.wait(30)
    handle.stop_and_join(timeout=30)
    assert seen == [0]
