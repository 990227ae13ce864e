//! Where every fixed field of a segment file sits (`docs/format.md`), named once.
//!
//! Each offset is the previous field's offset plus that field's size, so the encoders and
//! decoders cannot disagree on a position and a field cannot change size without moving
//! everything after it. These positions are shared by format versions 1, 2 and 3 (version 2
//! only adds the optional payload version field, version 3 the optional tags section and
//! the tracking record); changing one is a format change (a version bump, a reader for the
//! old version and a new fixture).

use std::mem::size_of;

/// An event id or correlation id: a UUID, big-endian.
type Uuid = [u8; 16];
/// A Blake3 chain hash.
type Hash = [u8; 32];

// Segment header: magic | version | flags | segment id | base sequence | crc32c | padding.

/// Offset of the segment magic `EVPKSEG\0`.
pub const SEGMENT_MAGIC_OFFSET: usize = 0;
/// Offset of the format version (u32).
pub const SEGMENT_VERSION_OFFSET: usize = SEGMENT_MAGIC_OFFSET + size_of::<[u8; 8]>();
/// Offset of the header flags (u32, zero in version 1).
pub const SEGMENT_FLAGS_OFFSET: usize = SEGMENT_VERSION_OFFSET + size_of::<u32>();
/// Offset of the segment id (u64).
pub const SEGMENT_ID_OFFSET: usize = SEGMENT_FLAGS_OFFSET + size_of::<u32>();
/// Offset of the base sequence (u64): global sequence of the segment's first frame.
pub const SEGMENT_BASE_SEQUENCE_OFFSET: usize = SEGMENT_ID_OFFSET + size_of::<u64>();
/// Offset of the header CRC-32C (u32), which covers every byte before it.
pub const SEGMENT_CRC_OFFSET: usize = SEGMENT_BASE_SEQUENCE_OFFSET + size_of::<u64>();
/// Offset of the zero padding (u32).
pub const SEGMENT_PADDING_OFFSET: usize = SEGMENT_CRC_OFFSET + size_of::<u32>();
/// Size of the segment header in bytes; the first frame starts here.
pub const SEGMENT_HEADER_LEN: usize = SEGMENT_PADDING_OFFSET + size_of::<u32>();

// Frame header: body_len | crc32c | global_sequence | batch_index | batch_len.

/// Offset of `body_len` (u32) in a frame.
pub const FRAME_BODY_LEN_OFFSET: usize = 0;
/// Offset of the frame CRC-32C (u32).
pub const FRAME_CRC_OFFSET: usize = FRAME_BODY_LEN_OFFSET + size_of::<u32>();
/// Offset of the global sequence (u64); the CRC covers every byte from here to the end.
pub const FRAME_GLOBAL_SEQUENCE_OFFSET: usize = FRAME_CRC_OFFSET + size_of::<u32>();
/// Offset of the frame's position in its batch (u32).
pub const FRAME_BATCH_INDEX_OFFSET: usize = FRAME_GLOBAL_SEQUENCE_OFFSET + size_of::<u64>();
/// Offset of the number of frames in its batch (u32).
pub const FRAME_BATCH_LEN_OFFSET: usize = FRAME_BATCH_INDEX_OFFSET + size_of::<u32>();
/// Bytes before the body.
pub const FRAME_HEADER_LEN: usize = FRAME_BATCH_LEN_OFFSET + size_of::<u32>();
/// First byte the frame CRC covers: everything after the CRC itself.
pub const FRAME_CRC_COVERS_FROM: usize = FRAME_CRC_OFFSET + size_of::<u32>();

// Body, offsets from the body's first byte.

/// Offset of the event id (UUIDv7, big-endian).
pub const BODY_EVENT_ID_OFFSET: usize = 0;
/// Offset of `entity_sequence` (u64).
pub const BODY_ENTITY_SEQUENCE_OFFSET: usize = BODY_EVENT_ID_OFFSET + size_of::<Uuid>();
/// Offset of `timestamp_us` (u64).
pub const BODY_TIMESTAMP_OFFSET: usize = BODY_ENTITY_SEQUENCE_OFFSET + size_of::<u64>();
/// Offset of the body flags (u8): [`BODY_FLAG_CAUSATION`], [`BODY_FLAG_IDEMPOTENCY`].
pub const BODY_FLAGS_OFFSET: usize = BODY_TIMESTAMP_OFFSET + size_of::<u64>();
/// Offset of the correlation id.
pub const BODY_CORRELATION_ID_OFFSET: usize = BODY_FLAGS_OFFSET + size_of::<u8>();
/// Offset of the causation id (zeros when absent).
pub const BODY_CAUSATION_ID_OFFSET: usize = BODY_CORRELATION_ID_OFFSET + size_of::<Uuid>();
/// Offset of the hash of the entity's previous event.
pub const BODY_PREV_HASH_OFFSET: usize = BODY_CAUSATION_ID_OFFSET + size_of::<Uuid>();
/// Offset of this event's chain hash.
pub const BODY_HASH_OFFSET: usize = BODY_PREV_HASH_OFFSET + size_of::<Hash>();
/// Offset of the entity length (u16).
pub const BODY_ENTITY_LEN_OFFSET: usize = BODY_HASH_OFFSET + size_of::<Hash>();
/// Offset of the scope length (u16).
pub const BODY_SCOPE_LEN_OFFSET: usize = BODY_ENTITY_LEN_OFFSET + size_of::<u16>();
/// Offset of the kind length (u8).
pub const BODY_KIND_LEN_OFFSET: usize = BODY_SCOPE_LEN_OFFSET + size_of::<u16>();
/// Offset of the idempotency key length (u8).
pub const BODY_KEY_LEN_OFFSET: usize = BODY_KIND_LEN_OFFSET + size_of::<u8>();
/// Offset of the payload length (u32).
pub const BODY_PAYLOAD_LEN_OFFSET: usize = BODY_KEY_LEN_OFFSET + size_of::<u8>();
/// Fixed part of the body; entity, scope, kind, idempotency key and payload follow.
pub const BODY_FIXED_LEN: usize = BODY_PAYLOAD_LEN_OFFSET + size_of::<u32>();

