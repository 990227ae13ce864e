//! Compaction in the engine: what is removed, what stays exactly as it was, and that a
//! reopen (a scan of the rewritten segments plus `compacted.ranges`) agrees with memory.

mod common;

use std::collections::BTreeSet;

use common::{config, open, request};
use eventpak_core::{Cursor, Error, Region, Retention, Selection, Store, StoreConfig};

fn small() -> StoreConfig {
    StoreConfig { segment_max_bytes: 4096, ..config() }
}

fn rules(kinds: &[&str], keep_last: u64) -> Selection<'static> {
    let kinds = (!kinds.is_empty()).then(|| kinds.iter().map(|k| k.to_string()).collect::<BTreeSet<_>>());
    Selection::Rules(Retention { max_age_us: None, kinds, keep_last_per_entity: keep_last })
}

fn compact(store: &Store, selection: Selection<'_>) -> eventpak_core::CompactionReport {
    store.compact(selection, &mut |_, _| true).expect("compact")
}

/// 120 events over three entities, kinds alternating "tick" and "keep", with a key each.
fn filled(dir: &std::path::Path) -> Store {
    let store = open(dir, small());
    for i in 0..120 {
        let mut r = request(&format!("e{}", i % 3), if i % 2 == 0 { "tick" } else { "keep" }, &[i as u8; 40]);
        r.idempotency_key = Some(format!("key-{i}").into_bytes());
        store.append(r).unwrap();
    }
    store
}

fn all_seqs(store: &Store) -> Vec<u64> {
    store.query(&Region::all(), None, None).unwrap().iter().map(|e| e.global_sequence()).collect()
}

#[test]
fn kinds_are_removed_from_sealed_segments_only_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let store = filled(dir.path());
    let before = store.query(&Region::all(), None, None).unwrap();
    let report = compact(&store, rules(&["tick"], 0));
    assert!(report.removed > 0 && report.bytes_freed > 0);
    let after = store.query(&Region::all(), None, None).unwrap();
    assert_eq!(after.len() as u64, 120 - report.removed);
    // Kept events are byte for byte the same frames; removed ones are all "tick" events.
    for event in &after {
        assert!(before.iter().any(|b| b == event));
    }
    let gone: Vec<_> = before.iter().filter(|b| !after.contains(b)).collect();
    assert!(gone.iter().all(|e| e.view().names().2 == "tick"));
    // The newest segment was active at the start: its ticks are all still there.
    let newest_ticks = after.iter().filter(|e| e.view().names().2 == "tick").count();
    assert!(newest_ticks > 0);
    assert!(store.verify(&mut |_, _| true).unwrap().ok());
    let seqs = all_seqs(&store);
    store.close().unwrap();

    let reopened = open(dir.path(), small());
    assert_eq!(all_seqs(&reopened), seqs);
    assert!(reopened.verify(&mut |_, _| true).unwrap().problems.is_empty());
    // Clocks and chains continue from the last event, removed or not.
    let next = reopened.append(request("e0", "tick", b"later")).unwrap();
    assert_eq!((next.global_sequence, next.entity_sequence), (120, 40));
    let mut cas = request("e1", "keep", b"x");
    cas.expected_sequence = Some(40);
    reopened.append(cas).unwrap();
    assert!(reopened.verify(&mut |_, _| true).unwrap().ok());
}

#[test]
fn removed_keys_return_their_receipts_and_conflicts_stay_conflicts() {
    let dir = tempfile::tempdir().unwrap();
    let store = filled(dir.path());
    let mut retry = request("e0", "tick", &[0; 40]);
    retry.idempotency_key = Some(b"key-0".to_vec());
    let original = store.append(retry.clone()).unwrap();
    compact(&store, rules(&["tick"], 0));
    assert!(matches!(store.get(&original.event_id), Err(Error::EventNotFound(_))));
    let again = store.append(retry.clone()).unwrap();
    assert_eq!((again.event_id, again.hash, again.global_sequence), (original.event_id, original.hash, 0));
    let mut other = retry.clone();
    other.payload = b"different".to_vec();
    assert!(matches!(store.append(other.clone()), Err(Error::IdempotencyConflict(_))));
    store.close().unwrap();
    let reopened = open(dir.path(), small());
    let r = reopened.append(retry).unwrap();
    let fields = |r: &eventpak_core::AppendReceipt| {
        (r.event_id, r.global_sequence, r.entity_sequence, r.hash, r.timestamp_us)
    };
    assert_eq!(fields(&r), fields(&original));
    assert!(matches!(reopened.append(other), Err(Error::IdempotencyConflict(_))));
}

