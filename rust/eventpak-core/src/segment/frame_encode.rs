//! Encoding event frames (the layout is in [`super::frame`] and `docs/format.md`).

use super::layout::{
    BODY_CAUSATION_ID_OFFSET, BODY_CORRELATION_ID_OFFSET, BODY_ENTITY_LEN_OFFSET,
    BODY_ENTITY_SEQUENCE_OFFSET, BODY_EVENT_ID_OFFSET, BODY_FIXED_LEN, BODY_FLAGS_OFFSET,
    BODY_FLAG_CAUSATION, BODY_FLAG_IDEMPOTENCY, BODY_FLAG_PAYLOAD_VERSION, BODY_FLAG_TAGS, BODY_HASH_OFFSET,
    BODY_KEY_LEN_OFFSET, BODY_KIND_LEN_OFFSET, BODY_PAYLOAD_LEN_OFFSET, BODY_PAYLOAD_VERSION_LEN,
    BODY_PREV_HASH_OFFSET, BODY_SCOPE_LEN_OFFSET, BODY_TIMESTAMP_OFFSET, FRAME_BATCH_INDEX_OFFSET,
    FRAME_BATCH_LEN_OFFSET, FRAME_BODY_LEN_OFFSET, FRAME_CRC_COVERS_FROM, FRAME_CRC_OFFSET,
    FRAME_GLOBAL_SEQUENCE_OFFSET, FRAME_HEADER_LEN,
};
use super::tags_section::{tags_section_len, write_tags};
use crate::event::{EventId, EventRecord, Hash};

/// Size of the frame that will hold `record`.
pub fn frame_len(record: &EventRecord) -> usize {
    FrameFields::from(record).frame_len()
}

/// Everything an event frame stores, borrowed from wherever it is: a stored
/// [`EventRecord`], or the request and stamps of an append (which so encodes its frames
/// without first gathering copies of its names and payloads).
#[derive(Clone, Copy, Debug)]
pub struct FrameFields<'a> {
    /// Global sequence.
    pub global_sequence: u64,
    /// Event id.
    pub event_id: EventId,
    /// Entity clock.
    pub entity_sequence: u64,
    /// Timestamp.
    pub timestamp_us: u64,
    /// Id of the causing event, if any.
    pub causation_id: Option<EventId>,
    /// Correlation id.
    pub correlation_id: EventId,
    /// Hash of the entity's previous event.
    pub prev_hash: &'a Hash,
    /// Chain hash.
    pub hash: &'a Hash,
    /// Entity.
    pub entity: &'a str,
    /// Scope.
    pub scope: &'a str,
    /// Kind.
    pub kind: &'a str,
    /// Idempotency key.
    pub idempotency_key: Option<&'a [u8]>,
    /// Payload schema version (0: no field).
    pub payload_version: u32,
    /// msgpack payload bytes.
    pub payload: &'a [u8],
    /// Tags, in the caller's order (none: no tags section).
    pub tags: &'a [String],
}

impl<'a> From<&'a EventRecord> for FrameFields<'a> {
    fn from(record: &'a EventRecord) -> Self {
        FrameFields {
            global_sequence: record.global_sequence,
            event_id: record.event_id,
            entity_sequence: record.entity_sequence,
            timestamp_us: record.timestamp_us,
            causation_id: record.causation_id,
            correlation_id: record.correlation_id,
            prev_hash: &record.prev_hash,
            hash: &record.hash,
            entity: &record.entity,
            scope: &record.scope,
            kind: &record.kind,
            idempotency_key: record.idempotency_key.as_deref(),
            payload_version: record.payload_version,
            payload: &record.payload,
            tags: &record.tags,
        }
    }
}

impl FrameFields<'_> {
    /// Size of the frame holding these fields.
    pub fn frame_len(&self) -> usize {
        frame_len_of([
            self.entity.len(),
            self.scope.len(),
            self.kind.len(),
            self.idempotency_key.map_or(0, <[u8]>::len),
            payload_version_len(self.payload_version),
            self.payload.len(),
            tags_section_len(self.tags),
        ])
    }
}

/// Bytes the payload version takes in a frame: none for version 0.
pub fn payload_version_len(payload_version: u32) -> usize {
    if payload_version == 0 {
        0
    } else {
        BODY_PAYLOAD_VERSION_LEN
    }
}

/// Size of a frame whose entity, scope, kind, idempotency key, payload version field,
/// payload and tags section have these lengths.
pub fn frame_len_of(variable_parts: [usize; 7]) -> usize {
    FRAME_HEADER_LEN + BODY_FIXED_LEN + variable_parts.iter().sum::<usize>()
}

