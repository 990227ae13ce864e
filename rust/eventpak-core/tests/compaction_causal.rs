//! The causal indexes after a compaction: a removed event leaves the graph (as cause, as
//! effect, as a correlated event) the same way in memory, through the index checkpoint and
//! in a rebuild from the segments (a restored backup has no checkpoint), and `verify`
//! agrees with all three. A removed event leaves a hole that repeats the id before it, so
//! a cause must be found by the first of equal ids, never by any of them.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::{config, copy_dir, open, request};
use eventpak_core::{Region, Retention, Selection, Store, StoreConfig};

fn small(checkpoint: bool) -> StoreConfig {
    StoreConfig { segment_max_bytes: 4096, enable_index_checkpoint: checkpoint, ..config() }
}

/// 240 events over five entities, kinds alternating "tick" and "keep"; each event from the
/// third on is caused by one of the two before it or by one halfway back, taking its
/// correlation, so removed events sit between causes and effects, are causes of kept
/// events, and are effects of kept causes. Returns every event id in commit order.
fn caused_store(store: &Store) -> Vec<[u8; 16]> {
    let mut ids: Vec<[u8; 16]> = Vec::new();
    for i in 0..240usize {
        let mut r = request(&format!("e{}", i % 5), if i % 2 == 0 { "tick" } else { "keep" }, &[i as u8; 40]);
        if i >= 2 {
            let cause = [i - 1, i - 2, i / 2][i % 3];
            r.causation_id = Some(ids[cause]);
            r.correlation_from_cause = true;
        }
        ids.push(store.append(r).unwrap().event_id);
    }
    ids
}

/// A kept event's sequence with its effects, descendants and correlated events.
type Links = (u64, Vec<u64>, Vec<u64>, Vec<u64>);

/// For every kept event: its effects, descendants and correlated events, by sequence.
fn graph(store: &Store, ids: &[[u8; 16]]) -> Vec<Links> {
    let seqs = |events: Vec<eventpak_core::StoredEvent>| events.iter().map(|e| e.global_sequence()).collect();
    let kept = store.query(&Region::all(), None, None).unwrap();
    assert!(!kept.is_empty() && kept.len() < ids.len());
    kept.iter()
        .map(|event| {
            let id = event.view().event_id();
            (
                event.global_sequence(),
                seqs(store.effects(&id).unwrap()),
                seqs(store.descendants(&id, None).unwrap()),
                seqs(store.correlated(&id, None, None).unwrap()),
            )
        })
        .collect()
}

fn compact_ticks(store: &Store) {
    let kinds = Some(BTreeSet::from(["tick".to_string()]));
    let rules = Selection::Rules(Retention { max_age_us: None, kinds, keep_last_per_entity: 0 });
    assert!(store.compact(rules, &mut |_, _| true).unwrap().removed > 0);
}

fn verified(store: &Store) -> bool {
    store.verify(&mut |_, _| true).unwrap().ok()
}

fn reopened(dir: &Path, checkpoint: bool) -> Store {
    let store = open(dir, small(checkpoint));
    let expected = if checkpoint { "loaded" } else { "disabled" };
    assert_eq!(store.stats().unwrap().recovery.index_checkpoint, expected);
    store
}

#[test]
fn removed_events_leave_the_graph_alike_live_from_the_checkpoint_and_rebuilt() {
    let root = tempfile::tempdir().unwrap();
    let (dir, copy) = (root.path().join("store"), root.path().join("copy"));
    let store = open(&dir, small(true));
    let mut ids = caused_store(&store);
    compact_ticks(&store);
    // More effects, of kept and removed causes alike, then a second compaction that removes
    // events an earlier one left holes after: the holes must stop repeating their ids.
    for i in 0..120usize {
        let mut r = request(&format!("e{}", i % 5), "keep", &[i as u8; 40]);
        r.causation_id = Some(ids[(i * 7) % ids.len()]);
        r.correlation_from_cause = true;
        ids.push(store.append(r).unwrap().event_id);
    }
    let rules = Selection::Rules(Retention { max_age_us: None, kinds: None, keep_last_per_entity: 40 });
    assert!(store.compact(rules, &mut |_, _| true).unwrap().removed > 0);
    let live = graph(&store, &ids);
    // Kept events whose cause was removed keep their correlation, and still link to kept causes.
    assert!(live.iter().any(|(_, effects, _, _)| !effects.is_empty()));
    assert!(verified(&store));
    store.close().unwrap();

    copy_dir(&dir, &copy);
    let loaded = reopened(&dir, true);
    assert_eq!(graph(&loaded, &ids), live);
    assert!(verified(&loaded));
    let rebuilt = reopened(&copy, false);
    assert_eq!(graph(&rebuilt, &ids), live);
    assert!(verified(&rebuilt));
}

#[test]
fn a_cause_followed_by_a_removed_event_keeps_its_effect() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), small(false));
    let cause = store.append(request("order", "placed", b"x")).unwrap();
    store.append(request("debug", "tick", b"x")).unwrap(); // its hole repeats the cause's id
    let mut effect = request("order", "shipped", b"x");
    effect.causation_id = Some(cause.event_id);
    let effect = store.append(effect).unwrap();
    for _ in 0..100 {
        store.append(request("pad", "keep", &[0; 50])).unwrap(); // seals the first segment
    }
    compact_ticks(&store);
    let effects = |s: &Store| {
        s.effects(&cause.event_id).unwrap().iter().map(|e| e.global_sequence()).collect::<Vec<u64>>()
    };
    assert_eq!(effects(&store), vec![effect.global_sequence]);
    assert!(verified(&store));
    store.close().unwrap();
    let rebuilt = reopened(dir.path(), false);
    assert_eq!(effects(&rebuilt), vec![effect.global_sequence]);
    assert!(verified(&rebuilt));
}