#[test]
fn keep_last_counts_over_the_whole_store_and_walks_stop_at_removed_events() {
    let dir = tempfile::tempdir().unwrap();
    let store = filled(dir.path());
    let newest = store.query(&Region::all(), None, None).unwrap().last().unwrap().clone();
    compact(&store, rules(&[], 5));
    for entity in ["e0", "e1", "e2"] {
        let region = Region::all().with_exact_entity(entity).unwrap();
        // The newest five of each entity are kept; older sealed ones are gone.
        let left = store.query(&region, None, None).unwrap();
        assert!(left.len() >= 5);
        let clocks: Vec<u64> = left.iter().map(|e| e.view().entity_sequence()).collect();
        assert!(clocks.ends_with(&[35, 36, 37, 38, 39]));
    }
    let walk = store.walk_ancestors(&newest.view().event_id(), None).unwrap();
    assert!(!walk.is_empty() && walk.len() < 40);
    let mut cursor = Cursor::new(Region::all());
    cursor.set_gap_capacity(Some(8));
    let delivered = cursor.poll_batch(&store, 1000).unwrap();
    assert_eq!(delivered.len(), all_seqs(&store).len());
    let gaps = cursor.take_gaps();
    assert!(!gaps.is_empty());
    assert_eq!(gaps[0].expected_sequence, 0);
    assert_eq!(gaps[0].compacted_ranges, vec![(0, gaps[0].delivered_sequence)]);
}

#[test]
fn a_predicate_selects_and_stopping_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = filled(dir.path());
    let before = all_seqs(&store);
    let mut stop = |_: &eventpak_core::StoredEvent| None;
    assert!(store.compact(Selection::Predicate(&mut stop), &mut |_, _| true).is_err());
    assert_eq!(all_seqs(&store), before);
    let mut odd = |e: &eventpak_core::StoredEvent| Some(e.global_sequence() % 2 == 1);
    let report = store.compact(Selection::Predicate(&mut odd), &mut |_, _| true).unwrap();
    assert!(report.removed > 0);
    let left = all_seqs(&store);
    assert!(left.iter().filter(|&&s| s < 60).all(|s| s % 2 == 0));
    // A second compaction removes from segments rewritten by the first.
    let second = compact(&store, rules(&["tick"], 0));
    assert!(second.removed > 0);
    assert!(store.verify(&mut |_, _| true).unwrap().ok());
    store.close().unwrap();
    let reopened = open(dir.path(), small());
    assert!(reopened.verify(&mut |_, _| true).unwrap().ok());
    assert_eq!(reopened.stats().unwrap().visible_events as usize, all_seqs(&reopened).len());
}

#[test]
fn read_only_stores_refuse_and_read_compacted_logs() {
    let dir = tempfile::tempdir().unwrap();
    let store = filled(dir.path());
    compact(&store, rules(&["tick"], 0));
    let seqs = all_seqs(&store);
    store.close().unwrap();
    let ro = open(dir.path(), StoreConfig { read_only: true, ..small() });
    assert_eq!(all_seqs(&ro), seqs);
    assert!(matches!(ro.compact(rules(&[], 0), &mut |_, _| true), Err(Error::ReadOnlyStore(_))));
}

/// Fails every rename of a compaction's temp segment: the compaction commits, then cannot
/// put its segments in place.
#[derive(Debug)]
struct FailTempRenames;

impl eventpak_core::io::Storage for FailTempRenames {
    fn rename(&self, from: &std::path::Path, to: &std::path::Path) -> std::io::Result<()> {
        if from.to_string_lossy().contains(".compact-") {
            return Err(std::io::Error::other("injected rename failure"));
        }
        std::fs::rename(from, to)
    }
}

#[test]
fn a_committed_compaction_left_unrenamed_is_read_in_place_read_only_and_finished_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let store = filled(dir.path());
    store.close().unwrap();
    let failing = Store::open_with(dir.path(), small(), std::sync::Arc::new(FailTempRenames)).unwrap();
    let before = all_seqs(&failing);
    assert!(matches!(
        failing.compact(rules(&["tick"], 0), &mut |_, _| true),
        Err(Error::StorageFailed { .. })
    ));
    // The writer stopped until a reopen finishes the renames; reads already show the
    // committed result (the segments not renamed are still read from their old files).
    assert!(matches!(failing.append(request("e0", "k", b"x")), Err(Error::StorageFailed { .. })));
    let committed = all_seqs(&failing);
    assert!(committed.len() < before.len());
    failing.close().unwrap();
    let temps = || {
        std::fs::read_dir(dir.path().join("segments"))
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().contains(".compact-"))
            .count()
    };
    assert!(temps() > 0);
    let ro = open(dir.path(), StoreConfig { read_only: true, ..small() });
    let after = all_seqs(&ro);
    assert_eq!(after, committed);
    assert!(ro.verify(&mut |_, _| true).unwrap().ok());
    ro.close().unwrap();
    assert!(temps() > 0, "a read-only open changed nothing");
    let rw = open(dir.path(), small());
    assert_eq!(all_seqs(&rw), after);
    assert_eq!(temps(), 0);
    assert!(rw.verify(&mut |_, _| true).unwrap().ok());
}

