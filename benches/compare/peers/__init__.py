"""One adapter per system eventpak is compared with, plus eventpak's own.

Each module opens its system on a fresh directory and returns the operations the cases time as
closures (``step(n)`` for the budgeted loops of ``harness.timed_calls``/``timed_threads``, or a
zero-argument reader/fold), so the code inside a measured loop lives in exactly one place:

- ``eventpak``: the store, its write paths, reads, worker deliveries and the ``Sum`` projection
- ``sqlite``: sqlite3 in WAL mode, one ``events`` table
- ``lmdb``: py-lmdb with 8-byte big-endian sequence keys (``AVAILABLE`` is false without it)
- ``raw``: length-prefixed msgpack records with ``os.write`` + ``os.fdatasync``
- ``eventsourcing``: the eventsourcing library's aggregate and application (``AVAILABLE`` likewise)
- ``msgspec``: msgspec's msgpack codec alone, no store, the reference of (e) and (l) (``AVAILABLE`` likewise)
"""
