//! A format change needs a version bump and a reader for the old version, or this test fails.
//!
//! `tests/fixtures/v1_store` (a data dir) and `tests/fixtures/v1_cache` (a projection cache)
//! were written once by format-version-1 code and are committed with `v1_expected.json`;
//! `tests/fixtures/v2_store` was written once by format-version-2 code and is committed
//! with `v2_expected.json`, and `tests/fixtures/v3_store` (tags and tracking records) by
//! format-version-3 code with `v3_expected.json`. Each JSON file lists what its fixture
//! holds. Every check below runs for each data dir where it applies: every segment is read
//! through the named
//! offsets of `segment::layout`, every event's hash is recomputed, every file must decode
//! as listed and re-encode byte for byte from its decoded values (a version-1 file as this
//! build would write it now, which differs only where version 2 changed the format), and
//! a copy of each data dir must open from its checkpoint and by a full scan, serve every
//! event and causal answer as listed, and verify clean. The fixtures are never opened in
//! place: opening writes a LOCK file and may rewrite `index.ckpt`.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use eventpak_core::event::{chain_hash, EventRecord, HashedFields};
use eventpak_core::index::{load_checkpoint, write_checkpoint, INDEX_CHECKPOINT_FILE};
use eventpak_core::segment::layout::*;
use eventpak_core::segment::{
    append_seal, decode_frame, encode_frame, encode_tags, encode_tracking_frame, load_seals, Decoded, Seal,
    SegmentHeader, TrackingFields, SEALS_FILE, SEAL_RECORD_LEN, SEGMENTS_DIR, SEGMENT_MAGIC, SEGMENT_VERSION,
};
use eventpak_core::visibility::{Visibility, HIDDEN_RANGES_FILE};
use eventpak_core::{CacheMeta, CursorCheckpoint, Error, NativeCache, OsStorage, Region, Store, StoreConfig};

// ---------------------------------------------------------------------------------------
// A minimal JSON reader: enough for the expected-values files, no dependency.
// ---------------------------------------------------------------------------------------

#[derive(Debug)]
enum Json {
    Null,
    Bool(bool),
    Num(String),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl Json {
    fn parse(text: &str) -> Json {
        let mut p = Parser { b: text.as_bytes(), at: 0 };
        let value = p.value();
        p.ws();
        assert_eq!(p.at, p.b.len(), "trailing bytes after the JSON value");
        value
    }
    fn get(&self, key: &str) -> &Json {
        let Json::Obj(fields) = self else { panic!("looking up {key:?} in {self:?}") };
        fields.iter().find(|(k, _)| k == key).map(|(_, v)| v).unwrap_or_else(|| panic!("no field {key:?}"))
    }
    fn opt(&self, key: &str) -> Option<&Json> {
        let Json::Obj(fields) = self else { panic!("looking up {key:?} in {self:?}") };
        fields.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
    fn u64(&self) -> u64 {
        let Json::Num(n) = self else { panic!("not a number: {self:?}") };
        n.parse().unwrap_or_else(|_| panic!("not a u64: {n}"))
    }
    fn i64(&self) -> i64 {
        let Json::Num(n) = self else { panic!("not a number: {self:?}") };
        n.parse().unwrap_or_else(|_| panic!("not an i64: {n}"))
    }
    fn str(&self) -> &str {
        let Json::Str(s) = self else { panic!("not a string: {self:?}") };
        s
    }
    fn opt_str(&self) -> Option<&str> {
        match self {
            Json::Null => None,
            other => Some(other.str()),
        }
    }
    fn bool(&self) -> bool {
        let Json::Bool(b) = self else { panic!("not a bool: {self:?}") };
        *b
    }
    fn arr(&self) -> &[Json] {
        let Json::Arr(items) = self else { panic!("not an array: {self:?}") };
        items
    }
}

struct Parser<'a> {
    b: &'a [u8],
    at: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.b.get(self.at).is_some_and(u8::is_ascii_whitespace) {
            self.at += 1;
        }
    }
    fn next(&mut self) -> u8 {
        self.ws();
        self.at += 1;
        self.b[self.at - 1]
    }
    fn value(&mut self) -> Json {
        self.ws();
        match self.b[self.at] {
            b'{' | b'[' => {
                let object = self.next() == b'{';
                let close = if object { b'}' } else { b']' };
                let (mut fields, mut items) = (Vec::new(), Vec::new());
                self.ws();
                if self.b[self.at] == close {
                    self.at += 1;
                } else {
                    loop {
                        if object {
                            self.ws();
                            let key = self.string();
                            assert_eq!(self.next(), b':');
                            fields.push((key, self.value()));
                        } else {
                            items.push(self.value());
                        }
                        match self.next() {
                            b',' => {}
                            c if c == close => break,
                            c => panic!("unexpected {:?} at {}", c as char, self.at),
                        }
                    }
                }
                if object {
                    Json::Obj(fields)
                } else {
                    Json::Arr(items)
                }
            }
            b'"' => Json::Str(self.string()),
            _ => {
                let start = self.at;
                while self.b.get(self.at).is_some_and(|c| c.is_ascii_alphanumeric() || b"+-.".contains(c)) {
                    self.at += 1;
                }
                match &self.b[start..self.at] {
                    b"null" => Json::Null,
                    b"true" => Json::Bool(true),
                    b"false" => Json::Bool(false),
                    number => Json::Num(String::from_utf8(number.to_vec()).unwrap()),
                }
            }
        }
    }
    fn hex4(&mut self) -> u32 {
        let digits = std::str::from_utf8(&self.b[self.at..self.at + 4]).unwrap();
        self.at += 4;
        u32::from_str_radix(digits, 16).unwrap()
    }
    fn string(&mut self) -> String {
        assert_eq!(self.b[self.at], b'"', "a string starts at {}", self.at);
        self.at += 1;
        let mut out = String::new();
        loop {
            let start = self.at;
            while !matches!(self.b[self.at], b'"' | b'\\') {
                self.at += 1;
            }
            out.push_str(std::str::from_utf8(&self.b[start..self.at]).unwrap());
            self.at += 1;
            if self.b[self.at - 1] == b'"' {
                return out;
            }
            self.at += 1;
            let escaped = match self.b[self.at - 1] {
                b'n' => '\n',
                b't' => '\t',
                b'r' => '\r',
                b'b' => '\u{8}',
                b'f' => '\u{c}',
                b'u' => {
                    let mut code = self.hex4();
                    if (0xd800..0xdc00).contains(&code) {
                        assert_eq!(&self.b[self.at..self.at + 2], b"\\u", "a lone surrogate");
                        self.at += 2;
                        code = 0x10000 + ((code - 0xd800) << 10) + (self.hex4() - 0xdc00);
                    }
                    char::from_u32(code).expect("a valid code point")
                }
                other => other as char,
            };
            out.push(escaped);
        }
    }
}

