//! Events as the engine sees them: append requests, stored records, receipts, and the
//! hash chain and id rules that bind them together.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::receipt::AppendReceipt;
use crate::rng::SplitMix64;

/// A 32-byte Blake3 digest.
pub type Hash = [u8; 32];
/// Raw bytes of a UUID.
pub type EventId = [u8; 16];

/// What a caller asks to append. Payload is already msgpack-encoded.
#[derive(Clone, Debug, Default)]
pub struct AppendRequest {
    /// Entity part of the coordinate.
    pub entity: String,
    /// Scope part of the coordinate.
    pub scope: String,
    /// Event kind.
    pub kind: String,
    /// msgpack bytes of the payload.
    pub payload: Vec<u8>,
    /// Optional idempotency key (1..=64 bytes).
    pub idempotency_key: Option<Vec<u8>>,
    /// Compare-and-set on the entity's next clock value.
    pub expected_sequence: Option<u64>,
    /// Id of the event that caused this one.
    pub causation_id: Option<EventId>,
    /// In a batch: the position of an earlier item of the same batch that caused this one
    /// (its id is assigned at commit). Overrides `causation_id`.
    pub causation_item: Option<u32>,
    /// Correlation id; defaults to the new event's own id, or to the cause's correlation
    /// when `correlation_from_cause` is set.
    pub correlation_id: Option<EventId>,
    /// With no `correlation_id`: take the correlation of the cause when the cause is an
    /// event of this store (or an earlier item of the batch), as `caused_by=` asks.
    pub correlation_from_cause: bool,
    /// Schema version of the payload (0 unless the caller versions its payloads).
    pub payload_version: u32,
    /// Tags, in the caller's order (see [`crate::tags`]).
    pub tags: Vec<String>,
}

/// A committed event, decoded from its frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventRecord {
    /// UUIDv7, strictly increasing with `global_sequence`.
    pub event_id: EventId,
    /// Dense commit position, from 0.
    pub global_sequence: u64,
    /// Entity part of the coordinate.
    pub entity: Arc<str>,
    /// Scope part of the coordinate.
    pub scope: Arc<str>,
    /// Event kind.
    pub kind: Arc<str>,
    /// Per-entity clock, from 0.
    pub entity_sequence: u64,
    /// Microseconds since the Unix epoch, never decreasing within a store.
    pub timestamp_us: u64,
    /// Optional cause.
    pub causation_id: Option<EventId>,
    /// Correlation id (the event's own id unless given).
    pub correlation_id: EventId,
    /// Hash of the entity's previous event (zeros for the first).
    pub prev_hash: Hash,
    /// Hash of this event, see [`chain_hash`].
    pub hash: Hash,
    /// Idempotency key the event was appended with.
    pub idempotency_key: Option<Vec<u8>>,
    /// Schema version of the payload as stored (0 when unversioned).
    pub payload_version: u32,
    /// msgpack payload bytes.
    pub payload: Vec<u8>,
    /// Tags, in the order they were given (format version 3; empty before).
    pub tags: Vec<String>,
}

impl EventRecord {
    /// The (unsigned) receipt of this record, issued by store `store_id`.
    pub fn receipt(&self, store_id: [u8; 16], durable: bool) -> AppendReceipt {
        let (id, seq, clock) = (self.event_id, self.global_sequence, self.entity_sequence);
        AppendReceipt::new(store_id, id, seq, clock, self.hash, self.timestamp_us, durable)
    }
}

/// What the chain hash of an event covers, besides the previous hash.
#[derive(Clone, Copy, Debug)]
pub struct HashedFields<'a> {
    /// The entity clock.
    pub entity_sequence: u64,
    /// Entity part of the coordinate.
    pub entity: &'a str,
    /// Scope part of the coordinate.
    pub scope: &'a str,
    /// Event kind.
    pub kind: &'a str,
    /// Payload schema version; 0 adds nothing, so unversioned events hash as format 1 did.
    pub payload_version: u32,
    /// msgpack payload bytes.
    pub payload: &'a [u8],
    /// The tags section as a frame stores it ([`crate::segment::encode_tags`]); empty for
    /// an event without tags, which then hashes as in format versions 1 and 2.
    pub tags: &'a [u8],
}

