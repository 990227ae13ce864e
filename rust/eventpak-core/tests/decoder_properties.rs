//! Property tests of every decoder of the on-disk format (`docs/format.md`): frames, the
//! segment scanner, segment headers, `hidden.ranges`, cursor checkpoints and the index
//! checkpoint. Arbitrary bytes never panic a decoder, never make it allocate from a forged
//! length, and never come back as a frame longer than the input; every encoder round-trips.
//!
//! Inputs go beyond random bytes (which never pass a CRC): "CRC-valid garbage" puts the
//! right magic and a correct CRC around random fields, so the field checks behind the CRC
//! are exercised too. The payload decoder lives in the Python binding and is covered by
//! `tests/test_payload_fuzz.py`.
//!
//! Case counts are small by default; `EVENTPAK_EXTENDED=1` multiplies them by 20, and
//! `PROPTEST_CASES=<n>` sets them directly.

mod common;

use eventpak_core::io::OsStorage;
use std::path::Path;
use std::sync::atomic::Ordering;

use eventpak_core::cursor_checkpoint::CursorCheckpoint;
use eventpak_core::event::EventRecord;
use eventpak_core::index::{load_checkpoint, write_checkpoint, Index, INDEX_CHECKPOINT_FILE};
use eventpak_core::recovery::{recover, RecoveryOptions};

/// A full scan that changes nothing on disk.
const SCAN_ONLY: RecoveryOptions = RecoveryOptions {
    use_index_checkpoint: false,
    read_only: true,
    stop_at: None,
    last_segment: None,
    sequence_jumps: false,
};
use eventpak_core::segment::layout::{
    BODY_ENTITY_LEN_OFFSET, BODY_FIXED_LEN, BODY_FLAGS_KNOWN, BODY_FLAGS_OFFSET, BODY_FLAG_PAYLOAD_VERSION,
    BODY_KEY_LEN_OFFSET, BODY_KIND_LEN_OFFSET, BODY_PAYLOAD_LEN_OFFSET, BODY_PAYLOAD_VERSION_LEN,
    BODY_SCOPE_LEN_OFFSET, FRAME_CRC_COVERS_FROM, FRAME_CRC_OFFSET, SEGMENT_PADDING_OFFSET,
};
use eventpak_core::segment::{
    decode_frame, encode_frame, encode_tracking_frame, frame_len, scan_segment, Decoded, SegmentHeader,
    SegmentSet, TrackingFields, FRAME_HEADER_LEN, SEGMENT_HEADER_LEN,
};
use eventpak_core::visibility::{Visibility, HIDDEN_RANGES_FILE};
use eventpak_core::{
    AppendRequest, Error, Region, ReplicaOrigin, Store, StoreConfig, SyncMode, REPLICA_ORIGIN_FILE,
};
use proptest::collection::vec;
use proptest::prelude::*;

// ---------------------------------------------------------------------------------------
// Guard: no decoder may allocate from a forged length.
// ---------------------------------------------------------------------------------------

mod alloc_guard;

use alloc_guard::{ALLOCATION_LIMIT, LARGEST_ALLOCATION};

#[global_allocator]
static ALLOCATOR: alloc_guard::Tracking = alloc_guard::Tracking;

fn no_huge_allocation() -> Result<(), TestCaseError> {
    let largest = LARGEST_ALLOCATION.load(Ordering::Relaxed);
    prop_assert!(largest <= ALLOCATION_LIMIT, "an allocation of {} bytes was requested", largest);
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Configuration and helpers.
// ---------------------------------------------------------------------------------------

/// `base` cases, times 20 with `EVENTPAK_EXTENDED=1`; `PROPTEST_CASES` wins when set.
fn cases(base: u32) -> ProptestConfig {
    let cases = match std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()) {
        Some(n) => n,
        None if std::env::var("EVENTPAK_EXTENDED").is_ok_and(|v| !v.is_empty() && v != "0") => base * 20,
        None => base,
    };
    ProptestConfig { cases, ..ProptestConfig::default() }
}

fn scratch() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(dir) = tempfile::Builder::new().prefix("eventpak-prop-").tempdir_in(shm) {
            return dir;
        }
    }
    tempfile::Builder::new().prefix("eventpak-prop-").tempdir().expect("tempdir")
}

fn crc(bytes: &[u8]) -> [u8; 4] {
    crc32c::crc32c(bytes).to_le_bytes()
}

/// Any text, newlines and multi-byte characters included.
fn text(max_chars: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("(?s:.{{0,{max_chars}}})")).unwrap()
}

fn record() -> impl Strategy<Value = EventRecord> {
    (
        (any::<[u8; 16]>(), any::<u64>(), text(12), text(12), text(40)),
        (any::<u64>(), any::<u64>(), proptest::option::of(any::<[u8; 16]>()), any::<[u8; 16]>()),
        (
            any::<[u8; 32]>(),
            any::<[u8; 32]>(),
            proptest::option::of(vec(any::<u8>(), 0..=64)),
            vec(any::<u8>(), 0..200),
            proptest::collection::btree_set(text(12), 0..4),
        ),
    )
        .prop_map(
            |(
                (id, seq, entity, scope, kind),
                (clock, ts, causation, correlation),
                (prev, hash, key, payload, tags),
            )| {
                EventRecord {
                    event_id: id,
                    global_sequence: seq,
                    entity: entity.into(),
                    scope: scope.into(),
                    kind: kind.into(),
                    entity_sequence: clock,
                    timestamp_us: ts,
                    causation_id: causation,
                    correlation_id: correlation,
                    prev_hash: prev,
                    hash,
                    idempotency_key: key,
                    payload_version: 0,
                    payload,
                    tags: tags.into_iter().filter(|t| eventpak_core::validate_tag(t).is_ok()).collect(),
                }
            },
        )
}

