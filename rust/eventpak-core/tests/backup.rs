//! Backups through the `Storage` seam: every write, fsync, rename, directory fsync and
//! removal a backup makes at its destination is failed in turn (once, and forever). After
//! each failure the destination opens as the previous backup or the new one, or refuses to
//! open; never with events missing or invented. A clean backup into it then finishes.

mod common;
mod sim;

use std::path::Path;
use std::sync::Arc;

use eventpak_core::{Error, Store, StoreConfig};
use sim::faults::{FaultStorage, ALL_OPS};

fn config() -> StoreConfig {
    StoreConfig { segment_max_bytes: 16 << 10, ..common::config() }
}

/// Every event's frame bytes, in order (`None` when the dir does not open).
fn frames_of(dir: &Path) -> Option<Vec<Vec<u8>>> {
    let store = Store::open(dir, StoreConfig { read_only: true, ..config() }).ok()?;
    let Some(head) = store.head().unwrap() else { return Some(Vec::new()) };
    let events = store.read_events(&(0..=head).collect::<Vec<_>>()).unwrap();
    assert!(store.verify(&mut |_, _| true).unwrap().problems.is_empty(), "{} does not verify", dir.display());
    Some(events.iter().map(|e| e.frame_bytes().to_vec()).collect())
}

fn never_stop(_: u64, _: u64) -> bool {
    true
}

#[test]
fn a_fault_at_any_file_operation_leaves_the_old_or_the_new_backup() {
    let root = tempfile::tempdir().unwrap();
    let (origin, previous) = (root.path().join("origin"), root.path().join("previous"));
    {
        let store = common::open(&origin, config());
        common::fill(&store, 400);
        store.backup(&previous, &mut never_stop).unwrap();
        common::fill(&store, 300);
        store.close().unwrap();
    }
    let old = frames_of(&previous).unwrap();
    let read_only = StoreConfig { read_only: true, ..config() };
    let counting = Arc::new(FaultStorage::default());
    let clean = root.path().join("clean");
    common::copy_dir(&previous, &clean);
    let store = Store::open_with(&origin, read_only.clone(), counting.clone()).unwrap();
    let report = store.backup(&clean, &mut never_stop).unwrap();
    assert!(report.incremental);
    drop(store);
    let new = frames_of(&clean).unwrap();
    assert_eq!(new.len(), 700);
    assert_eq!(new[..400], old[..]);
    let mut sites = 0;
    for op in ALL_OPS {
        for nth in 1..=counting.count(op) {
            for forever in [false, true] {
                sites += 1;
                let dest = root.path().join(format!("dest-{sites}"));
                common::copy_dir(&previous, &dest);
                let storage = Arc::new(FaultStorage::failing(op, nth, forever));
                let store = Store::open_with(&origin, read_only.clone(), storage.clone()).unwrap();
                let label = format!("{op:?} #{nth} (forever: {forever})");
                match store.backup(&dest, &mut never_stop) {
                    Err(Error::StorageFailed { .. }) => {}
                    other => panic!("{label}: expected a storage failure, got {other:?}"),
                }
                assert!(storage.tripped(), "{label}: the fault never fired");
                drop(store);
                match frames_of(&dest) {
                    None => {}
                    Some(held) => assert!(held == old || held == new, "{label}: {} events", held.len()),
                }
                let healthy = Store::open(&origin, read_only.clone()).unwrap();
                healthy.backup(&dest, &mut never_stop).unwrap();
                assert_eq!(
                    frames_of(&dest).as_ref(),
                    Some(&new),
                    "{label}: the next backup did not finish it"
                );
                std::fs::remove_dir_all(&dest).unwrap();
            }
        }
    }
    assert!(sites > 20, "only {sites} fault sites");
}

#[test]
fn a_backup_taken_while_another_thread_appends_holds_a_prefix_up_to_through() {
    let root = tempfile::tempdir().unwrap();
    let store = Arc::new(common::open(&root.path().join("origin"), config()));
    common::fill(&store, 100);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let appender = {
        let (store, stop) = (store.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                common::fill(&store, 10);
            }
        })
    };
    let head = store.head().unwrap().unwrap();
    let report = store.backup(&root.path().join("backup"), &mut never_stop).unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    appender.join().unwrap();
    let through = report.through.unwrap();
    assert!(through >= head);
    let held = frames_of(&root.path().join("backup")).unwrap();
    let origin: Vec<Vec<u8>> = store
        .read_events(&(0..=through).collect::<Vec<_>>())
        .unwrap()
        .iter()
        .map(|e| e.frame_bytes().to_vec())
        .collect();
    assert_eq!(held, origin);
    assert_eq!(report.events, through + 1);
}
