//! Appends, reads, guarantees and reopening, at the engine level.

mod common;

use std::sync::Arc;

use common::*;
use eventpak_core::{CommitGuards, Error, Region, StoreConfig, SyncMode};

#[test]
fn appends_are_dense_chained_and_readable() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), config());
    fill(&store, 30);
    let stored = store.query(&Region::all(), None, None).unwrap();
    let all: Vec<_> = stored.iter().map(|e| e.record()).collect();
    assert_eq!(all.len(), 30);
    for (i, e) in all.iter().enumerate() {
        assert_eq!(e.global_sequence, i as u64);
        assert_eq!(e.entity_sequence, (i / 3) as u64);
        assert_eq!(e.payload, format!("payload-{i}").into_bytes());
        assert_eq!(store.get(&e.event_id).unwrap(), stored[i]);
    }
    let chain: Vec<_> =
        store.walk_ancestors(&all[29].event_id, None).unwrap().iter().map(|e| e.record()).collect();
    assert_eq!(chain.len(), 10);
    assert!(chain.windows(2).all(|w| w[0].prev_hash == w[1].hash));
    assert_eq!(chain.last().unwrap().prev_hash, [0; 32]);
}

#[test]
fn concurrent_appenders_get_dense_sequences_under_group_commit() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(open(dir.path(), StoreConfig { sync: SyncMode::Always, ..config() }));
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                (0..50)
                    .map(|i| store.append(request(&format!("t{t}"), "k", &[i])).unwrap())
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut seqs: Vec<u64> = Vec::new();
    for handle in threads {
        let receipts = handle.join().unwrap();
        assert!(receipts.iter().all(|r| r.durable));
        assert!(receipts.windows(2).all(|w| w[1].entity_sequence == w[0].entity_sequence + 1));
        seqs.extend(receipts.iter().map(|r| r.global_sequence));
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (0..200).collect::<Vec<_>>());
    assert_eq!(store.durable_events(), 200);
}

#[test]
fn compare_and_set_and_idempotency() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), config());
    let mut first = request("acct", "k", b"x");
    first.expected_sequence = Some(0);
    store.append(first.clone()).unwrap();
    let err = store.append(first).unwrap_err();
    assert!(matches!(err, Error::ConcurrencyConflict { expected: 0, actual: 1, .. }));

    let mut keyed = request("acct", "k", b"pay");
    keyed.idempotency_key = Some(b"key-1".to_vec());
    let original = store.append(keyed.clone()).unwrap();
    assert_eq!(store.append(keyed.clone()).unwrap().global_sequence, original.global_sequence);
    keyed.payload = b"other".to_vec();
    assert!(matches!(store.append(keyed).unwrap_err(), Error::IdempotencyConflict(_)));
    assert_eq!(store.stats().unwrap().events, 2);
}

#[test]
fn a_failing_batch_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), StoreConfig { max_event_bytes: 1024, ..config() });
    let batch = vec![request("a", "k", b"1"), request("b", "k", &[0; 2000])];
    assert!(matches!(store.append_batch(batch).unwrap_err(), Error::EventTooLarge { .. }));
    let mut cas = request("a", "k", b"2");
    cas.expected_sequence = Some(5);
    assert!(store.append_batch(vec![request("a", "k", b"1"), cas]).is_err());
    assert_eq!(store.stats().unwrap().events, 0);
    assert!(matches!(store.append(request("a", "eventpak.x", b"")), Err(Error::InvalidKind(_))));
    assert!(matches!(store.append(request("a/b", "k", b"")), Err(Error::InvalidCoordinate(_))));
}

#[test]
fn rotation_and_reopen_with_and_without_checkpoint_agree() {
    let dir = tempfile::tempdir().unwrap();
    let small = StoreConfig { segment_max_bytes: 4096, ..config() };
    let store = open(dir.path(), small.clone());
    fill(&store, 200);
    let expected = store.query(&Region::all(), None, None).unwrap();
    store.close().unwrap();
    assert!(segment_paths(dir.path()).len() > 3);

    let reopened = open(dir.path(), small.clone());
    assert_eq!(reopened.stats().unwrap().recovery.index_checkpoint, "loaded");
    assert_eq!(reopened.query(&Region::all(), None, None).unwrap(), expected);
    reopened.close().unwrap();

    let scanned = open(dir.path(), StoreConfig { enable_index_checkpoint: false, ..small });
    assert_eq!(scanned.stats().unwrap().recovery.scanned_events, 200);
    assert_eq!(scanned.query(&Region::all(), None, None).unwrap(), expected);
    let next = scanned.append(request("e0", "k", b"after")).unwrap();
    assert_eq!((next.global_sequence, next.entity_sequence), (200, 67));
}

#[test]
fn second_open_is_refused_while_the_first_lives() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), config());
    assert!(matches!(eventpak_core::Store::open(dir.path(), config()), Err(Error::StoreLocked { .. })));
    store.close().unwrap();
    assert!(matches!(store.append(request("a", "k", b"")), Err(Error::StoreClosed)));
    open(dir.path(), config());
}

#[test]
fn region_queries_use_every_filter() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), config());
    for (entity, kind) in
        [("alice", "a.x"), ("alice:1", "a.y"), ("alice2", "a.x"), ("bob", "b"), ("alice", "b")]
    {
        store.append(request(entity, kind, b"")).unwrap();
    }
    let seqs = |region: Region| {
        store.query(&region, None, None).unwrap().iter().map(|e| e.global_sequence()).collect::<Vec<_>>()
    };
    assert_eq!(seqs(Region::all().with_entity("alice").unwrap()), [0, 1, 4]);
    assert_eq!(seqs(Region::all().with_kind_prefix("a.").unwrap()), [0, 1, 2]);
    assert_eq!(seqs(Region::all().with_entity("alice").unwrap().with_kinds(&["b"]).unwrap()), [4]);
    assert_eq!(seqs(Region::all().with_entity("alice").unwrap().with_clock_range(1, 1).unwrap()), [4]);
    assert_eq!(seqs(Region::all().with_scope("nope").unwrap()), Vec::<u64>::new());
    assert_eq!(store.query(&Region::all(), Some(1), Some(2)).unwrap().len(), 2);
}

#[test]
fn reserved_kinds_are_written_only_through_the_store_entry() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), config());
    for kind in eventpak_core::RESERVED_KINDS {
        assert!(matches!(store.append(request("e", kind, b"x")), Err(Error::InvalidKind(_))));
        assert!(matches!(store.append_batch(vec![request("e", kind, b"x")]), Err(Error::InvalidKind(_))));
    }
    // An unlisted reserved kind anywhere in the batch refuses all of it.
    let batch = vec![request("e", "deposit", b"1"), request("e", "eventpak.other", b"2")];
    assert!(matches!(store.append_reserved_batch(batch, CommitGuards::none()), Err(Error::InvalidKind(_))));
    assert_eq!(store.head().unwrap(), None);

    let batch = vec![request("e", "deposit", b"1"), request("e", "eventpak.bypass", b"2")];
    let receipts = store.append_reserved_batch(batch, CommitGuards::none()).unwrap();
    assert_eq!(receipts.iter().map(|r| r.entity_sequence).collect::<Vec<_>>(), [0, 1]);
    let region = Region::all().with_kinds(&["eventpak.bypass"]).unwrap();
    let found = store.query(&region, None, None).unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].record().kind.as_ref(), "eventpak.bypass");
    // Reserved events are part of their entity's clock and chain like any other.
    let chain = store.walk_ancestors(&found[0].record().event_id, None).unwrap();
    assert_eq!(chain.len(), 2);
}