/// A segment file: header, then `batches` (sizes) of frames with dense sequences. Every
/// third batch (from the second) ends with a tracking record, and a size of 0 is a batch
/// of a tracking record alone.
fn build_segment(base: u64, records: &[EventRecord], batches: &[usize]) -> (Vec<u8>, Vec<(usize, usize)>) {
    let mut out = SegmentHeader { segment_id: 0, base_sequence: base }.encode().to_vec();
    let mut bounds = Vec::new(); // (batch start, batch end) byte offsets
    let mut records = records.iter().cloned();
    let mut seq = base;
    let mut left = records.len();
    for (b, &size) in batches.iter().enumerate() {
        // Only complete batches: the last one shrinks to the records left.
        let tracked = size == 0 || b % 3 == 1;
        let size = size.min(left);
        if size == 0 && !tracked {
            break;
        }
        left -= size;
        let start = out.len();
        let frames = (size + usize::from(tracked)) as u32;
        for i in 0..size {
            let mut rec = records.next().expect("counted above");
            rec.global_sequence = seq;
            seq += 1;
            encode_frame(&mut out, &rec, i as u32, frames);
        }
        if tracked {
            let fields = TrackingFields { name: "upstream", position: b as u64, timestamp_us: 1 };
            encode_tracking_frame(&mut out, fields, seq, frames - 1, frames);
        }
        bounds.push((start, out.len()));
    }
    (out, bounds)
}

// ---------------------------------------------------------------------------------------
// Frames.
// ---------------------------------------------------------------------------------------

/// What must hold of anything `decode_frame` accepts.
fn check_decoded(buf: &[u8]) -> Result<Option<EventRecord>, TestCaseError> {
    let Decoded::Frame(frame) = decode_frame(buf) else { return Ok(None) };
    prop_assert!(frame.len <= buf.len(), "frame of {} bytes out of {}", frame.len, buf.len());
    prop_assert!(frame.len >= FRAME_HEADER_LEN + BODY_FIXED_LEN);
    prop_assert!(frame.batch_index < frame.batch_len);
    let record = frame.to_record();
    let (entity, scope, kind) = frame.names();
    prop_assert_eq!((&*record.entity, &*record.scope, &*record.kind), (entity, scope, kind));
    // Re-encoding what was decoded gives a frame that decodes to the same record.
    let mut again = Vec::new();
    encode_frame(&mut again, &record, frame.batch_index, frame.batch_len);
    let Decoded::Frame(second) = decode_frame(&again) else {
        return Err(TestCaseError::fail("a decoded record does not re-encode to a valid frame"));
    };
    prop_assert_eq!(second.to_record(), record.clone());
    Ok(Some(record))
}

/// Random header fields and body around a correct CRC: the checks behind the CRC run.
fn crc_valid_frame() -> impl Strategy<Value = Vec<u8>> {
    (
        prop_oneof![Just(None), any::<u32>().prop_map(Some), (0u32..400).prop_map(Some)],
        any::<u64>(),
        prop_oneof![(0u32..4, 1u32..4), (any::<u32>(), any::<u32>())],
        vec(any::<u8>(), BODY_FIXED_LEN..420),
        proptest::option::of(prop_oneof![
            (0usize..4, 0usize..4, 0usize..4, 0usize..4, any::<bool>()),
            (0usize..64, 0usize..64, 0usize..64, 0usize..64, any::<bool>()),
        ]),
        any::<u8>(),
        vec(any::<u8>(), 0..40),
    )
        .prop_map(|(body_len, seq, (index, len), mut body, split, flags, trailing)| {
            if let Some((e, s, k, key, ascii)) = split {
                // Lengths that add up, so the UTF-8 and range checks are reached.
                // Known flags only (unknown bits are refused before anything else is
                // looked at); with the payload version flag, 4 bytes of the body hold it.
                let flags = flags & BODY_FLAGS_KNOWN;
                let version =
                    if flags & BODY_FLAG_PAYLOAD_VERSION != 0 { BODY_PAYLOAD_VERSION_LEN } else { 0 };
                let room = (body.len() - BODY_FIXED_LEN).saturating_sub(version);
                let (e, s, k, key) = (e.min(room), s.min(room), k.min(room), key.min(room));
                let used = (e + s + k + key).min(room);
                let (e, s, k, key) = if e + s + k + key > room { (used, 0, 0, 0) } else { (e, s, k, key) };
                let payload = room - e - s - k - key;
                body[BODY_ENTITY_LEN_OFFSET..BODY_SCOPE_LEN_OFFSET]
                    .copy_from_slice(&(e as u16).to_le_bytes());
                body[BODY_SCOPE_LEN_OFFSET..BODY_KIND_LEN_OFFSET].copy_from_slice(&(s as u16).to_le_bytes());
                body[BODY_KIND_LEN_OFFSET] = k as u8;
                body[BODY_KEY_LEN_OFFSET] = key as u8;
                body[BODY_PAYLOAD_LEN_OFFSET..BODY_FIXED_LEN]
                    .copy_from_slice(&(payload as u32).to_le_bytes());
                body[BODY_FLAGS_OFFSET] = flags;
                if ascii {
                    // Names that are valid UTF-8 get past the last check: accepted frames.
                    body[BODY_FIXED_LEN..BODY_FIXED_LEN + e + s + k].iter_mut().for_each(|b| *b &= 0x7f);
                }
            }
            let claimed = body_len.unwrap_or(body.len() as u32);
            let mut out = Vec::with_capacity(FRAME_HEADER_LEN + body.len() + trailing.len());
            out.extend_from_slice(&claimed.to_le_bytes());
            out.extend_from_slice(&[0; 4]);
            out.extend_from_slice(&seq.to_le_bytes());
            out.extend_from_slice(&index.to_le_bytes());
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(&body);
            out.extend_from_slice(&trailing);
            let end = (FRAME_HEADER_LEN + claimed as usize).min(out.len()).max(FRAME_CRC_COVERS_FROM);
            let sum = crc(&out[FRAME_CRC_COVERS_FROM..end]);
            out[FRAME_CRC_OFFSET..FRAME_CRC_COVERS_FROM].copy_from_slice(&sum);
            out
        })
}