impl EventRecord {
    /// The fields of this record the chain hash covers; `tags` is its tags section
    /// (`segment::encode_tags(&self.tags)`).
    pub fn hashed_fields<'a>(&'a self, tags: &'a [u8]) -> HashedFields<'a> {
        HashedFields {
            entity_sequence: self.entity_sequence,
            entity: &self.entity,
            scope: &self.scope,
            kind: &self.kind,
            payload_version: self.payload_version,
            payload: &self.payload,
            tags,
        }
    }
}

/// The chain hash of an event. It covers the previous hash, the entity clock, the
/// coordinate, the kind and the payload, each length-prefixed so that no two different
/// inputs share an encoding, then a suffix: nothing, or the payload version (u32) when it
/// is not 0, or, for an event with tags, the payload version (even 0) followed by the tags
/// section (count, then each tag length-prefixed). The payload's length prefix tells where
/// the suffix starts, and the three suffix forms are 0, 4 and at least 7 bytes long, the
/// last self-delimiting, so the encoding stays unambiguous: moving, reordering or editing
/// an event (its tags included) breaks the chain.
pub fn chain_hash(prev_hash: &Hash, fields: HashedFields<'_>) -> Hash {
    let HashedFields { entity_sequence, entity, scope, kind, payload_version, payload, tags } = fields;
    let parts = [entity.as_bytes(), scope.as_bytes(), kind.as_bytes(), payload];
    let version_bytes = payload_version.to_le_bytes();
    let version: &[u8] = if payload_version == 0 && tags.is_empty() { &[] } else { &version_bytes };
    let total = 40 + parts.iter().map(|p| 8 + p.len()).sum::<usize>() + version.len() + tags.len();
    // Small events (the common case) are assembled on the stack and hashed in one call:
    // many tiny `update` calls cost more than the hashing itself. The smaller buffer spares
    // zeroing a kilobyte for the smallest events.
    if total <= 256 {
        return hash_at_once::<256>(prev_hash, entity_sequence, parts, [version, tags]);
    }
    if total <= 1024 {
        return hash_at_once::<1024>(prev_hash, entity_sequence, parts, [version, tags]);
    }
    let mut h = blake3::Hasher::new();
    h.update(prev_hash);
    h.update(&entity_sequence.to_le_bytes());
    for part in parts {
        h.update(&(part.len() as u64).to_le_bytes());
        h.update(part);
    }
    h.update(version);
    h.update(tags);
    *h.finalize().as_bytes()
}

/// [`chain_hash`]'s input assembled in a buffer of `N` bytes (which must hold it) and
/// hashed in one call.
#[inline(always)]
fn hash_at_once<const N: usize>(
    prev_hash: &Hash,
    entity_sequence: u64,
    parts: [&[u8]; 4],
    suffixes: [&[u8]; 2],
) -> Hash {
    let mut buf = [0u8; N];
    buf[..32].copy_from_slice(prev_hash);
    buf[32..40].copy_from_slice(&entity_sequence.to_le_bytes());
    let mut at = 40;
    for part in parts {
        buf[at..at + 8].copy_from_slice(&(part.len() as u64).to_le_bytes());
        buf[at + 8..at + 8 + part.len()].copy_from_slice(part);
        at += 8 + part.len();
    }
    for suffix in suffixes {
        buf[at..at + suffix.len()].copy_from_slice(suffix);
        at += suffix.len();
    }
    *blake3::hash(&buf[..at]).as_bytes()
}

