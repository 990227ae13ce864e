//! A compacted store reopens from its index checkpoint (version 4 holds the holes that
//! compaction leaves, and whose clocks they were) into the index a full scan rebuilds; a
//! checkpoint whose holes do not agree with the log is set aside for a scan.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::{config, copy_dir, open, request};
use eventpak_core::{Cursor, Region, Retention, Selection, Store, StoreConfig};

fn small(checkpoint: bool) -> StoreConfig {
    StoreConfig { segment_max_bytes: 4096, enable_index_checkpoint: checkpoint, ..config() }
}

fn compact(store: &Store, kinds: &[&str], keep_last: u64) {
    let kinds = (!kinds.is_empty()).then(|| kinds.iter().map(|k| k.to_string()).collect::<BTreeSet<_>>());
    let rules = Selection::Rules(Retention { max_age_us: None, kinds, keep_last_per_entity: keep_last });
    let report = store.compact(rules, &mut |_, _| true).expect("compact");
    assert!(report.removed > 0);
}

/// A closed, twice-compacted store: entity "solo" lost every event, "e0".."e2" lost their
/// sealed "tick" events and then all but their newest five, each event with a key.
fn compacted_store(dir: &Path) {
    let store = open(dir, small(true));
    for i in 0..150 {
        let (entity, kind) = match i {
            0..6 => ("solo", "tick"),
            _ => (["e0", "e1", "e2"][i % 3], if i % 2 == 0 { "tick" } else { "keep" }),
        };
        let mut r = request(entity, kind, &[i as u8; 40]);
        r.idempotency_key = Some(format!("key-{i}").into_bytes());
        store.append(r).unwrap();
    }
    compact(&store, &["tick"], 0);
    compact(&store, &[], 5);
    store.close().unwrap();
}

/// What a reader can tell about a store: every event, each entity's events, the gaps a
/// cursor reports, the visible count, and that it verifies.
#[derive(Debug, PartialEq)]
struct Observed {
    events: Vec<(u64, [u8; 16], u64, [u8; 32])>,
    per_entity: Vec<Vec<u64>>,
    gaps: Vec<eventpak_core::GapObservation>,
    visible: u64,
}

fn observe(store: &Store) -> Observed {
    let events = store.query(&Region::all(), None, None).unwrap();
    let events = events
        .iter()
        .map(|e| (e.global_sequence(), e.view().event_id(), e.view().entity_sequence(), e.view().hash()))
        .collect();
    let per_entity = ["solo", "e0", "e1", "e2"]
        .iter()
        .map(|entity| {
            let region = Region::all().with_exact_entity(entity).unwrap();
            store.query(&region, None, None).unwrap().iter().map(|e| e.global_sequence()).collect()
        })
        .collect();
    let mut cursor = Cursor::new(Region::all());
    cursor.set_gap_capacity(Some(64));
    while !cursor.poll_batch(store, 1000).unwrap().is_empty() {}
    assert!(store.verify(&mut |_, _| true).unwrap().ok());
    Observed { events, per_entity, gaps: cursor.take_gaps(), visible: store.stats().unwrap().visible_events }
}

/// What the next appends see: the receipt of a removed event's key, then each entity's next
/// clock and the hash its chain continues from.
fn continue_appending(store: &Store) -> Vec<(u64, u64, [u8; 32])> {
    let mut retry = request("e0", "tick", &[6; 40]);
    retry.idempotency_key = Some(b"key-6".to_vec());
    let again = store.append(retry).unwrap();
    let mut seen = vec![(again.global_sequence, again.entity_sequence, again.hash)];
    for entity in ["solo", "e0", "e1", "e2"] {
        let receipt = store.append(request(entity, "later", b"x")).unwrap();
        let stored = store.read_events(&[receipt.global_sequence]).unwrap().remove(0);
        seen.push((receipt.global_sequence, receipt.entity_sequence, stored.view().prev_hash()));
    }
    seen
}

fn open_both(dir: &Path, scanned: &Path) -> (Store, Store) {
    let loaded = open(dir, small(true));
    let recovery = loaded.stats().unwrap().recovery;
    assert_eq!((recovery.index_checkpoint, recovery.scanned_events), ("loaded", 0));
    let scan = open(scanned, small(false));
    assert_eq!(scan.stats().unwrap().recovery.index_checkpoint, "disabled");
    (loaded, scan)
}

#[test]
fn a_compacted_store_reopens_from_its_checkpoint_as_a_scan_rebuilds_it() {
    let root = tempfile::tempdir().unwrap();
    let (dir, scanned) = (root.path().join("store"), root.path().join("scanned"));
    compacted_store(&dir);
    copy_dir(&dir, &scanned);
    let (loaded, scan) = open_both(&dir, &scanned);
    let seen = observe(&loaded);
    assert!(seen.per_entity[0].is_empty(), "every event of solo was removed");
    assert!(seen.gaps[0].compacted_ranges.first().is_some_and(|r| r.0 == 0));
    assert_eq!(seen, observe(&scan));
    assert_eq!(continue_appending(&loaded), continue_appending(&scan));
    // The checkpoint written at this close holds the new events too.
    let after = observe(&loaded);
    loaded.close().unwrap();
    let again = open(&dir, small(true));
    assert_eq!(again.stats().unwrap().recovery.index_checkpoint, "loaded");
    assert_eq!(observe(&again), after);
}