proptest! {
    #![proptest_config(cases(4000))]

    #[test]
    fn decode_frame_never_panics_on_arbitrary_bytes(bytes in vec(any::<u8>(), 0..700)) {
        check_decoded(&bytes)?;
        no_huge_allocation()?;
    }

    #[test]
    fn decode_frame_never_panics_on_crc_valid_garbage(bytes in crc_valid_frame()) {
        check_decoded(&bytes)?;
        no_huge_allocation()?;
    }

    #[test]
    fn segment_header_decode_never_panics(bytes in vec(any::<u8>(), 0..80)) {
        if let Ok(header) = SegmentHeader::decode(&bytes) {
            prop_assert!(bytes.len() >= SEGMENT_HEADER_LEN);
            prop_assert_eq!(&header.encode()[..36], &bytes[..36]);
        }
    }

    #[test]
    fn segment_header_round_trips_and_any_flip_is_caught(
        id in any::<u64>(), base in any::<u64>(), at in 0usize..SEGMENT_HEADER_LEN, mask in 1u8..,
    ) {
        let header = SegmentHeader { segment_id: id, base_sequence: base };
        let mut bytes = header.encode();
        prop_assert_eq!(SegmentHeader::decode(&bytes), Ok(header));
        bytes[at] ^= mask;
        match SegmentHeader::decode(&bytes) {
            // The padding is outside the CRC.
            Ok(decoded) => {
                prop_assert!(at >= SEGMENT_PADDING_OFFSET && decoded == header, "flip at {} went unnoticed", at)
            }
            Err(reason) => prop_assert!(at < SEGMENT_PADDING_OFFSET, "padding flip refused: {}", reason),
        }
    }
}

proptest! {
    #![proptest_config(cases(1000))]

    #[test]
    fn frames_round_trip_and_every_cut_or_flip_is_caught(
        rec in record(),
        (index, len) in (1u32..6).prop_flat_map(|len| (0..len, Just(len))),
        trailing in vec(any::<u8>(), 0..64),
        flip in any::<prop::sample::Index>(),
        mask in 1u8..,
    ) {
        let mut buf = Vec::new();
        encode_frame(&mut buf, &rec, index, len);
        prop_assert_eq!(buf.len(), frame_len(&rec));
        let Decoded::Frame(frame) = decode_frame(&buf) else {
            return Err(TestCaseError::fail("an encoded frame does not decode"));
        };
        prop_assert_eq!((frame.batch_index, frame.batch_len, frame.len), (index, len, buf.len()));
        prop_assert_eq!(frame.to_record(), rec.clone());
        // Bytes after the frame belong to the next one.
        let mut longer = buf.clone();
        longer.extend_from_slice(&trailing);
        let Decoded::Frame(same) = decode_frame(&longer) else {
            return Err(TestCaseError::fail("trailing bytes broke the frame"));
        };
        prop_assert_eq!(same.len, buf.len());
        // No proper prefix is a frame, and no single damaged byte goes unnoticed.
        for cut in 0..buf.len() {
            prop_assert!(!matches!(decode_frame(&buf[..cut]), Decoded::Frame(_)), "prefix {} accepted", cut);
        }
        let at = flip.index(buf.len());
        let mut bad = buf.clone();
        bad[at] ^= mask;
        prop_assert!(!matches!(decode_frame(&bad), Decoded::Frame(_)), "flip at {} unnoticed", at);
    }

    #[test]
    fn scan_segment_never_panics_and_reports_a_consistent_prefix(
        prefix_header in any::<bool>(),
        bytes in vec(any::<u8>(), 0..600),
        start in 0usize..80,
        next in prop_oneof![Just(0u64), any::<u64>()],
        is_last in any::<bool>(),
        jumps in any::<bool>(),
    ) {
        let mut file = if prefix_header {
            SegmentHeader { segment_id: 0, base_sequence: next }.encode().to_vec()
        } else {
            Vec::new()
        };
        file.extend_from_slice(&bytes);
        let start = start.min(file.len());
        check_scan(&file, start, next, (is_last, jumps))?;
        no_huge_allocation()?;
    }

    #[test]
    fn scanning_a_cut_segment_keeps_exactly_the_complete_batches(
        records in vec(record(), 1..12),
        sizes in vec(1usize..4, 1..8),
        base in 0u64..1000,
        cut in any::<prop::sample::Index>(),
    ) {
        let (file, batches) = build_segment(base, &records, &sizes);
        let cut = SEGMENT_HEADER_LEN + cut.index(file.len() - SEGMENT_HEADER_LEN + 1);
        let bytes = &file[..cut];
        let complete: Vec<&(usize, usize)> = batches.iter().filter(|(_, end)| *end <= cut).collect();
        let valid = complete.last().map_or(SEGMENT_HEADER_LEN, |(_, end)| *end);
        let frames_kept = common::parse_frames(&file[..valid]).iter().filter(|f| f.is_event).count() as u64;
        let end = check_scan(bytes, SEGMENT_HEADER_LEN, base, (true, false))?
            .ok_or_else(|| TestCaseError::fail("a cut last segment must be a torn tail"))?;
        prop_assert_eq!(end.valid_len as usize, valid);
        prop_assert_eq!(end.torn_bytes as usize, cut - valid);
        prop_assert_eq!(end.next_sequence, base + frames_kept);
        // In any segment but the last, a cut anywhere except a batch boundary is corruption.
        let sealed = check_scan(bytes, SEGMENT_HEADER_LEN, base, (false, false))?;
        prop_assert_eq!(sealed.is_some(), cut == valid);
    }

    #[test]
    fn a_damaged_byte_in_a_segment_is_refused_or_costs_only_the_last_batch(
        records in vec(record(), 2..10),
        sizes in vec(1usize..4, 2..6),
        at in any::<prop::sample::Index>(),
        mask in 1u8..,
    ) {
        let (mut file, batches) = build_segment(0, &records, &sizes);
        let at = SEGMENT_HEADER_LEN + at.index(file.len() - SEGMENT_HEADER_LEN);
        file[at] ^= mask;
        let last_batch = batches.iter().rev().find(|(s, e)| s < e).copied().unwrap_or((0, 0));
        // The same with a replica's rule (sequences may jump): damage is no jump.
        for (is_last, jumps) in [(true, false), (false, false), (true, true), (false, true)] {
            match check_scan(&file, SEGMENT_HEADER_LEN, 0, (is_last, jumps))? {
                None => {}
                Some(end) => {
                    prop_assert!(is_last, "damage in a sealed segment accepted (byte {})", at);
                    prop_assert!(at >= last_batch.0, "damage at {} cost more than the last batch", at);
                    prop_assert_eq!(end.valid_len as usize, last_batch.0);
                }
            }
        }
    }
}

