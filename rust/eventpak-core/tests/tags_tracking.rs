//! Tags, append conditions and tracking records in the engine: the tag index (postings of
//! visible events only, intersections, unions), the index checkpoint with tags and tracking
//! records (loaded, and the same answers by a full scan), recovery of a torn tail ending in
//! a tracking record, and both features across two shared-mode openers in one process.

mod common;

use common::{config, open, parse_frames, request, segment_paths};
use eventpak_core::{
    AppendCondition, AppendRequest, CommitGuards, Error, Region, Store, StoreConfig, SyncMode, Tracking,
};

fn tagged(entity: &str, tags: &[&str]) -> AppendRequest {
    AppendRequest { tags: tags.iter().map(|t| t.to_string()).collect(), ..request(entity, "k", b"p") }
}

fn tags(list: &[&str]) -> Region {
    Region::all().with_tags(list).unwrap()
}

fn seqs(store: &Store, region: &Region, after: Option<u64>) -> Vec<u64> {
    store.query(region, after, None).unwrap().iter().map(|e| e.global_sequence()).collect()
}

fn tracking(name: &str, position: u64) -> CommitGuards {
    CommitGuards { tracking: Some(Tracking::new(name, position).unwrap()), ..CommitGuards::none() }
}

fn condition(region: Region, after: Option<u64>) -> CommitGuards {
    CommitGuards {
        condition: Some(AppendCondition { fail_if_events_match: region, after }),
        ..CommitGuards::none()
    }
}

/// 0 [a], 1 [a b], 2 [], 3 [b], then a cancelled fence (4 [a]) and a committed one (5 [a b]).
fn tagged_log(store: &Store) {
    store.append(tagged("x", &["a"])).unwrap();
    store.append(tagged("y", &["a", "b"])).unwrap();
    store.append(tagged("x", &[])).unwrap();
    store.append(tagged("y", &["b"])).unwrap();
    store.begin_fence().unwrap();
    store.fence_append_batch(vec![tagged("x", &["a"])]).unwrap();
    store.cancel_fence().unwrap();
    store.begin_fence().unwrap();
    store.fence_append_batch(vec![tagged("z", &["a", "b"])]).unwrap();
    assert_eq!(seqs(store, &tags(&["a"]), None), [0, 1], "an open fence's events are not posted");
    store.commit_fence().unwrap();
}

#[test]
fn the_tag_index_posts_visible_events_and_intersects_tags() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), config());
    tagged_log(&store);
    assert_eq!(seqs(&store, &tags(&["a"]), None), [0, 1, 5]);
    assert_eq!(seqs(&store, &tags(&["b"]), None), [1, 3, 5]);
    assert_eq!(seqs(&store, &tags(&["a", "b"]), None), [1, 5]);
    assert_eq!(seqs(&store, &tags(&["a", "b"]), Some(1)), [5]);
    assert_eq!(seqs(&store, &tags(&["a"]).with_exact_entity("x").unwrap(), None), [0]);
    assert!(seqs(&store, &tags(&["c"]), None).is_empty());
    let union = Region::any_of([tags(&["b"]), Region::all().with_exact_entity("x").unwrap()]).unwrap();
    assert_eq!(seqs(&store, &union, None), [0, 1, 2, 3, 5]);
    assert_eq!(store.query_hits_after(&union, 1, true, 2).unwrap(), [2, 3]);
    let lag = store.region_lag(&union, 2, true).unwrap();
    assert_eq!(lag.events, 2);
    let identity = union.checkpoint_identity();
    assert_eq!(Region::from_checkpoint_identity(&identity).unwrap(), union);
}

#[test]
fn the_index_checkpoint_carries_tags_and_tracking_records() {
    let dir = tempfile::tempdir().unwrap();
    let small = StoreConfig { segment_max_bytes: 4096, ..config() };
    let store = open(dir.path(), small.clone());
    tagged_log(&store);
    for n in 0..40u64 {
        let events = if n % 4 == 0 { vec![] } else { vec![tagged("w", &["w", "a"])] };
        store.append_batch_guarded(events, tracking(if n % 2 == 0 { "even" } else { "odd" }, n)).unwrap();
    }
    assert!(store.stats().unwrap().segments > 1);
    let answers = |store: &Store| {
        (
            seqs(store, &tags(&["a"]), None),
            seqs(store, &tags(&["w", "a"]), None),
            store.tracking_position("even").unwrap(),
            store.tracking_position("odd").unwrap(),
            store.stats().unwrap().events,
        )
    };
    let before = answers(&store);
    assert_eq!((before.2, before.3), (Some(38), Some(39)));
    store.close().unwrap();

    let loaded = open(dir.path(), small.clone());
    let stats = loaded.stats().unwrap();
    assert_eq!((stats.recovery.index_checkpoint, stats.recovery.scanned_events), ("loaded", 0));
    assert_eq!(answers(&loaded), before);
    assert!(loaded.verify(&mut |_, _| true).unwrap().ok());
    drop(loaded);
    let scanned = open(dir.path(), StoreConfig { enable_index_checkpoint: false, ..small });
    assert_eq!(scanned.stats().unwrap().recovery.index_checkpoint, "disabled");
    assert_eq!(answers(&scanned), before);
    assert!(scanned.verify(&mut |_, _| true).unwrap().ok());
}

