//! Replicas: a store that applies another store's events verbatim, as a stream carried
//! them, keeping each event's id, global sequence, entity clock, timestamp and hashes. Its
//! chains verify and cursors over it deliver what the origin's deliver. Nothing else
//! writes to it: appends, fences and tracking records are refused.
//!
//! What a replica applies is a region of its origin's log, so its sequences increase but
//! may jump; the numbers it skips are holes (see `index/holes.rs`).

mod origin;

pub use origin::{check_stream_name, ReplicaOrigin, REPLICA_ORIGIN_FILE};

use std::collections::HashMap;

use super::append::entry_of;
use super::Store;
use crate::error::{Error, Result};
use crate::event::{chain_hash, AppendRequest, EventRecord, Hash};
use crate::index::Index;
use crate::segment::encode_tags;

/// What one [`Store::apply_replicated`] call did.
#[derive(Debug, Default)]
pub struct ApplyOutcome {
    /// Events written by this call.
    pub applied: usize,
    /// Events that were already stored exactly so (a redelivery): nothing to do.
    pub present: usize,
    /// The first event refused ([`Error::ReplicationRefused`]); the `applied + present`
    /// before it are durable, nothing after it was looked at.
    pub refused: Option<Error>,
}

fn refusal(global_sequence: u64, reason: impl Into<String>) -> Error {
    Error::ReplicationRefused { global_sequence: Some(global_sequence), reason: reason.into() }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// How a replicated event relates to the replica's log.
enum Fit {
    /// Stored already, identically.
    Present,
    /// The next event: it continues the log and its entity's chain.
    Next,
}

impl Store {
    /// The stream this store replicates, and its origin once known; `None` for an
    /// ordinary store.
    pub fn replica_origin(&self) -> Option<ReplicaOrigin> {
        self.shared.replica.read().clone()
    }

    /// True when this store is a replica (written only by [`Store::apply_replicated`]).
    pub fn is_replica(&self) -> bool {
        self.shared.replica.read().is_some()
    }

    /// Refuses `operation` on a replica with [`Error::ReplicaStore`].
    pub(super) fn refuse_on_replica(&self, operation: &'static str) -> Result<()> {
        match &*self.shared.replica.read() {
            Some(origin) => Err(Error::ReplicaStore { operation, stream: origin.stream.clone() }),
            None => Ok(()),
        }
    }

    /// Makes this store (and its data dir, for every later open) a replica of `stream`.
    /// A store that holds anything already is refused ([`Error::InvalidConfig`]); one that
    /// replicates another stream is refused with [`Error::ReplicationRefused`]; the same
    /// stream again is a no-op.
    pub fn become_replica(&self, stream: &str) -> Result<()> {
        check_stream_name(stream)?;
        if self.is_encrypted() {
            return Err(Error::InvalidConfig("an encrypted store cannot be a replica".into()));
        }
        let writer = self.writer("making a replica")?;
        let mut w = writer.lock(); // no append can slip in between the check and the marker
        let _writes = match &self.shared.sharing {
            Some(mode) => Some(self.lock_shared_writes(mode, &mut w)?),
            None => None,
        };
        if let Some(origin) = self.replica_origin() {
            if origin.stream == stream {
                return Ok(());
            }
            let reason = format!("the data dir replicates stream {:?}, not {stream:?}", origin.stream);
            return Err(Error::ReplicationRefused { global_sequence: None, reason });
        }
        let holds_anything = {
            let index = self.index()?;
            !index.is_empty() || !index.tracking.frames.is_empty()
        };
        if holds_anything {
            return Err(Error::InvalidConfig(format!(
                "{} already holds events: only a new, empty data dir can become a replica",
                self.shared.data_dir.display()
            )));
        }
        let mut replica = self.shared.replica.write();
        let origin = ReplicaOrigin { stream: stream.to_owned(), origin_store_id: None };
        origin.save(&*self.shared.storage, &self.shared.data_dir)?;
        *replica = Some(origin);
        if let Some(mode) = &self.shared.sharing {
            // Processes that opened the dir before learn it at their next follow, as they
            // learn of a fence; their appends check again under the write lock.
            mode.coord.mem.bump_visibility();
        }
        Ok(())
    }

    /// Reads the marker another process may have written since this one opened the dir.
    pub(super) fn notice_replica_marker(&self) -> Result<()> {
        if !self.is_replica() {
            if let Some(origin) = ReplicaOrigin::load(&self.shared.data_dir)? {
                *self.shared.replica.write() = Some(origin);
            }
        }
        Ok(())
    }

    /// Applies `events` (as the origin store `origin_store_id` committed them, in its
    /// order) verbatim, then fsyncs. Each must continue the log: a global sequence and an
    /// id past the replica's last, the entity's next clock, `prev_hash` naming the entity's
    /// previous event, a hash that recomputes, valid names. One already stored identically
    /// is skipped. The first that fails is refused (see [`ApplyOutcome::refused`]).
    pub fn apply_replicated(
        &self,
        origin_store_id: [u8; 16],
        events: Vec<EventRecord>,
    ) -> Result<ApplyOutcome> {
        self.check_open()?;
        let writer = self.shared.writer.as_ref().ok_or(Error::ReadOnlyStore("applying replicated events"))?;
        if self.is_encrypted() {
            // A replica stores the origin's frames and hashes as they are: sealing them
            // again would change every hash (see `docs/decisions.md`).
            return Err(Error::InvalidConfig("an encrypted store cannot be a replica".into()));
        }
        let mut outcome = ApplyOutcome::default();
        let Some(first) = events.first().map(|e| e.global_sequence) else { return Ok(outcome) };
        if let Err(reason) = self.adopt_origin(origin_store_id) {
            outcome.refused = Some(refusal(first, reason));
            return Ok(outcome);
        }
        let mut w = writer.lock();
        w.check_healthy()?;
        self.check_open()?;
        let writes = match &self.shared.sharing {
            Some(mode) => Some(self.lock_shared_writes(mode, &mut w)?),
            None => None,
        };
        let index = self.shared.index.read();
        let mut heads: HashMap<String, (u64, Hash)> = HashMap::new();
        let (mut next, mut last_id) = (w.written(), index.last_event_id());
        let mut accepted = Vec::with_capacity(events.len());
        for event in events {
            match self.fit(&index, &event, &heads, (next, last_id)) {
                Ok(Fit::Present) => outcome.present += 1,
                Ok(Fit::Next) => {
                    next = event.global_sequence + 1;
                    last_id = u128::from_be_bytes(event.event_id);
                    heads.insert(event.entity.to_string(), (event.entity_sequence + 1, event.hash));
                    accepted.push(event);
                }
                Err(reason) => {
                    outcome.refused = Some(refusal(event.global_sequence, reason));
                    break;
                }
            }
        }
        drop(index);
        if !accepted.is_empty() {
            if let Some(mode) = &self.shared.sharing {
                self.begin_shared_write(mode);
            }
            let locations = w.write_batch(&accepted, None, &self.shared.segments)?;
            let mut index = self.shared.index.write();
            for (r, loc) in accepted.iter().zip(&locations) {
                index.skip_to(r.global_sequence);
                index.insert(entry_of(r, loc, true));
            }
            drop(index);
            if let Some(mode) = &self.shared.sharing {
                self.publish_writes(mode, &w);
            }
            outcome.applied = accepted.len();
        }
        drop(writes);
        if outcome.applied > 0 {
            self.shared.announce_commit();
        }
        let written = w.written();
        drop(w);
        // Whatever the sync mode: the stream is told an event is applied only once it is
        // durable, so a redelivery after a crash never finds it missing.
        self.shared.make_durable(written, writer)?;
        Ok(outcome)
    }

    /// Records `origin` as the store this replica applies, or refuses another one.
    fn adopt_origin(&self, origin: [u8; 16]) -> std::result::Result<(), String> {
        let mut replica = self.shared.replica.write();
        let Some(marker) = replica.as_mut() else {
            return Err("this store is not a replica (become_replica was never called)".into());
        };
        match marker.origin_store_id {
            Some(known) if known == origin => Ok(()),
            Some(known) => Err(format!(
                "it comes from store {}, but this replica applies store {}",
                hex(&origin),
                hex(&known)
            )),
            None => {
                let adopted = ReplicaOrigin { origin_store_id: Some(origin), ..marker.clone() };
                adopted.save(&*self.shared.storage, &self.shared.data_dir).map_err(|e| e.to_string())?;
                *marker = adopted;
                Ok(())
            }
        }
    }

    /// Whether `event` is stored already or continues the log after `(next, last_id)`
    /// (the sequence and id after this call's earlier events), with the chain heads this
    /// call moved in `heads`; otherwise why not.
    fn fit(
        &self,
        index: &Index,
        event: &EventRecord,
        heads: &HashMap<String, (u64, Hash)>,
        (next, last_id): (u64, u128),
    ) -> std::result::Result<Fit, String> {
        let stored =
            index.sequence_of_any(&event.event_id).filter(|&s| index.entry(s).is_some_and(|m| !m.is_hole()));
        if let Some(seq) = stored {
            let existing = self.read_locked(index, &[seq]).map_err(|e| e.to_string())?;
            let same = existing.first().is_some_and(|e| {
                let mut record = e.view().to_record();
                record.idempotency_key = None;
                record == *event
            });
            return if same {
                Ok(Fit::Present)
            } else {
                Err(format!("event {} is already stored (at {seq}) with other content", hex(&event.event_id)))
            };
        }
        let request = AppendRequest {
            entity: event.entity.to_string(),
            scope: event.scope.to_string(),
            kind: event.kind.to_string(),
            payload: event.payload.clone(),
            payload_version: event.payload_version,
            tags: event.tags.clone(),
            ..Default::default()
        };
        // The origin wrote it, so its reserved kinds (dead letters, denials) are accepted.
        self.validate(std::slice::from_ref(&request), false, true).map_err(|e| e.to_string())?;
        if event.global_sequence < next {
            return Err(format!(
                "the replica is already past it (next sequence {next}): a message out of order or replayed"
            ));
        }
        if u128::from_be_bytes(event.event_id) <= last_id {
            return Err("its event id is not after the previous event's".into());
        }
        let (clock, head) =
            heads.get(&*event.entity).copied().unwrap_or_else(|| index.entity_head(&event.entity));
        if event.entity_sequence != clock {
            return Err(format!(
                "entity {:?} is at clock {clock} here, the event has clock {}: an event is missing, \
                 or the published region does not hold whole entities",
                event.entity, event.entity_sequence
            ));
        }
        if event.prev_hash != head {
            return Err(format!("its prev_hash does not name entity {:?}'s previous event", event.entity));
        }
        let tags = encode_tags(&event.tags);
        if chain_hash(&event.prev_hash, event.hashed_fields(&tags)) != event.hash {
            return Err("its hash does not match its content (forged or damaged)".into());
        }
        Ok(Fit::Next)
    }
}