/// Runs `scan_segment` and checks what it reports; `None` when it refused the segment.
fn check_scan(
    bytes: &[u8],
    start: usize,
    next: u64,
    (is_last, jumps): (bool, bool),
) -> Result<Option<eventpak_core::segment::ScanEnd>, TestCaseError> {
    let mut seen: Vec<(u64, u64, usize, bool)> = Vec::new();
    let result = scan_segment(Path::new("seg"), bytes, start, next, (is_last, jumps), |offset, frame| {
        seen.push((offset, frame.global_sequence(), frame.frame_len(), frame.is_event()));
        Ok(())
    });
    match result {
        Err(Error::CorruptSegment { offset, .. }) => {
            prop_assert!(offset as usize <= bytes.len());
            Ok(None)
        }
        Err(other) => Err(TestCaseError::fail(format!("untyped scan error {other:?}"))),
        Ok(end) => {
            prop_assert!(end.valid_len as usize <= bytes.len());
            prop_assert_eq!(end.valid_len + end.torn_bytes, (bytes.len().max(start)) as u64);
            if !is_last {
                prop_assert_eq!(end.torn_bytes, 0);
            }
            // Delivered frames are contiguous from `start`, events with dense sequences
            // (increasing ones with jumps) and each tracking record with the sequence after
            // the last event.
            let (mut at, mut expected) = (start as u64, next);
            for &(offset, seq, len, is_event) in &seen {
                prop_assert_eq!(offset, at);
                prop_assert!(seq == expected || (jumps && is_event && seq > expected));
                expected = if is_event { seq + 1 } else { seq };
                at += len as u64;
            }
            prop_assert_eq!(at, end.valid_len.max(start as u64));
            prop_assert_eq!(end.next_sequence, expected);
            Ok(Some(end))
        }
    }
}

// ---------------------------------------------------------------------------------------
// hidden.ranges and cursor checkpoints.
// ---------------------------------------------------------------------------------------

fn visibility() -> impl Strategy<Value = Visibility> {
    (vec((0u64..1 << 40, 1u64..1 << 20), 0..12), proptest::option::of(0u64..u64::MAX)).prop_map(
        |(steps, open_fence)| {
            let mut at = 0u64;
            let cancelled = steps
                .into_iter()
                .map(|(gap, len)| {
                    let start = at + gap;
                    at = start + len;
                    (start, at)
                })
                .collect();
            Visibility { cancelled, open_fence }
        },
    )
}

fn hidden_ranges_garbage() -> impl Strategy<Value = Vec<u8>> {
    (
        prop_oneof![Just(1u32), any::<u32>()],
        any::<u64>(),
        prop_oneof![Just(None), any::<u32>().prop_map(Some)],
        vec(any::<u64>(), 0..16),
        any::<bool>(),
    )
        .prop_map(|(version, open, count, words, sorted)| {
            let mut words = words;
            if sorted {
                words.sort_unstable();
            }
            let count = count.unwrap_or(words.len() as u32 / 2);
            let mut out = b"EVPKHID\0".to_vec();
            out.extend_from_slice(&version.to_le_bytes());
            out.extend_from_slice(&open.to_le_bytes());
            out.extend_from_slice(&count.to_le_bytes());
            for w in words {
                out.extend_from_slice(&w.to_le_bytes());
            }
            let sum = crc(&out);
            out.extend_from_slice(&sum);
            out
        })
}

