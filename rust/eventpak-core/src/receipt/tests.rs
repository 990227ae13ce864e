use super::*;

fn sample() -> AppendReceipt {
    AppendReceipt::new([1; 16], [2; 16], 7, 3, [4; 32], 1_700_000_000_000_000, true)
}

fn signer(seed: u8) -> Arc<ReceiptSigner> {
    Arc::new(ReceiptSigner::from_seed(&[seed; 32]).unwrap())
}

fn verifying(seed: u8) -> ed25519_dalek::VerifyingKey {
    parse_public_key(&signer(seed).public_key()).unwrap()
}

#[test]
fn signed_bytes_follow_the_documented_layout() {
    let r = sample().signed_by(signer(9));
    let bytes = r.signed_bytes();
    assert_eq!(bytes.len(), 105);
    assert_eq!(bytes[0], RECEIPT_VERSION);
    assert_eq!(&bytes[1..17], &[1; 16]);
    assert_eq!(&bytes[17..33], &[2; 16]);
    assert_eq!(bytes[33..41], 7u64.to_le_bytes());
    assert_eq!(bytes[41..49], 3u64.to_le_bytes());
    assert_eq!(bytes[49..57], 1_700_000_000_000_000u64.to_le_bytes());
    assert_eq!(&bytes[57..89], &[4; 32]);
    assert_eq!(bytes[89..], signer(9).key_id());
}

#[test]
fn durable_is_not_signed_but_every_other_field_is() {
    let base = sample().signed_by(signer(9)).signed_bytes();
    let mut r = sample();
    r.durable = false;
    assert_eq!(r.signed_by(signer(9)).signed_bytes(), base);
    let edits: [fn(&mut AppendReceipt); 7] = [
        |r| r.store_id[0] ^= 1,
        |r| r.event_id[15] ^= 1,
        |r| r.global_sequence += 1,
        |r| r.entity_sequence += 1,
        |r| r.timestamp_us += 1,
        |r| r.hash[31] ^= 1,
        |r| r.key_id = Some([0; 16]),
    ];
    for (i, edit) in edits.iter().enumerate() {
        let mut r = sample().signed_by(signer(9));
        edit(&mut r);
        assert_ne!(r.signed_bytes(), base, "edit {i} not covered");
        assert!(!r.verify_signature(&verifying(9)), "edit {i} still verifies");
    }
}

#[test]
fn deferred_signature_equals_eager_signing_and_is_cached() {
    let r = sample().signed_by(signer(9));
    let eager = signer(9).sign(&r.signed_bytes());
    assert_eq!(r.signature(), Some(eager));
    assert_eq!(r.signature(), Some(eager));
    assert!(r.verify_signature(&verifying(9)));
    assert!(!r.verify_signature(&verifying(8)), "another key must not verify");
}

#[test]
fn a_deferred_receipt_edited_later_is_not_signed_for_the_edit() {
    let mut r = sample().signed_by(signer(9));
    r.hash = [5; 32];
    assert!(r.signature().is_some());
    assert!(!r.verify_signature(&verifying(9)));
}

#[test]
fn wire_bytes_round_trip_every_field() {
    for r in [sample(), sample().signed_by(signer(9))] {
        let bytes = r.to_bytes();
        assert_eq!(bytes.len(), RECEIPT_BYTES_LEN);
        let back = AppendReceipt::from_bytes(&bytes).unwrap();
        assert_eq!(back, r);
        assert_eq!(back.to_bytes(), bytes);
        assert_eq!((back.key_id, back.signature(), back.durable), (r.key_id, r.signature(), r.durable));
    }
    let unsigned = AppendReceipt::from_bytes(&sample().to_bytes()).unwrap();
    assert_eq!((unsigned.key_id, unsigned.signature()), (None, None));
}

#[test]
fn altered_fields_still_parse() {
    let mut bytes = sample().signed_by(signer(9)).to_bytes();
    bytes[HASH_OFFSET] ^= 0xff;
    bytes[SIGNATURE_OFFSET + 3] ^= 0xff;
    let r = AppendReceipt::from_bytes(&bytes).unwrap();
    assert_eq!(r.hash[0], 4 ^ 0xff);
    assert!(!r.verify_signature(&verifying(9)));
}

#[test]
fn malformed_bytes_are_refused() {
    let good = sample().signed_by(signer(9)).to_bytes();
    assert_eq!(AppendReceipt::from_bytes(&good[..169]), Err(ReceiptError::Length(169)));
    assert_eq!(AppendReceipt::from_bytes(&[]), Err(ReceiptError::Length(0)));
    for version in [0u8, 2, 255] {
        let mut bad = good;
        bad[0] = version;
        assert_eq!(AppendReceipt::from_bytes(&bad), Err(ReceiptError::Version(version)));
    }
    let mut bad = good;
    bad[FLAGS_OFFSET] |= 8;
    assert!(matches!(AppendReceipt::from_bytes(&bad), Err(ReceiptError::Malformed(_))));
    let mut bad = sample().to_bytes();
    bad[KEY_ID_OFFSET] = 1;
    assert!(matches!(AppendReceipt::from_bytes(&bad), Err(ReceiptError::Malformed(_))));
    let mut bad = sample().to_bytes();
    bad[RECEIPT_BYTES_LEN - 1] = 1;
    assert!(matches!(AppendReceipt::from_bytes(&bad), Err(ReceiptError::Malformed(_))));
}

#[test]
fn debug_never_shows_the_key() {
    let shown = format!("{:?}", sample().signed_by(signer(9)));
    assert!(shown.contains("deferred") && !shown.contains("SigningKey"), "{shown}");
}

#[test]
fn reasons_are_stable_strings() {
    let all = [
        (ReceiptProblem::WrongStore, "wrong store"),
        (ReceiptProblem::Hidden, "hidden"),
        (ReceiptProblem::UnknownEvent, "unknown event"),
        (ReceiptProblem::SequenceMismatch, "sequence mismatch"),
        (ReceiptProblem::HashMismatch, "hash mismatch"),
        (ReceiptProblem::UnknownKey, "unknown key"),
        (ReceiptProblem::BadSignature, "bad signature"),
    ];
    for (problem, text) in all {
        assert_eq!(problem.as_str(), text);
    }
}