// ---------------------------------------------------------------------------------------
// The fixtures and what they should hold.
// ---------------------------------------------------------------------------------------

/// One committed data dir: the format version that wrote it and what it holds.
struct Fixture {
    version: u32,
    store: &'static str,
    want: Json,
}

impl Fixture {
    /// A private copy of its data dir.
    fn copy(&self) -> (tempfile::TempDir, PathBuf) {
        copy_of(self.store)
    }
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

fn expected(file: &str) -> Json {
    Json::parse(&std::fs::read_to_string(fixtures().join(file)).unwrap_or_else(|e| panic!("{file}: {e}")))
}

/// Every data dir: format versions 1 and 2 (still read) and 3 (what this build writes).
fn all() -> [Fixture; 3] {
    [
        Fixture { version: 1, store: "v1_store", want: expected("v1_expected.json") },
        Fixture { version: 2, store: "v2_store", want: expected("v2_expected.json") },
        Fixture { version: 3, store: "v3_store", want: expected("v3_expected.json") },
    ]
}

/// A private copy of a fixture folder.
fn copy_of(name: &str) -> (tempfile::TempDir, PathBuf) {
    let root = tempfile::tempdir().unwrap();
    let copy = root.path().join(name);
    common::copy_dir(&fixtures().join(name), &copy);
    (root, copy)
}

fn unhex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text.bytes().filter(|&c| c != b'-').collect();
    digits
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).expect("hex"))
        .collect()
}

fn uuid(text: &str) -> [u8; 16] {
    unhex(text).try_into().expect("a 16-byte id")
}

fn seqs(listed: &Json) -> Vec<u64> {
    listed.arr().iter().map(Json::u64).collect()
}

/// The listed payload version; the version-1 fixture lists none (every event has 0).
fn payload_version_of(e: &Json) -> u32 {
    e.opt("payload_version").map_or(0, |v| v.u64().try_into().expect("a u32 payload version"))
}

fn record_of(e: &Json) -> EventRecord {
    EventRecord {
        event_id: uuid(e.get("event_id").str()),
        global_sequence: e.get("global_sequence").u64(),
        entity: e.get("entity").str().into(),
        scope: e.get("scope").str().into(),
        kind: e.get("kind").str().into(),
        entity_sequence: e.get("entity_sequence").u64(),
        timestamp_us: e.get("timestamp_us").u64(),
        causation_id: e.get("causation_id").opt_str().map(uuid),
        correlation_id: uuid(e.get("correlation_id").str()),
        prev_hash: unhex(e.get("prev_hash").str()).try_into().unwrap(),
        hash: unhex(e.get("hash").str()).try_into().unwrap(),
        idempotency_key: e.get("idempotency_key").opt_str().map(|k| k.as_bytes().to_vec()),
        payload_version: payload_version_of(e),
        payload: unhex(e.get("payload_hex").str()),
        tags: tags_of(e),
    }
}

/// The listed tags; the fixtures before version 3 list none.
fn tags_of(e: &Json) -> Vec<String> {
    e.opt("tags").map_or_else(Vec::new, |t| t.arr().iter().map(|t| t.str().to_owned()).collect())
}

fn u16_at(b: &[u8], at: usize) -> usize {
    u16::from_le_bytes(b[at..at + 2].try_into().unwrap()) as usize
}
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

// ---------------------------------------------------------------------------------------
// Segments, byte by byte.
// ---------------------------------------------------------------------------------------