fn cursor_checkpoint() -> impl Strategy<Value = CursorCheckpoint> {
    (any::<u64>(), any::<bool>(), proptest::option::of(any::<u64>()), proptest::option::of(text(120)))
        .prop_map(|(position, started, process_boot_ns, region_identity)| CursorCheckpoint {
            position,
            started,
            process_boot_ns,
            region_identity,
        })
}

fn cursor_garbage() -> impl Strategy<Value = Vec<u8>> {
    (
        prop_oneof![Just(1u32), any::<u32>()],
        prop_oneof![0u8..8, any::<u8>()],
        any::<u64>(),
        any::<u64>(),
        prop_oneof![Just(None), any::<u32>().prop_map(Some), (0u32..64).prop_map(Some)],
        vec(any::<u8>(), 0..48),
    )
        .prop_map(|(version, flags, position, boot, identity_len, identity)| {
            let mut out = b"EVPKCUR\0".to_vec();
            out.extend_from_slice(&version.to_le_bytes());
            out.push(flags);
            out.extend_from_slice(&position.to_le_bytes());
            out.extend_from_slice(&boot.to_le_bytes());
            out.extend_from_slice(&identity_len.unwrap_or(identity.len() as u32).to_le_bytes());
            out.extend_from_slice(&identity);
            let sum = crc(&out);
            out.extend_from_slice(&sum);
            out
        })
}

fn load_hidden(dir: &Path, bytes: &[u8]) -> Result<Option<Visibility>, TestCaseError> {
    std::fs::write(dir.join(HIDDEN_RANGES_FILE), bytes).unwrap();
    match Visibility::load(dir) {
        Ok(v) => {
            prop_assert!(v.cancelled.iter().all(|(s, e)| s < e));
            prop_assert!(v.cancelled.windows(2).all(|w| w[0].1 <= w[1].0));
            prop_assert!(v.open_fence != Some(u64::MAX));
            // What loads saves and loads back the same.
            v.save(&OsStorage, dir).unwrap();
            prop_assert_eq!(Visibility::load(dir).unwrap(), v.clone());
            Ok(Some(v))
        }
        Err(Error::CorruptSegment { .. }) => Ok(None),
        Err(other) => Err(TestCaseError::fail(format!("untyped error {other:?}"))),
    }
}

fn load_cursor(dir: &Path, bytes: &[u8]) -> Result<Option<CursorCheckpoint>, TestCaseError> {
    std::fs::create_dir_all(dir.join("cursors")).unwrap();
    std::fs::write(dir.join("cursors").join("p.ckpt"), bytes).unwrap();
    match CursorCheckpoint::load(dir, "p") {
        Ok(Some(c)) => {
            c.save(dir, "p").unwrap();
            prop_assert_eq!(CursorCheckpoint::load(dir, "p").unwrap(), Some(c.clone()));
            Ok(Some(c))
        }
        Ok(None) => Err(TestCaseError::fail("an existing checkpoint file loaded as missing")),
        Err(Error::CursorCheckpointCorrupt { .. }) => Ok(None),
        Err(other) => Err(TestCaseError::fail(format!("untyped error {other:?}"))),
    }
}

proptest! {
    #![proptest_config(cases(1000))]

    #[test]
    fn visibility_round_trips(v in visibility()) {
        let dir = scratch();
        v.save(&OsStorage, dir.path()).unwrap();
        prop_assert_eq!(Visibility::load(dir.path()).unwrap(), v);
    }

    #[test]
    fn hidden_ranges_load_never_panics(bytes in vec(any::<u8>(), 0..120), garbage in hidden_ranges_garbage()) {
        let dir = scratch();
        prop_assert!(load_hidden(dir.path(), &bytes)?.is_none() || bytes.starts_with(b"EVPKHID\0"));
        load_hidden(dir.path(), &garbage)?;
        no_huge_allocation()?;
    }

    #[test]
    fn replica_origin_load_never_panics_and_what_loads_saves_back(
        bytes in vec(any::<u8>(), 0..120),
        stream in "[A-Za-z0-9_-]{1,20}",
        origin in proptest::option::of(any::<[u8; 16]>()),
        cut in any::<prop::sample::Index>(),
    ) {
        let dir = scratch();
        let written = ReplicaOrigin { stream, origin_store_id: origin };
        written.save(&OsStorage, dir.path()).unwrap();
        prop_assert_eq!(ReplicaOrigin::load(dir.path()).unwrap(), Some(written));
        let path = dir.path().join(REPLICA_ORIGIN_FILE);
        let text = std::fs::read(&path).unwrap();
        for damaged in [bytes, text[..cut.index(text.len())].to_vec()] {
            std::fs::write(&path, &damaged).unwrap();
            match ReplicaOrigin::load(dir.path()) {
                Ok(Some(loaded)) => {
                    loaded.save(&OsStorage, dir.path()).unwrap();
                    prop_assert_eq!(ReplicaOrigin::load(dir.path()).unwrap(), Some(loaded));
                }
                Ok(None) => prop_assert!(false, "an existing file loaded as absent"),
                Err(Error::CorruptSegment { .. }) => {}
                Err(other) => prop_assert!(false, "untyped error {:?}", other),
            }
        }
    }

    #[test]
    fn cursor_checkpoints_round_trip_and_any_flip_is_caught(
        ckpt in cursor_checkpoint(), at in any::<prop::sample::Index>(), mask in 1u8..,
    ) {
        let dir = scratch();
        ckpt.save(dir.path(), "p").unwrap();
        prop_assert_eq!(CursorCheckpoint::load(dir.path(), "p").unwrap(), Some(ckpt));
        let path = dir.path().join("cursors").join("p.ckpt");
        let mut bytes = std::fs::read(&path).unwrap();
        let at = at.index(bytes.len());
        bytes[at] ^= mask;
        prop_assert!(load_cursor(dir.path(), &bytes)?.is_none(), "flip at {} unnoticed", at);
    }

    #[test]
    fn cursor_checkpoint_load_never_panics(bytes in vec(any::<u8>(), 0..120), garbage in cursor_garbage()) {
        let dir = scratch();
        load_cursor(dir.path(), &bytes)?;
        load_cursor(dir.path(), &garbage)?;
        no_huge_allocation()?;
    }
}

