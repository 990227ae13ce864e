"""A service process for the command-line tests: ``python cli_writer.py DIR`` opens the store in
DIR with ``shared=True`` (creating it if needed) and appends on orders read from stdin, one per
line, answering each on stdout:

- ``append ENTITY SCOPE KIND N``: appends N events (payload ``{"n": i}``), answers
  ``appended SEQ,SEQ,...`` (their global sequences) once every append has returned;
- ``checkpoint ID ENTITY N``: moves a cursor over entity ENTITY's region N events on and
  commits it as durable checkpoint ID, answers ``committed POSITION``;
- ``quit``: closes the store and exits.

It answers ``ready`` once the store is open. Not a test module.
"""

from __future__ import annotations

import sys

import eventpak as ep


def main(data_dir: str) -> None:
    with ep.Store.open(data_dir, shared=True) as store:
        print("ready", flush=True)
        for line in sys.stdin:
            order = line.split()
            if order == ["quit"]:
                break
            if order[0] == "checkpoint":
                _, checkpoint_id, entity, count = order
                cursor = store.cursor(ep.Region.entity(entity))
                cursor.resume(checkpoint_id)
                cursor.poll_batch(int(count))
                cursor.commit(checkpoint_id)
                print(f"committed {cursor.position}", flush=True)
                continue
            _, entity, scope, kind, count = order
            sequences = [
                store.append(ep.Coordinate(entity, scope), kind, {"n": i}).global_sequence
                for i in range(int(count))
            ]
            print("appended " + ",".join(map(str, sequences)), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
