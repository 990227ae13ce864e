//! Stamping an append: what the commit decides for each request before writing it (its
//! id, entity clock, cause, correlation and chain hash), under the index read lock.
//!
//! A stamp holds only what the commit adds: names, payload and tags stay in the request,
//! and the frame, the index entry and the receipt read them from there. So a commit copies
//! an event's bytes once, into the writer's buffer.

use std::collections::HashMap;
use std::ops::Range;

use super::read::uuid_text;
use super::Store;
use crate::crypt::PayloadBinding;
use crate::error::{Error, Result};
use crate::event::{chain_hash, AppendRequest, EventId, Hash, HashedFields, IdClock, WallClock};
use crate::index::{Index, NewEntry};
use crate::segment::{encode_tags, FrameFields};
use crate::writer::FrameLocation;

/// What a commit decided for one request.
pub(super) struct Stamp {
    /// The entity's id in the index when it had events before this commit.
    pub(super) entity_id: Option<u32>,
    pub(super) event_id: EventId,
    pub(super) entity_sequence: u64,
    pub(super) causation_id: Option<EventId>,
    pub(super) correlation_id: EventId,
    pub(super) prev_hash: Hash,
    pub(super) hash: Hash,
    /// Where the payload as an encrypted store writes it (sealed) lies in the commit's
    /// [`Stamped::sealed`]; `None`: the request's as is.
    pub(super) sealed: Option<Range<usize>>,
}

/// What a commit decided for its requests: a stamp for each, in order, and the sealed
/// payloads of an encrypted store, one after another (one buffer for the whole commit).
pub(super) struct Stamped {
    pub(super) stamps: Vec<Stamp>,
    pub(super) sealed: Vec<u8>,
}

/// Where each entity of a batch was last stamped: the position of its newest request so
/// far, whose stamp holds the entity's clock and chain head as the batch moved them (an
/// entity's first event takes them from the index). Entity names come from callers, so
/// the map keeps a seeded hasher (foldhash's `RandomState`), only a faster one than
/// SipHash: it is rebuilt for every batch and hashes every event's entity.
type LastStamped<'r> = HashMap<&'r str, u32, foldhash::fast::RandomState>;

impl Store {
    /// Stamps `requests`, in order, taking ids from `clock` at the reading `now`. Fails on
    /// a compare-and-set mismatch, or when a cause cannot be read.
    pub(super) fn stamp(
        &self,
        index: &Index,
        requests: &[AppendRequest],
        clock: &mut IdClock,
        now: WallClock,
    ) -> Result<Stamped> {
        // A single event needs no map: its entity's head is the index's.
        let batch = requests.len() > 1;
        let mut last_stamped =
            LastStamped::with_capacity_and_hasher(if batch { requests.len() } else { 0 }, <_>::default());
        let mut stamps: Vec<Stamp> = Vec::with_capacity(requests.len());
        let mut sealer = match &self.shared.keys {
            Some(keys) => Some(keys.sealer(requests.len(), requests.iter().map(|r| r.payload.len()).sum())?),
            None => None,
        };
        for (i, r) in requests.iter().enumerate() {
            let earlier = if batch { last_stamped.insert(&r.entity, i as u32) } else { None };
            let (entity_id, entity_sequence, prev_hash) = match earlier {
                Some(j) => {
                    let earlier = &stamps[j as usize];
                    (earlier.entity_id, earlier.entity_sequence + 1, earlier.hash)
                }
                None => {
                    let id = index.entity_id(&r.entity);
                    let (clock, hash) = index.entity_head_of(id);
                    (id, clock, hash)
                }
            };
            if let Some(expected) = r.expected_sequence {
                if expected != entity_sequence {
                    return Err(Error::ConcurrencyConflict {
                        entity: r.entity.clone(),
                        expected,
                        actual: entity_sequence,
                    });
                }
            }
            let tags = encode_tags(&r.tags);
            let event_id = clock.next_id_at(now);
            // Sealed before hashing: the hash covers the bytes the frame stores, so
            // `verify()` never needs a key.
            let (sealed, payload) = match &mut sealer {
                Some(sealer) => {
                    let at = PayloadBinding { entity: &r.entity, event_id, entity_sequence };
                    let at = sealer.seal(&at, &r.payload)?;
                    (Some(at.clone()), &sealer.sealed()[at])
                }
                None => (None, &r.payload[..]),
            };
            let fields = HashedFields {
                entity_sequence,
                entity: &r.entity,
                scope: &r.scope,
                kind: &r.kind,
                payload_version: r.payload_version,
                payload,
                tags: &tags,
            };
            let hash = chain_hash(&prev_hash, fields);
            let (causation_id, cause_correlation) = self.cause_of(index, r, &stamps)?;
            let correlation_id = r.correlation_id.or(cause_correlation).unwrap_or(event_id);
            let stamp = Stamp {
                entity_id,
                event_id,
                entity_sequence,
                causation_id,
                correlation_id,
                prev_hash,
                hash,
                sealed,
            };
            stamps.push(stamp);
        }
        refuse_later_causes(requests, &stamps)?;
        Ok(Stamped { stamps, sealed: sealer.map(|s| s.into_sealed()).unwrap_or_default() })
    }