// ---------------------------------------------------------------------------------------
// The index checkpoint.
// ---------------------------------------------------------------------------------------

fn sealed_index(body: Vec<u8>) -> Vec<u8> {
    let mut out = body;
    let sum = crc(&out);
    out.extend_from_slice(&sum);
    out
}

type Entry = (u32, u64, u32, u32, u32, u32, u64, u8, u128);

/// A checkpoint with the right structure and small, often consistent, random values.
fn index_structured() -> impl Strategy<Value = Vec<u8>> {
    let entry = (0u32..3, 0u64..400, 0u32..300, 0u32..3, 0u32..3, 0u32..3, 0u64..3, 0u8..3, any::<u128>());
    (
        any::<u64>(),
        vec((0u64..4, 0u64..5000), 0..3),
        [vec(text(4), 0..3), vec(text(4), 0..3), vec(text(4), 0..3)],
        vec(entry, 0..6),
        vec((vec(any::<u8>(), 0..8), 0u64..6), 0..3),
    )
        .prop_map(|(ts, segments, tables, mut entries, keys)| {
            entries.sort_by_key(|e: &Entry| e.8);
            let mut out = b"EVPKIDX\0".to_vec();
            out.extend_from_slice(&1u32.to_le_bytes());
            out.extend_from_slice(&ts.to_le_bytes());
            out.extend_from_slice(&(segments.len() as u32).to_le_bytes());
            for (id, len) in &segments {
                out.extend_from_slice(&id.to_le_bytes());
                out.extend_from_slice(&len.to_le_bytes());
            }
            for table in &tables {
                out.extend_from_slice(&(table.len() as u32).to_le_bytes());
                for name in table {
                    out.extend_from_slice(&(name.len() as u32).to_le_bytes());
                    out.extend_from_slice(name.as_bytes());
                }
            }
            out.extend_from_slice(&(entries.len() as u64).to_le_bytes());
            for (seg, offset, len, entity, scope, kind, clock, visible, id) in entries {
                out.extend_from_slice(&seg.to_le_bytes());
                out.extend_from_slice(&offset.to_le_bytes());
                out.extend_from_slice(&len.to_le_bytes());
                for v in [entity, scope, kind] {
                    out.extend_from_slice(&v.to_le_bytes());
                }
                out.extend_from_slice(&clock.to_le_bytes());
                out.push(visible);
                out.extend_from_slice(&id.to_be_bytes());
            }
            out.extend(std::iter::repeat_n(7u8, 32 * tables[0].len()));
            out.extend_from_slice(&(keys.len() as u64).to_le_bytes());
            for (key, seq) in keys {
                out.extend_from_slice(&(key.len() as u32).to_le_bytes());
                out.extend_from_slice(&key);
                out.extend_from_slice(&seq.to_le_bytes());
            }
            sealed_index(out)
        })
}

fn index_garbage() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![index_structured(), index_words()]
}

fn index_words() -> impl Strategy<Value = Vec<u8>> {
    // A plausible skeleton: magic, version, timestamp, then counts and bytes at random.
    let word = prop_oneof![
        (0u32..4).prop_map(|v| v.to_le_bytes().to_vec()),
        any::<u32>().prop_map(|v| v.to_le_bytes().to_vec()),
        any::<u64>().prop_map(|v| v.to_le_bytes().to_vec()),
        (0u64..4).prop_map(|v| v.to_le_bytes().to_vec()),
        vec(any::<u8>(), 1..20),
    ];
    (prop_oneof![Just(1u32), any::<u32>()], any::<u64>(), vec(word, 0..24)).prop_map(
        |(version, ts, words)| {
            let mut out = b"EVPKIDX\0".to_vec();
            out.extend_from_slice(&version.to_le_bytes());
            out.extend_from_slice(&ts.to_le_bytes());
            for w in words {
                out.extend_from_slice(&w);
            }
            sealed_index(out)
        },
    )
}

#[derive(Clone, Debug)]
enum Op {
    Append { entity: u8, kind: u8, payload: Vec<u8>, key: Option<u8> },
    Batch(Vec<(u8, u8, Vec<u8>)>),
    Fence { commit: bool, items: Vec<(u8, u8, Vec<u8>)> },
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    let item = || (0u8..5, 0u8..3, vec(any::<u8>(), 0..60));
    prop_oneof![
        6 => (0u8..5, 0u8..3, vec(any::<u8>(), 0..60), proptest::option::of(0u8..6))
            .prop_map(|(entity, kind, payload, key)| Op::Append { entity, kind, payload, key }),
        2 => vec(item(), 1..4).prop_map(Op::Batch),
        2 => (any::<bool>(), vec(item(), 1..4)).prop_map(|(commit, items)| Op::Fence { commit, items }),
        1 => Just(Op::Reopen),
    ]
}

