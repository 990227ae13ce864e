//! A forget leaves a tombstone of each destroyed key in the key file, so keys the file
//! loses to damage later are refused as damage (`CorruptSegment`) instead of passing off
//! the payloads of entities nobody forgot as forgotten.

mod common;

use std::path::Path;

use common::durable_config;
use eventpak_core::{generate_encryption_key, AppendRequest, Error, Region, Store, ENCRYPTION_KEY_FILE};

/// docs/format.md, "Encrypted stores": the header, then records of
/// `length u32 | CRC u32 | key id u64 | nonce (24) | wrapped key (48) | entity length u16 | entity`.
const HEADER_LEN: usize = 72;
const LISTS_FORGOTTEN: u32 = 1 << 8;

fn request(entity: &str, payload: &[u8]) -> AppendRequest {
    common::request(entity, "k", payload)
}

/// A closed store with entities u:0 to u:3 (one key each, ids 0 to 3), u:0 forgotten.
fn one_forgotten(dir: &Path, key: &[u8]) {
    let store = Store::open(dir, durable_config(Some(key))).unwrap();
    for i in 0..4 {
        store.append(request(&format!("u:{i}"), format!("p{i}").as_bytes())).unwrap();
    }
    assert_eq!(store.forget_entity("u:0").unwrap(), 1);
    store.close().unwrap();
}

/// `(offset, bytes)` of each record of the key file.
fn records(bytes: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut at = HEADER_LEN;
    while at < bytes.len() {
        let len = 8 + u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        out.push((at, len));
        at += len;
    }
    out
}

/// What reading each entity's payload gives, u:0 to u:3.
fn reads(dir: &Path, key: &[u8]) -> Vec<Result<Vec<u8>, Error>> {
    let store = Store::open(dir, durable_config(Some(key))).unwrap();
    let events = store.query(&Region::all(), None, None).unwrap();
    events.iter().map(|e| store.payload_of(e)).collect()
}

#[test]
fn a_forget_leaves_a_tombstone_and_marks_the_file_as_listing_what_it_forgot() {
    let dir = tempfile::tempdir().unwrap();
    let key = generate_encryption_key().unwrap();
    one_forgotten(dir.path(), &key);
    let bytes = std::fs::read(dir.path().join(ENCRYPTION_KEY_FILE)).unwrap();
    assert_eq!(u32::from_le_bytes(bytes[8..12].try_into().unwrap()), 2 | LISTS_FORGOTTEN);
    let found = records(&bytes);
    assert_eq!(found.len(), 4, "three keys and one tombstone");
    let (at, len) = found[0];
    let record = &bytes[at..at + len];
    assert_eq!(u64::from_le_bytes(record[8..16].try_into().unwrap()), 0, "u:0's key id");
    assert!(record[16..16 + 24 + 48].iter().all(|&b| b == 0), "nonce and wrapped key destroyed");
    assert_eq!(&record[len - 3..], b"u:0");
    let read = reads(dir.path(), &key);
    assert!(matches!(read[0], Err(Error::PayloadForgotten { .. })));
    assert_eq!(
        read[1..].iter().map(|r| r.as_ref().unwrap().clone()).collect::<Vec<_>>(),
        [b"p1", b"p2", b"p3"]
    );
}

#[test]
fn keys_cut_off_the_file_after_a_forget_are_damage_not_forgotten() {
    let key = generate_encryption_key().unwrap();
    // At a record boundary, and inside a record (which then looks like a torn append).
    for (n, into) in [(0, 0.0), (1, 0.1), (2, 0.5)] {
        let dir = tempfile::tempdir().unwrap();
        one_forgotten(dir.path(), &key);
        let path = dir.path().join(ENCRYPTION_KEY_FILE);
        let bytes = std::fs::read(&path).unwrap();
        let (third, len) = records(&bytes)[2];
        let cut = third + (len as f64 * into) as usize;
        std::fs::write(&path, &bytes[..cut]).unwrap();
        let read = reads(dir.path(), &key);
        assert!(matches!(read[0], Err(Error::PayloadForgotten { .. })), "case {n}: cut at {cut}");
        assert_eq!(read[1].as_ref().unwrap(), b"p1", "cut at {cut}");
        for lost in &read[2..] {
            assert!(
                matches!(lost, Err(Error::CorruptSegment { reason, .. }) if reason.contains("lost")),
                "{lost:?}"
            );
        }
    }
}

