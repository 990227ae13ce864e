//! Replicas: events of another store applied verbatim, with the origin's sequence numbers
//! (holes where the replicated region skips some), checked on the way in, read back and
//! verified like any log, across reopen, a torn tail and shared mode.

mod common;

use common::{config, open, request};
use eventpak_core::{Cursor, Error, EventRecord, Region, Store, StoreConfig, REPLICA_ORIGIN_FILE};

/// An origin of 60 events over entities e0..e5 (tags and a cause on some), and its records.
fn origin(dir: &std::path::Path) -> (Store, Vec<EventRecord>) {
    let store = open(dir, config());
    for i in 0..60 {
        let payload = format!("payload-{i}-{}", "x".repeat(200));
        let mut r = request(&format!("e{}", i % 6), "k", payload.as_bytes());
        if i % 4 == 0 {
            r.tags = vec!["t".into(), format!("n{i}")];
        }
        if i % 7 == 3 {
            r.payload_version = 2;
        }
        if i > 0 && i % 5 == 0 {
            r.causation_id = Some(store.query(&Region::all(), None, None).unwrap()[i - 1].view().event_id());
        }
        store.append(r).unwrap();
    }
    let records =
        store.query(&Region::all(), None, None).unwrap().iter().map(|e| e.view().to_record()).collect();
    (store, records)
}

fn replica(dir: &std::path::Path, cfg: StoreConfig) -> Store {
    let store = open(dir, cfg);
    store.become_replica("EVENTS").unwrap();
    store
}

fn records_of(store: &Store, region: &Region) -> Vec<EventRecord> {
    store.query(region, None, None).unwrap().iter().map(|e| e.view().to_record()).collect()
}

/// The entities e1 and e4 only: a region of whole entities, so the replica's sequences jump.
fn subset(records: &[EventRecord]) -> Vec<EventRecord> {
    records.iter().filter(|r| matches!(&*r.entity, "e1" | "e4")).cloned().collect()
}