fn req(entity: u8, kind: u8, payload: &[u8]) -> AppendRequest {
    AppendRequest {
        entity: format!("ent:{entity}"),
        scope: format!("s{}", entity % 2),
        kind: format!("kind.{kind}"),
        payload: payload.to_vec(),
        idempotency_key: None,
        expected_sequence: None,
        causation_id: None,
        correlation_id: None,
        ..Default::default()
    }
}

fn store_config() -> StoreConfig {
    StoreConfig { sync: SyncMode::Never, segment_max_bytes: 4096, ..StoreConfig::default() }
}

/// Runs `ops` on a store in `dir` and closes it (which writes the index checkpoint).
fn run_ops(dir: &Path, ops: &[Op]) {
    let mut store = Store::open(dir, store_config()).unwrap();
    for op in ops {
        match op {
            Op::Append { entity, kind, payload, key } => {
                let r = AppendRequest {
                    idempotency_key: key.map(|k| format!("key-{k}").into_bytes()),
                    ..req(*entity, *kind, payload)
                };
                // A reused key with other content is refused; that is fine here.
                let _ = store.append(r);
            }
            Op::Batch(items) => {
                store.append_batch(items.iter().map(|(e, k, p)| req(*e, *k, p)).collect()).unwrap();
            }
            Op::Fence { commit, items } => {
                store.begin_fence().unwrap();
                store.fence_append_batch(items.iter().map(|(e, k, p)| req(*e, *k, p)).collect()).unwrap();
                if *commit {
                    store.commit_fence().unwrap();
                } else {
                    store.cancel_fence().unwrap();
                }
            }
            Op::Reopen => {
                store.close().unwrap();
                store = Store::open(dir, store_config()).unwrap();
            }
        }
    }
    store.close().unwrap();
}

/// Two indexes describe the same log: every entry, entity head, key and count.
fn same_index(a: &Index, b: &Index) -> Result<(), TestCaseError> {
    prop_assert_eq!(a.len(), b.len());
    for seq in 0..a.len() {
        prop_assert_eq!(a.entry(seq), b.entry(seq), "entry {}", seq);
    }
    prop_assert_eq!(a.cardinalities(), b.cardinalities());
    prop_assert_eq!(a.last_event_id(), b.last_event_id());
    for e in 0..5u8 {
        let entity = format!("ent:{e}");
        prop_assert_eq!(a.entity_head(&entity), b.entity_head(&entity), "head of {}", entity);
    }
    for k in 0..6u8 {
        let key = format!("key-{k}").into_bytes();
        prop_assert_eq!(a.sequence_of_key(&key), b.sequence_of_key(&key), "key {}", k);
    }
    Ok(())
}

fn frames_of(store: &Store) -> Vec<Vec<u8>> {
    store.query(&Region::all(), None, None).unwrap().iter().map(|e| e.frame_bytes().to_vec()).collect()
}

proptest! {
    #![proptest_config(cases(64))]

    /// The checkpoint written at close describes exactly the index a full scan rebuilds,
    /// re-encodes to a file that loads the same, and is what a reopen uses.
    #[test]
    fn index_checkpoint_round_trips_through_a_real_store(ops in vec(op(), 1..30)) {
        let root = scratch();
        let dir = root.path().join("data");
        run_ops(&dir, &ops);
        let (from_ckpt, cover) = load_checkpoint(&dir).unwrap().expect("close writes a checkpoint");
        let scanned = recover(&OsStorage, &dir, &dir.join("segments"), SCAN_ONLY, &SegmentSet::new(4096)).unwrap();
        same_index(&from_ckpt, &scanned.index)?;
        let lengths: Vec<(u64, u64)> = common::segment_paths(&dir)
            .iter()
            .map(|p| {
                let id = p.file_stem().unwrap().to_str().unwrap().parse().unwrap();
                (id, std::fs::metadata(p).unwrap().len())
            })
            .collect();
        prop_assert_eq!(&cover.segments, &lengths);
        // write_checkpoint(load_checkpoint(f)) loads back the same index.
        let copy = root.path().join("rewritten");
        std::fs::create_dir_all(&copy).unwrap();
        write_checkpoint(&OsStorage, &copy, &from_ckpt, &cover).unwrap();
        let original_len = std::fs::metadata(dir.join(INDEX_CHECKPOINT_FILE)).unwrap().len();
        prop_assert_eq!(std::fs::metadata(copy.join(INDEX_CHECKPOINT_FILE)).unwrap().len(), original_len);
        let (reloaded, recover_cover) = load_checkpoint(&copy).unwrap().unwrap();
        same_index(&reloaded, &from_ckpt)?;
        prop_assert_eq!(recover_cover, cover);
        // Opening with the checkpoint reads nothing more and serves the same events.
        let fast = Store::open(&dir, StoreConfig { read_only: true, ..store_config() }).unwrap();
        let stats = fast.stats().unwrap();
        prop_assert_eq!((stats.recovery.index_checkpoint, stats.recovery.scanned_events), ("loaded", 0));
        let fast_frames = frames_of(&fast);
        drop(fast);
        let slow_config = StoreConfig { read_only: true, enable_index_checkpoint: false, ..store_config() };
        prop_assert_eq!(fast_frames, frames_of(&Store::open(&dir, slow_config).unwrap()));
    }

    /// Random damage to a real checkpoint, resealed with a good CRC: loading never panics
    /// or over-allocates, and the store opens (or fails typed) and reads without panicking.
    #[test]
    fn a_resealed_mutated_index_checkpoint_never_panics(
        ops in vec(op(), 1..12),
        edits in vec((any::<prop::sample::Index>(), prop_oneof![
            any::<u8>().prop_map(|b| vec![b]),
            any::<u32>().prop_map(|v| v.to_le_bytes().to_vec()),
            Just(u32::MAX.to_le_bytes().to_vec()),
            Just(u64::MAX.to_le_bytes().to_vec()),
            any::<u64>().prop_map(|v| v.to_le_bytes().to_vec()),
        ]), 1..4),
    ) {
        let root = scratch();
        let dir = root.path().join("data");
        run_ops(&dir, &ops);
        let path = dir.join(INDEX_CHECKPOINT_FILE);
        let mut bytes = std::fs::read(&path).unwrap();
        let body = bytes.len() - 4;
        for (at, value) in edits {
            let at = 8 + at.index(body - 8);
            let n = value.len().min(body - at);
            bytes[at..at + n].copy_from_slice(&value[..n]);
        }
        let sum = crc(&bytes[..body]);
        bytes[body..].copy_from_slice(&sum);
        std::fs::write(&path, &bytes).unwrap();
        let _ = load_checkpoint(&dir);
        match Store::open(&dir, StoreConfig { read_only: true, ..store_config() }) {
            Ok(store) => {
                let events = store.stats().unwrap().events;
                let _ = store.read_events(&(0..events).collect::<Vec<_>>());
                let _ = store.query(&Region::all(), None, None);
                let _ = store.query(&Region::all().with_entity("ent:1").unwrap(), None, None);
            }
            Err(Error::CorruptSegment { .. }) => {}
            Err(other) => return Err(TestCaseError::fail(format!("untyped error {other:?}"))),
        }
        no_huge_allocation()?;
    }
}