/// Checks one frame's bytes field by field through the layout constants.
fn check_frame_bytes(frame: &[u8], e: &Json, case: &str) {
    let record = record_of(e);
    let key = record.idempotency_key.as_deref().unwrap_or_default();
    assert_eq!(frame.len(), e.get("frame_len").u64() as usize, "{case}: length");
    assert_eq!(
        u32_at(frame, FRAME_BODY_LEN_OFFSET) as usize,
        frame.len() - FRAME_HEADER_LEN,
        "{case}: body_len"
    );
    let crc = crc32c::crc32c(&frame[FRAME_CRC_COVERS_FROM..]);
    assert_eq!(u32_at(frame, FRAME_CRC_OFFSET), crc, "{case}: crc");
    assert_eq!(u64_at(frame, FRAME_GLOBAL_SEQUENCE_OFFSET), record.global_sequence, "{case}: sequence");
    assert_eq!(
        u32_at(frame, FRAME_BATCH_INDEX_OFFSET) as u64,
        e.get("batch_index").u64(),
        "{case}: batch index"
    );
    assert_eq!(u32_at(frame, FRAME_BATCH_LEN_OFFSET) as u64, e.get("batch_len").u64(), "{case}: batch len");

    let body = &frame[FRAME_HEADER_LEN..];
    let field = |at: usize, len: usize| &body[at..at + len];
    assert_eq!(field(BODY_EVENT_ID_OFFSET, 16), record.event_id, "{case}: event id");
    assert_eq!(u64_at(body, BODY_ENTITY_SEQUENCE_OFFSET), record.entity_sequence, "{case}: entity sequence");
    assert_eq!(u64_at(body, BODY_TIMESTAMP_OFFSET), record.timestamp_us, "{case}: timestamp");
    let versioned = record.payload_version != 0;
    let flags = record.causation_id.map_or(0, |_| BODY_FLAG_CAUSATION)
        | record.idempotency_key.as_ref().map_or(0, |_| BODY_FLAG_IDEMPOTENCY)
        | if versioned { BODY_FLAG_PAYLOAD_VERSION } else { 0 }
        | if record.tags.is_empty() { 0 } else { BODY_FLAG_TAGS };
    assert_eq!(body[BODY_FLAGS_OFFSET], flags, "{case}: flags");
    assert_eq!(field(BODY_CORRELATION_ID_OFFSET, 16), record.correlation_id, "{case}: correlation id");
    assert_eq!(
        field(BODY_CAUSATION_ID_OFFSET, 16),
        record.causation_id.unwrap_or_default(),
        "{case}: causation"
    );
    assert_eq!(field(BODY_PREV_HASH_OFFSET, 32), record.prev_hash, "{case}: prev_hash");
    assert_eq!(field(BODY_HASH_OFFSET, 32), record.hash, "{case}: hash");
    let lens = [
        u16_at(body, BODY_ENTITY_LEN_OFFSET),
        u16_at(body, BODY_SCOPE_LEN_OFFSET),
        body[BODY_KIND_LEN_OFFSET] as usize,
        body[BODY_KEY_LEN_OFFSET] as usize,
    ];
    let parts = [record.entity.as_bytes(), record.scope.as_bytes(), record.kind.as_bytes(), key];
    let mut at = BODY_FIXED_LEN;
    for (part, len) in parts.iter().zip(lens) {
        assert_eq!(&body[at..at + len], *part, "{case}: variable part at body offset {at}");
        at += len;
    }
    // The payload version sits between the idempotency key and the payload, only when
    // flag 4 says so.
    if versioned {
        assert_eq!(u32_at(body, at), record.payload_version, "{case}: payload version");
        at += BODY_PAYLOAD_VERSION_LEN;
    }
    let payload_len = u32_at(body, BODY_PAYLOAD_LEN_OFFSET) as usize;
    assert_eq!(&body[at..at + payload_len], record.payload, "{case}: payload at body offset {at}");
    at += payload_len;
    // The tags section closes the body, only when flag 8 says so: a count, then each tag
    // after its length.
    if !record.tags.is_empty() {
        assert_eq!(body[at] as usize, record.tags.len(), "{case}: tag count");
        at += TAGS_COUNT_LEN;
        for tag in &record.tags {
            assert_eq!(body[at] as usize, tag.len(), "{case}: tag length");
            at += TAG_LEN_LEN;
            assert_eq!(&body[at..at + tag.len()], tag.as_bytes(), "{case}: tag");
            at += tag.len();
        }
    }
    assert_eq!(at, body.len(), "{case}: the variable parts fill the body");
}

/// Checks one tracking record's bytes field by field through the layout constants, and that
/// it decodes and re-encodes byte for byte.
fn check_tracking_bytes(frame: &[u8], t: &Json, case: &str) {
    assert_eq!(frame.len(), t.get("frame_len").u64() as usize, "{case}: length");
    assert_eq!(
        u32_at(frame, FRAME_BODY_LEN_OFFSET) as usize,
        frame.len() - FRAME_HEADER_LEN,
        "{case}: body_len"
    );
    assert_eq!(
        u32_at(frame, FRAME_CRC_OFFSET),
        crc32c::crc32c(&frame[FRAME_CRC_COVERS_FROM..]),
        "{case}: crc"
    );
    let sequence = t.get("global_sequence").u64();
    assert_eq!(u64_at(frame, FRAME_GLOBAL_SEQUENCE_OFFSET), sequence, "{case}: the next event's sequence");
    let (index, len) = (t.get("batch_index").u64() as u32, t.get("batch_len").u64() as u32);
    assert_eq!(u32_at(frame, FRAME_BATCH_INDEX_OFFSET), index, "{case}: batch index");
    assert_eq!(u32_at(frame, FRAME_BATCH_LEN_OFFSET), len, "{case}: batch len");
    assert_eq!(index + 1, len, "{case}: the last frame of its batch");
    let body = &frame[FRAME_HEADER_LEN..];
    assert_eq!(&body[TRACKING_RESERVED_OFFSET..TRACKING_POSITION_OFFSET], &[0; 16], "{case}: reserved");
    assert_eq!(u64_at(body, TRACKING_POSITION_OFFSET), t.get("position").u64(), "{case}: position");
    assert_eq!(u64_at(body, TRACKING_TIMESTAMP_OFFSET), t.get("timestamp_us").u64(), "{case}: timestamp");
    assert_eq!(body[TRACKING_FLAGS_OFFSET], BODY_FLAG_TRACKING, "{case}: flags");
    let name = t.get("name").str();
    assert_eq!(body[TRACKING_NAME_LEN_OFFSET] as usize, name.len(), "{case}: name length");
    assert_eq!(&body[TRACKING_FIXED_LEN..], name.as_bytes(), "{case}: name");
    let Decoded::Tracking(view) = decode_frame(frame) else { panic!("{case}: not a tracking record") };
    let fields =
        TrackingFields { name, position: t.get("position").u64(), timestamp_us: t.get("timestamp_us").u64() };
    assert_eq!(view.fields(), fields, "{case}: decoded fields");
    let mut again = Vec::new();
    encode_tracking_frame(&mut again, fields, sequence, index, len);
    assert!(again == frame, "{case}: the encoder no longer writes these bytes");
}