/// The fixed part of a frame: its header and the fixed fields of its body.
const FIXED_LEN: usize = FRAME_HEADER_LEN + BODY_FIXED_LEN;

/// Writes `bytes` at `at` of the fixed part. Inlined with constant offsets into a
/// fixed-size array, every bounds check folds away.
#[inline(always)]
fn put<const N: usize>(fixed: &mut [u8; FIXED_LEN], at: usize, bytes: [u8; N]) {
    fixed[at..at + N].copy_from_slice(&bytes);
}

/// Appends the frame of `record` (position `batch_index` of a batch of `batch_len`) to `out`.
pub fn encode_frame(out: &mut Vec<u8>, record: &EventRecord, batch_index: u32, batch_len: u32) {
    encode_frame_fields(out, &record.into(), batch_index, batch_len);
}

/// Appends the frame holding `fields` (position `batch_index` of a batch of `batch_len`)
/// to `out`.
pub fn encode_frame_fields(out: &mut Vec<u8>, fields: &FrameFields<'_>, batch_index: u32, batch_len: u32) {
    // The fixed part is assembled on the stack (zeroed, so an absent causation id is
    // zeros), then the variable parts are appended after it: every byte is written once.
    let start = out.len();
    let len = fields.frame_len();
    out.reserve(len);
    let key = fields.idempotency_key;
    let version = fields.payload_version;
    let mut fixed = [0u8; FIXED_LEN];
    put(&mut fixed, FRAME_BODY_LEN_OFFSET, ((len - FRAME_HEADER_LEN) as u32).to_le_bytes());
    put(&mut fixed, FRAME_GLOBAL_SEQUENCE_OFFSET, fields.global_sequence.to_le_bytes());
    put(&mut fixed, FRAME_BATCH_INDEX_OFFSET, batch_index.to_le_bytes());
    put(&mut fixed, FRAME_BATCH_LEN_OFFSET, batch_len.to_le_bytes());
    let body = FRAME_HEADER_LEN;
    put(&mut fixed, body + BODY_EVENT_ID_OFFSET, fields.event_id);
    put(&mut fixed, body + BODY_ENTITY_SEQUENCE_OFFSET, fields.entity_sequence.to_le_bytes());
    put(&mut fixed, body + BODY_TIMESTAMP_OFFSET, fields.timestamp_us.to_le_bytes());
    fixed[body + BODY_FLAGS_OFFSET] = if fields.causation_id.is_some() { BODY_FLAG_CAUSATION } else { 0 }
        | if key.is_some() { BODY_FLAG_IDEMPOTENCY } else { 0 }
        | if version != 0 { BODY_FLAG_PAYLOAD_VERSION } else { 0 }
        | if fields.tags.is_empty() { 0 } else { BODY_FLAG_TAGS };
    put(&mut fixed, body + BODY_CORRELATION_ID_OFFSET, fields.correlation_id);
    if let Some(causation_id) = fields.causation_id {
        put(&mut fixed, body + BODY_CAUSATION_ID_OFFSET, causation_id);
    }
    put(&mut fixed, body + BODY_PREV_HASH_OFFSET, *fields.prev_hash);
    put(&mut fixed, body + BODY_HASH_OFFSET, *fields.hash);
    put(&mut fixed, body + BODY_ENTITY_LEN_OFFSET, (fields.entity.len() as u16).to_le_bytes());
    put(&mut fixed, body + BODY_SCOPE_LEN_OFFSET, (fields.scope.len() as u16).to_le_bytes());
    fixed[body + BODY_KIND_LEN_OFFSET] = fields.kind.len() as u8;
    fixed[body + BODY_KEY_LEN_OFFSET] = key.map_or(0, <[u8]>::len) as u8;
    put(&mut fixed, body + BODY_PAYLOAD_LEN_OFFSET, (fields.payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&fixed);
    out.extend_from_slice(fields.entity.as_bytes());
    out.extend_from_slice(fields.scope.as_bytes());
    out.extend_from_slice(fields.kind.as_bytes());
    out.extend_from_slice(key.unwrap_or_default());
    out.extend_from_slice(&version.to_le_bytes()[..payload_version_len(version)]);
    out.extend_from_slice(fields.payload);
    write_tags(out, fields.tags);
    debug_assert_eq!(out.len() - start, len);
    let crc = super::crc::crc32c(&out[start + FRAME_CRC_COVERS_FROM..]);
    out[start + FRAME_CRC_OFFSET..start + FRAME_CRC_COVERS_FROM].copy_from_slice(&crc.to_le_bytes());
}
