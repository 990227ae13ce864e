//! Frames: one event each, self-checking, grouped into atomic batches.
//!
//! ```text
//! frame  = body_len u32 | crc32c u32 | global_sequence u64 | batch_index u32 | batch_len u32 | body
//! body   = event_id [16] | entity_sequence u64 | timestamp_us u64 | flags u8
//!          | correlation_id [16] | causation_id [16] | prev_hash [32] | hash [32]
//!          | entity_len u16 | scope_len u16 | kind_len u8 | key_len u8 | payload_len u32
//!          | entity | scope | kind | idempotency_key | [payload_version u32] | payload
//!          | [tags section]
//! ```
//! The payload version is present only when its flag is set (format version 2); a frame
//! without it has payload version 0, which is every version-1 frame. The tags section
//! (format version 3, [`super::tags_section`]) is present only when its flag is set. A
//! frame whose flags say "tracking record" is not an event ([`super::tracking_frame`]).
//! The CRC covers every byte after itself. All integers are little-endian. The offsets
//! are named in [`super::layout`]; frames are written by [`super::frame_encode`].

use std::sync::Arc;

pub use super::frame_encode::{
    encode_frame, encode_frame_fields, frame_len, frame_len_of, payload_version_len, FrameFields,
};
use super::layout::{
    BODY_CAUSATION_ID_OFFSET, BODY_CORRELATION_ID_OFFSET, BODY_ENTITY_LEN_OFFSET,
    BODY_ENTITY_SEQUENCE_OFFSET, BODY_EVENT_ID_OFFSET, BODY_FLAGS_KNOWN, BODY_FLAGS_OFFSET,
    BODY_FLAG_CAUSATION, BODY_FLAG_IDEMPOTENCY, BODY_FLAG_PAYLOAD_VERSION, BODY_FLAG_TAGS,
    BODY_FLAG_TRACKING, BODY_HASH_OFFSET, BODY_KEY_LEN_OFFSET, BODY_KIND_LEN_OFFSET, BODY_PAYLOAD_LEN_OFFSET,
    BODY_PAYLOAD_VERSION_LEN, BODY_PREV_HASH_OFFSET, BODY_SCOPE_LEN_OFFSET, BODY_TIMESTAMP_OFFSET,
    FRAME_BATCH_INDEX_OFFSET, FRAME_BATCH_LEN_OFFSET, FRAME_BODY_LEN_OFFSET, FRAME_CRC_COVERS_FROM,
    FRAME_CRC_OFFSET, FRAME_GLOBAL_SEQUENCE_OFFSET, MIN_BODY_LEN,
};
pub use super::layout::{BODY_FIXED_LEN, FRAME_HEADER_LEN};
use super::tags_section::{check_tags_section, tags_of, TagIter};
use super::tracking_frame::TrackingView;
use crate::event::EventRecord;

/// No frame body may claim more than this; a larger length field is damage, not data.
pub const MAX_BODY_LEN: usize = 1 << 30;

/// A frame decoded in place.
#[derive(Clone, Copy, Debug)]
pub struct FrameView<'a> {
    /// Global sequence stored in the frame.
    pub global_sequence: u64,
    /// Position inside its batch.
    pub batch_index: u32,
    /// Number of frames in its batch.
    pub batch_len: u32,
    /// Total frame length in bytes.
    pub len: usize,
    body: &'a [u8],
}

/// The outcome of decoding the bytes at one offset.
#[derive(Debug)]
pub enum Decoded<'a> {
    /// A complete, CRC-valid event frame.
    Frame(FrameView<'a>),
    /// A complete, CRC-valid tracking record (not an event).
    Tracking(TrackingView<'a>),
    /// The bytes end before the frame does (a torn write, if this is the tail).
    Short,
    /// The frame is complete but damaged.
    Bad(String),
}

#[inline]
fn u16_at(b: &[u8], at: usize) -> usize {
    u16::from_le_bytes([b[at], b[at + 1]]) as usize
}
#[inline]
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}
#[inline]
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}
#[inline]
fn arr<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
    b[at..at + N].try_into().unwrap()
}

/// Lengths of entity, scope, kind, idempotency key, payload version field and payload, in
/// body order.
#[inline(always)]
fn variable_lens(body: &[u8]) -> [usize; 6] {
    let has_version = body[BODY_FLAGS_OFFSET] & BODY_FLAG_PAYLOAD_VERSION != 0;
    [
        u16_at(body, BODY_ENTITY_LEN_OFFSET),
        u16_at(body, BODY_SCOPE_LEN_OFFSET),
        body[BODY_KIND_LEN_OFFSET] as usize,
        body[BODY_KEY_LEN_OFFSET] as usize,
        if has_version { BODY_PAYLOAD_VERSION_LEN } else { 0 },
        u32_at(body, BODY_PAYLOAD_LEN_OFFSET) as usize,
    ]
}

