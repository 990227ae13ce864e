//! The append path: validate, check idempotency and compare-and-set, chain, write, index,
//! then wait for durability as the sync mode asks.

use std::collections::HashMap;
use std::sync::Arc;

use super::Store;
use crate::config::SyncMode;
use crate::error::{Error, Result};
use crate::event::{chain_hash, AppendRequest, EventRecord, Hash};
use crate::index::{Index, NewEntry};
use crate::names::{validate_coordinate_part, validate_kind};
use crate::receipt::AppendReceipt;
use crate::segment::frame_len_of;

/// Longest idempotency key in bytes.
pub const MAX_IDEMPOTENCY_KEY_BYTES: usize = 64;

/// Encoded size of the event a request would store (what `max_event_bytes` limits).
pub fn encoded_event_size(r: &AppendRequest) -> usize {
    let key = r.idempotency_key.as_ref().map_or(0, Vec::len);
    frame_len_of([r.entity.len(), r.scope.len(), r.kind.len(), key, r.payload.len()])
}

impl Store {
    /// Appends one event. Refused with [`Error::FenceActive`] while a fence is open.
    pub fn append(&self, request: AppendRequest) -> Result<AppendReceipt> {
        let mut receipts = self.commit(vec![request], false, false)?;
        Ok(receipts.pop().expect("one receipt per request"))
    }

    /// Appends events atomically: all of them become visible, or none.
    pub fn append_batch(&self, requests: Vec<AppendRequest>) -> Result<Vec<AppendReceipt>> {
        self.commit(requests, true, false)
    }

    /// Appends events through the open fence: written now, visible at its commit.
    pub fn fence_append_batch(&self, requests: Vec<AppendRequest>) -> Result<Vec<AppendReceipt>> {
        self.commit(requests, true, true)
    }

    /// Refuses bad input before anything is locked or written.
    fn validate(&self, requests: &[AppendRequest], is_batch: bool) -> Result<()> {
        let config = &self.shared.config;
        let mut total = 0usize;
        for r in requests {
            validate_coordinate_part("entity", &r.entity)?;
            validate_coordinate_part("scope", &r.scope)?;
            validate_kind(&r.kind)?;
            if let Some(key) = &r.idempotency_key {
                if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY_BYTES {
                    return Err(Error::InvalidIdempotencyKey(format!(
                        "key of {} bytes; keys hold 1 to {MAX_IDEMPOTENCY_KEY_BYTES} bytes",
                        key.len()
                    )));
                }
            }
            let size = encoded_event_size(r);
            if size > config.max_event_bytes {
                return Err(Error::EventTooLarge { size, max: config.max_event_bytes });
            }
            total += size;
        }
        if !is_batch {
            return Ok(());
        }
        if requests.len() > config.max_batch_events {
            let msg = format!("{} events, max_batch_events={}", requests.len(), config.max_batch_events);
            return Err(Error::BatchTooLarge(msg));
        }
        if total > config.max_batch_bytes {
            return Err(Error::BatchTooLarge(format!(
                "{total} bytes, max_batch_bytes={}",
                config.max_batch_bytes
            )));
        }
        let keyed = requests.iter().filter(|r| r.idempotency_key.is_some()).count();
        if keyed != 0 && keyed != requests.len() {
            return Err(Error::InvalidIdempotencyKey(
                "in a batch, either every event has a key or none has".into(),
            ));
        }
        let mut seen = std::collections::HashSet::new();
        if requests.iter().filter_map(|r| r.idempotency_key.as_deref()).any(|k| !seen.insert(k)) {
            return Err(Error::InvalidIdempotencyKey("the same key appears twice in one batch".into()));
        }
        Ok(())
    }

