//! Encryption at rest: sealed payloads, the key file, refusals at open, forgetting an
//! entity, and the key file's writes under injected I/O faults.

mod common;

use common::durable_config;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use eventpak_core::{
    generate_encryption_key, AppendRequest, EncryptionKey, Error, Region, Storage, Store, StoreConfig,
    ENCRYPTION_KEY_FILE,
};

const MARKER: &[u8] = b"plaintext-marker-7f3a";

/// An event of kind "k" in scope "s".
fn request(entity: &str, payload: &[u8]) -> AppendRequest {
    common::request(entity, "k", payload)
}

fn files_hold(dir: &Path, needle: &[u8]) -> bool {
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(d).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if std::fs::read(&path).unwrap().windows(needle.len()).any(|w| w == needle) {
                return true;
            }
        }
    }
    false
}

fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(d).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.file_name().unwrap() != "LOCK" {
                out.push((path.display().to_string(), std::fs::read(&path).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn payloads_are_sealed_on_disk_and_open_on_read() {
    let dir = tempfile::tempdir().unwrap();
    let key = generate_encryption_key().unwrap();
    let store = Store::open(dir.path(), durable_config(Some(&key))).unwrap();
    store.append(request("alice", MARKER)).unwrap();
    store.append_batch(vec![request("bob", MARKER), request("alice", b"second")]).unwrap();
    let events = store.query(&Region::all(), None, None).unwrap();
    let payloads: Vec<Vec<u8>> = events.iter().map(|e| store.payload_of(e).unwrap()).collect();
    assert_eq!(payloads, vec![MARKER.to_vec(), MARKER.to_vec(), b"second".to_vec()]);
    assert!(store.verify(&mut |_, _| true).unwrap().ok());
    store.close().unwrap();
    assert!(!files_hold(dir.path(), MARKER), "plaintext found in the data dir");
    let store = Store::open(dir.path(), durable_config(Some(&key))).unwrap();
    let events = store.query(&Region::all(), None, None).unwrap();
    assert_eq!(store.payload_of(&events[1]).unwrap(), MARKER);
}

#[test]
fn wrong_missing_and_clear_store_keys_are_refused_without_writing() {
    let dir = tempfile::tempdir().unwrap();
    let key = generate_encryption_key().unwrap();
    Store::open(dir.path(), durable_config(Some(&key))).unwrap().append(request("a", b"x")).unwrap();
    let before = snapshot(dir.path());
    let other = generate_encryption_key().unwrap();
    for cfg in [durable_config(Some(&other)), durable_config(None)] {
        assert!(matches!(Store::open(dir.path(), cfg), Err(Error::InvalidConfig(_))));
        assert_eq!(snapshot(dir.path()), before);
    }
    // The segments say "encrypted" even with the key file gone.
    std::fs::rename(dir.path().join(ENCRYPTION_KEY_FILE), dir.path().join("moved")).unwrap();
    let before = snapshot(dir.path());
    for cfg in [durable_config(Some(&key)), durable_config(None)] {
        assert!(matches!(Store::open(dir.path(), cfg), Err(Error::InvalidConfig(_))));
        assert_eq!(snapshot(dir.path()), before);
    }
    let clear = tempfile::tempdir().unwrap();
    Store::open(clear.path(), durable_config(None)).unwrap().append(request("a", b"x")).unwrap();
    let before = snapshot(clear.path());
    assert!(matches!(Store::open(clear.path(), durable_config(Some(&key))), Err(Error::InvalidConfig(_))));
    assert_eq!(snapshot(clear.path()), before);
    let short = StoreConfig { encryption_key: Some(EncryptionKey(vec![0; 31])), ..durable_config(None) };
    assert!(matches!(Store::open(clear.path(), short), Err(Error::InvalidConfig(_))));
    // Neither the bytes nor their hex may show (a single byte's digits could appear in
    // any other field, so the whole key is looked for).
    let shown = format!("{:?}", durable_config(Some(&key)));
    let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    assert!(!shown.contains(&format!("{:?}", &key[..])) && !shown.contains(&hex), "{shown}");
    assert!(shown.contains("EncryptionKey(<hidden>)"), "{shown}");
}

#[test]
fn forgetting_destroys_the_entity_keys_for_good() {
    let dir = tempfile::tempdir().unwrap();
    let key = generate_encryption_key().unwrap();
    let store = Store::open(dir.path(), durable_config(Some(&key))).unwrap();
    store.append(request("alice", b"a1")).unwrap();
    store.append(request("bob", b"b1")).unwrap();
    assert_eq!(store.forget_entity("alice").unwrap(), 1);
    assert_eq!(store.forget_entity("alice").unwrap(), 0);
    assert_eq!(store.forget_entity("nobody").unwrap(), 0);
    store.append(request("alice", b"a2")).unwrap();
    let check = |store: &Store| {
        let events = store.query(&Region::all(), None, None).unwrap();
        let first = store.payload_of(&events[0]);
        assert!(
            matches!(first, Err(Error::PayloadForgotten { ref entity, global_sequence: 0 }) if entity == "alice")
        );
        assert_eq!(store.payload_of(&events[1]).unwrap(), b"b1");
        assert_eq!(store.payload_of(&events[2]).unwrap(), b"a2");
        assert!(store.verify(&mut |_, _| true).unwrap().ok());
    };
    check(&store);
    store.close().unwrap();
    check(&Store::open(dir.path(), durable_config(Some(&key))).unwrap());
    let clear = tempfile::tempdir().unwrap();
    let clear = Store::open(clear.path(), durable_config(None)).unwrap();
    assert!(matches!(clear.forget_entity("alice"), Err(Error::InvalidConfig(_))));
}

#[test]
fn a_retried_keyed_append_gets_its_receipt_back() {
    let dir = tempfile::tempdir().unwrap();
    let key = generate_encryption_key().unwrap();
    let store = Store::open(dir.path(), durable_config(Some(&key))).unwrap();
    let keyed = AppendRequest { idempotency_key: Some(b"k1".to_vec()), ..request("alice", b"p") };
    let first = store.append(keyed.clone()).unwrap();
    assert_eq!(store.append(keyed.clone()).unwrap().global_sequence, first.global_sequence);
    let other = AppendRequest { payload: b"q".to_vec(), ..keyed.clone() };
    assert!(matches!(store.append(other), Err(Error::IdempotencyConflict(_))));
    store.forget_entity("alice").unwrap();
    assert_eq!(store.append(keyed).unwrap().global_sequence, first.global_sequence);
}

/// Fails every write of the key file once armed.
#[derive(Debug, Default)]
struct FailKeyWrites(AtomicBool);

impl Storage for FailKeyWrites {
    fn write(&self, file: &std::fs::File, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
        let key_file = path.to_string_lossy().contains(ENCRYPTION_KEY_FILE);
        if key_file && self.0.load(Ordering::SeqCst) {
            return Err(std::io::Error::other("injected"));
        }
        use std::io::Write;
        (&*file).write_all(bytes)
    }
}

/// An encrypted store holding alice's event, whose key file writes fail from now on.
fn alice_then_failing_key_writes() -> (tempfile::TempDir, [u8; 32], Arc<FailKeyWrites>, Store) {
    let dir = tempfile::tempdir().unwrap();
    let key = generate_encryption_key().unwrap();
    let storage = Arc::new(FailKeyWrites::default());
    let store = Store::open_with(dir.path(), durable_config(Some(&key)), storage.clone()).unwrap();
    store.append(request("alice", b"a1")).unwrap();
    storage.0.store(true, Ordering::SeqCst);
    (dir, key, storage, store)
}

#[test]
fn a_failed_key_write_writes_no_event_and_reopens_clean() {
    let (dir, key, _storage, store) = alice_then_failing_key_writes();
    assert!(matches!(store.append(request("bob", b"b1")), Err(Error::StorageFailed { .. })));
    assert!(matches!(store.forget_entity("alice"), Err(Error::StorageFailed { .. })));
    drop(store);
    let store = Store::open(dir.path(), durable_config(Some(&key))).unwrap();
    let events = store.query(&Region::all(), None, None).unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(store.payload_of(&events[0]).unwrap(), b"a1");
    store.append(request("bob", b"b1")).unwrap();
    assert!(store.verify(&mut |_, _| true).unwrap().ok());
}

#[test]
fn encrypted_bytes_follow_the_format() {
    use eventpak_core::segment::{
        decode_frame, Decoded, SegmentHeader, ENCRYPTED_SEGMENT_VERSION, SEGMENT_FLAG_ENCRYPTED,
        SEGMENT_HEADER_LEN,
    };
    let dir = tempfile::tempdir().unwrap();
    let key = generate_encryption_key().unwrap();
    let store = Store::open(dir.path(), durable_config(Some(&key))).unwrap();
    store.append(request("alice", b"0123456789")).unwrap();
    store.close().unwrap();
    let segment = std::fs::read(dir.path().join("segments").join("00000000000000000000.seg")).unwrap();
    let flags = u32::from_le_bytes(segment[12..16].try_into().unwrap());
    assert_eq!(SegmentHeader::version_of(&segment), ENCRYPTED_SEGMENT_VERSION);
    assert_eq!(flags, SEGMENT_FLAG_ENCRYPTED);
    let Decoded::Frame(frame) = decode_frame(&segment[SEGMENT_HEADER_LEN..]) else { panic!("no frame") };
    let sealed = frame.payload();
    assert_eq!(sealed.len(), 10 + 8 + 12 + 16, "key id, nonce, ciphertext, tag");
    assert_eq!(u64::from_le_bytes(sealed[..8].try_into().unwrap()), 0, "the first key's id");
    let keys = std::fs::read(dir.path().join(ENCRYPTION_KEY_FILE)).unwrap();
    assert_eq!(&keys[..8], b"EVPKKEY\0");
    // Version 2 (AES-256-GCM), with bit 8: the file lists the keys it forgot.
    assert_eq!(u32::from_le_bytes(keys[8..12].try_into().unwrap()), 2 | 1 << 8, "key file version");
    let crc = u32::from_le_bytes(keys[68..72].try_into().unwrap());
    assert_eq!(crc, crc32c::crc32c(&keys[..68]), "header CRC");
    let record_len = u32::from_le_bytes(keys[72..76].try_into().unwrap()) as usize;
    assert_eq!(record_len, 8 + 24 + 48 + 2 + "alice".len());
    assert_eq!(keys.len(), 72 + 8 + record_len);
    assert_eq!(&keys[keys.len() - 5..], b"alice");
}

/// Fails the directory fsync that ends a key file rewrite, once armed.
#[derive(Debug, Default)]
struct FailDirSync(AtomicBool);

impl Storage for FailDirSync {
    fn sync_dir(&self, dir: &Path) -> std::io::Result<()> {
        if self.0.swap(false, Ordering::SeqCst) {
            return Err(std::io::Error::other("injected"));
        }
        std::fs::File::open(dir)?.sync_all()
    }
}

#[test]
fn a_forget_that_fails_after_its_rename_stops_the_writer_and_reopens_forgotten() {
    let dir = tempfile::tempdir().unwrap();
    let key = generate_encryption_key().unwrap();
    let storage = Arc::new(FailDirSync::default());
    let store = Store::open_with(dir.path(), durable_config(Some(&key)), storage.clone()).unwrap();
    store.append(request("alice", b"a1")).unwrap();
    store.append(request("bob", b"b1")).unwrap();
    storage.0.store(true, Ordering::SeqCst);
    assert!(matches!(store.forget_entity("alice"), Err(Error::StorageFailed { .. })));
    assert!(matches!(store.append(request("carol", b"c1")), Err(Error::StorageFailed { .. })));
    drop(store);
    let store = Store::open(dir.path(), durable_config(Some(&key))).unwrap();
    let events = store.query(&Region::all(), None, None).unwrap();
    assert!(matches!(store.payload_of(&events[0]), Err(Error::PayloadForgotten { .. })));
    assert_eq!(store.payload_of(&events[1]).unwrap(), b"b1");
    store.append(request("carol", b"c1")).unwrap();
    store.append(request("alice", b"a2")).unwrap();
    store.close().unwrap();
    let store = Store::open(dir.path(), durable_config(Some(&key))).unwrap();
    let events = store.query(&Region::all(), None, None).unwrap();
    assert_eq!(store.payload_of(&events[3]).unwrap(), b"a2");
    assert!(store.verify(&mut |_, _| true).unwrap().ok());
}

#[test]
fn a_forget_or_rotation_that_fails_before_its_rename_leaves_the_writer_going() {
    // A full disk while writing the new key file: the old file stands, nothing changed.
    let (dir, key, storage, store) = alice_then_failing_key_writes();
    let beside = |result: Result<usize, Error>| match result {
        Err(Error::StorageFailed { context, .. }) => context.starts_with(eventpak_core::KEY_FILE_CONTEXT),
        other => panic!("not a storage failure: {other:?}"),
    };
    assert!(beside(store.forget_entity("alice")));
    assert!(beside(store.rotate_encryption_key(&generate_encryption_key().unwrap())));
    storage.0.store(false, Ordering::SeqCst);
    store.append(request("alice", b"a2")).unwrap();
    let events = store.query(&Region::all(), None, None).unwrap();
    assert_eq!(store.payload_of(&events[0]).unwrap(), b"a1", "nothing was forgotten");
    assert_eq!(store.forget_entity("alice").unwrap(), 1);
    store.close().unwrap();
    let store = Store::open(dir.path(), durable_config(Some(&key))).unwrap();
    let events = store.query(&Region::all(), None, None).unwrap();
    assert_eq!(events.len(), 2);
    assert!(matches!(store.payload_of(&events[1]), Err(Error::PayloadForgotten { .. })));
    assert!(store.verify(&mut |_, _| true).unwrap().ok());
}

/// Plays a shared session's first opener, which removes every temp file it finds in the
/// data dir, between a creator's fsync of its new key file and its link into place.
#[derive(Debug, Default)]
struct FirstOpenerBetween;

impl Storage for FirstOpenerBetween {
    fn sync(&self, file: &std::fs::File, path: &Path) -> std::io::Result<()> {
        file.sync_data()?;
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with(&format!(".{ENCRYPTION_KEY_FILE}.")) {
            // The first opener made its own key file (the same store key: the same header)
            // and then cleared the temp files, this one's included.
            std::fs::copy(path, path.with_file_name(ENCRYPTION_KEY_FILE))?;
            std::fs::remove_file(path)?;
        }
        Ok(())
    }
}

#[test]
fn a_shared_creator_whose_key_file_temp_went_opens_the_file_the_first_opener_made() {
    let dir = tempfile::tempdir().unwrap();
    let key = generate_encryption_key().unwrap();
    let config = StoreConfig { shared: true, ..durable_config(Some(&key)) };
    let store = Store::open_with(dir.path(), config, Arc::new(FirstOpenerBetween)).unwrap();
    store.append(request("alice", b"a1")).unwrap();
    store.close().unwrap();
    let store = Store::open(dir.path(), durable_config(Some(&key))).unwrap();
    let events = store.query(&Region::all(), None, None).unwrap();
    assert_eq!(store.payload_of(&events[0]).unwrap(), b"a1");
}

#[test]
fn shared_stores_take_up_each_others_keys_appended_and_rewritten() {
    // Two opens of one dir stand for two processes: each reloads only what the other
    // appended to the key file, and the whole file after the other's forget.
    let dir = tempfile::tempdir().unwrap();
    let key = generate_encryption_key().unwrap();
    let config = StoreConfig { shared: true, ..durable_config(Some(&key)) };
    let stores = [Store::open(dir.path(), config.clone()).unwrap(), Store::open(dir.path(), config).unwrap()];
    let mut want: Vec<(String, Result<Vec<u8>, ()>)> = Vec::new();
    for round in 0..6 {
        let (writer, reader) = (&stores[round % 2], &stores[1 - round % 2]);
        for i in 0..5 {
            let entity = format!("e{round}-{i}");
            writer.append(request(&entity, entity.as_bytes())).unwrap();
            want.push((entity.clone(), Ok(entity.into_bytes())));
        }
        if round == 3 {
            assert_eq!(writer.forget_entity("e1-0").unwrap(), 1);
            want.iter_mut().filter(|(e, _)| e == "e1-0").for_each(|(_, w)| *w = Err(()));
        }
        let events = reader.query(&Region::all(), None, None).unwrap();
        let read: Vec<_> = events
            .iter()
            .map(|e| {
                let payload = reader.payload_of(e);
                assert!(matches!(payload, Ok(_) | Err(Error::PayloadForgotten { .. })), "{payload:?}");
                (e.view().names().0.to_owned(), payload.map_err(|_| ()))
            })
            .collect();
        assert_eq!(read, want, "round {round}");
    }
}