/// Hands out UUIDv7 ids that strictly increase, even when the wall clock steps back
/// or many ids fall in one millisecond, so ids sort like `global_sequence`.
///
/// The random bits come from a splitmix64 generator seeded once from the OS: asking the
/// OS for randomness on every event would cost a system call per append.
#[derive(Debug)]
pub struct IdClock {
    last_id: u128,
    last_us: u64,
    rng: SplitMix64,
}

const V7_RAND_B_MASK: u128 = (1 << 62) - 1;
const V7_VERSION_AND_VARIANT: u128 = (0x7 << 76) | (0b10 << 62);

impl Default for IdClock {
    fn default() -> Self {
        Self::resume(0, 0)
    }
}

impl IdClock {
    /// Resumes after the newest id and timestamp already in the store.
    pub fn resume(last_id: u128, last_us: u64) -> Self {
        let seed = uuid::Uuid::new_v4().as_u64_pair().0;
        IdClock { last_id, last_us, rng: SplitMix64(seed) }
    }

    /// Moves past an id and timestamp handed out elsewhere (another process sharing the
    /// store), so the next id is greater and the next timestamp not smaller.
    pub fn observe(&mut self, last_id: u128, last_us: u64) {
        self.last_id = self.last_id.max(last_id);
        self.last_us = self.last_us.max(last_us);
    }

    fn random(&mut self) -> u64 {
        self.rng.next_u64()
    }

    /// The next id, greater than every id handed out before.
    pub fn next_id(&mut self) -> EventId {
        self.next_id_at(WallClock::read())
    }

    /// The next id, greater than every id handed out before, for an event made at `now`
    /// (one reading serves a whole commit: see [`WallClock`]).
    pub fn next_id_at(&mut self, now: WallClock) -> EventId {
        let now_ms = u128::from(now.ms);
        let (r1, r2) = (self.random() as u128, self.random() as u128);
        let fresh = ((now_ms & 0xffff_ffff_ffff) << 80)
            | V7_VERSION_AND_VARIANT
            | ((r1 & 0xfff) << 64)
            | (r2 & V7_RAND_B_MASK);
        let id = if fresh > self.last_id {
            fresh
        } else if self.last_id & V7_RAND_B_MASK != V7_RAND_B_MASK {
            // Same millisecond (or clock stepped back): count up in the random bits.
            self.last_id + 1
        } else {
            // Random bits exhausted: move to the next millisecond with zeroed random bits.
            let ms = (self.last_id >> 80) + 1;
            (ms << 80) | V7_VERSION_AND_VARIANT
        };
        self.last_id = id;
        id.to_be_bytes()
    }

    /// The newest timestamp handed out (or observed).
    pub fn last_timestamp_us(&self) -> u64 {
        self.last_us
    }

    /// The next timestamp in microseconds: the wall clock, never below the previous one.
    pub fn next_timestamp_us(&mut self) -> u64 {
        self.timestamp_at(WallClock::read())
    }

    /// The timestamp of an event made at `now`: `now`, or the previous timestamp when the
    /// wall clock stepped back since.
    pub fn timestamp_at(&mut self, now: WallClock) -> u64 {
        self.last_us = self.last_us.max(now.us);
        self.last_us
    }
}

/// One reading of the wall clock, in the two units events use: milliseconds for the
/// UUIDv7 ids, microseconds for `timestamp_us`.
///
/// A commit reads the clock once and stamps all its events with that reading: a batch
/// is written at one moment, and a clock read per event cost more than the rest of
/// stamping it. [`IdClock`] keeps ids strictly increasing and timestamps never
/// decreasing whatever readings it is given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WallClock {
    /// Milliseconds since the Unix epoch.
    pub ms: u64,
    /// Microseconds since the Unix epoch.
    pub us: u64,
}