#[test]
fn segment_headers_and_frames_read_through_the_layout_constants() {
    // This build writes version 3, which keeps every offset of versions 1 and 2 and encodes
    // an unversioned, untagged frame exactly as version 1 did.
    assert_eq!(SEGMENT_VERSION, 3);
    for fixture in all() {
        let want = &fixture.want;
        assert_eq!(want.get("format_version").u64(), fixture.version as u64);
        let events = want.get("events").arr();
        let segments = want.get("segments").arr();
        let least = if fixture.version == 1 { 2 } else { 3 };
        let frames: u64 = segments.iter().map(|s| s.get("frames").u64()).sum();
        assert_eq!(frames as usize, events.len(), "{}: frame counts", fixture.store);
        assert!(segments.len() >= least, "{}: spans at least {least} segments", fixture.store);
        let mut seen = 0;
        for segment in segments {
            let name = &format!("{}/{}", fixture.store, segment.get("file").str());
            let bytes = std::fs::read(
                fixtures().join(fixture.store).join(SEGMENTS_DIR).join(segment.get("file").str()),
            )
            .unwrap();
            let (id, base) = (segment.get("segment_id").u64(), segment.get("base_sequence").u64());
            assert_eq!(bytes.len() as u64, segment.get("length").u64(), "{name}: length");
            assert_eq!(&bytes[SEGMENT_MAGIC_OFFSET..SEGMENT_VERSION_OFFSET], SEGMENT_MAGIC, "{name}: magic");
            assert_eq!(u32_at(&bytes, SEGMENT_VERSION_OFFSET), fixture.version, "{name}: version");
            assert_eq!(SegmentHeader::version_of(&bytes), fixture.version, "{name}: version_of");
            assert_eq!(u32_at(&bytes, SEGMENT_FLAGS_OFFSET), 0, "{name}: flags");
            assert_eq!(u64_at(&bytes, SEGMENT_ID_OFFSET), id, "{name}: segment id");
            assert_eq!(u64_at(&bytes, SEGMENT_BASE_SEQUENCE_OFFSET), base, "{name}: base sequence");
            let crc = crc32c::crc32c(&bytes[..SEGMENT_CRC_OFFSET]);
            assert_eq!(u32_at(&bytes, SEGMENT_CRC_OFFSET), crc, "{name}: header crc");
            assert_eq!(u32_at(&bytes, SEGMENT_PADDING_OFFSET), 0, "{name}: padding");
            let header = SegmentHeader { segment_id: id, base_sequence: base };
            assert_eq!(SegmentHeader::decode(&bytes), Ok(header), "{name}: decoded header");
            let mut again = header.encode();
            if fixture.version < SEGMENT_VERSION {
                // The encoder writes the current version; with the version field set back
                // to the fixture's and the CRC recomputed, the bytes are the fixture's.
                let version = fixture.version.to_le_bytes();
                again[SEGMENT_VERSION_OFFSET..SEGMENT_FLAGS_OFFSET].copy_from_slice(&version);
                let crc = crc32c::crc32c(&again[..SEGMENT_CRC_OFFSET]);
                again[SEGMENT_CRC_OFFSET..SEGMENT_PADDING_OFFSET].copy_from_slice(&crc.to_le_bytes());
            }
            assert_eq!(again[..], bytes[..SEGMENT_HEADER_LEN], "{name}: re-encoded header");

            let mine: Vec<&Json> = events.iter().filter(|e| e.get("segment_id").u64() == id).collect();
            assert_eq!(mine.len() as u64, segment.get("frames").u64(), "{name}: frame count");
            assert_eq!(mine[0].get("global_sequence").u64(), base, "{name}: the first frame is the base");
            // Version 3: tracking records lie between the events, each where the JSON says.
            let tracked: Vec<&Json> = fixture
                .want
                .opt("tracking")
                .map_or(&[][..], Json::arr)
                .iter()
                .filter(|t| t.get("segment_id").u64() == id)
                .collect();
            let (mut events_left, mut tracked_left) =
                (mine.into_iter().peekable(), tracked.into_iter().peekable());
            let mut at = SEGMENT_HEADER_LEN;
            loop {
                if let Some(t) = tracked_left.next_if(|t| t.get("offset").u64() as usize == at) {
                    let frame = &bytes[at..at + t.get("frame_len").u64() as usize];
                    check_tracking_bytes(frame, t, &format!("{name} tracking record at {at}"));
                    at += frame.len();
                    continue;
                }
                let Some(e) = events_left.next() else { break };
                let case = format!("{name} frame {}", e.get("global_sequence").u64());
                assert_eq!(e.get("offset").u64() as usize, at, "{case}: offset");
                let frame = &bytes[at..at + e.get("frame_len").u64() as usize];
                check_frame_bytes(frame, e, &case);
                let Decoded::Frame(view) = decode_frame(frame) else { panic!("{case}: does not decode") };
                assert_eq!(view.to_record(), record_of(e), "{case}: decoded record");
                assert_eq!(view.payload_version(), payload_version_of(e), "{case}: decoded payload version");
                let (index, len) = (view.batch_index, view.batch_len);
                let mut again = Vec::new();
                encode_frame(&mut again, &record_of(e), index, len);
                assert!(again == frame, "{case}: the encoder no longer writes these bytes");
                at += frame.len();
                seen += 1;
            }
            assert!(tracked_left.next().is_none(), "{name}: a listed tracking record is not where it says");
            assert_eq!(at, bytes.len(), "{name}: frames fill the segment");
        }
        assert_eq!(seen, events.len(), "{}: every listed event is in a segment", fixture.store);
    }
    // What each fixture is there for: version 1 has no versioned payload, version 2 has
    // payload versions 0, 1 and 2, also inside a batch.
    for fixture in all() {
        let events = fixture.want.get("events").arr();
        let versions = |batched: bool| -> std::collections::BTreeSet<u32> {
            events
                .iter()
                .filter(|e| !batched || e.get("batch_len").u64() > 1)
                .map(payload_version_of)
                .collect()
        };
        let want: Vec<u32> = if fixture.version == 1 { vec![0] } else { vec![0, 1, 2] };
        if fixture.version == 3 {
            // Version 3 is there for tags and tracking records: events with tags, in a batch too.
            let tagged = |e: &&Json| !tags_of(e).is_empty();
            assert!(events.iter().filter(tagged).any(|e| e.get("batch_len").u64() > 1), "tags in a batch");
            assert!(events.iter().any(|e| tags_of(e).is_empty()), "events without tags");
        }
        assert_eq!(versions(false).into_iter().collect::<Vec<_>>(), want, "{}", fixture.store);
        if fixture.version == 2 {
            assert_eq!(versions(true).into_iter().collect::<Vec<_>>(), want, "{}: in a batch", fixture.store);
        }
    }
}