    /// The causation id of request `r` (an earlier item of this batch, or the id it names)
    /// and, when it asks to inherit it, the cause's correlation id. A cause outside this
    /// store (or hidden) is kept as given and lends no correlation.
    fn cause_of(
        &self,
        index: &Index,
        r: &AppendRequest,
        earlier: &[Stamp],
    ) -> Result<(Option<EventId>, Option<EventId>)> {
        if let Some(k) = r.causation_item {
            let cause = &earlier[k as usize];
            return Ok((Some(cause.event_id), r.correlation_from_cause.then_some(cause.correlation_id)));
        }
        let Some(id) = r.causation_id else { return Ok((None, None)) };
        if !r.correlation_from_cause || r.correlation_id.is_some() {
            return Ok((Some(id), None));
        }
        if let Some(cause) = earlier.iter().find(|e| e.event_id == id) {
            return Ok((Some(id), Some(cause.correlation_id)));
        }
        // A cause written earlier through the open fence this append also goes through is
        // not visible yet, but it is as much this store's event as a visible one.
        let in_open_fence = |seq: &u64| index.visibility.open_fence.is_some_and(|start| *seq >= start);
        let cause = index.sequence_of(&id).or_else(|| index.sequence_of_any(&id).filter(in_open_fence));
        let correlation = match cause {
            Some(seq) => Some(self.read_locked(index, &[seq])?[0].view().correlation_id()),
            None => None,
        };
        Ok((Some(id), correlation))
    }
}

/// Refuses a causation id naming the event itself or a later event of its batch (ids are
/// predictable: within a millisecond the next one is the last one plus one). Such a link
/// would point forward in the log, where the causal graph never looks.
fn refuse_later_causes(requests: &[AppendRequest], stamps: &[Stamp]) -> Result<()> {
    for (i, (r, own)) in requests.iter().zip(stamps).enumerate() {
        let Some(cause) = r.causation_id else { continue };
        // Ids only grow: a cause below this event's id is an earlier event, the usual case.
        if cause < own.event_id {
            continue;
        }
        if let Some(j) = stamps[i..].iter().position(|later| later.event_id == cause) {
            let names = if j == 0 { "its own id".to_owned() } else { format!("the id of item {}", i + j) };
            return Err(Error::InvalidCausation(format!(
                "item {i}'s causation id {} is {names} in this append; a cause must be an earlier event",
                uuid_text(&cause)
            )));
        }
    }
    Ok(())
}

impl Stamp {
    /// The frame of request `r` with this stamp (its sealed payload in `sealed`, the
    /// commit's [`Stamped::sealed`]), at `global_sequence`, made at `timestamp_us`.
    pub(super) fn frame<'a>(
        &'a self,
        r: &'a AppendRequest,
        sealed: &'a [u8],
        global_sequence: u64,
        timestamp_us: u64,
    ) -> FrameFields<'a> {
        FrameFields {
            global_sequence,
            event_id: self.event_id,
            entity_sequence: self.entity_sequence,
            timestamp_us,
            causation_id: self.causation_id,
            correlation_id: self.correlation_id,
            prev_hash: &self.prev_hash,
            hash: &self.hash,
            entity: &r.entity,
            scope: &r.scope,
            kind: &r.kind,
            idempotency_key: r.idempotency_key.as_deref(),
            payload_version: r.payload_version,
            payload: match &self.sealed {
                Some(at) => &sealed[at.clone()],
                None => &r.payload,
            },
            tags: &r.tags,
        }
    }

    /// The index entry of request `r` with this stamp, written at `loc`.
    pub(super) fn entry<'a>(
        &'a self,
        r: &'a AppendRequest,
        loc: &FrameLocation,
        visible: bool,
    ) -> NewEntry<'a> {
        NewEntry {
            segment: loc.segment,
            offset: loc.offset,
            len: loc.len,
            event_id: self.event_id,
            entity: &r.entity,
            scope: &r.scope,
            kind: &r.kind,
            entity_sequence: self.entity_sequence,
            hash: self.hash,
            idempotency_key: r.idempotency_key.as_deref(),
            causation_id: self.causation_id,
            correlation_id: self.correlation_id,
            visible,
            tags: r.tags.iter().map(String::as_str).collect(),
        }
    }
}