    fn commit(
        &self,
        requests: Vec<AppendRequest>,
        is_batch: bool,
        fenced: bool,
    ) -> Result<Vec<AppendReceipt>> {
        let writer = self.writer()?;
        self.validate(&requests, is_batch)?;
        if requests.is_empty() {
            return Ok(Vec::new());
        }
        let deadline = std::cell::OnceCell::new();
        let (mut w, index) = loop {
            if !fenced {
                self.wait_for_fence(&deadline)?;
            }
            let w = writer.lock();
            w.check_healthy()?;
            self.check_open()?;
            let index = self.shared.index.read();
            match (index.visibility.open_fence.is_some(), fenced) {
                // A fence opened between the wait and the lock: wait for that one too.
                (true, false) => continue,
                (false, true) => return Err(Error::FenceClosed),
                _ => break (w, index),
            }
        };
        if let Some(receipts) = self.replayed_receipts(&index, &requests)? {
            return Ok(receipts);
        }
        let mut heads: HashMap<&str, (u64, Hash)> = HashMap::new();
        let mut records = Vec::with_capacity(requests.len());
        for (i, r) in requests.iter().enumerate() {
            let (clock, prev_hash) = *heads.entry(&r.entity).or_insert_with(|| index.entity_head(&r.entity));
            if let Some(expected) = r.expected_sequence {
                if expected != clock {
                    return Err(Error::ConcurrencyConflict {
                        entity: r.entity.clone(),
                        expected,
                        actual: clock,
                    });
                }
            }
            let hash = chain_hash(&prev_hash, clock, &r.entity, &r.scope, &r.kind, &r.payload);
            heads.insert(&r.entity, (clock + 1, hash));
            let event_id = w.clock.next_id();
            records.push(EventRecord {
                event_id,
                global_sequence: w.written() + i as u64,
                entity: Arc::from(r.entity.as_str()),
                scope: Arc::from(r.scope.as_str()),
                kind: Arc::from(r.kind.as_str()),
                entity_sequence: clock,
                timestamp_us: w.clock.next_timestamp_us(),
                causation_id: r.causation_id,
                correlation_id: r.correlation_id.unwrap_or(event_id),
                prev_hash,
                hash,
                idempotency_key: r.idempotency_key.clone(),
                payload: Vec::new(),
            });
        }
        drop(index);
        for (record, request) in records.iter_mut().zip(requests) {
            record.payload = request.payload;
        }
        let locations = w.write_batch(&records, &self.shared.segments)?;
        {
            let mut index = self.shared.index.write();
            for (r, loc) in records.iter().zip(&locations) {
                index.insert(NewEntry {
                    segment: loc.segment,
                    offset: loc.offset,
                    len: loc.len,
                    event_id: r.event_id,
                    entity: &r.entity,
                    scope: &r.scope,
                    kind: &r.kind,
                    entity_sequence: r.entity_sequence,
                    hash: r.hash,
                    idempotency_key: r.idempotency_key.as_deref(),
                    visible: !fenced,
                });
            }
        }
        if !fenced {
            self.shared.announce_commit();
        }
        let written = w.written();
        drop(w);
        let durability = &self.shared.durability;
        match self.shared.config.sync {
            SyncMode::Always => durability.make_durable(written, writer)?,
            SyncMode::Batch if written - durability.durable() >= self.shared.config.sync_every_n_events => {
                self.shared.kick_flusher()
            }
            _ => {}
        }
        let durable = durability.durable();
        let store_id = self.shared.store_id;
        Ok(records.iter().map(|r| self.sign(r.receipt(store_id, r.global_sequence < durable))).collect())
    }

    /// For keyed requests already committed: the original receipts when the content is
    /// the same, [`Error::IdempotencyConflict`] when it differs or a batch is partly there.
    fn replayed_receipts(
        &self,
        index: &Index,
        requests: &[AppendRequest],
    ) -> Result<Option<Vec<AppendReceipt>>> {
        let found: Vec<Option<u64>> = requests
            .iter()
            .map(|r| r.idempotency_key.as_deref().and_then(|k| index.sequence_of_key(k)))
            .collect();
        let hits = found.iter().flatten().count();
        if hits == 0 {
            return Ok(None);
        }
        if hits != requests.len() {
            return Err(Error::IdempotencyConflict(format!(
                "{hits} of the batch's {} keys are already committed; a batch commits whole or not at all",
                requests.len()
            )));
        }
        let seqs: Vec<u64> = found.into_iter().flatten().collect();
        let stored = self.read_locked(index, &seqs)?;
        let durable = self.shared.durability.durable();
        let mut receipts = Vec::with_capacity(stored.len());
        for (r, stored) in requests.iter().zip(&stored) {
            let event = stored.view();
            let (entity, scope, kind) = event.names();
            let same =
                entity == r.entity && scope == r.scope && kind == r.kind && event.payload() == r.payload;
            if !same {
                return Err(Error::IdempotencyConflict(format!(
                    "key {:?} was used for different content (event {})",
                    String::from_utf8_lossy(r.idempotency_key.as_deref().unwrap_or_default()),
                    event.global_sequence
                )));
            }
            let (seq, clock) = (event.global_sequence, event.entity_sequence());
            let (id, hash, at) = (event.event_id(), event.hash(), event.timestamp_us());
            let original = AppendReceipt::new(self.shared.store_id, id, seq, clock, hash, at, seq < durable);
            receipts.push(self.sign(original));
        }
        Ok(Some(receipts))
    }
}