/// The checkpoint's layout: where the hole postings and the entries are.
struct Layout {
    holes_at: usize,
    n_hole_postings: usize,
    entries_at: usize,
    n_entries: usize,
}

const ENTRY_LEN: usize = 53;
const HOLE_POSTING_LEN: usize = 20;

fn layout(b: &[u8]) -> Layout {
    let u32_at = |at: usize| u32::from_le_bytes(b[at..at + 4].try_into().unwrap()) as usize;
    let u64_at = |at: usize| u64::from_le_bytes(b[at..at + 8].try_into().unwrap()) as usize;
    assert_eq!(u32_at(8), 4, "a version-4 checkpoint");
    let mut at = 24 + u32_at(20) * 16;
    for _table in 0..3 {
        let count = u32_at(at);
        at += 4;
        for _ in 0..count {
            at += 4 + u32_at(at);
        }
    }
    let (holes_at, n_hole_postings) = (at + 8, u64_at(at));
    at = holes_at + n_hole_postings * HOLE_POSTING_LEN;
    Layout { holes_at, n_hole_postings, entries_at: at + 8, n_entries: u64_at(at) }
}

fn reseal(b: &mut [u8]) {
    let body = b.len() - 4;
    let crc = crc32c::crc32c(&b[..body]);
    b[body..].copy_from_slice(&crc.to_le_bytes());
}

#[test]
fn a_checkpoint_whose_holes_disagree_with_the_log_is_set_aside_for_a_scan() {
    let root = tempfile::tempdir().unwrap();
    let pristine = root.path().join("pristine");
    compacted_store(&pristine);
    let scanned = root.path().join("scanned");
    copy_dir(&pristine, &scanned);
    let want = observe(&open(&scanned, small(false)));
    let bytes = std::fs::read(pristine.join("index.ckpt")).unwrap();
    let l = layout(&bytes);
    assert!(l.n_hole_postings > 0 && l.n_entries > 0);
    let (entries_at, holes_at) = (l.entries_at, l.holes_at);
    let entry = move |seq: usize| entries_at + seq * ENTRY_LEN;
    let is_hole = |seq: usize| bytes[entry(seq)..entry(seq) + 4] == [0xff; 4];
    let first_kept = (0..l.n_entries).find(|&s| !is_hole(s)).unwrap();
    let first_hole = (0..l.n_entries).find(|&s| is_hole(s)).unwrap();
    let posting_seq = move |n: usize| holes_at + n * HOLE_POSTING_LEN + 12;

    type Forgery = Box<dyn Fn(&mut Vec<u8>)>;
    let forgeries: Vec<(&str, Forgery)> = vec![
        // A kept event's entry turned into a hole: its frame is then where no entry says.
        (
            "a kept event as a hole",
            Box::new(move |b| {
                let at = entry(first_kept);
                let id = if first_kept == 0 { [0; 16] } else { b[at - 16..at].try_into().unwrap() };
                b[at..at + 4].copy_from_slice(&[0xff; 4]);
                b[at + 4..at + 16].fill(0);
                b[at + 16..at + 28].fill(0xff);
                b[at + 28..at + 37].fill(0);
                b[at + 37..at + ENTRY_LEN].copy_from_slice(&id);
            }),
        ),
        // A hole posting naming a kept event.
        (
            "a hole posting on a kept event",
            Box::new(move |b| {
                let at = posting_seq(0);
                b[at..at + 8].copy_from_slice(&(first_kept as u64).to_le_bytes());
            }),
        ),
        // A hole posting moved to another entity's clock that is taken.
        (
            "a hole posting at a taken clock",
            Box::new(move |b| {
                let at = posting_seq(0) - 8;
                b[at..at + 8].copy_from_slice(&1_000_000u64.to_le_bytes());
            }),
        ),
        // A hole with a stray field.
        (
            "a hole holding a frame length",
            Box::new(move |b| {
                let at = entry(first_hole) + 12;
                b[at..at + 4].copy_from_slice(&7u32.to_le_bytes());
            }),
        ),
    ];
    for (name, forge) in forgeries {
        let dir = root.path().join(name.replace(' ', "-"));
        copy_dir(&pristine, &dir);
        let mut forged = bytes.clone();
        forge(&mut forged);
        reseal(&mut forged);
        std::fs::write(dir.join("index.ckpt"), &forged).unwrap();
        let store = open(&dir, small(true));
        let recovery = store.stats().unwrap().recovery;
        assert!(
            ["corrupt", "stale"].contains(&recovery.index_checkpoint),
            "{name}: {}",
            recovery.index_checkpoint
        );
        assert!(recovery.scanned_events > 0, "{name}");
        assert_eq!(observe(&store), want, "{name}");
    }
}

#[test]
fn holes_the_compaction_record_does_not_hold_send_the_open_to_a_scan() {
    // A store compacted once, closed (checkpoint with holes), then given back the record of
    // a store never compacted: the checkpoint's holes are no longer removed events, so it is
    // set aside, and the scan refuses the jumps the record does not explain.
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("store");
    compacted_store(&dir);
    let ranges = dir.join("compacted.ranges");
    assert!(ranges.exists());
    std::fs::remove_file(&ranges).unwrap();
    let before = common::snapshot(&dir);
    let refused = Store::open(&dir, small(true)).err().expect("open refused");
    assert!(matches!(refused, eventpak_core::Error::CorruptSegment { .. }), "{refused:?}");
    assert_eq!(common::snapshot(&dir), before, "a refused open changes nothing");
}
