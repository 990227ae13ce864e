"""eventpak side by side with its peers, in one process, on one machine.

    python -m benches.compare                 # full run (N = 1_000_000 for the read/reopen cases)
    python -m benches.compare --quick         # smoke run, well under a minute
    python -m benches.compare --events 200000 --durable-seconds 1 --rounds 5

Cases (see benches/README.md):

  (a) one durable append per call, one thread: eventpak sync="always" vs raw os.write+os.fdatasync,
      sqlite3 (WAL, synchronous=FULL, one INSERT committed per event), lmdb (sync=True, one put per txn)
  (b) (a) from 8 threads sharing one store (group commit), and sqlite3 from 8 connections
  (c) durable batches of 1000: append_batch vs lmdb putmulti of payloads packed before the loop,
      sqlite3 executemany in one txn, and lmdb putmulti packing in the loop
  (d) one append per call with sync="batch" vs sqlite3 synchronous=OFF (commit every 1000) and
      lmdb sync=False (one put per txn)
  (e) reading N events in commit order with payloads decoded, in one query and through a cursor,
      vs sqlite3, lmdb and (reference) msgspec decoding the same payload bytes alone
  (f) reopen time of an N-event store with and without the index checkpoint
  (g) a cursor worker delivering the N events to a no-op handler in batches of 1000, vs a plain
      cursor.poll_batch(1000) loop and an lmdb cursor read in batches of 1000
  (h) (g) with a durable checkpoint after every batch (checkpoint_id)
  (i) append-to-handler latency with an idle worker: p50/p99/max over single appends
  (j) cold projection of one 100,000-event entity to a summing fold (store.project with NoCache) vs
      the eventsourcing library (repository.get, SQLite) and sqlite3 (indexed SELECT + msgpack + fold)
  (k) store.project with a NativeCache after one new event (incremental), per call: p50/p99, with a
      pure cache hit and the append itself as reference rows
  (l) batches of 1000 with sync="never" vs msgspec encoding the same payloads alone

Every case runs ``--rounds`` times; in each round all systems run one after the other in a rotated
order, and every ratio is the median of the per-round ratios, so slow drifts of a noisy machine hit
both sides of a ratio alike. Durable (fsync-bound) cases run for a time budget per system and round
(``--durable-seconds``) or ``--durable-max-ops`` calls, whichever comes first.

The Markdown table goes to stdout, progress to stderr, everything (every round) to a JSON file.

Layout: ``__main__`` (options and the run), ``harness`` (samples, peers, rows, interleaved rounds,
timing loops, ratios), ``report`` (table, JSON, machine), ``peers/`` (one adapter per system) and
``cases/`` (one module per case, registered in ``cases.CASES``).
"""
