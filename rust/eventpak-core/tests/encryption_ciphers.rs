//! The payload ciphers, checked from the bytes as `docs/format.md` lays them out and with
//! the RustCrypto AEADs used directly: a new store seals with AES-256-GCM (key file
//! version 2) under random nonces that never repeat; the committed key-file-version-1
//! fixture (AES-256-GCM-SIV) keeps its cipher for the payloads appended to it.

mod common;

use common::durable_config;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use aes_gcm::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::XChaCha20Poly1305;
use eventpak_core::{
    generate_encryption_key, AppendRequest, Error, Region, Store, StoreConfig, ENCRYPTION_KEY_FILE,
};

/// An event of kind "k" in scope "s".
fn request(entity: &str, payload: &[u8]) -> AppendRequest {
    common::request(entity, "k", payload)
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

/// The key file's cipher version and its data keys, unwrapped with the store key.
fn data_keys(dir: &Path, store_key: &[u8]) -> (u32, HashMap<u64, [u8; 32]>) {
    let bytes = std::fs::read(dir.join(ENCRYPTION_KEY_FILE)).unwrap();
    let store = XChaCha20Poly1305::new(store_key.into());
    let mut keys = HashMap::new();
    let mut at = 72;
    while at < bytes.len() {
        let body = &bytes[at + 8..at + 8 + u32_at(&bytes, at) as usize];
        let key_id = u64::from_le_bytes(body[..8].try_into().unwrap());
        let (nonce, wrapped, entity) = (&body[8..32], &body[32..80], &body[82..]);
        at += 8 + body.len();
        if nonce.iter().chain(wrapped).all(|&b| b == 0) {
            continue; // a tombstone: the key a forget destroyed
        }
        let aad = [b"eventpak data key v1".as_slice(), &key_id.to_le_bytes(), entity].concat();
        let mut key = [0u8; 32];
        key.copy_from_slice(&wrapped[..32]);
        store.decrypt_in_place_detached(nonce.into(), &aad, &mut key, wrapped[32..].into()).unwrap();
        keys.insert(key_id, key);
    }
    // The cipher is the low byte; bit 8 says the file lists the keys it forgot.
    (u32_at(&bytes, 8) & 0xff, keys)
}

enum Cipher {
    Gcm,
    GcmSiv,
}

/// Opens every payload of the store in `dir` with `cipher` directly; returns the
/// plaintexts (by sequence) and the nonces.
fn open_directly(dir: &Path, store_key: &[u8], cipher: Cipher) -> (Vec<Option<Vec<u8>>>, Vec<Vec<u8>>) {
    let (_, keys) = data_keys(dir, store_key);
    let store = Store::open(dir, StoreConfig { read_only: true, ..durable_config(Some(store_key)) }).unwrap();
    let (mut plain, mut nonces) = (Vec::new(), Vec::new());
    for event in store.query(&Region::all(), None, None).unwrap() {
        let view = event.view();
        let sealed = view.payload();
        let key_id = u64::from_le_bytes(sealed[..8].try_into().unwrap());
        let (nonce, rest) = sealed[8..].split_at(12);
        let (body, tag) = rest.split_at(rest.len() - 16);
        nonces.push(nonce.to_vec());
        let Some(key) = keys.get(&key_id) else {
            plain.push(None); // forgotten
            continue;
        };
        let aad = [
            b"eventpak payload v1".as_slice(),
            &key_id.to_le_bytes(),
            &view.event_id(),
            &view.entity_sequence().to_le_bytes(),
            view.names().0.as_bytes(),
        ]
        .concat();
        let mut buf = body.to_vec();
        match cipher {
            Cipher::Gcm => aes_gcm::Aes256Gcm::new(key.into())
                .decrypt_in_place_detached(nonce.into(), &aad, &mut buf, tag.into())
                .unwrap(),
            Cipher::GcmSiv => aes_gcm_siv::Aes256GcmSiv::new(key.into())
                .decrypt_in_place_detached(nonce.into(), &aad, &mut buf, tag.into())
                .unwrap(),
        }
        assert_eq!(store.payload_of(&event).unwrap(), buf);
        plain.push(Some(buf));
    }
    (plain, nonces)
}

#[test]
fn a_new_store_seals_with_aes_256_gcm_and_never_repeats_a_nonce() {
    let dir = tempfile::tempdir().unwrap();
    let key = generate_encryption_key().unwrap();
    let mut want = Vec::new();
    for round in 0..3 {
        // Reopened every round: nonces must not repeat across opens either.
        let store = Store::open(dir.path(), durable_config(Some(&key))).unwrap();
        let batch: Vec<_> =
            (0..1000).map(|i| request(&format!("e{}", i % 50), format!("{round}/{i}").as_bytes())).collect();
        want.extend(batch.iter().map(|r| r.payload.clone()));
        store.append_batch(batch).unwrap();
        for i in 0..50 {
            let payload = format!("{round}/single {i}").into_bytes();
            store.append(request("solo", &payload)).unwrap();
            want.push(payload);
        }
        store.close().unwrap();
    }
    let (version, _) = data_keys(dir.path(), &key);
    assert_eq!(version, 2, "key file version 2: AES-256-GCM");
    let (plain, nonces) = open_directly(dir.path(), &key, Cipher::Gcm);
    assert_eq!(plain, want.into_iter().map(Some).collect::<Vec<_>>());
    let distinct: HashSet<_> = nonces.iter().collect();
    assert_eq!(distinct.len(), nonces.len(), "a nonce was repeated");
}

fn fixture_copy() -> (tempfile::TempDir, PathBuf, Vec<u8>) {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures");
    let expected = std::fs::read_to_string(fixtures.join("keys_v1_expected.json")).unwrap();
    let hex = expected.split("\"key_hex\": \"").nth(1).unwrap().split('"').next().unwrap();
    let key: Vec<u8> =
        (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("keys_v1_store");
    let mut stack = vec![(fixtures.join("keys_v1_store"), copy.clone())];
    while let Some((from, to)) = stack.pop() {
        std::fs::create_dir_all(&to).unwrap();
        for entry in std::fs::read_dir(&from).unwrap().flatten() {
            let target = to.join(entry.file_name());
            if entry.path().is_dir() {
                stack.push((entry.path(), target));
            } else {
                std::fs::copy(entry.path(), target).unwrap();
            }
        }
    }
    (dir, copy, key)
}

#[test]
fn a_key_file_version_1_store_keeps_aes_256_gcm_siv() {
    let (_dir, copy, key) = fixture_copy();
    let (version, _) = data_keys(&copy, &key);
    assert_eq!(version, 1);
    let (before, _) = open_directly(&copy, &key, Cipher::GcmSiv);
    assert!(before.iter().any(Option::is_none), "the fixture holds a forgotten entity");
    let store = Store::open(&copy, durable_config(Some(&key))).unwrap();
    store.append(request("alice", b"after")).unwrap();
    store.append_batch(vec![request("newcomer", b"a"), request("newcomer", b"b")]).unwrap();
    assert_eq!(store.forget_entity("bob").unwrap(), 1);
    let bob = store.query(&Region::all().with_exact_entity("bob").unwrap(), None, None).unwrap();
    assert!(matches!(store.payload_of(&bob[0]), Err(Error::PayloadForgotten { .. })));
    store.close().unwrap();
    assert_eq!(data_keys(&copy, &key).0, 1, "appends and forgets keep the version");
    let (after, nonces) = open_directly(&copy, &key, Cipher::GcmSiv);
    let n = before.len();
    assert_eq!(after[n..], [Some(b"after".to_vec()), Some(b"a".to_vec()), Some(b"b".to_vec())]);
    assert_eq!(nonces.iter().collect::<HashSet<_>>().len(), nonces.len());
}

#[test]
fn a_key_file_of_an_unknown_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let key = generate_encryption_key().unwrap();
    Store::open(dir.path(), durable_config(Some(&key))).unwrap().append(request("a", b"x")).unwrap();
    let path = dir.path().join(ENCRYPTION_KEY_FILE);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[8..12].copy_from_slice(&3u32.to_le_bytes());
    let crc = crc32c::crc32c(&bytes[..68]);
    bytes[68..72].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&path, &bytes).unwrap();
    let Err(refused) = Store::open(dir.path(), durable_config(Some(&key))) else { panic!("opened") };
    assert!(matches!(&refused, Error::CorruptSegment { .. }), "{refused:?}");
    assert!(refused.to_string().contains("unsupported key file version"), "{refused}");
}
