//! Rotation of the store key: every payload reads under the new key and the old one is
//! refused; a refused rotation changes nothing; a rotation cut by an I/O fault, or by a
//! crash at any of its operations, leaves a data dir that opens with exactly one of the two
//! keys, every payload intact.

mod common;
mod sim;

use std::fs::File;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use common::{durable_config, request};
use eventpak_core::{
    generate_encryption_key, Error, OsStorage, Region, Storage, Store, StoreConfig, StoredEvent,
};
use sim::faults::{FaultStorage, ALL_OPS};
use sim::record::{RecordingStorage, Rng};
use sim::workload::{Log, SharedLog};

/// Every event's payload, `None` for a forgotten one; panics on any other error.
fn payloads(store: &Store) -> Vec<Option<Vec<u8>>> {
    let events = store.query(&Region::all(), None, None).unwrap();
    let open = |e: &StoredEvent| match store.payload_of(e) {
        Ok(bytes) => Some(bytes),
        Err(Error::PayloadForgotten { .. }) => None,
        Err(other) => panic!("payload of event {}: {other}", e.global_sequence()),
    };
    events.iter().map(open).collect()
}

/// The payloads [`write_and_forget`] leaves.
fn expected() -> Vec<Option<Vec<u8>>> {
    vec![None, Some(b"b1".to_vec()), None, Some(b"c1".to_vec())]
}

/// Four events of three entities, then alice forgotten.
fn write_and_forget(store: &Store) {
    store.append(request("alice", "k", b"a1")).unwrap();
    store.append(request("bob", "k", b"b1")).unwrap();
    store.append(request("alice", "k", b"a2")).unwrap();
    store.append(request("carol", "k", b"c1")).unwrap();
    assert_eq!(store.forget_entity("alice").unwrap(), 1);
}

/// Which of `keys` open the data dir; each one that does must read `expected()` and verify.
fn keys_that_open(dir: &Path, keys: &[&[u8]], label: &str) -> Vec<usize> {
    let mut opened = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        let config = StoreConfig { read_only: true, ..durable_config(Some(key)) };
        match Store::open(dir, config) {
            Ok(store) => {
                assert_eq!(payloads(&store), expected(), "{label}: key {i}");
                assert!(store.verify(&mut |_, _| true).unwrap().ok(), "{label}: key {i}");
                opened.push(i);
            }
            Err(Error::InvalidConfig(_)) => {}
            Err(other) => panic!("{label}: key {i}: {other}"),
        }
    }
    opened
}

#[test]
fn a_rotation_keeps_every_payload_under_the_new_key_only() {
    let dir = tempfile::tempdir().unwrap();
    let (old, new) = (generate_encryption_key().unwrap(), generate_encryption_key().unwrap());
    let store = Store::open(dir.path(), durable_config(Some(&old))).unwrap();
    write_and_forget(&store);
    assert_eq!(store.rotate_encryption_key(&new).unwrap(), 2, "bob's and carol's keys");
    // The handle goes on with the new key: a new entity's key is wrapped by it.
    store.append(request("dave", "k", b"d1")).unwrap();
    assert_eq!(store.payload_of(&store.query(&Region::all(), None, None).unwrap()[4]).unwrap(), b"d1");
    store.close().unwrap();
    assert!(matches!(Store::open(dir.path(), durable_config(Some(&old))), Err(Error::InvalidConfig(_))));
    let store = Store::open(dir.path(), durable_config(Some(&new))).unwrap();
    let mut want = expected();
    want.push(Some(b"d1".to_vec()));
    assert_eq!(payloads(&store), want);
    assert!(store.verify(&mut |_, _| true).unwrap().ok());
    // Forgetting still works under the new key, and so does rotating back.
    assert_eq!(store.forget_entity("bob").unwrap(), 1);
    assert_eq!(store.rotate_encryption_key(&old).unwrap(), 2);
    store.close().unwrap();
    let store = Store::open(dir.path(), durable_config(Some(&old))).unwrap();
    assert_eq!(payloads(&store), vec![None, None, None, Some(b"c1".to_vec()), Some(b"d1".to_vec())]);
}

#[test]
fn a_refused_rotation_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let key = generate_encryption_key().unwrap();
    let store = Store::open(dir.path(), durable_config(Some(&key))).unwrap();
    store.append(request("alice", "k", b"a1")).unwrap();
    let keys_before = std::fs::read(dir.path().join(eventpak_core::ENCRYPTION_KEY_FILE)).unwrap();
    for bad in [&[7u8; 31][..], &[7u8; 33][..], &[][..]] {
        assert!(matches!(store.rotate_encryption_key(bad), Err(Error::InvalidConfig(_))), "{}", bad.len());
    }
    store.close().unwrap();
    let shared = StoreConfig { shared: true, ..durable_config(Some(&key)) };
    let store = Store::open(dir.path(), shared).unwrap();
    assert!(matches!(store.rotate_encryption_key(&[1; 32]), Err(Error::InvalidConfig(_))));
    store.close().unwrap();
    let read_only = StoreConfig { read_only: true, ..durable_config(Some(&key)) };
    let store = Store::open(dir.path(), read_only).unwrap();
    assert!(matches!(store.rotate_encryption_key(&[1; 32]), Err(Error::ReadOnlyStore(_))));
    drop(store);
    assert_eq!(std::fs::read(dir.path().join(eventpak_core::ENCRYPTION_KEY_FILE)).unwrap(), keys_before);
    let store = Store::open(dir.path(), durable_config(Some(&key))).unwrap();
    assert_eq!(store.payload_of(&store.query(&Region::all(), None, None).unwrap()[0]).unwrap(), b"a1");
    store.close().unwrap();

    let clear_dir = tempfile::tempdir().unwrap();
    let clear = Store::open(clear_dir.path(), durable_config(None)).unwrap();
    clear.append(request("alice", "k", b"a1")).unwrap();
    assert!(matches!(clear.rotate_encryption_key(&key), Err(Error::InvalidConfig(_))));
    clear.close().unwrap();
    assert!(matches!(store_closed_rotation(&key), Err(Error::StoreClosed)));
}

