//! The causal graph at the engine level: links made by id, by an earlier batch item and
//! through the open fence; the walks; hidden events left out; the same answers after a
//! reopen through the index checkpoint and through a full scan.

mod common;

use common::*;
use eventpak_core::{AppendRequest, Error, EventId, Store, StoreConfig};

fn seqs(events: &[eventpak_core::StoredEvent]) -> Vec<u64> {
    events.iter().map(|e| e.global_sequence()).collect()
}

fn caused(entity: &str, cause: EventId) -> AppendRequest {
    AppendRequest { causation_id: Some(cause), correlation_from_cause: true, ..request(entity, "k", b"x") }
}

/// Every walk of the tree built by [`build`], as sequences.
fn answers(store: &Store, ids: &[EventId]) -> Vec<Vec<u64>> {
    let mut out = Vec::new();
    for id in ids {
        match store.effects(id) {
            Ok(effects) => out.push(seqs(&effects)),
            Err(Error::EventNotFound(_)) => out.push(vec![u64::MAX]),
            Err(e) => panic!("{e}"),
        }
        if let Ok(events) = store.descendants(id, None) {
            out.push(seqs(&events));
        }
        if let Ok(events) = store.causes(id, None) {
            out.push(seqs(&events));
        }
        out.push(seqs(&store.correlated(id, None, None).unwrap()));
    }
    out
}

/// root(0) -> a(1) -> {b(2), c(3)}; batch [d(4) caused by c, e(5) caused by item 0];
/// a cancelled fence holding f(6) caused by e; g(7) caused by a foreign id.
fn build(store: &Store) -> Vec<EventId> {
    let root = store.append(request("order", "k", b"root")).unwrap();
    let a = store.append(caused("pay", root.event_id)).unwrap();
    let b = store.append(caused("stock", a.event_id)).unwrap();
    let c = store.append(caused("mail", a.event_id)).unwrap();
    let batch = store
        .append_batch(vec![
            caused("ship", c.event_id),
            AppendRequest {
                causation_item: Some(0),
                correlation_from_cause: true,
                ..request("ship", "k", b"e")
            },
        ])
        .unwrap();
    store.begin_fence().unwrap();
    let hidden = store.fence_append_batch(vec![caused("ship", batch[1].event_id)]).unwrap();
    store.cancel_fence().unwrap();
    let foreign = store.append(caused("other", [7; 16])).unwrap();
    [root, a, b, c, batch[0].clone(), batch[1].clone(), hidden[0].clone(), foreign]
        .iter()
        .map(|r| r.event_id)
        .collect()
}

#[test]
fn walks_follow_links_and_leave_hidden_events_out() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), config());
    let ids = build(&store);
    assert_eq!(seqs(&store.effects(&ids[0]).unwrap()), [1]);
    assert_eq!(seqs(&store.effects(&ids[1]).unwrap()), [2, 3]);
    // Breadth first; the hidden effect of item 5 is not in the graph.
    assert_eq!(seqs(&store.descendants(&ids[0], None).unwrap()), [1, 2, 3, 4, 5]);
    assert_eq!(seqs(&store.descendants(&ids[0], Some(2)).unwrap()), [1, 2, 3]);
    assert!(store.effects(&ids[5]).unwrap().is_empty());
    assert_eq!(seqs(&store.causes(&ids[5], None).unwrap()), [5, 4, 3, 1, 0]);
    assert_eq!(seqs(&store.causes(&ids[5], Some(2)).unwrap()), [5, 4]);
    // The whole tree inherited the root's correlation; the hidden event is left out.
    assert_eq!(seqs(&store.correlated(&ids[0], None, None).unwrap()), [0, 1, 2, 3, 4, 5]);
    assert_eq!(seqs(&store.correlated(&ids[0], Some(2), Some(2)).unwrap()), [3, 4]);
    // A walk from a hidden event is refused like `get`; a foreign cause ends `causes`.
    assert!(matches!(store.effects(&ids[6]), Err(Error::EventNotFound(_))));
    assert_eq!(seqs(&store.causes(&ids[7], None).unwrap()), [7]);
    assert!(matches!(store.effects(&[7; 16]), Err(Error::EventNotFound(_))));
    // An event with a foreign cause keeps its own correlation.
    assert_eq!(seqs(&store.correlated(&ids[7], None, None).unwrap()), [7]);
}

#[test]
fn answers_survive_a_reopen_through_the_checkpoint_and_a_full_scan() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), config());
    let ids = build(&store);
    let before = answers(&store, &ids);
    store.close().unwrap();
    let store = open(dir.path(), config());
    assert_eq!(store.stats().unwrap().recovery.index_checkpoint, "loaded");
    assert_eq!(answers(&store, &ids), before);
    store.close().unwrap();
    let scan = StoreConfig { enable_index_checkpoint: false, ..config() };
    let store = open(dir.path(), scan);
    assert_eq!(answers(&store, &ids), before);
    assert!(store.verify(&mut |_, _| true).unwrap().ok());
}

#[test]
fn a_cause_in_the_open_fence_lends_its_correlation() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), config());
    store.begin_fence().unwrap();
    let saga = AppendRequest { correlation_id: Some([9; 16]), ..request("order", "k", b"0") };
    let first = store.fence_append_batch(vec![saga]).unwrap();
    let second = store.fence_append_batch(vec![caused("order", first[0].event_id)]).unwrap();
    store.commit_fence().unwrap();
    assert_eq!(seqs(&store.correlated(&[9; 16], None, None).unwrap()), [0, 1]);
    assert_eq!(seqs(&store.effects(&first[0].event_id).unwrap()), [second[0].global_sequence]);
}

#[test]
fn a_prior_item_that_is_not_earlier_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), config());
    // Item 1 naming itself or a later item, and a single append naming any item.
    for k in [1, 5] {
        let bad = AppendRequest { causation_item: Some(k), ..request("a", "k", b"1") };
        let err = store.append_batch(vec![request("a", "k", b"0"), bad]).unwrap_err();
        assert!(matches!(err, Error::InvalidCausation(_)), "{err}");
    }
    let alone = AppendRequest { causation_item: Some(0), ..request("a", "k", b"0") };
    assert!(matches!(store.append(alone), Err(Error::InvalidCausation(_))));
    assert_eq!(store.stats().unwrap().events, 0);
}
