//! Shared mode within one test process: two `Store`s opened with `shared = true` on one data
//! dir hold separate file descriptions, so they lock each other out exactly as two processes
//! do, and each follows what the other writes. (Killed processes are tested from Python.)

mod common;

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::request;
use eventpak_core::io::{OsStorage, Storage};
use eventpak_core::{AppendRequest, Error, Region, Store, StoreConfig, SyncMode};

fn shared(sync: SyncMode) -> StoreConfig {
    StoreConfig { sync, shared: true, segment_max_bytes: 4096, ..StoreConfig::default() }
}

fn all(store: &Store) -> Vec<(u64, String, Vec<u8>)> {
    let events = store.query(&Region::all(), None, None).unwrap();
    events
        .iter()
        .map(|e| {
            let view = e.view();
            (view.global_sequence, view.names().0.to_owned(), view.payload().to_vec())
        })
        .collect()
}

#[test]
fn two_openers_share_one_dense_order_across_rotations() {
    let dir = tempfile::tempdir().unwrap();
    let a = Store::open(dir.path(), shared(SyncMode::Never)).unwrap();
    let b = Store::open(dir.path(), shared(SyncMode::Never)).unwrap();
    for i in 0..300 {
        let (store, entity) = if i % 3 == 0 { (&a, "x") } else { (&b, "y") };
        let receipt = store.append(request(entity, "k", format!("{i}").as_bytes())).unwrap();
        assert_eq!(receipt.global_sequence, i);
    }
    let seen_a = all(&a);
    assert_eq!(seen_a.len(), 300);
    assert_eq!(seen_a, all(&b));
    assert!(a.stats().unwrap().segments > 1, "the small segments must have rotated");
    // Entity clocks continue across openers: x got every third event.
    assert_eq!(a.next_sequence("x").unwrap(), 100);
    drop((a, b));
    let reopened = Store::open(dir.path(), StoreConfig::default()).unwrap();
    assert_eq!(all(&reopened), seen_a);
    assert!(reopened.verify(&mut |_, _| true).unwrap().problems.is_empty());
}

#[test]
fn compare_and_set_and_idempotency_hold_across_openers() {
    let dir = tempfile::tempdir().unwrap();
    let a = Store::open(dir.path(), shared(SyncMode::Never)).unwrap();
    let b = Store::open(dir.path(), shared(SyncMode::Never)).unwrap();
    let cas = |expected| AppendRequest { expected_sequence: Some(expected), ..request("acct", "k", b"p") };
    a.append(cas(0)).unwrap();
    match b.append(cas(0)) {
        Err(Error::ConcurrencyConflict { expected: 0, actual: 1, .. }) => {}
        other => panic!("expected a conflict, got {other:?}"),
    }
    b.append(cas(1)).unwrap();
    let keyed = || AppendRequest { idempotency_key: Some(b"order-7".to_vec()), ..request("o", "k", b"p") };
    let first = a.append(keyed()).unwrap();
    let again = b.append(keyed()).unwrap();
    assert_eq!(
        (again.global_sequence, again.event_id, again.hash),
        (first.global_sequence, first.event_id, first.hash)
    );
    assert_eq!(all(&a).len(), 3);
}

#[test]
fn exclusive_and_shared_opens_refuse_each_other_naming_the_mode() {
    let dir = tempfile::tempdir().unwrap();
    let exclusive = Store::open(dir.path(), StoreConfig::default()).unwrap();
    match Store::open(dir.path(), shared(SyncMode::Batch)) {
        Err(Error::StoreLocked { holder_mode: "exclusive", holder_pid: Some(pid), backup_dest: None }) => {
            assert_eq!(pid, std::process::id())
        }
        other => panic!("expected StoreLocked by an exclusive holder, got {:?}", other.err()),
    }
    drop(exclusive);
    let sharer = Store::open(dir.path(), shared(SyncMode::Batch)).unwrap();
    match Store::open(dir.path(), StoreConfig::default()) {
        Err(Error::StoreLocked { holder_mode: "shared", .. }) => {}
        other => panic!("expected StoreLocked by shared holders, got {:?}", other.err()),
    }
    let reader = Store::open(dir.path(), StoreConfig { read_only: true, ..shared(SyncMode::Batch) }).unwrap();
    sharer.append(request("e", "k", b"p")).unwrap();
    assert_eq!(all(&reader).len(), 1, "a shared reader sees what a sharer wrote");
}

