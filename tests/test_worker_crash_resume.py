"""A durable worker killed with SIGKILL at a random point resumes right after its last
checkpoint: no event is skipped, the checkpoint is never ahead of the handled events, and a
kill during a checkpoint write never leaves a corrupt checkpoint."""

from __future__ import annotations

import queue
import random
import subprocess
import sys
import textwrap
import threading

import eventpak as ep
import pytest

R = ep.Region
CHECKPOINT_ID = "crash-resume"
N = 40

# The child appends N events, then runs a durable worker whose handler prints each batch's
# sequences (flushed) and waits for the parent's acknowledgement before returning CONTINUE.
_CHILD = textwrap.dedent(
    """
    import sys
    import eventpak as ep

    data_dir, n, batch_size, checkpoint_id = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    store = ep.Store.open(data_dir)
    for i in range(n):
        store.append(("item", "s"), "k", i)

    def handler(batch, _store, witness):
        assert witness is not None and witness.checkpoint_id == checkpoint_id
        sys.stdout.write(" ".join(str(e.global_sequence) for e in batch) + "\\n")
        sys.stdout.flush()
        if not sys.stdin.readline():
            raise SystemExit("parent went away")
        return ep.CursorWorkerAction.CONTINUE

    config = ep.CursorWorkerConfig(batch_size=batch_size, idle_sleep=0.01, checkpoint_id=checkpoint_id)
    store.cursor_worker(ep.Region.entity("item"), handler, config).join()
    """
)


def _line_reader(stream) -> queue.Queue:
    lines: queue.Queue = queue.Queue()

    def pump() -> None:
        for line in stream:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    return lines


@pytest.mark.parametrize("seed", [11, 22, 33, 44, 55])
def test_sigkilled_durable_worker_resumes_without_skipping(open_store, data_dir, coord, seed, wait_until):
    rng = random.Random(seed)
    batch_size = rng.randint(1, 5)
    batches_total = -(-N // batch_size)
    kill_after = rng.randint(1, batches_total - 1)  # batches delivered before the kill
    ack_last = rng.random() < 0.5  # kill right after acknowledging, or inside the handler
    print(f"seed={seed} batch_size={batch_size} kill_after={kill_after} ack_last={ack_last}")

    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(data_dir), str(N), str(batch_size), CHECKPOINT_ID],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines = _line_reader(child.stdout)
        first_run: list[list[int]] = []
        for k in range(kill_after):
            line = lines.get(timeout=60)
            assert line is not None, f"child died early: {child.stderr.read()}"
            first_run.append([int(s) for s in line.split()])
            if k < kill_after - 1 or ack_last:
                child.stdin.write("\n")
                child.stdin.flush()
    finally:
        child.kill()  # SIGKILL
        child.wait(timeout=30)
    assert child.returncode == -9

    delivered_before = [s for batch in first_run for s in batch]
    assert delivered_before == list(range(len(delivered_before)))

    checkpoint = ep.Cursor.load_checkpoint(data_dir, CHECKPOINT_ID)  # never corrupt
    # honest progress: the checkpoint covers exactly the acknowledged batches (the last one
    # only if the kill came after its acknowledgement and its checkpoint write completed)
    committed_ends = [batch[-1] for batch in first_run[: kill_after - 1]]
    allowed = {committed_ends[-1] if committed_ends else None}
    if ack_last:
        allowed.add(first_run[-1][-1])
    position = None if checkpoint is None else checkpoint.position
    assert position in allowed, f"checkpoint {checkpoint} not in {allowed}"
    if checkpoint is not None:
        assert checkpoint.started is True
        assert checkpoint.region_identity == R.entity("item").checkpoint_identity
        assert set(range(position + 1)) <= set(delivered_before), "checkpoint ahead of handled events"

    # second run in this process, same checkpoint id
    store = open_store()
    assert [e.payload for e in store.query(R.entity("item"))] == list(range(N))
    second_run: list[int] = []
    handle = store.cursor_worker(
        R.entity("item"),
        lambda batch, _store, _witness: second_run.extend(e.global_sequence for e in batch),
        ep.CursorWorkerConfig(batch_size=batch_size, idle_sleep=0.01, checkpoint_id=CHECKPOINT_ID),
    )
    sentinel = store.append(coord("item", "s"), "k", "sentinel").global_sequence
    assert sentinel == N
    wait_until(lambda: sentinel in second_run, timeout=30, what="the second run to reach the sentinel")
    handle.stop_and_join(timeout=10)

    resume_at = 0 if position is None else position + 1
    assert second_run[0] == resume_at, "the second run must resume right after the checkpoint"
    assert second_run == list(range(resume_at, N + 1))
    assert set(delivered_before) | set(second_run) == set(range(N + 1)), "an event was skipped"