#[test]
fn a_record_length_no_record_can_have_is_damage_not_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let key = generate_encryption_key().unwrap();
    one_forgotten(dir.path(), &key);
    let path = dir.path().join(ENCRYPTION_KEY_FILE);
    let mut bytes = std::fs::read(&path).unwrap();
    let (second, _) = records(&bytes)[1];
    bytes[second + 2] ^= 0x40; // the length now runs past the end of the file
    std::fs::write(&path, &bytes).unwrap();
    match Store::open(dir.path(), durable_config(Some(&key))) {
        Err(Error::CorruptSegment { reason, .. }) => {
            assert!(reason.contains("key record length"), "{reason}")
        }
        other => panic!("opened: {:?}", other.map(|_| ())),
    }
    assert_eq!(std::fs::read(&path).unwrap(), bytes, "nothing written");
}

#[test]
fn a_damaged_last_record_is_cut_and_its_id_never_handed_out_again() {
    // A flipped bit in the last record reads as a torn append (the two look alike), so the
    // record is cut; its key id must stay lost, not go to the next new entity.
    let dir = tempfile::tempdir().unwrap();
    let key = generate_encryption_key().unwrap();
    let store = Store::open(dir.path(), durable_config(Some(&key))).unwrap();
    for i in 0..4 {
        store.append(request(&format!("u:{i}"), format!("p{i}").as_bytes())).unwrap();
    }
    store.close().unwrap();
    let path = dir.path().join(ENCRYPTION_KEY_FILE);
    let mut bytes = std::fs::read(&path).unwrap();
    let (last, len) = *records(&bytes).last().unwrap();
    bytes[last + len - 1] ^= 0x01; // in u:3's name: its CRC no longer matches
    std::fs::write(&path, &bytes).unwrap();
    for round in 0..2 {
        let store = Store::open(dir.path(), durable_config(Some(&key))).unwrap();
        store.append(request(&format!("new:{round}"), b"fresh")).unwrap();
        let events = store.query(&Region::all(), None, None).unwrap();
        let read: Vec<_> = events.iter().map(|e| store.payload_of(e)).collect();
        assert_eq!(read[2].as_ref().unwrap(), b"p2", "round {round}");
        assert!(
            matches!(&read[3], Err(Error::CorruptSegment { reason, .. }) if reason.contains("lost")),
            "round {round}: {:?}",
            read[3]
        );
        for fresh in &read[4..] {
            assert_eq!(fresh.as_ref().unwrap(), b"fresh", "round {round}");
        }
        store.close().unwrap();
    }
}

#[test]
fn a_payload_naming_another_entitys_key_is_damage_not_forgotten() {
    // An older key file put back alone (not a whole backup) hands bob's key id to carol.
    let dir = tempfile::tempdir().unwrap();
    let key = generate_encryption_key().unwrap();
    let path = dir.path().join(ENCRYPTION_KEY_FILE);
    let store = Store::open(dir.path(), durable_config(Some(&key))).unwrap();
    store.append(request("alice", b"a")).unwrap();
    let older = std::fs::read(&path).unwrap();
    store.append(request("bob", b"b")).unwrap();
    store.close().unwrap();
    std::fs::write(&path, older).unwrap();
    let store = Store::open(dir.path(), durable_config(Some(&key))).unwrap();
    store.append(request("carol", b"c")).unwrap();
    let events = store.query(&Region::all(), None, None).unwrap();
    match store.payload_of(&events[1]) {
        Err(Error::CorruptSegment { reason, .. }) => assert!(reason.contains("another entity"), "{reason}"),
        other => panic!("bob's payload: {other:?}"),
    }
    assert_eq!(store.payload_of(&events[2]).unwrap(), b"c");
}
