//! Simulated crashes of a replica while it applies: every file operation of the workload is
//! a crash point, and each is rebuilt into many crash states (unsynced bytes kept, cut or
//! dropped; undurable renames kept or undone) and reopened. Each must hold a prefix of what
//! was applied that contains every acknowledged call, verify clean, and take the rest when it
//! is delivered again.

mod common;
mod sim;

use std::sync::{Arc, Mutex};

use eventpak_core::{EventRecord, Region, Store, StoreConfig, SyncMode};
use sim::record::{RecordingStorage, Rng};
use sim::workload::{Attempt, Log, SharedLog, Via};

/// The events of entities e1 and e4 of a 180-event origin: a region whose sequences jump.
fn origin_records(dir: &std::path::Path) -> ([u8; 16], Vec<EventRecord>) {
    let origin = common::open(dir, common::config());
    for i in 0..180 {
        let payload = format!("payload-{i}-{}", "y".repeat(i % 7 * 40));
        origin.append(common::request(&format!("e{}", i % 6), "k", payload.as_bytes())).unwrap();
    }
    let all = origin.query(&Region::all(), None, None).unwrap();
    let wanted =
        all.iter().map(|e| e.view().to_record()).filter(|r| matches!(&*r.entity, "e1" | "e4")).collect();
    (origin.store_id(), wanted)
}

fn records(store: &Store) -> Vec<EventRecord> {
    store.query(&Region::all(), None, None).unwrap().iter().map(|e| e.view().to_record()).collect()
}

#[test]
fn every_crash_state_of_a_replica_holds_an_acknowledged_prefix() {
    let extended = std::env::var("EVENTPAK_EXTENDED").is_ok_and(|v| v == "1");
    let states_per_point = if extended { 400 } else { 20 };
    let scratch = tempfile::tempdir().unwrap();
    let (origin, wanted) = origin_records(&scratch.path().join("origin"));
    // Small segments, so that applies rotate (seals, a new segment's first frame jumping).
    let config = StoreConfig { sync: SyncMode::Never, segment_max_bytes: 4096, ..StoreConfig::default() };
    let dir = tempfile::tempdir().unwrap();
    let log: SharedLog = Arc::new(Mutex::new(Log::default()));
    let storage = Arc::new(RecordingStorage::new(dir.path(), log.clone()));
    {
        let store = Store::open_with(dir.path(), config.clone(), storage.clone()).unwrap();
        store.become_replica("EVENTS").unwrap();
        let mut at = 0;
        for (i, size) in [1usize, 4, 2, 7, 3, 5, 1, 6].iter().cycle().enumerate() {
            if at >= wanted.len() {
                break;
            }
            // Every third call redelivers the call before it, as a restarted consumer would.
            let from = if i % 3 == 2 { at.saturating_sub(2) } else { at };
            let batch: Vec<EventRecord> = wanted[from..(at + size).min(wanted.len())].to_vec();
            let attempt = Attempt { events: Vec::new(), via: Via::Plain, acked: false, tracking: None };
            log.lock().unwrap().attempts.push(attempt);
            let outcome = store.apply_replicated(origin, batch.clone()).unwrap();
            assert!(outcome.refused.is_none());
            at = (at + size).min(wanted.len());
            let mut log = log.lock().unwrap();
            let last = log.attempts.last_mut().unwrap();
            last.acked = true;
            last.events =
                batch.iter().map(|r| (r.entity.to_string(), r.payload.clone(), Vec::new())).collect();
            last.tracking = Some(at as u64); // (here: how many of `wanted` are acknowledged)
        }
        store.close().unwrap();
    }
    let snapshots = storage.snapshots();
    assert!(snapshots.len() > 60, "only {} crash points", snapshots.len());
    let mut states = 0u64;
    for (point, snapshot) in snapshots.iter().enumerate() {
        let acknowledged =
            snapshot.log.attempts.iter().filter(|a| a.acked).filter_map(|a| a.tracking).max().unwrap_or(0)
                as usize;
        for k in 0..states_per_point {
            let seed = (point as u64) << 32 | k as u64;
            let crash = tempfile::tempdir().unwrap();
            snapshot.materialise(crash.path(), &mut Rng(seed));
            let label = format!("crash point {point}, state seed {seed:#x}");
            let store = Store::open(crash.path(), config.clone()).unwrap_or_else(|e| panic!("{label}: {e}"));
            let held = records(&store);
            assert!(held.len() >= acknowledged, "{label}: {} of {acknowledged} acknowledged", held.len());
            assert_eq!(held, wanted[..held.len()].to_vec(), "{label}: not a prefix of what was applied");
            let report = store.verify(&mut |_, _| true).unwrap();
            assert!(report.ok(), "{label}: {:?}", report.problems);
            // A consumer delivers everything again: the replica takes exactly the rest.
            store.become_replica("EVENTS").unwrap(); // (a state from before the marker)
            let outcome = store.apply_replicated(origin, wanted.clone()).unwrap();
            assert!(outcome.refused.is_none(), "{label}: {:?}", outcome.refused);
            assert_eq!(
                (outcome.present, outcome.applied),
                (held.len(), wanted.len() - held.len()),
                "{label}"
            );
            assert_eq!(records(&store), wanted, "{label}");
            states += 1;
        }
    }
    println!("crash points: {}, crash states: {states}", snapshots.len());
}
