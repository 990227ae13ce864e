//! Signed receipts through the store: every receipt a signing store returns is signed,
//! `verify_receipt` gives each reason in order, and key rotation keeps old receipts good.

mod common;

use common::{config, open, request};
use eventpak_core::{
    parse_public_key, public_key, AppendReceipt, Error, ReceiptProblem, SigningKeySeed, Store, StoreConfig,
};

const KEY: [u8; 32] = [11; 32];
const OLD_KEY: [u8; 32] = [12; 32];

fn signing(seed: [u8; 32], verify: &[[u8; 32]]) -> StoreConfig {
    StoreConfig {
        signing_key: Some(SigningKeySeed(seed.to_vec())),
        verify_keys: verify.iter().map(|s| public_key(s).unwrap().to_vec()).collect(),
        ..config()
    }
}

fn check(store: &Store, receipt: &AppendReceipt) -> Option<&'static str> {
    store.verify_receipt(receipt).unwrap().map(ReceiptProblem::as_str)
}

#[test]
fn a_signing_store_signs_every_receipt_it_returns() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), signing(KEY, &[]));
    let key = parse_public_key(&store.receipt_public_key().unwrap()).unwrap();
    let mut keyed = request("a", "k", b"1");
    keyed.idempotency_key = Some(b"once".to_vec());
    let single = store.append(keyed.clone()).unwrap();
    let replayed = store.append(keyed).unwrap();
    let batch = store.append_batch(vec![request("b", "k", b"2"), request("c", "k", b"3")]).unwrap();
    store.begin_fence().unwrap();
    let fenced = store.fence_append_batch(vec![request("d", "k", b"4")]).unwrap();
    store.commit_fence().unwrap();
    for r in [&single, &replayed].into_iter().chain(&batch).chain(&fenced) {
        assert_eq!(r.store_id, store.store_id());
        assert!(r.verify_signature(&key), "{r:?}");
        assert_eq!(check(&store, r), None);
    }
    // Deterministic signatures: the replayed receipt carries the original's signature.
    assert_eq!(replayed.signature(), single.signature());
}

#[test]
fn an_unsigned_store_issues_unsigned_receipts_that_it_vouches_for() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), config());
    let r = store.append(request("a", "k", b"1")).unwrap();
    assert_eq!((r.key_id, r.signature(), store.receipt_public_key()), (None, None, None));
    assert_eq!(check(&store, &r), None);
}

#[test]
fn each_reason_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), signing(KEY, &[]));
    let good = store.append(request("a", "k", b"1")).unwrap();
    let edited = |edit: fn(&mut AppendReceipt)| {
        let mut r = AppendReceipt::from_bytes(&good.to_bytes()).unwrap();
        edit(&mut r);
        check(&store, &r)
    };
    assert_eq!(edited(|r| r.store_id[0] ^= 1), Some("wrong store"));
    assert_eq!(edited(|r| r.event_id[15] ^= 1), Some("unknown event"));
    assert_eq!(edited(|r| r.global_sequence += 1), Some("sequence mismatch"));
    assert_eq!(edited(|r| r.entity_sequence += 1), Some("sequence mismatch"));
    assert_eq!(edited(|r| r.hash[0] ^= 1), Some("hash mismatch"));
    assert_eq!(edited(|r| r.timestamp_us += 1), Some("hash mismatch"));
    assert_eq!(edited(|r| r.key_id = Some([0; 16])), Some("unknown key"));
    assert_eq!(edited(|r| r.key_id = None), Some("unknown key"));
    assert_eq!(edited(|r| r.set_signature(None)), Some("bad signature"));
    assert_eq!(edited(|r| r.set_signature(Some([1; 64]))), Some("bad signature"));
    assert_eq!(edited(|r| r.durable = !r.durable), None, "durable is not signed");
    // The first reason wins: wrong store beats a bad signature and a changed hash.
    assert_eq!(
        edited(|r| {
            r.store_id[0] ^= 1;
            r.hash[0] ^= 1;
        }),
        Some("wrong store")
    );
    // Neither key id nor signature: the store itself is the witness.
    assert_eq!(
        edited(|r| {
            r.key_id = None;
            r.set_signature(None);
        }),
        None
    );
}

#[test]
fn events_of_a_cancelled_fence_are_hidden_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), signing(KEY, &[]));
    store.begin_fence().unwrap();
    let fenced = store.fence_append_batch(vec![request("a", "k", b"1")]).unwrap().remove(0);
    assert_eq!(check(&store, &fenced), Some("hidden"), "an open fence's event is not visible yet");
    store.cancel_fence().unwrap();
    assert_eq!(check(&store, &fenced), Some("hidden"));
    store.close().unwrap();
    let store = open(dir.path(), signing(KEY, &[]));
    assert_eq!(check(&store, &fenced), Some("hidden"));
}

#[test]
fn rotated_keys_still_verify_their_receipts() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), signing(OLD_KEY, &[]));
    let old = store.append(request("a", "k", b"1")).unwrap();
    store.close().unwrap();
    let store = open(dir.path(), signing(KEY, &[OLD_KEY]));
    let new = store.append(request("a", "k", b"2")).unwrap();
    assert_ne!(old.key_id, new.key_id);
    assert_eq!((check(&store, &old), check(&store, &new)), (None, None));
    store.close().unwrap();
    let store = open(dir.path(), signing(KEY, &[]));
    assert_eq!(check(&store, &old), Some("unknown key"));
}

#[test]
fn bad_keys_are_invalid_config_and_create_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data");
    let short = StoreConfig { signing_key: Some(SigningKeySeed(vec![1; 31])), ..config() };
    let not_a_key = StoreConfig { verify_keys: vec![vec![0; 32]], ..config() };
    let too_long = StoreConfig { verify_keys: vec![vec![0; 33]], ..config() };
    for bad in [short, not_a_key, too_long] {
        assert!(matches!(Store::open(&path, bad), Err(Error::InvalidConfig(_))));
    }
    assert!(!path.exists());
    let shown = format!("{:?}", signing(KEY, &[]));
    assert!(shown.contains("<hidden>") && !shown.contains("11, 11, 11"), "{shown}");
}
