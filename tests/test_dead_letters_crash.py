"""A durable dead-letter worker killed with SIGKILL right before or right after it parks a
poison event (before its checkpoint moves past it), then started again: no event is lost,
every poison event is parked exactly once, and the position ends past everything."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import eventpak as ep
import pytest

CP = "crash-parking"
POISON = {5, 20}
N = 32

# The child runs a durable dead-letter worker over the orders. Its handler appends the
# sequences of every delivery that goes through to a file. With a kill point, parking is
# wrapped to say "at <point>" on stdout and wait for the SIGKILL there; without one, the
# handler stops the worker at the "end" event and the child exits.
_CHILD = textwrap.dedent(
    """
    import sys, threading
    import eventpak as ep
    import eventpak.dead_letters as dead_letters_module

    data_dir, kill_at, handled_path, cp = sys.argv[1:5]
    original_park = dead_letters_module.park

    def announce_and_wait(point):
        print("at", point, flush=True)
        threading.Event().wait()

    def park(store, checkpoint_id, event, error, attempts):
        if kill_at == "before_park":
            announce_and_wait(kill_at)
        written = original_park(store, checkpoint_id, event, error, attempts)
        if kill_at == "after_park":
            announce_and_wait(kill_at)
        return written

    dead_letters_module.park = park
    handled = open(handled_path, "a")

    def handler(batch, _store, _witness):
        for event in batch:
            if event.payload.get("poison"):
                raise ValueError("poison %d" % event.payload["i"])
        handled.write(" ".join(str(e.global_sequence) for e in batch) + "\\n")
        handled.flush()
        if any(e.kind == "end" for e in batch):
            return ep.CursorWorkerAction.STOP

    store = ep.Store.open(data_dir)
    config = ep.CursorWorkerConfig(batch_size=16, checkpoint_id=cp, dead_letter_after=2)
    store.cursor_worker(ep.Region.entity("order"), handler, config).join()
    store.close()
    print("done", flush=True)
    """
)


def _child(data_dir: Path, kill_at: str, handled: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(data_dir), kill_at, str(handled), CP],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize("kill_at", ["before_park", "after_park"])
def test_a_worker_killed_around_parking_loses_nothing_and_parks_once(
    data_dir: Path, tmp_path: Path, kill_at: str
) -> None:
    with ep.Store.open(data_dir) as store:
        orders = [((f"order:{i}", "eu"), "placed", {"i": i, "poison": i in POISON}) for i in range(N)]
        seqs = [r.global_sequence for r in store.append_batch(orders)]
        end = store.append(("order:end", "eu"), "end", {"i": N}).global_sequence
    handled = tmp_path / "handled.txt"

    first = _child(data_dir, kill_at, handled)
    try:
        line = first.stdout.readline() if first.stdout else ""
        assert line == f"at {kill_at}\n", (
            f"child said {line!r}: {first.stderr.read() if first.stderr else ''}"
        )
    finally:
        first.kill()  # SIGKILL, at the point it announced
        first.wait(timeout=30)
    assert first.returncode == -9

    second = _child(data_dir, "none", handled)
    out, err = second.communicate(timeout=120)
    assert second.returncode == 0 and out == "done\n", err

    delivered = [int(s) for line in handled.read_text().split("\n") if line for s in line.split()]
    good = [s for i, s in enumerate(seqs) if i not in POISON]
    assert set(delivered) == {*good, end}, "a good event was lost (or a poison one handled)"
    with ep.Store.open(data_dir, read_only=True) as store:
        letters = store.dead_letters(CP)
        assert [d.event.global_sequence for d in letters] == [seqs[i] for i in sorted(POISON)]
        assert all(d.error_type == "ValueError" and d.attempts >= 2 for d in letters)
        [info] = store.checkpoints()
        assert (info.checkpoint_id, info.position, info.lag_events) == (CP, end, 0)