/// `bytes` as a string if they are UTF-8. Names are nearly always ASCII, and both reads
/// of an event check them: the word-at-a-time ASCII test costs a fraction of a full
/// UTF-8 validation on strings this short.
#[inline]
fn as_str(bytes: &[u8]) -> Option<&str> {
    if bytes.is_ascii() {
        // SAFETY: ASCII bytes are valid UTF-8.
        Some(unsafe { std::str::from_utf8_unchecked(bytes) })
    } else {
        std::str::from_utf8(bytes).ok()
    }
}

/// Decodes the frame at the start of `buf`, checking its length bounds and CRC: an event
/// frame, or a tracking record.
#[inline]
pub fn decode_frame(buf: &[u8]) -> Decoded<'_> {
    if buf.len() < FRAME_HEADER_LEN {
        return Decoded::Short;
    }
    let body_len = u32_at(buf, FRAME_BODY_LEN_OFFSET) as usize;
    if !(MIN_BODY_LEN..=MAX_BODY_LEN).contains(&body_len) {
        return Decoded::Bad(format!("impossible frame body length {body_len}"));
    }
    let len = FRAME_HEADER_LEN + body_len;
    if buf.len() < len {
        return Decoded::Short;
    }
    if super::crc::crc32c(&buf[FRAME_CRC_COVERS_FROM..len]) != u32_at(buf, FRAME_CRC_OFFSET) {
        return Decoded::Bad("frame CRC mismatch".into());
    }
    let body = &buf[FRAME_HEADER_LEN..len];
    if body[BODY_FLAGS_OFFSET] & BODY_FLAG_TRACKING != 0 {
        let header = (
            u64_at(buf, FRAME_GLOBAL_SEQUENCE_OFFSET),
            u32_at(buf, FRAME_BATCH_INDEX_OFFSET),
            u32_at(buf, FRAME_BATCH_LEN_OFFSET),
        );
        return match TrackingView::check(header, len, body) {
            Ok(view) => Decoded::Tracking(view),
            Err(why) => Decoded::Bad(why),
        };
    }
    if body_len < BODY_FIXED_LEN {
        return Decoded::Bad(format!("impossible event body length {body_len}"));
    }
    if body[BODY_FLAGS_OFFSET] & !BODY_FLAGS_KNOWN != 0 {
        return Decoded::Bad("frame has unknown flags".into());
    }
    let fields_end = BODY_FIXED_LEN + variable_lens(body).iter().sum::<usize>();
    let tagged = body[BODY_FLAGS_OFFSET] & BODY_FLAG_TAGS != 0;
    match fields_end.cmp(&body_len) {
        std::cmp::Ordering::Equal if !tagged => {}
        std::cmp::Ordering::Less if tagged => {
            if let Err(why) = check_tags_section(&body[fields_end..]) {
                return Decoded::Bad(why);
            }
        }
        _ => return Decoded::Bad("frame field lengths disagree with body length".into()),
    }
    let view = FrameView::from_parts(buf, len);
    if view.batch_len == 0 || view.batch_index >= view.batch_len {
        return Decoded::Bad("frame batch position out of range".into());
    }
    if as_str(view.names_bytes()).is_none() {
        return Decoded::Bad("frame names are not UTF-8".into());
    }
    Decoded::Frame(view)
}

impl<'a> FrameView<'a> {
    /// Reads a frame that was already checked by [`decode_frame`] (its bytes are immutable
    /// since), without checking it again.
    #[inline]
    pub fn trusted(buf: &'a [u8]) -> Self {
        Self::from_parts(buf, FRAME_HEADER_LEN + u32_at(buf, FRAME_BODY_LEN_OFFSET) as usize)
    }

    #[inline]
    fn from_parts(buf: &'a [u8], len: usize) -> Self {
        FrameView {
            global_sequence: u64_at(buf, FRAME_GLOBAL_SEQUENCE_OFFSET),
            batch_index: u32_at(buf, FRAME_BATCH_INDEX_OFFSET),
            batch_len: u32_at(buf, FRAME_BATCH_LEN_OFFSET),
            len,
            body: &buf[FRAME_HEADER_LEN..len],
        }
    }