/// Body flag: the causation id is present.
pub const BODY_FLAG_CAUSATION: u8 = 1;
/// Body flag: an idempotency key is present.
pub const BODY_FLAG_IDEMPOTENCY: u8 = 2;
/// Body flag (format version 2): a payload version (u32) sits between the idempotency key
/// and the payload. Absent means version 0, so version-1 frames read unchanged.
pub const BODY_FLAG_PAYLOAD_VERSION: u8 = 4;
/// Body flag (format version 3): a tags section ends the body, after the payload.
pub const BODY_FLAG_TAGS: u8 = 8;
/// Body flag (format version 3): the frame is a tracking record, not an event; it is then
/// the only flag set, and the body is laid out as the `TRACKING_*` constants say.
pub const BODY_FLAG_TRACKING: u8 = 16;
/// Every flag an event body may have; any other bit set is damage.
pub const BODY_FLAGS_KNOWN: u8 =
    BODY_FLAG_CAUSATION | BODY_FLAG_IDEMPOTENCY | BODY_FLAG_PAYLOAD_VERSION | BODY_FLAG_TAGS;
/// Size of the optional payload version field.
pub const BODY_PAYLOAD_VERSION_LEN: usize = size_of::<u32>();

// The tags section (format version 3), at the end of an event body when `BODY_FLAG_TAGS`
// is set: count u8 | count x (tag length u8 | tag bytes). Its offsets depend on the
// lengths before it, so only the sizes of its fields are named.

/// Size of the tag count that opens the tags section.
pub const TAGS_COUNT_LEN: usize = size_of::<u8>();
/// Size of the length before each tag.
pub const TAG_LEN_LEN: usize = size_of::<u8>();

// Tracking record body (format version 3): zeros [16] | position u64 | timestamp_us u64 |
// flags u8 (= BODY_FLAG_TRACKING) | name length u8 | name. The flags sit where an event
// body keeps its flags, so one byte tells the two apart.

/// Offset of 16 zero bytes (where an event body holds its id, which is never zero).
pub const TRACKING_RESERVED_OFFSET: usize = 0;
/// Offset of the recorded position (u64).
pub const TRACKING_POSITION_OFFSET: usize = TRACKING_RESERVED_OFFSET + size_of::<Uuid>();
/// Offset of the commit timestamp (u64), where an event keeps its own.
pub const TRACKING_TIMESTAMP_OFFSET: usize = TRACKING_POSITION_OFFSET + size_of::<u64>();
/// Offset of the flags (u8): exactly [`BODY_FLAG_TRACKING`].
pub const TRACKING_FLAGS_OFFSET: usize = TRACKING_TIMESTAMP_OFFSET + size_of::<u64>();
/// Offset of the tracking name's length (u8).
pub const TRACKING_NAME_LEN_OFFSET: usize = TRACKING_FLAGS_OFFSET + size_of::<u8>();
/// Fixed part of a tracking body; the name follows.
pub const TRACKING_FIXED_LEN: usize = TRACKING_NAME_LEN_OFFSET + size_of::<u8>();

/// The shortest body of any frame (a tracking record with an empty name, which is itself
/// damage): a smaller `body_len` is refused before anything else is read.
pub const MIN_BODY_LEN: usize = TRACKING_FIXED_LEN;

// The sizes docs/format.md states; a change here must be a deliberate format change.
const _: () = assert!(SEGMENT_HEADER_LEN == 40 && FRAME_HEADER_LEN == 24 && BODY_FIXED_LEN == 139);
const _: () = assert!(TRACKING_FLAGS_OFFSET == BODY_FLAGS_OFFSET && TRACKING_FIXED_LEN == 34);
const _: () = assert!(TRACKING_POSITION_OFFSET == BODY_ENTITY_SEQUENCE_OFFSET);
const _: () = assert!(TRACKING_TIMESTAMP_OFFSET == BODY_TIMESTAMP_OFFSET);
