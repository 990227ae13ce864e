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
use sim::record::{RecordingStorage, Rng};
use sim::workload::{Log, SharedLog};

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
    let (origin, previous) = origin_and_previous_backup(root.path());
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
                    Err(e @ Error::StorageFailed { .. }) => {
                        // The backup failed, not the store: the message must not say to reopen it.
                        assert!(e.to_string().contains("the store itself is unaffected"), "{label}: {e}");
                    }
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
    println!("fault sites covered: {sites}");
    assert!(sites > 20, "only {sites} fault sites");
}

/// An origin store of 700 events and a backup of its first 400.
fn origin_and_previous_backup(root: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let (origin, previous) = (root.join("origin"), root.join("previous"));
    let store = common::open(&origin, config());
    common::fill(&store, 400);
    store.backup(&previous, &mut never_stop).unwrap();
    common::fill(&store, 300);
    store.close().unwrap();
    (origin, previous)
}

/// fsyncs every file and folder under `dir` through `storage`.
fn make_durable(storage: &dyn eventpak_core::Storage, dir: &Path) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            make_durable(storage, &path);
        } else {
            storage.sync(&std::fs::File::open(&path).unwrap(), &path).unwrap();
        }
    }
    storage.sync_dir(dir).unwrap();
}

/// Every operation of an incremental backup is a crash point; each crash state of the
/// destination (unsynced bytes kept, cut or dropped; undurable renames and entries kept or
/// undone) opens as the previous backup or the new one, or refuses to open, and the next
/// backup into it finishes it.
#[test]
fn every_crash_state_of_a_backup_opens_as_the_old_or_the_new_one_or_refuses() {
    let root = tempfile::tempdir().unwrap();
    let (origin, previous) = origin_and_previous_backup(root.path());
    let old = frames_of(&previous).unwrap();
    let dest = root.path().join("dest");
    common::copy_dir(&previous, &dest);
    let log: SharedLog = Arc::new(std::sync::Mutex::new(Log::default()));
    let storage = Arc::new(RecordingStorage::new(&dest, log));
    // The previous backup finished: every byte and name of it is durable.
    make_durable(&*storage, &dest);
    let primed = storage.snapshots().len();
    let read_only = StoreConfig { read_only: true, ..config() };
    let store = Store::open_with(&origin, read_only.clone(), storage.clone()).unwrap();
    store.backup(&dest, &mut never_stop).unwrap();
    drop(store);
    let new = frames_of(&dest).unwrap();
    let snapshots = storage.snapshots().split_off(primed);
    assert!(snapshots.len() > 10, "only {} crash points", snapshots.len());
    let (mut refused, mut states) = (0, 0);
    for (point, snapshot) in snapshots.iter().enumerate() {
        for k in 0..12u64 {
            let seed = (point as u64) << 32 | k;
            let crash = tempfile::tempdir().unwrap();
            snapshot.materialise(crash.path(), &mut Rng(seed));
            let label = format!("crash point {point}, state seed {seed:#x}");
            match frames_of(crash.path()) {
                None => refused += 1,
                Some(held) => assert!(held == old || held == new, "{label}: {} events", held.len()),
            }
            states += 1;
            if k % 4 == 0 {
                let healthy = Store::open(&origin, read_only.clone()).unwrap();
                healthy.backup(crash.path(), &mut never_stop).unwrap_or_else(|e| panic!("{label}: {e}"));
                assert_eq!(frames_of(crash.path()).as_ref(), Some(&new), "{label}: not finished");
            }
        }
    }
    println!("crash points: {}, crash states: {states}, refused to open: {refused}", snapshots.len());
    assert!(refused > 0 && refused < states, "{refused} of {states} crash states refused to open");
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