proptest! {
    #![proptest_config(cases(1000))]

    #[test]
    fn index_checkpoint_load_never_panics_on_garbage(
        bytes in vec(any::<u8>(), 0..200), garbage in index_garbage(),
    ) {
        let dir = scratch();
        for b in [&bytes, &garbage] {
            std::fs::write(dir.path().join(INDEX_CHECKPOINT_FILE), b).unwrap();
            if let Ok(Some((index, cover))) = load_checkpoint(dir.path()) {
                // Whatever loads is self-consistent enough to be written back.
                write_checkpoint(&OsStorage, dir.path(), &index, &cover).unwrap();
                prop_assert!(load_checkpoint(dir.path()).is_ok());
            }
        }
        no_huge_allocation()?;
    }
}

#[test]
fn the_allocation_guard_sees_allocations() {
    let big = vec![0u8; 1 << 20];
    assert!(LARGEST_ALLOCATION.load(Ordering::Relaxed) >= big.len());
}

/// The garbage strategies are only useful if some of their inputs get past every check:
/// sample each deterministically and count how many decode.
#[test]
fn crc_valid_garbage_reaches_the_accepting_paths() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    fn sample<T: std::fmt::Debug>(
        strategy: impl Strategy<Value = T>,
        n: usize,
        mut accept: impl FnMut(T) -> bool,
    ) -> usize {
        let mut runner = TestRunner::deterministic();
        (0..n).filter(|_| accept(strategy.new_tree(&mut runner).unwrap().current())).count()
    }
    let dir = scratch();
    let frames = sample(crc_valid_frame(), 2000, |b| matches!(decode_frame(&b), Decoded::Frame(_)));
    let hidden = sample(hidden_ranges_garbage(), 2000, |b| {
        std::fs::write(dir.path().join(HIDDEN_RANGES_FILE), b).unwrap();
        Visibility::load(dir.path()).is_ok()
    });
    std::fs::create_dir_all(dir.path().join("cursors")).unwrap();
    let cursors = sample(cursor_garbage(), 2000, |b| {
        std::fs::write(dir.path().join("cursors").join("p.ckpt"), b).unwrap();
        CursorCheckpoint::load(dir.path(), "p").is_ok()
    });
    let index = sample(index_garbage(), 2000, |b| {
        std::fs::write(dir.path().join(INDEX_CHECKPOINT_FILE), b).unwrap();
        matches!(load_checkpoint(dir.path()), Ok(Some(_)))
    });
    println!(
        "accepted of 2000: frames {frames}, hidden.ranges {hidden}, cursors {cursors}, index.ckpt {index}"
    );
    assert!(frames > 0 && hidden > 0 && cursors > 0 && index > 0);
}

/// Found by fuzzing (`fuzz/regressions/frame/tracking-batch-index-max`): a CRC-valid tracking
/// frame whose batch index is `u32::MAX` is refused, not an overflow panic. The input is read
/// as the `frame` fuzz target reads it: the first byte says whether to fix the CRC.
#[test]
fn a_tracking_frame_with_the_largest_batch_index_is_refused() {
    let input = include_bytes!("../../../fuzz/regressions/frame/tracking-batch-index-max");
    let mut buf = input[1..].to_vec();
    assert_eq!(input[0] & 1, 1, "the input asks for its CRC to be fixed");
    let len = (24 + u32::from_le_bytes(buf[0..4].try_into().unwrap()) as usize).min(buf.len());
    let crc = crc(&buf[8..len]);
    buf[4..8].copy_from_slice(&crc);
    assert!(matches!(decode_frame(&buf), Decoded::Bad(_)));
}
