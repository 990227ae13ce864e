//! Visibility fences, cursors and gap observations at the engine level.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use eventpak_core::{Cursor, Error, Region};

fn seqs(events: &[eventpak_core::StoredEvent]) -> Vec<u64> {
    events.iter().map(|e| e.global_sequence()).collect()
}

#[test]
fn fenced_events_are_invisible_until_commit_and_hidden_for_good_on_cancel() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), config());
    store.append(request("a", "k", b"0")).unwrap();
    store.begin_fence().unwrap();
    store.fence_append_batch(vec![request("a", "k", b"1")]).unwrap();
    assert!(matches!(store.append(request("a", "k", b"x")), Err(Error::FenceActive)));
    assert!(matches!(store.begin_fence(), Err(Error::FenceActive)));
    assert_eq!(seqs(&store.query(&Region::all(), None, None).unwrap()), [0]);
    store.commit_fence().unwrap();
    assert_eq!(seqs(&store.query(&Region::all(), None, None).unwrap()), [0, 1]);

    store.begin_fence().unwrap();
    let hidden = store.fence_append_batch(vec![request("a", "k", b"2"), request("b", "k", b"3")]).unwrap();
    assert_eq!(hidden[0].entity_sequence, 2);
    store.cancel_fence().unwrap();
    assert!(matches!(store.fence_append_batch(vec![request("a", "k", b"x")]), Err(Error::FenceClosed)));
    let next = store.append(request("a", "k", b"4")).unwrap();
    // Cancelled events do not consume the entity's clock or chain.
    assert_eq!((next.global_sequence, next.entity_sequence), (4, 2));
    let chain = store.walk_ancestors(&next.event_id, None).unwrap();
    assert_eq!(seqs(&chain), [4, 1, 0]);
    assert!(matches!(store.get(&hidden[0].event_id), Err(Error::EventNotFound(_))));
    store.close().unwrap();

    for use_checkpoint in [true, false] {
        let config = eventpak_core::StoreConfig { enable_index_checkpoint: use_checkpoint, ..config() };
        let reopened = open(dir.path(), config);
        assert_eq!(seqs(&reopened.query(&Region::all(), None, None).unwrap()), [0, 1, 4]);
        assert!(reopened.query(&Region::all().with_entity("b").unwrap(), None, None).unwrap().is_empty());
        reopened.close().unwrap();
    }
    let reopened = open(dir.path(), config());
    assert_eq!(reopened.append(request("b", "k", b"5")).unwrap().entity_sequence, 0);
}

#[test]
fn a_fence_left_open_by_a_crash_is_hidden_at_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), config());
    store.append(request("a", "k", b"0")).unwrap();
    store.begin_fence().unwrap();
    store.fence_append_batch(vec![request("a", "k", b"1")]).unwrap();
    // Simulate a crash: the files stay as they are, the store is never closed.
    std::mem::forget(store);
    std::fs::remove_file(dir.path().join("LOCK")).ok(); // the forgotten lock belongs to this process
    let copy = tempfile::tempdir().unwrap();
    for entry in ["segments", "hidden.ranges", "store.id"] {
        let from = dir.path().join(entry);
        if from.is_dir() {
            std::fs::create_dir_all(copy.path().join(entry)).unwrap();
            for f in std::fs::read_dir(&from).unwrap() {
                let f = f.unwrap();
                std::fs::copy(f.path(), copy.path().join(entry).join(f.file_name())).unwrap();
            }
        } else {
            std::fs::copy(&from, copy.path().join(entry)).unwrap();
        }
    }
    let reopened = open(copy.path(), config());
    assert_eq!(seqs(&reopened.query(&Region::all(), None, None).unwrap()), [0]);
    let next = reopened.append(request("a", "k", b"2")).unwrap();
    assert_eq!((next.global_sequence, next.entity_sequence), (2, 1));
}

#[test]
fn cancelled_events_a_torn_tail_took_leave_their_numbers_to_visible_appends() {
    // A cancel makes hidden.ranges durable but not the fence's frames: a power loss can keep
    // the range and tear the frames off the log. The numbers then go to new appends, which
    // must stay visible through every later reopen.
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), config());
    store.append(request("a", "k", b"0")).unwrap();
    store.begin_fence().unwrap();
    store.fence_append_batch(vec![request("a", "k", b"1"), request("b", "k", b"2")]).unwrap();
    store.cancel_fence().unwrap();
    store.close().unwrap();
    let segment = segment_paths(dir.path()).pop().unwrap();
    let len = std::fs::metadata(&segment).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&segment).unwrap().set_len(len - 1).unwrap();
    let reopened = open(dir.path(), durable_config(None));
    assert!(reopened.stats().unwrap().recovery.torn_tail_bytes > 0);
    let receipt = reopened.append(request("a", "k", b"acked")).unwrap();
    assert_eq!((receipt.global_sequence, receipt.durable), (1, true));
    reopened.close().unwrap();
    for config in [config(), eventpak_core::StoreConfig { enable_index_checkpoint: false, ..config() }] {
        let again = open(dir.path(), config);
        assert_eq!(seqs(&again.query(&Region::all(), None, None).unwrap()), [0, 1]);
        assert_eq!(again.get(&receipt.event_id).unwrap().global_sequence(), 1);
        assert!(again.verify(&mut |_, _| true).unwrap().ok());
        again.close().unwrap();
    }
}

#[test]
fn cursors_deliver_in_order_step_over_hidden_ranges_and_record_gaps() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), config());
    store.append(request("a", "k", b"0")).unwrap();
    store.begin_fence().unwrap();
    store.fence_append_batch(vec![request("a", "k", b"1"), request("a", "k", b"2")]).unwrap();
    store.cancel_fence().unwrap();
    store.append(request("a", "k", b"3")).unwrap();
    let mut cursor = Cursor::new(Region::all());
    cursor.set_gap_capacity(Some(4));
    assert_eq!(seqs(&cursor.poll_batch(&store, 1).unwrap()), [0]);
    assert_eq!(seqs(&cursor.poll_batch(&store, 10).unwrap()), [3]);
    assert!(cursor.poll_batch(&store, 10).unwrap().is_empty());
    let gaps = cursor.take_gaps();
    assert_eq!(gaps.len(), 1);
    assert_eq!((gaps[0].expected_sequence, gaps[0].delivered_sequence), (1, 3));
    assert_eq!(gaps[0].cancelled_ranges, vec![(1, 3)]);
    assert!(cursor.take_gaps().is_empty());
}

#[test]
fn pull_batch_returns_events_appended_by_another_thread() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(open(dir.path(), config()));
    let reader = {
        let store = store.clone();
        std::thread::spawn(move || {
            let mut cursor = Cursor::new(Region::all());
            cursor.pull_batch(&store, 10, Duration::from_secs(60), &|| false).unwrap()
        })
    };
    store.append(request("a", "k", b"x")).unwrap();
    assert_eq!(seqs(&reader.join().unwrap()), [0]);
}