#[test]
fn a_reader_blocked_on_commits_wakes_on_another_openers_append() {
    let dir = tempfile::tempdir().unwrap();
    let a = Arc::new(Store::open(dir.path(), shared(SyncMode::Never)).unwrap());
    let b = Store::open(dir.path(), shared(SyncMode::Never)).unwrap();
    let seen = b.commit_generation();
    let writer = {
        let a = a.clone();
        std::thread::spawn(move || a.append(request("e", "k", b"p")).unwrap())
    };
    // Waits until the append's wake-up (a generous bound only guards a broken wake).
    let mut generation = seen;
    while generation == seen {
        generation = b.wait_for_commit(seen, Duration::from_secs(30));
    }
    writer.join().unwrap();
    assert_eq!(all(&b).len(), 1);
}

#[test]
fn group_commit_counts_another_openers_fsync() {
    let dir = tempfile::tempdir().unwrap();
    let a = Store::open(dir.path(), shared(SyncMode::Never)).unwrap();
    let b = Store::open(dir.path(), shared(SyncMode::Always)).unwrap();
    a.append(request("e", "k", b"unsynced")).unwrap();
    assert_eq!(b.durable_events(), 0);
    let receipt = b.append(request("e", "k", b"synced")).unwrap();
    assert!(receipt.durable);
    // B's fsync covered A's earlier event too, and A knows it.
    assert_eq!(a.durable_events(), 2);
}

#[test]
fn a_fence_of_one_opener_holds_back_the_other_until_it_commits() {
    let dir = tempfile::tempdir().unwrap();
    let a = Store::open(dir.path(), shared(SyncMode::Never)).unwrap();
    let b = Store::open(dir.path(), StoreConfig { fence_wait_ms: 50, ..shared(SyncMode::Never) }).unwrap();
    a.append(request("e", "k", b"before")).unwrap();
    a.begin_fence().unwrap();
    a.fence_append_batch(vec![request("e", "k", b"fenced")]).unwrap();
    assert!(b.fence_open());
    assert_eq!(all(&b).len(), 1, "the fence's event is hidden from the other opener");
    assert!(matches!(b.append(request("e", "k", b"waits")), Err(Error::FenceActive)));
    a.commit_fence().unwrap();
    assert_eq!(all(&b).len(), 2);
    b.append(request("e", "k", b"after")).unwrap();
    a.begin_fence().unwrap();
    a.fence_append_batch(vec![request("e", "k", b"cancelled")]).unwrap();
    a.cancel_fence().unwrap();
    let payloads: Vec<Vec<u8>> = all(&b).into_iter().map(|(_, _, p)| p).collect();
    assert_eq!(payloads, [&b"before"[..], b"fenced", b"after"]);
    assert_eq!(b.next_sequence("e").unwrap(), 3, "the cancelled event left the clock alone");
}

/// Once armed with `n`, writes the `n`th next write to a segment file only halfway and
/// fails: what a writer killed in the middle of a frame (or of a new segment's header)
/// leaves behind. Its lock is released when the failed call returns, as at a process's death.
#[derive(Debug, Default)]
struct TornWrite {
    armed: AtomicUsize,
}

impl TornWrite {
    fn tear_write(&self, n: usize) {
        self.armed.store(n, Ordering::SeqCst);
    }
}

impl Storage for TornWrite {
    fn write(&self, file: &File, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
        let segment = path.extension().is_some_and(|e| e == "seg");
        if segment
            && self.armed.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)) == Ok(1)
        {
            (&*file).write_all(&bytes[..bytes.len() / 2])?;
            return Err(std::io::Error::other("killed mid-write"));
        }
        OsStorage.write(file, path, bytes)
    }
}

#[test]
fn the_next_writer_cuts_a_dead_writers_torn_frame() {
    let dir = tempfile::tempdir().unwrap();
    let torn = Arc::new(TornWrite::default());
    let dying = Store::open_with(dir.path(), shared(SyncMode::Always), torn.clone()).unwrap();
    let other = Store::open(dir.path(), shared(SyncMode::Always)).unwrap();
    dying.append(request("e", "k", b"kept")).unwrap();
    torn.tear_write(1);
    assert!(dying.append(request("e", "k", b"torn")).is_err());
    // The other opener is not blocked, never sees the torn frame, and writes after the cut.
    let receipt = other.append(request("e", "k", b"next")).unwrap();
    assert_eq!((receipt.global_sequence, receipt.entity_sequence), (1, 1));
    let payloads: Vec<Vec<u8>> = all(&other).into_iter().map(|(_, _, p)| p).collect();
    assert_eq!(payloads, [&b"kept"[..], b"next"]);
    drop((dying, other));
    let reopened = Store::open(dir.path(), StoreConfig::default()).unwrap();
    assert_eq!(reopened.stats().unwrap().recovery.torn_tail_bytes, 0, "the tail was cut before writing");
    assert_eq!(all(&reopened).len(), 2);
    assert!(reopened.verify(&mut |_, _| true).unwrap().problems.is_empty());
}

