"""One module per case; ``CASES`` maps each case letter to its ``run(bench)``, in the order they run.

(e)-(h) share the N-event stores of ``load`` (built by the first of them that runs).
"""

from __future__ import annotations

from collections.abc import Callable

from benches.compare.cases import (
    a_durable_append,
    b_durable_threads,
    c_durable_batches,
    d_buffered_append,
    e_read,
    f_reopen,
    g_worker,
    h_checkpoint,
    i_latency,
    j_projection,
    k_cached_projection,
    l_buffered_batches,
)
from benches.compare.harness import Bench

CASES: dict[str, Callable[[Bench], None]] = {
    "a": a_durable_append.run,
    "b": b_durable_threads.run,
    "c": c_durable_batches.run,
    "d": d_buffered_append.run,
    "e": e_read.run,
    "f": f_reopen.run,
    "g": g_worker.run,
    "h": h_checkpoint.run,
    "i": i_latency.run,
    "j": j_projection.run,
    "k": k_cached_projection.run,
    "l": l_buffered_batches.run,
}
ALL_CASES = "".join(CASES)