fn store_closed_rotation(key: &[u8]) -> eventpak_core::Result<usize> {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), durable_config(Some(key))).unwrap();
    store.close().unwrap();
    store.rotate_encryption_key(&[1; 32])
}

/// [`FaultStorage`] once armed; plain storage before (the open's own operations).
#[derive(Debug)]
struct ArmedFaults {
    faults: FaultStorage,
    armed: AtomicBool,
}

impl ArmedFaults {
    fn pick(&self) -> &dyn Storage {
        if self.armed.load(Ordering::SeqCst) {
            &self.faults
        } else {
            &OsStorage
        }
    }
}

impl Storage for ArmedFaults {
    fn write(&self, file: &File, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
        self.pick().write(file, path, bytes)
    }
    fn sync(&self, file: &File, path: &Path) -> std::io::Result<()> {
        self.pick().sync(file, path)
    }
    fn sync_dir(&self, dir: &Path) -> std::io::Result<()> {
        self.pick().sync_dir(dir)
    }
    fn rename(&self, from: &Path, to: &Path) -> std::io::Result<()> {
        self.pick().rename(from, to)
    }
    fn truncate(&self, file: &File, path: &Path, len: u64) -> std::io::Result<()> {
        self.pick().truncate(file, path, len)
    }
    fn remove(&self, path: &Path) -> std::io::Result<()> {
        self.pick().remove(path)
    }
}

/// Every write, fsync, directory fsync and rename of the rotation failing in turn: the
/// rotation reports the failure or succeeds, and the data dir then opens with exactly one
/// of the two keys, every payload as it was.
#[test]
fn a_rotation_cut_by_an_io_fault_leaves_one_key_that_opens_everything() {
    let (old, new) = ([3u8; 32], [4u8; 32]);
    let mut tripped_runs = 0;
    for op in ALL_OPS {
        for nth in 1..=64 {
            let dir = tempfile::tempdir().unwrap();
            // Counting starts at the rotation: the writes before it run on plain storage.
            let store = Store::open(dir.path(), durable_config(Some(&old))).unwrap();
            write_and_forget(&store);
            store.close().unwrap();
            let armed = AtomicBool::new(false);
            let storage = Arc::new(ArmedFaults { faults: FaultStorage::failing(op, nth, false), armed });
            let store = Store::open_with(dir.path(), durable_config(Some(&old)), storage.clone()).unwrap();
            storage.armed.store(true, Ordering::SeqCst);
            let result = store.rotate_encryption_key(&new);
            let tripped = storage.faults.tripped();
            drop(store);
            let label = format!("{op:?} #{nth}");
            assert_eq!(result.is_err(), tripped, "{label}: {result:?}");
            let opened = keys_that_open(dir.path(), &[&old, &new], &label);
            assert_eq!(opened.len(), 1, "{label}: keys that open: {opened:?}");
            if result.is_ok() {
                assert_eq!(opened, [1], "{label}");
            }
            tripped_runs += usize::from(tripped);
            if !tripped {
                break; // The rotation makes fewer than `nth` calls of this kind.
            }
        }
    }
    assert!(tripped_runs >= 4, "only {tripped_runs} faults reached the rotation");
}

/// Every operation of a rotation is a crash point; each crash state (unsynced bytes kept,
/// cut or dropped, undurable renames kept or undone) opens with exactly one of the keys.
#[test]
fn every_crash_state_of_a_rotation_opens_with_one_key() {
    let (old, new) = ([5u8; 32], [6u8; 32]);
    let dir = tempfile::tempdir().unwrap();
    let log: SharedLog = Arc::new(Mutex::new(Log::default()));
    let storage = Arc::new(RecordingStorage::new(dir.path(), log));
    let recorded = storage.clone() as Arc<dyn Storage>;
    let store = Store::open_with(dir.path(), durable_config(Some(&old)), recorded).unwrap();
    write_and_forget(&store);
    let rotation_starts = storage.snapshots().len();
    store.rotate_encryption_key(&new).unwrap();
    drop(store);
    let snapshots = storage.snapshots();
    assert!(snapshots.len() > rotation_starts + 3, "the rotation made too few operations");
    let mut states = 0;
    for (point, snapshot) in snapshots.iter().enumerate().skip(rotation_starts) {
        for k in 0..40u64 {
            let crash = tempfile::tempdir().unwrap();
            snapshot.materialise(crash.path(), &mut Rng((point as u64) << 32 | k));
            let label = format!("crash point {point}, state {k}");
            let opened = keys_that_open(crash.path(), &[&old, &new], &label);
            assert_eq!(opened.len(), 1, "{label}: keys that open: {opened:?}");
            states += 1;
        }
    }
    assert!(states >= 160);
}