#[test]
fn a_worker_lease_admits_one_holder_and_passes_on_release() {
    let dir = tempfile::tempdir().unwrap();
    let a = Store::open(dir.path(), shared(SyncMode::Never)).unwrap();
    let b = Arc::new(Store::open(dir.path(), shared(SyncMode::Never)).unwrap());
    let held = a.take_worker_lease("mailer", Duration::ZERO).unwrap().expect("free lease");
    assert!(b.take_worker_lease("mailer", Duration::ZERO).unwrap().is_none());
    let standby = {
        let b = b.clone();
        std::thread::spawn(move || b.take_worker_lease("mailer", Duration::from_secs(30)).unwrap().is_some())
    };
    drop(held);
    assert!(standby.join().unwrap(), "the waiting opener took the released lease");
    assert!(matches!(a.take_worker_lease("bad/id", Duration::ZERO), Err(Error::InvalidCheckpointId(_))));
}

#[test]
fn the_next_writer_finishes_a_rotation_a_dead_writer_left_half_done() {
    // The append after `big` must rotate: seal, new segment's header (write 1), frame (write 2).
    for torn_write in [1, 2] {
        rotation_torn_at(torn_write);
    }
}

fn rotation_torn_at(torn_write: usize) {
    let dir = tempfile::tempdir().unwrap();
    let torn = Arc::new(TornWrite::default());
    let dying = Store::open_with(dir.path(), shared(SyncMode::Always), torn.clone()).unwrap();
    let other = Store::open(dir.path(), shared(SyncMode::Always)).unwrap();
    let big = vec![7u8; 3000];
    dying.append(request("e", "k", &big)).unwrap();
    // The other opener's writer is now at the very end of the log the dying one seals.
    other.append(request("e", "k", b"small")).unwrap();
    torn.tear_write(torn_write);
    assert!(dying.append(request("e", "k", &big)).is_err());
    // Small enough for the sealed segment: only the seal may send it to the next one.
    let receipt = other.append(request("e", "k", b"after")).unwrap();
    assert_eq!(receipt.global_sequence, 2);
    assert_eq!(all(&other).len(), 3);
    assert_eq!(all(&dying).len(), 3, "the poisoned opener still reads what others write");
    drop((dying, other));
    let reopened = Store::open(dir.path(), StoreConfig::default()).unwrap();
    assert_eq!(all(&reopened).len(), 3);
    assert_eq!(reopened.stats().unwrap().segments, 2, "the sealed segment took no frame after its seal");
    assert!(reopened.verify(&mut |_, _| true).unwrap().problems.is_empty());
}

/// A batch's tracking record comes after its last event. A process that followed the
/// other's batch (by reading, or only at its close) must follow it to its end: its index
/// checkpoint once ended between the events and the record, and every later open of the
/// dir failed with "frame out of place in its batch"; a shared reader's verify reported the
/// batch as torn.
#[test]
fn a_follower_stops_after_a_batchs_tracking_record_not_inside_the_batch() {
    use eventpak_core::{CommitGuards, Tracking};
    let tracked = |position| CommitGuards {
        tracking: Some(Tracking::new("mailer", position).unwrap()),
        ..CommitGuards::none()
    };
    for reader_reads in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let writer = Store::open(dir.path(), shared(SyncMode::Always)).unwrap();
        let reader =
            Store::open(dir.path(), StoreConfig { read_only: true, ..shared(SyncMode::Always) }).unwrap();
        let follower = Store::open(dir.path(), shared(SyncMode::Always)).unwrap();
        writer.append(request("a", "k", b"first")).unwrap();
        writer.append_batch_guarded(vec![request("b", "k", b"tracked")], tracked(7)).unwrap();
        if reader_reads {
            assert_eq!(all(&follower).len(), 2);
        }
        // A reader that was there before the batch follows it; one that joins after it
        // reads it at open.
        let joiner =
            Store::open(dir.path(), StoreConfig { read_only: true, ..shared(SyncMode::Always) }).unwrap();
        for reader in [&reader, &joiner] {
            let report = reader.verify(&mut |_, _| true).unwrap();
            assert!(report.problems.is_empty(), "{:?}", report.problems);
            assert_eq!(reader.tracking_position("mailer").unwrap(), Some(7));
        }
        drop((reader, joiner));
        // The writer leaves first: the follower's close writes the index checkpoint.
        writer.close().unwrap();
        follower.close().unwrap();
        assert!(dir.path().join("index.ckpt").exists());
        for config in [StoreConfig::default(), shared(SyncMode::Always)] {
            let reopened = Store::open(dir.path(), config).unwrap();
            assert_eq!(all(&reopened).len(), 2);
            assert_eq!(reopened.tracking_position("mailer").unwrap(), Some(7));
            assert!(reopened.verify(&mut |_, _| true).unwrap().problems.is_empty());
        }
    }
}