    fn names_bytes(&self) -> &'a [u8] {
        let [entity, scope, kind, ..] = variable_lens(self.body);
        &self.body[BODY_FIXED_LEN..BODY_FIXED_LEN + entity + scope + kind]
    }

    fn name_ranges(&self) -> [std::ops::Range<usize>; 6] {
        let mut at = BODY_FIXED_LEN;
        variable_lens(self.body).map(|n| {
            let r = at..at + n;
            at += n;
            r
        })
    }

    /// Entity, scope and kind as borrowed strings (validated UTF-8 by `decode_frame`).
    pub fn names(&self) -> (&'a str, &'a str, &'a str) {
        let [e, s, k, ..] = self.name_ranges();
        let all = as_str(self.names_bytes()).unwrap_or_default();
        let base = BODY_FIXED_LEN;
        // Boundaries may split a multi-byte char only in forged frames; fall back to "".
        let part = |r: std::ops::Range<usize>| all.get(r.start - base..r.end - base).unwrap_or("");
        (part(e), part(s), part(k))
    }

    /// The entity alone, as [`FrameView::names`] gives it, checking only its own bytes: an
    /// encrypted payload's associated data and key lookup need nothing else of the names.
    #[inline]
    pub fn entity(&self) -> &'a str {
        let [entity, ..] = variable_lens(self.body);
        as_str(&self.body[BODY_FIXED_LEN..BODY_FIXED_LEN + entity]).unwrap_or("")
    }

    /// The kind's bytes (UTF-8, checked by `decode_frame`), without validating the names
    /// again: for lookups by kind on the read path.
    #[inline]
    pub fn kind_bytes(&self) -> &'a [u8] {
        let [_, _, kind, ..] = self.name_ranges();
        &self.body[kind]
    }

    /// The idempotency key, if the event has one.
    pub fn idempotency_key(&self) -> Option<&'a [u8]> {
        let [_, _, _, key, ..] = self.name_ranges();
        (self.body[BODY_FLAGS_OFFSET] & BODY_FLAG_IDEMPOTENCY != 0).then(|| &self.body[key])
    }

    /// The msgpack payload bytes.
    pub fn payload(&self) -> &'a [u8] {
        // Summed directly rather than through `name_ranges`: read on every payload access.
        let [entity, scope, kind, key, version, payload] = variable_lens(self.body);
        let start = BODY_FIXED_LEN + entity + scope + kind + key + version;
        &self.body[start..start + payload]
    }

    /// The tags section as stored (what the chain hash covers); empty without tags.
    pub fn tags_section(&self) -> &'a [u8] {
        let [.., payload] = self.name_ranges();
        &self.body[payload.end..]
    }

    /// The event's tags, in the order they were given.
    pub fn tags(&self) -> TagIter<'a> {
        tags_of(self.tags_section())
    }

    /// The payload's schema version (0 when the frame stores none).
    pub fn payload_version(&self) -> u32 {
        let [.., version, _] = self.name_ranges();
        if version.is_empty() {
            0
        } else {
            u32_at(self.body, version.start)
        }
    }

    /// Raw event id bytes.
    pub fn event_id(&self) -> [u8; 16] {
        arr(self.body, BODY_EVENT_ID_OFFSET)
    }

    /// The entity clock stored in the frame.
    pub fn entity_sequence(&self) -> u64 {
        u64_at(self.body, BODY_ENTITY_SEQUENCE_OFFSET)
    }

    /// Timestamp stored in the frame.
    pub fn timestamp_us(&self) -> u64 {
        u64_at(self.body, BODY_TIMESTAMP_OFFSET)
    }

    /// Hash of the entity's previous event, as stored in the frame.
    pub fn prev_hash(&self) -> [u8; 32] {
        arr(self.body, BODY_PREV_HASH_OFFSET)
    }

    /// The chain hash stored in the frame.
    pub fn hash(&self) -> [u8; 32] {
        arr(self.body, BODY_HASH_OFFSET)
    }

    /// Id of the causing event, if any.
    pub fn causation_id(&self) -> Option<[u8; 16]> {
        (self.body[BODY_FLAGS_OFFSET] & BODY_FLAG_CAUSATION != 0)
            .then(|| arr(self.body, BODY_CAUSATION_ID_OFFSET))
    }

    /// Correlation id.
    pub fn correlation_id(&self) -> [u8; 16] {
        arr(self.body, BODY_CORRELATION_ID_OFFSET)
    }

    /// Builds an owned record.
    pub fn to_record(&self) -> EventRecord {
        let (entity, scope, kind) = self.names();
        EventRecord {
            event_id: self.event_id(),
            global_sequence: self.global_sequence,
            entity: Arc::from(entity),
            scope: Arc::from(scope),
            kind: Arc::from(kind),
            entity_sequence: self.entity_sequence(),
            timestamp_us: self.timestamp_us(),
            causation_id: self.causation_id(),
            correlation_id: self.correlation_id(),
            prev_hash: self.prev_hash(),
            hash: self.hash(),
            idempotency_key: self.idempotency_key().map(<[u8]>::to_vec),
            payload_version: self.payload_version(),
            payload: self.payload().to_vec(),
            tags: self.tags().map(str::to_owned).collect(),
        }
    }
}

#[cfg(test)]
#[path = "frame_tests.rs"]
mod tests;
