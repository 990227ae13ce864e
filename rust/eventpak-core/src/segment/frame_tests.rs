//! Tests of event frames: round trips, the payload version and tags fields, damage.

use super::*;

fn sample() -> EventRecord {
    EventRecord {
        event_id: [9; 16],
        global_sequence: 12,
        entity: "acct:é".into(),
        scope: "s".into(),
        kind: "deposit".into(),
        entity_sequence: 3,
        timestamp_us: 99,
        causation_id: Some([4; 16]),
        correlation_id: [5; 16],
        prev_hash: [6; 32],
        hash: [7; 32],
        idempotency_key: Some(b"key".to_vec()),
        payload_version: 0,
        payload: vec![0x91, 0x01],
        tags: Vec::new(),
    }
}

#[test]
fn round_trip() {
    let rec = sample();
    let mut buf = Vec::new();
    encode_frame(&mut buf, &rec, 1, 2);
    assert_eq!(buf.len(), frame_len(&rec));
    let Decoded::Frame(view) = decode_frame(&buf) else { panic!("decode failed") };
    assert_eq!((view.batch_index, view.batch_len, view.len), (1, 2, buf.len()));
    assert_eq!(view.to_record(), rec);
    assert_eq!(FrameView::trusted(&buf).to_record(), rec);
}

#[test]
fn the_entity_alone_is_the_first_of_the_names() {
    for entity in ["acct:é", "a", &"x".repeat(200), "日本:1"] {
        let rec = EventRecord { entity: entity.into(), ..sample() };
        let mut buf = Vec::new();
        encode_frame(&mut buf, &rec, 0, 1);
        let Decoded::Frame(view) = decode_frame(&buf) else { panic!("decode failed") };
        assert_eq!(view.entity(), view.names().0);
        assert_eq!(view.entity(), entity);
    }
}

#[test]
fn payload_version_round_trips_and_zero_takes_no_bytes() {
    let versioned = EventRecord { payload_version: 3, ..sample() };
    let mut buf = Vec::new();
    encode_frame(&mut buf, &versioned, 0, 1);
    assert_eq!(buf.len(), frame_len(&sample()) + BODY_PAYLOAD_VERSION_LEN);
    let Decoded::Frame(view) = decode_frame(&buf) else { panic!("decode failed") };
    assert_eq!(view.payload_version(), 3);
    assert_eq!(view.payload(), &[0x91, 0x01]);
    assert_eq!(view.to_record(), versioned);
}

#[test]
fn unknown_flags_are_damage() {
    let mut buf = Vec::new();
    encode_frame(&mut buf, &sample(), 0, 1);
    buf[FRAME_HEADER_LEN + BODY_FLAGS_OFFSET] |= 0x80;
    let crc = crc32c::crc32c(&buf[FRAME_CRC_COVERS_FROM..]);
    buf[FRAME_CRC_OFFSET..FRAME_CRC_COVERS_FROM].copy_from_slice(&crc.to_le_bytes());
    assert!(matches!(decode_frame(&buf), Decoded::Bad(why) if why.contains("unknown flags")));
}

#[test]
fn damage_is_detected() {
    let mut buf = Vec::new();
    encode_frame(&mut buf, &EventRecord { payload_version: 2, ..sample() }, 0, 1);
    for cut in 0..buf.len() {
        assert!(matches!(decode_frame(&buf[..cut]), Decoded::Short | Decoded::Bad(_)));
    }
    for i in 0..buf.len() {
        let mut bad = buf.clone();
        bad[i] ^= 0x40;
        assert!(!matches!(decode_frame(&bad), Decoded::Frame(_)), "flip at {i} undetected");
    }
}

#[test]
fn tags_round_trip_after_the_payload() {
    let tagged = EventRecord { tags: vec!["course:c1".into(), "student:s7".into()], ..sample() };
    let mut buf = Vec::new();
    encode_frame(&mut buf, &tagged, 0, 1);
    assert_eq!(buf.len(), frame_len(&sample()) + 1 + (1 + 9) + (1 + 10));
    let Decoded::Frame(view) = decode_frame(&buf) else { panic!("decode failed") };
    assert_eq!(view.tags().collect::<Vec<_>>(), ["course:c1", "student:s7"]);
    assert_eq!(view.payload(), &[0x91, 0x01]);
    assert_eq!(view.to_record(), tagged);
    assert!(FrameView::trusted(&buf).tags_section().starts_with(&[2, 9]));
    for i in 0..buf.len() {
        let mut bad = buf.clone();
        bad[i] ^= 0x40;
        assert!(!matches!(decode_frame(&bad), Decoded::Frame(_)), "flip at {i} undetected");
    }
}

#[test]
fn tracking_frames_decode_as_tracking_records() {
    use crate::segment::{encode_tracking_frame, TrackingFields};
    let fields = TrackingFields { name: "upstream", position: 41, timestamp_us: 7 };
    let mut buf = Vec::new();
    encode_tracking_frame(&mut buf, fields, 12, 2, 3);
    let Decoded::Tracking(view) = decode_frame(&buf) else { panic!("not a tracking record") };
    assert_eq!((view.global_sequence, view.batch_index, view.batch_len, view.len), (12, 2, 3, buf.len()));
    assert_eq!(view.fields(), fields);
    // Not the last frame of its batch: damage.
    let mut early = Vec::new();
    encode_tracking_frame(&mut early, fields, 12, 0, 3);
    assert!(matches!(decode_frame(&early), Decoded::Bad(why) if why.contains("last frame")));
    for cut in 0..buf.len() {
        assert!(matches!(decode_frame(&buf[..cut]), Decoded::Short | Decoded::Bad(_)));
    }
    for i in 0..buf.len() {
        let mut bad = buf.clone();
        bad[i] ^= 0x40;
        assert!(matches!(decode_frame(&bad), Decoded::Bad(_) | Decoded::Short), "flip at {i} undetected");
    }
}
