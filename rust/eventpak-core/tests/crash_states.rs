//! Simulated crashes: the workload runs on recording storage, and every operation it
//! performs is a crash point. For each, many crash states are rebuilt (unsynced bytes
//! kept, cut or dropped; undurable directory changes kept or undone) and reopened; each
//! must recover a legal state. `EVENTPAK_EXTENDED=1` runs 20x more states.

mod sim;

use std::sync::{Arc, Mutex};

use eventpak_core::{Store, StoreConfig};
use sim::record::{RecordingStorage, Rng};
use sim::workload::{check, config, encrypted_config, run_with, Log, SharedLog};

#[test]
fn every_crash_state_recovers_a_legal_state() {
    sweep(config());
}

/// The same workload through the shared-mode write path (cross-process write lock, published
/// end, group commit through the shared leader, the index checkpoint of a closing sharer);
/// each crash state is then opened as the first process of a new session.
#[test]
fn every_crash_state_of_a_shared_store_recovers_a_legal_state() {
    sweep(StoreConfig { shared: true, ..config() });
}

/// The same workload on an encrypted store: the key file's creation at open and each new
/// entity's key record (written and fsynced before its first frame) are crash points too.
#[test]
fn every_crash_state_of_an_encrypted_store_recovers_a_legal_state() {
    sweep(encrypted_config());
}

fn sweep(config: StoreConfig) {
    let extended = std::env::var("EVENTPAK_EXTENDED").is_ok_and(|v| v == "1");
    let states_per_point = if extended { 500 } else { 25 };
    let dir = tempfile::tempdir().unwrap();
    let log: SharedLog = Arc::new(Mutex::new(Log::default()));
    let storage = Arc::new(RecordingStorage::new(dir.path(), log.clone()));
    run_with(dir.path(), storage.clone(), &log, 50, config.clone()).unwrap();
    let snapshots = storage.snapshots();
    assert!(snapshots.len() > 150, "only {} crash points", snapshots.len());
    let mut states = 0u64;
    for (point, snapshot) in snapshots.iter().enumerate() {
        for k in 0..states_per_point {
            let seed = (point as u64) << 32 | k as u64;
            let crash = tempfile::tempdir().unwrap();
            snapshot.materialise(crash.path(), &mut Rng(seed));
            let label = format!("crash point {point}, state seed {seed:#x}");
            let store = Store::open(crash.path(), config.clone())
                .unwrap_or_else(|e| panic!("{label}: reopen failed: {e}"));
            check(crash.path(), &store, &snapshot.log).unwrap_or_else(|e| panic!("{label}: {e}"));
            states += 1;
        }
    }
    println!("crash points: {}, crash states: {states}", snapshots.len());
    assert!(states >= 5000);
}