fn refused_at(outcome: &eventpak_core::ApplyOutcome) -> Option<u64> {
    match &outcome.refused {
        Some(Error::ReplicationRefused { global_sequence, .. }) => *global_sequence,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn a_region_applied_keeps_the_origins_numbers_and_reads_and_verifies_as_there() {
    let dir = tempfile::tempdir().unwrap();
    let (origin, all) = origin(&dir.path().join("o"));
    let wanted = subset(&all);
    let path = dir.path().join("r");
    let small = StoreConfig { segment_max_bytes: eventpak_core::MIN_SEGMENT_BYTES, ..config() };
    let store = replica(&path, small);
    let (first, rest) = wanted.split_at(7);
    let outcome = store.apply_replicated(origin.store_id(), first.to_vec()).unwrap();
    assert_eq!((outcome.applied, outcome.present, outcome.refused.is_none()), (7, 0, true));
    // A redelivery of applied events with new ones after them: the old are skipped.
    let outcome = store.apply_replicated(origin.store_id(), wanted[3..].to_vec()).unwrap();
    assert_eq!((outcome.applied, outcome.present), (rest.len(), 4));
    assert!(common::segment_paths(&path).len() > 1, "the test must span a rotation");
    for reopened in [false, true] {
        let store = if reopened { open(&path, config()) } else { store.clone_handle_for_test() };
        assert!(store.is_replica());
        assert_eq!(records_of(&store, &Region::all()), wanted);
        assert_eq!(store.head().unwrap(), wanted.last().map(|r| r.global_sequence));
        let e4 = Region::all().with_entity("e4").unwrap();
        assert_eq!(records_of(&store, &e4), records_of(&origin, &e4));
        let tagged = Region::all().with_tags(&["t"]).unwrap();
        assert_eq!(records_of(&store, &tagged), subset(&records_of(&origin, &tagged)));
        let report = store.verify(&mut |_, _| true).unwrap();
        assert!(report.ok(), "{:?}", report.problems);
        let stats = store.stats().unwrap();
        assert_eq!((stats.events, stats.visible_events), (wanted.len() as u64, wanted.len() as u64));
        // A cursor resumes after a replicated position as it would on the origin.
        let mut cursor = Cursor::new(Region::all());
        cursor.seek(wanted[4].global_sequence, true);
        let next: Vec<u64> =
            cursor.poll_batch(&store, 3).unwrap().iter().map(|e| e.view().global_sequence).collect();
        assert_eq!(next, wanted[5..8].iter().map(|r| r.global_sequence).collect::<Vec<_>>());
        let id = wanted[9].event_id;
        assert_eq!(store.get(&id).unwrap().view().to_record().global_sequence, wanted[9].global_sequence);
        store.close().unwrap();
    }
}

trait CloneForTest {
    fn clone_handle_for_test(&self) -> Store;
}

impl CloneForTest for Store {
    /// Closes and reopens (a `Store` is not `Clone`); the first pass reads the live index
    /// before anything is reopened, so both the written and the rescanned index are checked.
    fn clone_handle_for_test(&self) -> Store {
        let path = self.data_dir().to_owned();
        let snapshot = records_of(self, &Region::all());
        let report = self.verify(&mut |_, _| true).unwrap();
        assert!(report.ok(), "{:?}", report.problems);
        self.close().unwrap();
        let store = open(&path, config());
        assert_eq!(records_of(&store, &Region::all()), snapshot);
        store
    }
}

#[test]
fn anything_that_does_not_continue_the_log_is_refused_and_nothing_after_it_is_applied() {
    let dir = tempfile::tempdir().unwrap();
    let (origin, all) = origin(&dir.path().join("o"));
    let wanted = subset(&all);
    let store = replica(&dir.path().join("r"), config());
    store.apply_replicated(origin.store_id(), wanted[..6].to_vec()).unwrap();
    let head = store.head().unwrap();
    let mut forged = wanted[6].clone();
    forged.payload = b"forged".to_vec();
    let mut changed = wanted[2].clone();
    changed.payload = b"changed".to_vec();
    let mut behind = wanted[7].clone();
    behind.global_sequence = wanted[5].global_sequence - 1;
    let mut from_other_entity = all
        .iter()
        .find(|r| &*r.entity == "e2" && r.global_sequence > wanted[5].global_sequence)
        .unwrap()
        .clone();
    from_other_entity.entity_sequence = 5; // its clock does not start the entity here
    let later_of_same_entity = wanted[7..].iter().find(|r| r.entity == wanted[6].entity).unwrap().clone();
    let cases: Vec<(&str, Vec<EventRecord>)> = vec![
        ("a hash that does not recompute", vec![forged, wanted[7].clone()]),
        ("an applied id with other content", vec![changed, wanted[6].clone()]),
        ("a sequence behind the head", vec![behind]),
        ("a lost predecessor (clock gap)", vec![later_of_same_entity]),
        ("an entity that does not start at clock 0", vec![from_other_entity]),
    ];
    for (why, events) in cases {
        let claimed = events[0].global_sequence;
        let outcome = store.apply_replicated(origin.store_id(), events).unwrap();
        assert_eq!((outcome.applied, refused_at(&outcome)), (0, Some(claimed)), "{why}");
        assert_eq!(store.head().unwrap(), head, "{why}: nothing applied");
    }
    // The valid prefix of a call is applied; the refused event and what follows are not.
    let mut bad = wanted[8].clone();
    bad.hash[0] ^= 1;
    let outcome = store
        .apply_replicated(
            origin.store_id(),
            vec![wanted[6].clone(), wanted[7].clone(), bad, wanted[9].clone()],
        )
        .unwrap();
    assert_eq!((outcome.applied, refused_at(&outcome)), (2, Some(wanted[8].global_sequence)));
    assert_eq!(store.head().unwrap(), Some(wanted[7].global_sequence));
    // Another origin is refused outright.
    let outcome = store.apply_replicated([9; 16], wanted[8..].to_vec()).unwrap();
    assert_eq!((outcome.applied, refused_at(&outcome)), (0, Some(wanted[8].global_sequence)));
    assert!(store.verify(&mut |_, _| true).unwrap().ok());
    assert_eq!(records_of(&store, &Region::all()), wanted[..8].to_vec());
}

#[test]
fn a_replica_takes_no_ordinary_writes_and_only_an_empty_store_becomes_one() {
    let dir = tempfile::tempdir().unwrap();
    let (origin, all) = origin(&dir.path().join("o"));
    assert!(matches!(origin.become_replica("EVENTS"), Err(Error::InvalidConfig(_))));
    assert!(!origin.data_dir().join(REPLICA_ORIGIN_FILE).exists());
    let path = dir.path().join("r");
    let store = replica(&path, config());
    store.become_replica("EVENTS").unwrap(); // the same stream again: nothing to do
    assert!(matches!(
        store.become_replica("OTHER"),
        Err(Error::ReplicationRefused { global_sequence: None, .. })
    ));
    store.apply_replicated(origin.store_id(), subset(&all)).unwrap();
    store.close().unwrap();
    let store = open(&path, config()); // a plain open of a replica's dir is still a replica
    let refused = |r: eventpak_core::Result<_>| matches!(r, Err(Error::ReplicaStore { .. }));
    assert!(refused(store.append(request("x", "k", b"1")).map(|_| ())));
    assert!(refused(store.append_batch(vec![request("x", "k", b"1")]).map(|_| ())));
    assert!(refused(store.begin_fence()));
    assert!(store.append_each(vec![request("x", "k", b"1")]).into_iter().all(|r| refused(r.map(|_| ()))));
    assert_eq!(records_of(&store, &Region::all()), subset(&all));
    // Cursor checkpoints are the replica's readers' own: they work.
    let mut cursor = Cursor::new(Region::all());
    cursor.poll_batch(&store, 5).unwrap();
    cursor.commit(&store, "reader").unwrap();
    assert_eq!(store.load_cursor_checkpoint("reader").unwrap().unwrap().position, cursor.position());
}

#[test]
fn a_torn_tail_after_a_jump_loses_only_the_unfinished_batch() {
    let dir = tempfile::tempdir().unwrap();
    let (origin, all) = origin(&dir.path().join("o"));
    let wanted = subset(&all);
    let path = dir.path().join("r");
    let store = replica(&path, config());
    store.apply_replicated(origin.store_id(), wanted[..5].to_vec()).unwrap();
    store.apply_replicated(origin.store_id(), wanted[5..9].to_vec()).unwrap();
    drop(store);
    let segment = common::segment_paths(&path).pop().unwrap();
    let len = std::fs::metadata(&segment).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&segment).unwrap().set_len(len - 5).unwrap();
    let store = open(&path, config());
    assert_eq!(records_of(&store, &Region::all()), wanted[..5].to_vec());
    assert!(store.stats().unwrap().recovery.torn_tail_bytes > 0);
    // The redelivered batch applies again, after the cut.
    let outcome = store.apply_replicated(origin.store_id(), wanted[3..].to_vec()).unwrap();
    assert_eq!((outcome.applied, outcome.present), (wanted.len() - 5, 2));
    assert!(store.verify(&mut |_, _| true).unwrap().ok());
}

#[test]
fn shared_readers_follow_a_replica_across_jumps_and_segments() {
    let dir = tempfile::tempdir().unwrap();
    let (origin, all) = origin(&dir.path().join("o"));
    let wanted = subset(&all);
    let path = dir.path().join("r");
    let shared =
        StoreConfig { shared: true, segment_max_bytes: eventpak_core::MIN_SEGMENT_BYTES, ..config() };
    let writer = replica(&path, shared.clone());
    let reader = open(&path, StoreConfig { read_only: true, ..shared.clone() });
    for chunk in wanted.chunks(3) {
        writer.apply_replicated(origin.store_id(), chunk.to_vec()).unwrap();
        assert_eq!(reader.head().unwrap(), chunk.last().map(|r| r.global_sequence));
    }
    assert!(common::segment_paths(&path).len() > 1, "the test must span a rotation");
    assert_eq!(records_of(&reader, &Region::all()), wanted);
    assert!(reader.verify(&mut |_, _| true).unwrap().ok());
    assert!(matches!(
        reader.apply_replicated(origin.store_id(), wanted.clone()),
        Err(Error::ReadOnlyStore(_))
    ));
}

#[test]
fn a_replica_reopens_from_its_index_checkpoint_as_a_scan_rebuilds_it() {
    let dir = tempfile::tempdir().unwrap();
    let (origin, all) = origin(&dir.path().join("o"));
    let wanted = subset(&all);
    let (path, scanned) = (dir.path().join("r"), dir.path().join("scanned"));
    let store = replica(&path, config());
    store.apply_replicated(origin.store_id(), wanted[..20].to_vec()).unwrap();
    store.close().unwrap();
    common::copy_dir(&path, &scanned);
    let loaded = open(&path, config());
    assert_eq!(loaded.stats().unwrap().recovery.index_checkpoint, "loaded");
    let scan = open(&scanned, StoreConfig { enable_index_checkpoint: false, ..config() });
    let tagged = Region::all().with_tags(&["t"]).unwrap();
    for region in [Region::all(), Region::all().with_entity("e4").unwrap(), tagged] {
        assert_eq!(records_of(&loaded, &region), records_of(&scan, &region));
    }
    assert_eq!(loaded.head().unwrap(), scan.head().unwrap());
    assert_eq!(loaded.stats().unwrap().events, scan.stats().unwrap().events);
    // Both take the rest alike, and refuse alike what does not continue the log.
    for store in [&loaded, &scan] {
        let outcome = store.apply_replicated(origin.store_id(), wanted[20..].to_vec()).unwrap();
        assert_eq!((outcome.applied, outcome.refused.is_none()), (wanted.len() - 20, true));
        assert!(store.verify(&mut |_, _| true).unwrap().ok());
        assert_eq!(records_of(store, &Region::all()), wanted);
    }
}