#[test]
fn every_event_hash_is_recomputed_from_its_fields() {
    for fixture in all() {
        let events = fixture.want.get("events").arr();
        // Visible events chain per entity; a hidden event's prev_hash was provisional.
        let mut heads: BTreeMap<String, [u8; 32]> = BTreeMap::new();
        for e in events {
            let case = format!("{} event {}", fixture.store, e.get("global_sequence").u64());
            let record = record_of(e);
            let tags = encode_tags(&record.tags);
            let fields = HashedFields {
                entity_sequence: record.entity_sequence,
                entity: &record.entity,
                scope: &record.scope,
                kind: &record.kind,
                payload_version: record.payload_version,
                payload: &record.payload,
                tags: &tags,
            };
            assert_eq!(chain_hash(&record.prev_hash, fields), record.hash, "{case}: hash");
            assert_eq!(e.get("receipt_hash").str(), e.get("hash").str(), "{case}: receipt hash");
            if record.payload_version != 0 {
                // The payload version is covered: the same event unversioned hashes otherwise.
                let unversioned = HashedFields { payload_version: 0, ..fields };
                assert_ne!(chain_hash(&record.prev_hash, unversioned), record.hash, "{case}: version hashed");
            }
            if e.get("visible").bool() {
                let head = heads.entry(record.entity.to_string()).or_default();
                assert_eq!(record.prev_hash, *head, "{case}: prev_hash is the entity's previous hash");
                *head = record.hash;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Seal records.
// ---------------------------------------------------------------------------------------

#[test]
fn seal_records_decode_and_re_encode_byte_for_byte() {
    for fixture in all() {
        let (_root, copy) = fixture.copy();
        let dir = copy.join(SEGMENTS_DIR);
        let segments = fixture.want.get("segments").arr();
        let listed: BTreeMap<u64, Seal> = segments
            .iter()
            .filter_map(|s| {
                let seal = s.opt("seal").filter(|seal| !matches!(seal, Json::Null))?;
                let seal =
                    Seal { len: seal.get("length").u64(), next_sequence: seal.get("next_sequence").u64() };
                Some((s.get("segment_id").u64(), seal))
            })
            .collect();
        let loaded = load_seals(&dir).unwrap();
        assert_eq!(
            (loaded.by_segment, loaded.torn_bytes),
            (listed.clone(), 0),
            "{}: seal records",
            fixture.store
        );
        if fixture.version == 1 {
            // Version 1 had no seal records.
            assert!(listed.is_empty() && !dir.join(SEALS_FILE).exists(), "{}: no seals file", fixture.store);
            continue;
        }
        // Every segment but the newest is sealed where it ends, naming the next base.
        assert_eq!(listed.len(), segments.len() - 1, "{}: sealed segments", fixture.store);
        for (segment, next) in segments.iter().zip(&segments[1..]) {
            let seal = listed[&segment.get("segment_id").u64()];
            assert_eq!(seal.len, segment.get("length").u64(), "{}: sealed length", segment.get("file").str());
            assert_eq!(
                seal.next_sequence,
                next.get("base_sequence").u64(),
                "{}: next",
                segment.get("file").str()
            );
        }
        let bytes = std::fs::read(dir.join(SEALS_FILE)).unwrap();
        assert_eq!(bytes.len(), listed.len() * SEAL_RECORD_LEN, "{}: seals file length", fixture.store);
        for record in bytes.chunks(SEAL_RECORD_LEN) {
            assert_eq!(&record[..4], b"SEAL", "{}: seal record magic", fixture.store);
        }
        let out = tempfile::tempdir().unwrap();
        for (&id, &seal) in &listed {
            append_seal(&OsStorage, out.path(), id, seal).unwrap();
        }
        let written = std::fs::read(out.path().join(SEALS_FILE)).unwrap();
        assert!(written == bytes, "{}: seal record bytes changed", fixture.store);
    }
}

// ---------------------------------------------------------------------------------------
// The store over a copy.
// ---------------------------------------------------------------------------------------

/// What `causes`, `effects`, `descendants` and `correlated` answer for the visible event
/// `e`, worked out from the listed event fields.
fn causal_answers(events: &[Json], e: &Json) -> [Vec<u64>; 4] {
    let visible: Vec<&Json> = events.iter().filter(|e| e.get("visible").bool()).collect();
    let seq_of = |id: &str| {
        visible.iter().find(|v| v.get("event_id").str() == id).map(|v| v.get("global_sequence").u64())
    };
    let effects = |seq: u64| -> Vec<u64> {
        let id = events[seq as usize].get("event_id").str();
        visible
            .iter()
            .filter(|v| v.get("causation_id").opt_str() == Some(id))
            .map(|v| v.get("global_sequence").u64())
            .collect()
    };
    let seq = e.get("global_sequence").u64();
    let mut causes = vec![seq];
    let mut at = seq;
    while let Some(cause) =
        events[at as usize].get("causation_id").opt_str().and_then(seq_of).filter(|&c| c < at)
    {
        causes.push(cause);
        at = cause;
    }
    let (mut descendants, mut level) = (Vec::new(), vec![seq]);
    while !level.is_empty() {
        level = level.iter().flat_map(|&cause| effects(cause)).collect();
        descendants.extend_from_slice(&level);
    }
    let correlation = e.get("correlation_id").str();
    let correlated = visible
        .iter()
        .filter(|v| v.get("correlation_id").str() == correlation)
        .map(|v| v.get("global_sequence").u64())
        .collect();
    [causes, effects(seq), descendants, correlated]
}

fn check_store(store: &Store, fixture: &Fixture, case: &str) {
    let case = &format!("{} {case}", fixture.store);
    let events = fixture.want.get("events").arr();
    let n = events.len() as u64;
    assert_eq!(store.stats().unwrap().events, n, "{case}");
    let stored = store.read_events(&(0..n).collect::<Vec<_>>()).unwrap();
    assert_eq!(stored.len(), events.len(), "{case}: every event, hidden ones included");
    for (event, e) in stored.iter().zip(events) {
        assert_eq!(event.record(), record_of(e), "{case}: event {}", e.get("global_sequence").u64());
        assert_eq!(e.get("receipt_hash").str(), e.get("hash").str());
    }
    if let Some(Json::Obj(positions)) = fixture.want.opt("tracking_positions") {
        for (name, position) in positions {
            assert_eq!(
                store.tracking_position(name).unwrap(),
                Some(position.u64()),
                "{case}: tracking {name}"
            );
        }
    }
    let visible: Vec<u64> =
        store.query(&Region::all(), None, None).unwrap().iter().map(|e| e.global_sequence()).collect();
    let listed: Vec<u64> =
        events.iter().filter(|e| e.get("visible").bool()).map(|e| e.get("global_sequence").u64()).collect();
    assert_eq!(visible, listed, "{case}: visible events");
    for e in events {
        let seq = e.get("global_sequence").u64();
        match store.get(&uuid(e.get("event_id").str())) {
            Ok(found) => assert_eq!(found.global_sequence(), seq, "{case}: get {seq}"),
            Err(Error::EventNotFound(_)) => assert!(!e.get("visible").bool(), "{case}: get {seq}"),
            Err(other) => panic!("{case}: get {seq}: {other}"),
        }
    }
    // Every visible effect is listed under its visible cause, and every correlation is
    // answered (a version-1 store's causal indexes are rebuilt from its frames, a
    // version-2 store's come from its checkpoint or its frames). The version-2 fixture
    // also lists the answers, which must be the same.
    let sequences = |found: Vec<eventpak_core::StoredEvent>| -> Vec<u64> {
        found.iter().map(|e| e.global_sequence()).collect()
    };
    for e in events.iter().filter(|e| e.get("visible").bool()) {
        let seq = e.get("global_sequence").u64();
        let id = uuid(e.get("event_id").str());
        let [causes, effects, descendants, correlated] = causal_answers(events, e);
        if fixture.version == 2 {
            assert_eq!(seqs(e.get("causes")), causes, "{case}: listed causes of {seq}");
            assert_eq!(seqs(e.get("effects")), effects, "{case}: listed effects of {seq}");
            assert_eq!(seqs(e.get("descendants")), descendants, "{case}: listed descendants of {seq}");
            assert_eq!(seqs(e.get("correlated")), correlated, "{case}: listed correlated of {seq}");
        }
        assert_eq!(sequences(store.effects(&id).unwrap()), effects, "{case}: effects of {seq}");
        let correlation = uuid(e.get("correlation_id").str());
        let served = sequences(store.correlated(&correlation, None, None).unwrap());
        assert_eq!(served, correlated, "{case}: correlated with the correlation of {seq}");
        assert_eq!(sequences(store.causes(&id, None).unwrap()), causes, "{case}: causes of {seq}");
        assert_eq!(
            sequences(store.descendants(&id, None).unwrap()),
            descendants,
            "{case}: descendants of {seq}"
        );
    }
}

/// `verify` of an opened copy finds nothing wrong and checks every event and segment.
fn check_verify(store: &Store, fixture: &Fixture, case: &str) {
    let report = store.verify(&mut |_, _| true).unwrap();
    assert!(report.ok(), "{} {case}: verify found {:?}", fixture.store, report.problems);
    assert_eq!(report.events, fixture.want.get("events").arr().len() as u64, "{} {case}", fixture.store);
    assert_eq!(report.segments, fixture.want.get("segments").arr().len() as u64, "{} {case}", fixture.store);
}

#[test]
fn a_copy_opens_from_its_checkpoint_and_by_a_full_scan() {
    for fixture in all() {
        let (_root, copy) = fixture.copy();
        let lock = fixtures().join(fixture.store).join("LOCK");
        assert!(!lock.exists(), "{}: committed without its LOCK file", fixture.store);
        let store = Store::open(&copy, StoreConfig::default()).unwrap();
        let stats = store.stats().unwrap();
        assert_eq!(
            (stats.recovery.index_checkpoint, stats.recovery.scanned_events),
            ("loaded", 0),
            "{}",
            fixture.store
        );
        assert_eq!(
            stats.segments as u64,
            fixture.want.get("stats").get("segments").u64(),
            "{}",
            fixture.store
        );
        check_store(&store, &fixture, "checkpoint");
        check_verify(&store, &fixture, "checkpoint");
        store.close().unwrap();

        let (_root, copy) = fixture.copy();
        let scan = StoreConfig { enable_index_checkpoint: false, read_only: true, ..StoreConfig::default() };
        let store = Store::open(&copy, scan).unwrap();
        let stats = store.stats().unwrap();
        assert_eq!(stats.recovery.index_checkpoint, "disabled", "{}", fixture.store);
        assert_eq!(
            stats.recovery.scanned_events,
            fixture.want.get("events").arr().len() as u64,
            "{}",
            fixture.store
        );
        check_store(&store, &fixture, "full scan");
        check_verify(&store, &fixture, "full scan");
    }
}

// ---------------------------------------------------------------------------------------
// The other files: decoded as listed, re-encoded byte for byte.
// ---------------------------------------------------------------------------------------

#[test]
fn hidden_ranges_decode_and_re_encode_byte_for_byte() {
    for fixture in all() {
        let want = &fixture.want;
        let (_root, copy) = fixture.copy();
        let cancelled =
            want.get("hidden_ranges").arr().iter().map(|r| (r.arr()[0].u64(), r.arr()[1].u64())).collect();
        assert!(matches!(want.get("open_fence"), Json::Null));
        let visibility = Visibility { cancelled, open_fence: None };
        assert_eq!(Visibility::load(&copy).unwrap(), visibility, "{}", fixture.store);
        let out = tempfile::tempdir().unwrap();
        visibility.save(&OsStorage, out.path()).unwrap();
        let written = std::fs::read(out.path().join(HIDDEN_RANGES_FILE)).unwrap();
        let old = std::fs::read(copy.join(HIDDEN_RANGES_FILE)).unwrap();
        assert!(written == old, "{}: hidden.ranges bytes changed", fixture.store);
    }
}

#[test]
fn cursor_checkpoints_decode_and_re_encode_byte_for_byte() {
    for fixture in all() {
        let (_root, copy) = fixture.copy();
        let out = tempfile::tempdir().unwrap();
        let listed = fixture.want.get("cursor_checkpoints").arr();
        assert!(!listed.is_empty());
        for c in listed {
            let id = c.get("id").str();
            let checkpoint = CursorCheckpoint {
                position: c.get("position").u64(),
                started: c.get("started").bool(),
                process_boot_ns: match c.get("process_boot_ns") {
                    Json::Null => None,
                    n => Some(n.u64()),
                },
                region_identity: c.get("region_identity").opt_str().map(str::to_owned),
            };
            let case = format!("{} {id}", fixture.store);
            assert_eq!(CursorCheckpoint::load(&copy, id).unwrap(), Some(checkpoint.clone()), "{case}");
            checkpoint.save(out.path(), id).unwrap();
            let file = format!("cursors/{id}.ckpt");
            let written = std::fs::read(out.path().join(&file)).unwrap();
            assert!(written == std::fs::read(copy.join(&file)).unwrap(), "{case}: {file} bytes changed");
        }
    }
}

/// The causal sections at the end of a version-2 `index.ckpt`, read from its bytes:
/// `(effect, cause)` links, then `(sequence, correlation id)` pairs.
type CausalSections = (Vec<(u64, u64)>, Vec<(u64, [u8; 16])>);

fn causal_sections(bytes: &[u8], n_links: usize, n_correlations: usize) -> CausalSections {
    let crc_at = bytes.len() - 4;
    let mut at = crc_at - (8 + 16 * n_links + 8 + 24 * n_correlations);
    assert_eq!(u64_at(bytes, at), n_links as u64, "the link count");
    at += 8;
    let links = (0..n_links).map(|i| (u64_at(bytes, at + 16 * i), u64_at(bytes, at + 16 * i + 8))).collect();
    at += 16 * n_links;
    assert_eq!(u64_at(bytes, at), n_correlations as u64, "the correlation count");
    at += 8;
    let correlations = (0..n_correlations)
        .map(|i| (u64_at(bytes, at + 24 * i), bytes[at + 24 * i + 8..at + 24 * i + 24].try_into().unwrap()))
        .collect();
    (links, correlations)
}

/// The tag and tracking sections of a version-3 checkpoint with no tag and no tracking
/// record: two empty name tables (u32 counts) around an empty tracking list (a u64 count).
const EMPTY_VERSION_3_SECTIONS: [u8; 16] = [0; 16];

/// What this build writes for an older checkpoint's index (which has no holes): the old
/// bytes (without their CRC) with the version field set to 4, an empty hole section (a u64
/// count) between the name tables and the entries, and the sections added at the end since,
/// then a new CRC.
fn as_version_4(old: &[u8], added: &[u8]) -> Vec<u8> {
    let body = &old[..old.len() - 4];
    let mut names_end = 24 + 16 * u32_at(body, 20) as usize;
    for _table in 0..3 {
        let count = u32_at(body, names_end);
        names_end += 4;
        for _ in 0..count {
            names_end += 4 + u32_at(body, names_end) as usize;
        }
    }
    let mut expected = body[..names_end].to_vec();
    expected.extend_from_slice(&0u64.to_le_bytes());
    expected.extend_from_slice(&body[names_end..]);
    expected[8..12].copy_from_slice(&4u32.to_le_bytes());
    expected.extend_from_slice(added);
    let crc = crc32c::crc32c(&expected);
    expected.extend_from_slice(&crc.to_le_bytes());
    expected
}

#[test]
fn the_index_checkpoint_decodes_and_re_encodes_as_version_4() {
    for fixture in all() {
        let want = &fixture.want;
        let store = fixture.store;
        let (_root, copy) = fixture.copy();
        let (index, cover) = load_checkpoint(&copy).unwrap().expect("index.ckpt");
        let listed = want.get("index_checkpoint");
        let segments: Vec<(u64, u64)> =
            listed.get("segments").arr().iter().map(|s| (s.arr()[0].u64(), s.arr()[1].u64())).collect();
        assert_eq!(cover.segments, segments, "{store}");
        assert_eq!(cover.last_timestamp_us, listed.get("last_timestamp_us").u64(), "{store}");
        let events = want.get("events").arr();
        assert_eq!(index.len(), events.len() as u64, "{store}");
        for e in events {
            let seq = e.get("global_sequence").u64();
            let entry = index.entry(seq).unwrap();
            assert_eq!(entry.offset, e.get("offset").u64(), "{store} entry {seq}");
            assert_eq!(entry.len as u64, e.get("frame_len").u64(), "{store} entry {seq}");
            assert_eq!(entry.visible, e.get("visible").bool(), "{store} entry {seq}");
            let by_id = index.sequence_of(&uuid(e.get("event_id").str()));
            assert_eq!(
                by_id,
                e.get("visible").bool().then_some(seq),
                "{store} entry {seq}: hidden events have no id lookup"
            );
        }
        let keys = want.get("idempotency").arr();
        // Idempotency keys are written in hash-map order, so the byte comparisons below
        // hold because each fixture has exactly one key.
        assert_eq!(keys.len(), 1, "{store}: one idempotency key");
        for key in keys {
            let seq = key.get("global_sequence").u64();
            assert_eq!(index.sequence_of_key(key.get("key").str().as_bytes()), Some(seq), "{store}");
        }
        let out = tempfile::tempdir().unwrap();
        write_checkpoint(&OsStorage, out.path(), &index, &cover).unwrap();
        let written = std::fs::read(out.path().join(INDEX_CHECKPOINT_FILE)).unwrap();
        let old = std::fs::read(copy.join(INDEX_CHECKPOINT_FILE)).unwrap();
        if fixture.version == 1 {
            // A version-1 checkpoint holds no causal indexes: whoever loads it rebuilds them
            // from the frames (recovery does), so the loaded index has none yet.
            assert!(!cover.has_causal, "a version-1 checkpoint has no causal sections");
            // Version 4 is version 1 with the version field set to 4, no hole postings, the
            // causal sections (here two empty counts) and the empty tag and tracking sections.
            let added: Vec<u8> = [[0u8; 16], EMPTY_VERSION_3_SECTIONS].concat();
            let expected = as_version_4(&old, &added);
            assert!(written == expected, "index.ckpt version 4 is not version 1 plus the later sections");
            continue;
        }
        assert!(cover.has_causal, "{store}: a version-2 checkpoint has causal sections");
        assert_eq!(u32_at(&old, 8), fixture.version, "{store}: index.ckpt version");
        if fixture.version == 3 {
            assert!(
                written == as_version_4(&old, &[]),
                "{store}: index.ckpt version 4 is not version 3 plus no holes"
            );
            check_version_3_sections(&index, listed, &cover.segments);
            continue;
        }
        // Version 4 is version 2 plus no hole postings and the (empty) tag and tracking sections.
        let expected = as_version_4(&old, &EMPTY_VERSION_3_SECTIONS);
        assert!(
            written == expected,
            "{store}: index.ckpt version 4 is not version 2 plus the later sections"
        );
        // The causal sections, as listed: sorted by the first sequence, every link pointing
        // backwards; the loaded index answers effects from them (visible effects only).
        let links: Vec<(u64, u64)> =
            listed.get("links").arr().iter().map(|l| (l.arr()[0].u64(), l.arr()[1].u64())).collect();
        let correlations: Vec<(u64, [u8; 16])> = listed
            .get("correlations")
            .arr()
            .iter()
            .map(|c| (c.arr()[0].u64(), uuid(c.arr()[1].str())))
            .collect();
        assert!(!links.is_empty() && !correlations.is_empty(), "{store}: causal sections");
        assert!(links.windows(2).all(|w| w[0].0 < w[1].0) && links.iter().all(|(e, c)| c < e), "{store}");
        assert!(correlations.windows(2).all(|w| w[0].0 < w[1].0), "{store}");
        assert_eq!(
            causal_sections(&old, links.len(), correlations.len()),
            (links.clone(), correlations.clone())
        );
        let visible = |seq: u64| events[seq as usize].get("visible").bool();
        for e in events.iter().filter(|e| e.get("visible").bool()) {
            let seq = e.get("global_sequence").u64();
            let effects: Vec<u64> = links
                .iter()
                .filter(|&&(effect, cause)| cause == seq && visible(effect))
                .map(|l| l.0)
                .collect();
            assert_eq!(index.effects_of(seq), effects, "{store}: effects of {seq} from the checkpoint");
        }
        // Each link is an event caused by an earlier event of the store; each correlation
        // an event whose correlation is not its own id.
        let id_seq = |id: &str| {
            events.iter().find(|e| e.get("event_id").str() == id).map(|e| e.get("global_sequence").u64())
        };
        let from_events: Vec<(u64, u64)> = events
            .iter()
            .filter_map(|e| Some((e.get("global_sequence").u64(), id_seq(e.get("causation_id").opt_str()?)?)))
            .collect();
        assert_eq!(links, from_events, "{store}: links");
        let from_events: Vec<(u64, [u8; 16])> = events
            .iter()
            .filter(|e| e.get("correlation_id").str() != e.get("event_id").str())
            .map(|e| (e.get("global_sequence").u64(), uuid(e.get("correlation_id").str())))
            .collect();
        assert_eq!(correlations, from_events, "{store}: correlations");
    }
}

/// The tag postings and tracking records of the version-3 checkpoint, as listed (a tracking
/// record names its segment by position in the checkpoint's segment list).
fn check_version_3_sections(index: &eventpak_core::index::Index, listed: &Json, segments: &[(u64, u64)]) {
    let Json::Obj(tags) = listed.get("tags") else { panic!("tags are listed by name") };
    assert!(tags.iter().any(|(_, seqs)| seqs.arr().is_empty()), "a tag of hidden events only");
    for (tag, listed_seqs) in tags {
        assert_eq!(index.tag_postings(tag), seqs(listed_seqs), "postings of {tag}");
    }
    let frames = index.tracking().frames();
    let records = listed.get("tracking").arr();
    assert_eq!(frames.len(), records.len(), "tracking records");
    for (frame, record) in frames.iter().zip(records) {
        let r = record.arr();
        assert_eq!(segments[frame.segment as usize].0, r[0].u64(), "tracking record segment");
        assert_eq!((frame.offset, frame.len as u64), (r[1].u64(), r[2].u64()), "tracking record place");
        assert_eq!(index.tracking().name(frame.name), r[3].str(), "tracking record name");
        assert_eq!((frame.position, frame.sequence), (r[4].u64(), r[5].u64()), "tracking record position");
    }
}

#[test]
fn the_cache_entry_decodes_and_re_encodes_byte_for_byte() {
    // Only the version-1 fixture has a cache: its format did not change in version 2.
    let listed = expected("v1_expected.json");
    let c = listed.get("cache");
    let file = c.get("file").str();
    let (_root, copy) = copy_of("v1_cache");
    let key = unhex(c.get("key_hex").str());
    let meta = CacheMeta { watermark: c.get("watermark").u64(), cached_at_us: c.get("cached_at_us").i64() };
    let value = unhex(c.get("value_hex").str());
    assert_eq!(NativeCache::open(&copy).unwrap().get(&key).unwrap(), Some((value.clone(), meta)));
    let out = tempfile::tempdir().unwrap();
    NativeCache::open(out.path()).unwrap().put(&key, &value, meta).unwrap();
    let written = std::fs::read(out.path().join(file)).unwrap();
    assert!(written == std::fs::read(copy.join(file)).unwrap(), "{file}: bytes changed");
    assert!(expected("v2_expected.json").opt("cache").is_none(), "the version-2 fixture has no cache");
    assert!(expected("v3_expected.json").opt("cache").is_none(), "the version-3 fixture has no cache");
}
