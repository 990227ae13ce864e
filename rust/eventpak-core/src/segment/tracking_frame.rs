//! Tracking records (format version 3): a frame that is not an event. It records "input
//! `position` of `name` is consumed" and is the last frame of the batch it commits with
//! (alone, for a batch of no events), so the batch framing makes it atomic with that
//! batch. It carries the global sequence the next event will take and takes none itself.
//!
//! ```text
//! frame = body_len u32 | crc32c u32 | global_sequence u64 | batch_index u32 | batch_len u32 | body
//! body  = zeros [16] | position u64 | timestamp_us u64 | flags u8 (= BODY_FLAG_TRACKING)
//!         | name_len u8 | name
//! ```

use super::layout::{
    BODY_FLAG_TRACKING, FRAME_BATCH_INDEX_OFFSET, FRAME_BATCH_LEN_OFFSET, FRAME_BODY_LEN_OFFSET,
    FRAME_CRC_COVERS_FROM, FRAME_CRC_OFFSET, FRAME_GLOBAL_SEQUENCE_OFFSET, FRAME_HEADER_LEN,
    TRACKING_FIXED_LEN, TRACKING_FLAGS_OFFSET, TRACKING_NAME_LEN_OFFSET, TRACKING_POSITION_OFFSET,
    TRACKING_RESERVED_OFFSET, TRACKING_TIMESTAMP_OFFSET,
};
use crate::tags::label_problem;

/// Size of the tracking frame of a name of `name_len` bytes.
pub fn tracking_frame_len(name_len: usize) -> usize {
    FRAME_HEADER_LEN + TRACKING_FIXED_LEN + name_len
}

fn put(buf: &mut [u8], at: usize, bytes: &[u8]) {
    buf[at..at + bytes.len()].copy_from_slice(bytes);
}

/// What a tracking frame records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrackingFields<'a> {
    /// The tracking name (validated: 1-255 bytes, no control bytes).
    pub name: &'a str,
    /// The position recorded.
    pub position: u64,
    /// Commit time, from the store's clock.
    pub timestamp_us: u64,
}

/// Appends the tracking frame of `fields` to `out`: it carries `global_sequence` (the next
/// event's) and is frame `batch_index` of a batch of `batch_len`, its last.
pub fn encode_tracking_frame(
    out: &mut Vec<u8>,
    fields: TrackingFields<'_>,
    global_sequence: u64,
    batch_index: u32,
    batch_len: u32,
) {
    let start = out.len();
    let len = tracking_frame_len(fields.name.len());
    out.resize(start + len, 0);
    let frame = &mut out[start..];
    put(frame, FRAME_BODY_LEN_OFFSET, &((len - FRAME_HEADER_LEN) as u32).to_le_bytes());
    put(frame, FRAME_GLOBAL_SEQUENCE_OFFSET, &global_sequence.to_le_bytes());
    put(frame, FRAME_BATCH_INDEX_OFFSET, &batch_index.to_le_bytes());
    put(frame, FRAME_BATCH_LEN_OFFSET, &batch_len.to_le_bytes());
    let body = &mut frame[FRAME_HEADER_LEN..];
    put(body, TRACKING_POSITION_OFFSET, &fields.position.to_le_bytes());
    put(body, TRACKING_TIMESTAMP_OFFSET, &fields.timestamp_us.to_le_bytes());
    body[TRACKING_FLAGS_OFFSET] = BODY_FLAG_TRACKING;
    body[TRACKING_NAME_LEN_OFFSET] = fields.name.len() as u8;
    put(body, TRACKING_FIXED_LEN, fields.name.as_bytes());
    let crc = crc32c::crc32c(&frame[FRAME_CRC_COVERS_FROM..]);
    put(frame, FRAME_CRC_OFFSET, &crc.to_le_bytes());
}

/// A tracking frame decoded in place.
#[derive(Clone, Copy, Debug)]
pub struct TrackingView<'a> {
    /// The global sequence the next event takes (the record takes none).
    pub global_sequence: u64,
    /// Position inside its batch (always the last).
    pub batch_index: u32,
    /// Number of frames in its batch, this one included.
    pub batch_len: u32,
    /// Total frame length in bytes.
    pub len: usize,
    body: &'a [u8],
}

impl<'a> TrackingView<'a> {
    /// Checks the body of a CRC-valid frame whose flags say tracking record, and views it.
    pub(super) fn check(header: (u64, u32, u32), len: usize, body: &'a [u8]) -> Result<Self, String> {
        let (global_sequence, batch_index, batch_len) = header;
        if body.len() < TRACKING_FIXED_LEN {
            return Err("tracking record shorter than its fixed fields".into());
        }
        if body[TRACKING_FLAGS_OFFSET] != BODY_FLAG_TRACKING {
            return Err("tracking record with other flags".into());
        }
        if body[TRACKING_RESERVED_OFFSET..TRACKING_POSITION_OFFSET].iter().any(|&b| b != 0) {
            return Err("tracking record with non-zero reserved bytes".into());
        }
        if TRACKING_FIXED_LEN + body[TRACKING_NAME_LEN_OFFSET] as usize != body.len() {
            return Err("tracking record length disagrees with its name".into());
        }
        // Checked: a damaged header may hold any index, u32::MAX included.
        if batch_index.checked_add(1) != Some(batch_len) {
            return Err("tracking record is not the last frame of its batch".into());
        }
        let view = TrackingView { global_sequence, batch_index, batch_len, len, body };
        let name =
            std::str::from_utf8(&body[TRACKING_FIXED_LEN..]).map_err(|_| "tracking name is not UTF-8")?;
        if let Some(why) = label_problem(name) {
            return Err(format!("tracking name {why}"));
        }
        Ok(view)
    }

    /// The tracking name.
    pub fn name(&self) -> &'a str {
        std::str::from_utf8(&self.body[TRACKING_FIXED_LEN..]).unwrap_or_default()
    }

    /// The position recorded.
    pub fn position(&self) -> u64 {
        u64::from_le_bytes(self.body[TRACKING_POSITION_OFFSET..TRACKING_TIMESTAMP_OFFSET].try_into().unwrap())
    }

    /// When it was committed (µs since the epoch, from the store's clock).
    pub fn timestamp_us(&self) -> u64 {
        u64::from_le_bytes(self.body[TRACKING_TIMESTAMP_OFFSET..TRACKING_FLAGS_OFFSET].try_into().unwrap())
    }

    /// The fields it records.
    pub fn fields(&self) -> TrackingFields<'a> {
        TrackingFields { name: self.name(), position: self.position(), timestamp_us: self.timestamp_us() }
    }
}