#[test]
fn a_torn_tail_ending_in_a_tracking_record_loses_its_whole_batch() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), StoreConfig { sync: SyncMode::Always, ..config() });
    store.append_batch_guarded(vec![tagged("x", &["a"])], tracking("up", 1)).unwrap();
    store.append_batch_guarded(vec![tagged("x", &["a"]), tagged("x", &["b"])], tracking("up", 2)).unwrap();
    store.append_batch_guarded(vec![], tracking("up", 3)).unwrap();
    store.close().unwrap();
    std::fs::remove_file(dir.path().join("index.ckpt")).unwrap();
    let path = &segment_paths(dir.path())[0];
    let bytes = std::fs::read(path).unwrap();
    let frames = parse_frames(&bytes);
    let kinds: Vec<bool> = frames.iter().map(|f| f.is_event).collect();
    assert_eq!(kinds, [true, false, true, true, false, false]);
    // Every cut inside the last two batches: each one goes whole, with its position.
    let (second, third) = (frames[2].offset, frames[5].offset);
    for cut in second + 1..bytes.len() {
        std::fs::write(path, &bytes[..cut]).unwrap();
        let store = open(dir.path(), config());
        let (events, position) = if cut < third { (1, 1) } else { (3, 2) };
        assert_eq!(store.stats().unwrap().events, events, "cut at {cut}");
        assert_eq!(store.tracking_position("up").unwrap(), Some(position), "cut at {cut}");
        assert_eq!(seqs(&store, &tags(&["a"]), None).len() as u64, events.min(2), "cut at {cut}");
        assert!(store.verify(&mut |_, _| true).unwrap().ok(), "cut at {cut}");
        drop(store);
        std::fs::write(path, &bytes).unwrap();
        let _ = std::fs::remove_file(dir.path().join("index.ckpt"));
    }
}

#[test]
fn conditions_and_tracking_hold_across_shared_openers() {
    let dir = tempfile::tempdir().unwrap();
    let shared = StoreConfig { shared: true, sync: SyncMode::Never, segment_max_bytes: 4096, ..config() };
    let a = Store::open(dir.path(), shared.clone()).unwrap();
    let b = Store::open(dir.path(), shared).unwrap();
    a.append(tagged("x", &["course"])).unwrap();
    // b follows a's event before it checks its condition.
    let refused = b.append_guarded(tagged("y", &["course"]), condition(tags(&["course"]), None));
    assert!(matches!(refused, Err(Error::AppendConditionFailed { global_sequence: 0 })));
    b.append_guarded(tagged("y", &["course"]), condition(tags(&["course"]), Some(0))).unwrap();
    // A tracking record alone, after the newest event: the other opener sees it at once.
    a.append_batch_guarded(vec![], tracking("up", 7)).unwrap();
    assert_eq!(b.tracking_position("up").unwrap(), Some(7));
    let stale = b.append_batch_guarded(vec![tagged("y", &[])], tracking("up", 7));
    assert!(matches!(stale, Err(Error::TrackingConflict { recorded: 7, .. })));
    for n in 8..60 {
        let (writer, reader) = if n % 2 == 0 { (&a, &b) } else { (&b, &a) };
        let events = if n % 3 == 0 { vec![] } else { vec![tagged("z", &["t"])] };
        writer.append_batch_guarded(events, tracking("up", n)).unwrap();
        assert_eq!(reader.tracking_position("up").unwrap(), Some(n));
    }
    assert!(a.stats().unwrap().segments > 1, "the small segments must have rotated");
    assert_eq!(seqs(&a, &tags(&["t"]), None), seqs(&b, &tags(&["t"]), None));
    drop((a, b));
    let reopened = Store::open(dir.path(), StoreConfig::default()).unwrap();
    assert_eq!(reopened.tracking_position("up").unwrap(), Some(59));
    assert!(reopened.verify(&mut |_, _| true).unwrap().ok());
}