#[test]
fn appends_and_reads_go_on_while_compacting() {
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(filled(dir.path()));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let appender = {
        let (store, stop) = (store.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut receipts = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                receipts.push(store.append(request("w", "keep", &[7; 60])).unwrap());
            }
            receipts
        })
    };
    let reader = {
        let (store, stop) = (store.clone(), stop.clone());
        std::thread::spawn(move || {
            let region = Region::all().with_kinds(&["keep"]).unwrap();
            let mut reads = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let mut cursor = Cursor::new(region.clone());
                loop {
                    let batch = cursor.poll_batch(&store, 64).unwrap();
                    if batch.is_empty() {
                        break;
                    }
                    assert!(batch.iter().all(|e| e.view().names().2 == "keep"));
                    reads += batch.len() as u64;
                }
            }
            reads
        })
    };
    let mut removed = 0;
    for _ in 0..5 {
        removed += compact(&store, rules(&["tick"], 0)).removed;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let receipts = appender.join().unwrap();
    assert!(reader.join().unwrap() > 0);
    assert!(removed > 0);
    for r in &receipts {
        assert_eq!(store.get(&r.event_id).unwrap().view().hash(), r.hash);
    }
    assert!(store.verify(&mut |_, _| true).unwrap().ok());
}

#[test]
fn an_encrypted_store_compares_a_removed_key_retry_without_its_payload() {
    // A digest of a removed sealed payload, kept for good, would confirm a guessed payload
    // even after a forget: an encrypted store's record leaves the payload out, so a retry is
    // compared on its names, version and tags, before a forget and after alike.
    let dir = tempfile::tempdir().unwrap();
    let key = eventpak_core::generate_encryption_key().unwrap();
    let encrypted =
        StoreConfig { encryption_key: Some(eventpak_core::EncryptionKey(key.to_vec())), ..small() };
    let store = open(dir.path(), encrypted.clone());
    let keyed = |entity: &str, key: &[u8], payload: &[u8]| {
        let mut r = request(entity, "tick", payload);
        r.idempotency_key = Some(key.to_vec());
        r
    };
    let kept_alice = store.append(keyed("alice", b"a", b"alice's")).unwrap();
    let kept_bob = store.append(keyed("bob", b"b", b"bob's")).unwrap();
    for i in 0..120 {
        store.append(request(&format!("e{}", i % 3), "keep", &[i as u8; 40])).unwrap();
    }
    store.forget_entity("bob").unwrap();
    assert_eq!(compact(&store, rules(&["tick"], 0)).removed, 2);
    let fields = |r: &eventpak_core::AppendReceipt| (r.event_id, r.global_sequence, r.hash);
    let check = |store: &Store, reopen: bool| {
        let again = store.append(keyed("alice", b"a", b"alice's")).unwrap();
        assert_eq!(fields(&again), fields(&kept_alice), "reopened: {reopen}");
        let other_payload = store.append(keyed("alice", b"a", b"someone else's")).unwrap();
        assert_eq!(fields(&other_payload), fields(&kept_alice), "reopened: {reopen}");
        let forgotten = store.append(keyed("bob", b"b", b"anything")).unwrap();
        assert_eq!(fields(&forgotten), fields(&kept_bob), "reopened: {reopen}");
        let elsewhere = store.append(keyed("carol", b"b", b"bob's"));
        assert!(matches!(elsewhere, Err(Error::IdempotencyConflict(_))), "reopened: {reopen}");
        store.close().unwrap();
    };
    check(&store, false);
    check(&open(dir.path(), encrypted), true);
}

#[test]
fn a_clear_store_compares_a_removed_key_retry_with_its_payload() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), small());
    let mut first = request("alice", "tick", b"alice's");
    first.idempotency_key = Some(b"a".to_vec());
    let kept = store.append(first.clone()).unwrap();
    for i in 0..120 {
        store.append(request(&format!("e{}", i % 3), "keep", &[i as u8; 40])).unwrap();
    }
    assert_eq!(compact(&store, rules(&["tick"], 0)).removed, 1);
    assert_eq!(store.append(first.clone()).unwrap().event_id, kept.event_id);
    let mut other = first;
    other.payload = b"someone else's".to_vec();
    assert!(matches!(store.append(other), Err(Error::IdempotencyConflict(_))));
}