impl WallClock {
    /// The wall clock now (zero before the Unix epoch).
    pub fn read() -> Self {
        let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        WallClock { ms: since_epoch.as_millis() as u64, us: since_epoch.as_micros() as u64 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_strictly_increase_and_stay_v7() {
        let mut clock = IdClock::resume(u128::MAX >> 1, 0);
        let mut prev = 0u128;
        for _ in 0..1000 {
            let id = u128::from_be_bytes(clock.next_id());
            assert!(id > prev);
            prev = id;
        }
        let mut clock = IdClock::default();
        let a = uuid::Uuid::from_bytes(clock.next_id());
        assert_eq!(a.get_version_num(), 7);
        assert_eq!(a.get_variant(), uuid::Variant::RFC4122);
        let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
        let (secs, nanos) = a.get_timestamp().unwrap().to_unix();
        assert!((secs * 1000 + nanos as u64 / 1_000_000).abs_diff(now_ms) < 60_000);
    }

    #[test]
    fn inline_and_streamed_hashing_agree() {
        // Payload sizes on both sides of each buffer size the input is assembled in (the
        // fixed part and the three one-byte names take 40 + 4 * 8 + 3 bytes).
        let big = vec![7u8; 5000];
        for len in [0, 10, 181, 182, 500, 949, 950, 5000] {
            let mut h = blake3::Hasher::new();
            h.update(&[1; 32]);
            h.update(&9u64.to_le_bytes());
            for part in [&b"e"[..], b"s", b"k", &big[..len]] {
                h.update(&(part.len() as u64).to_le_bytes());
                h.update(part);
            }
            let hashed = chain_hash(&[1; 32], fields(9, "e", "s", "k", &big[..len]));
            assert_eq!(hashed, *h.finalize().as_bytes(), "payload of {len} bytes");
        }
    }

    fn fields<'a>(
        seq: u64,
        entity: &'a str,
        scope: &'a str,
        kind: &'a str,
        payload: &'a [u8],
    ) -> HashedFields<'a> {
        HashedFields { entity_sequence: seq, entity, scope, kind, payload_version: 0, payload, tags: &[] }
    }

    #[test]
    fn hash_binds_every_field() {
        let base = chain_hash(&[0; 32], fields(0, "e", "s", "k", b"p"));
        assert_ne!(base, chain_hash(&[1; 32], fields(0, "e", "s", "k", b"p")));
        assert_ne!(base, chain_hash(&[0; 32], fields(1, "e", "s", "k", b"p")));
        assert_ne!(base, chain_hash(&[0; 32], fields(0, "es", "", "k", b"p")));
        assert_ne!(base, chain_hash(&[0; 32], fields(0, "e", "s", "kp", b"")));
        let versioned = HashedFields { payload_version: 1, ..fields(0, "e", "s", "k", b"p") };
        assert_ne!(base, chain_hash(&[0; 32], versioned));
        let big = vec![3u8; 4000];
        let (small_v, big_v) = (versioned, HashedFields { payload: &big, ..versioned });
        let mut h = blake3::Hasher::new();
        h.update(&[0; 32]);
        h.update(&0u64.to_le_bytes());
        for part in [&b"e"[..], b"s", b"k", &big] {
            h.update(&(part.len() as u64).to_le_bytes());
            h.update(part);
        }
        h.update(&1u32.to_le_bytes());
        assert_eq!(chain_hash(&[0; 32], big_v), *h.finalize().as_bytes());
        assert_ne!(chain_hash(&[0; 32], small_v), base);
        let tagged = HashedFields { tags: &[1, 1, b't'], ..fields(0, "e", "s", "k", b"p") };
        let mut expected = Vec::new();
        for part in [&b"e"[..], b"s", b"k", b"p"] {
            expected.extend_from_slice(&(part.len() as u64).to_le_bytes());
            expected.extend_from_slice(part);
        }
        let mut h = blake3::Hasher::new();
        h.update(&[0; 32]);
        h.update(&0u64.to_le_bytes());
        h.update(&expected);
        h.update(&0u32.to_le_bytes());
        h.update(&[1, 1, b't']);
        assert_eq!(chain_hash(&[0; 32], tagged), *h.finalize().as_bytes());
        assert_ne!(chain_hash(&[0; 32], tagged), base);
    }
}
