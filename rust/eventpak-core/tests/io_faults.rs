//! I/O fault injection: every write, fsync, rename, directory fsync, truncation and
//! removal the workload performs is failed in turn (once, and forever). The store must
//! refuse further appends once a write or fsync failed, and a reopen on healthy storage
//! must recover a legal state.

mod sim;

use std::sync::{Arc, Mutex};

use eventpak_core::io::OsStorage;
use eventpak_core::{Error, Store, StoreConfig};
use sim::faults::{FaultStorage, Op, ALL_OPS};
use sim::workload::{check, config, encrypted_config, run_with, Log, SharedLog};

const STEPS: usize = 40;

#[test]
fn every_fault_site_leaves_a_recoverable_legal_state() {
    every_fault_site(config());
}

/// The same through the shared-mode write path, reopened as a new session's first process.
#[test]
fn every_fault_site_of_a_shared_store_leaves_a_recoverable_legal_state() {
    every_fault_site(StoreConfig { shared: true, ..config() });
}

/// The same on an encrypted store: the key file's writes are fault sites too.
#[test]
fn every_fault_site_of_an_encrypted_store_leaves_a_recoverable_legal_state() {
    every_fault_site(encrypted_config());
}

fn every_fault_site(config: StoreConfig) {
    // Count the call sites of a clean run.
    let dir = tempfile::tempdir().unwrap();
    let counting = Arc::new(FaultStorage::default());
    let log: SharedLog = Arc::new(Mutex::new(Log::default()));
    run_with(dir.path(), counting.clone(), &log, STEPS, config.clone()).unwrap();
    let mut sites = 0;
    for op in ALL_OPS {
        for nth in 1..=counting.count(op) {
            for forever in [false, true] {
                sites += 1;
                one_fault(op, nth, forever, &config);
            }
        }
    }
    // The workload must reach the interesting operations at all.
    for op in [Op::Write, Op::Sync, Op::SyncDir, Op::Rename] {
        assert!(counting.count(op) > 3, "{op:?} was called only {} times", counting.count(op));
    }
    println!("fault sites covered: {sites}");
}

fn one_fault(op: Op, nth: u64, forever: bool, config: &StoreConfig) {
    let dir = tempfile::tempdir().unwrap();
    let storage = Arc::new(FaultStorage::failing(op, nth, forever));
    let log: SharedLog = Arc::new(Mutex::new(Log::default()));
    let outcome = run_with(dir.path(), storage.clone(), &log, STEPS, config.clone());
    let label = format!("{op:?} #{nth} (forever: {forever})");
    assert!(storage.tripped(), "{label}: the fault never fired");
    match outcome {
        Err(Error::StorageFailed { .. } | Error::CheckpointWriteFailed { .. }) => {}
        other => panic!("{label}: expected a storage failure, got {other:?}"),
    }
    let log = log.lock().unwrap().clone();
    // A healthy reopen recovers a legal state.
    let store = Store::open_with(dir.path(), config.clone(), Arc::new(OsStorage))
        .unwrap_or_else(|e| panic!("{label}: reopen failed: {e}"));
    check(dir.path(), &store, &log).unwrap_or_else(|e| panic!("{label}: {e}"));
}

#[test]
fn a_failed_write_or_fsync_poisons_the_writer_for_good() {
    for op in [Op::Write, Op::Sync] {
        let dir = tempfile::tempdir().unwrap();
        let storage = Arc::new(FaultStorage::failing(op, 6, false));
        let store = Store::open_with(dir.path(), config(), storage.clone()).unwrap();
        let req = |p: &str| eventpak_core::AppendRequest {
            entity: "e".into(),
            scope: "s".into(),
            kind: "k".into(),
            payload: p.as_bytes().to_vec(),
            idempotency_key: None,
            expected_sequence: None,
            causation_id: None,
            correlation_id: None,
            ..Default::default()
        };
        let mut failed_at = None;
        for i in 0..20 {
            if let Err(e) = store.append(req(&format!("{i}"))) {
                assert!(matches!(e, Error::StorageFailed { .. }), "{op:?}: {e}");
                failed_at = Some(i);
                break;
            }
        }
        assert!(failed_at.is_some(), "{op:?}: the fault never surfaced");
        // The fault fired once; the storage works again, but the writer never retries.
        for _ in 0..3 {
            assert!(matches!(store.append(req("after")), Err(Error::StorageFailed { .. })));
            assert!(matches!(store.sync(), Err(Error::StorageFailed { .. })));
        }
        assert!(store.stats().unwrap().writer_failure.is_some());
    }
}

/// `append_each` (the event loop's way of appending for many tasks at once) writes each
/// request as its own commit. When a frame write fails part-way (a full disk), the events
/// written before it are whole: one fsync still makes them durable, so they are
/// acknowledged, and only the failed write and those after it are errors. Reporting the
/// earlier ones as failed would have a caller retry events the store keeps.
#[test]
fn a_failed_write_leaves_the_events_written_before_it_acknowledged() {
    let req = |i: usize| eventpak_core::AppendRequest {
        entity: "e".into(),
        scope: "s".into(),
        kind: "k".into(),
        payload: format!("payload {i}").into_bytes(),
        ..Default::default()
    };
    let counting = Arc::new(FaultStorage::default());
    let dir = tempfile::tempdir().unwrap();
    Store::open_with(dir.path(), config(), counting.clone()).unwrap().close().unwrap();
    let writes_at_open = counting.count(Op::Write);

    let dir = tempfile::tempdir().unwrap();
    let storage = Arc::new(FaultStorage::failing(Op::Write, writes_at_open + 5, false));
    let store = Store::open_with(dir.path(), config(), storage.clone()).unwrap();
    let outcomes = store.append_each((0..10).map(req).collect());
    assert!(storage.tripped());
    let acknowledged: Vec<u64> = outcomes.iter().flatten().map(|r| r.global_sequence).collect();
    let written = acknowledged.len();
    assert!((1..10).contains(&written), "the write fails part-way: {outcomes:?}");
    assert_eq!(acknowledged, (0..written as u64).collect::<Vec<_>>(), "{outcomes:?}");
    assert!(outcomes.iter().flatten().all(|r| r.durable), "sync=always: each acknowledged event is durable");
    for outcome in &outcomes[written..] {
        assert!(matches!(outcome, Err(Error::StorageFailed { .. })), "{outcome:?}");
    }
    // The writer stays stopped: nothing more is written, and sync() says why.
    assert!(matches!(store.append(req(10)), Err(Error::StorageFailed { .. })));
    assert!(matches!(store.sync(), Err(Error::StorageFailed { .. })));
    drop(store);

    let store = Store::open_with(dir.path(), config(), Arc::new(OsStorage)).unwrap();
    let stored = store.read_events(&(0..10).collect::<Vec<u64>>()).unwrap();
    let payloads: Vec<Vec<u8>> = stored.iter().map(|e| e.view().payload().to_vec()).collect();
    assert_eq!(payloads, (0..written).map(|i| req(i).payload).collect::<Vec<_>>());
}
