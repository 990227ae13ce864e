"""(k) ``store.project(PROJ_ENTITY, Sum())`` with a ``NativeCache`` right after one new deposit
(appended untimed before each call), per call p50/p99, with reference rows: the same loop with the
cache dir on tmpfs (when there is one), a pure cache hit and the ``append`` itself. Each round builds
a fresh store (loaded, ``sync()``ed, then one cold ``project()`` warms the cache)."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import eventpak as ep

from benches._workload import POOL_MASK, SCOPE
from benches.compare.harness import (
    DEPOSIT,
    PAYLOADS,
    PROJ_ENTITY,
    WARMUP_CALLS,
    Bench,
    Peer,
    Row,
    Sample,
    latency_sample,
    perf,
    projection_sum,
)
from benches.compare.peers import eventpak
from benches.compare.peers.eventpak import Sum

K_AIM_US = 50.0  # aim of (k): p50 of a project() after one new event


def tmpfs_dir() -> str | None:
    """/dev/shm when it is a tmpfs this process may write (for the reference row of (k))."""
    try:
        with open("/proc/self/mounts") as fh:
            if not any(ln.split()[1:3] == ["/dev/shm", "tmpfs"] for ln in fh):
                return None
    except OSError:
        return None
    return "/dev/shm" if os.access("/dev/shm", os.W_OK) else None


def run(b: Bench) -> None:
    n, m = b.args.projection_events, b.args.projection_calls
    clock = time.perf_counter_ns
    coord = ep.Coordinate(PROJ_ENTITY, SCOPE)

    def cached(mode: str, cache_parent: str | None = None) -> Callable[[Path], Sample]:
        """One round: an n-event entity, a NativeCache warmed by one cold project(), then m timed
        calls (after WARMUP_CALLS untimed ones) of the ``mode`` loop."""

        def run(d: Path) -> Sample:
            cache_dir = Path(tempfile.mkdtemp(prefix="k-cache-", dir=cache_parent or d))
            store = eventpak.open_store(d, projection_cache=ep.NativeCache(str(cache_dir)))
            try:
                eventpak.load_entity(store, n)
                store.sync()  # no flush of the load pending in the timed loop
                expected = projection_sum(n)
                t0 = perf()
                state = store.project(PROJ_ENTITY, Sum())
                cold = perf() - t0
                if state != expected:
                    raise RuntimeError(f"the cold projection gave {state}, expected {expected}")
                append, project = store.append, store.project
                lat: list[int] = []
                t_start = perf()
                for i in range(-WARMUP_CALLS, m):
                    payload = PAYLOADS[i & POOL_MASK]
                    if mode == "append":
                        t0 = clock()
                        append(coord, DEPOSIT, payload)
                        t1 = clock()
                    else:
                        if mode == "incremental":
                            append(coord, DEPOSIT, payload)
                            expected += payload["amount"]
                        t0 = clock()
                        state = project(PROJ_ENTITY, Sum())
                        t1 = clock()
                        if state != expected:
                            raise RuntimeError(f"project() gave {state}, expected {expected}")
                    if i >= 0:
                        lat.append(t1 - t0)
                    else:
                        t_start = perf()
                secs = perf() - t_start
            finally:
                store.close()
                shutil.rmtree(cache_dir, ignore_errors=True)
            sample = latency_sample(lat, secs)
            sample.extra["cold_project_s"] = cold
            return sample

        return run

    peers = [
        Peer(
            "incremental",
            "eventpak",
            f'append 1 "{DEPOSIT}" (not timed), then store.project("{PROJ_ENTITY}", Sum()) with '
            "NativeCache: cached state + 1 event, re-cached",
            cached("incremental"),
        ),
        Peer(
            "hit",
            "eventpak",
            "store.project() with NativeCache, no new event: pure cache hit (reference)",
            cached("hit"),
        ),
        Peer(
            "append",
            "eventpak",
            f'store.append(coord, "{DEPOSIT}", payload), sync="batch" (reference)',
            cached("append"),
        ),
    ]
    shm = tmpfs_dir()
    if shm is not None:
        peers.insert(
            1,
            Peer(
                "incremental-tmpfs",
                "eventpak",
                f"the incremental loop with the cache dir on tmpfs ({shm}), store still in the temp dir "
                "(reference)",
                cached("incremental", shm),
            ),
        )
    title = (
        f"project() after one new event with a NativeCache (incremental), {m:,} calls on a {n:,}-event entity"
    )
    b.run_case("k", title, peers)
    b.rows += [
        Row(
            "k",
            "incremental",
            unit="us",
            metric="p50_us",
            note="p50",
            ratio_to=(K_AIM_US, "p50 / aim"),
            aim=f"<= {K_AIM_US:g} us",
            check=lambda v, r: v <= K_AIM_US,
        ),
        Row("k", "incremental", unit="us", metric="p99_us", note="p99"),
    ]
    if shm is not None:
        b.rows += [
            Row(
                "k",
                "incremental-tmpfs",
                unit="us",
                metric="p50_us",
                note="p50",
                ratio=("incremental-tmpfs", "incremental", "tmpfs / temp dir"),
            ),
            Row("k", "incremental-tmpfs", unit="us", metric="p99_us", note="p99"),
        ]
    b.rows += [
        Row(
            "k",
            "hit",
            unit="us",
            metric="p50_us",
            note="p50",
            ratio=("incremental", "hit", "after 1 event / pure hit"),
        ),
        Row("k", "hit", unit="us", metric="p99_us", note="p99"),
        Row("k", "append", unit="us", metric="p50_us", note="p50"),
        Row("k", "append", unit="us", metric="p99_us", note="p99"),
    ]
