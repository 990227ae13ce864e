//! The append path: validate, check idempotency and compare-and-set, chain, write, index,
//! then wait for durability as the sync mode asks.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::Store;
use crate::config::SyncMode;
use crate::error::{Error, Result};
use crate::event::{chain_hash, AppendRequest, EventId, EventRecord, Hash, HashedFields};
use crate::index::{Index, NewEntry};
use crate::names::{validate_coordinate_part, validate_kind_as};
use crate::receipt::AppendReceipt;
use crate::segment::{frame_len_of, payload_version_len};

/// Longest idempotency key in bytes.
pub const MAX_IDEMPOTENCY_KEY_BYTES: usize = 64;

/// Encoded size of the event a request would store (what `max_event_bytes` limits).
pub fn encoded_event_size(r: &AppendRequest) -> usize {
    let key = r.idempotency_key.as_ref().map_or(0, Vec::len);
    let version = payload_version_len(r.payload_version);
    frame_len_of([r.entity.len(), r.scope.len(), r.kind.len(), key, version, r.payload.len()])
}

impl Store {
    /// Appends one event. Refused with [`Error::FenceActive`] while a fence is open.
    pub fn append(&self, request: AppendRequest) -> Result<AppendReceipt> {
        let mut receipts = self.commit(vec![request], false, false, false)?;
        Ok(receipts.pop().expect("one receipt per request"))
    }

    /// Appends events atomically: all of them become visible, or none.
    pub fn append_batch(&self, requests: Vec<AppendRequest>) -> Result<Vec<AppendReceipt>> {
        self.commit(requests, true, false, false)
    }

    /// Appends, atomically, events the store writes itself (denials, bypass audits, dead
    /// letters): like [`Store::append_batch`], but the kinds of
    /// [`RESERVED_KINDS`](crate::RESERVED_KINDS) are accepted beside ordinary ones.
    pub fn append_reserved_batch(&self, requests: Vec<AppendRequest>) -> Result<Vec<AppendReceipt>> {
        self.commit(requests, true, false, true)
    }

    /// Appends events through the open fence: written now, visible at its commit.
    pub fn fence_append_batch(&self, requests: Vec<AppendRequest>) -> Result<Vec<AppendReceipt>> {
        self.commit(requests, true, true, false)
    }

    /// Refuses bad input before anything is locked or written.
    fn validate(&self, requests: &[AppendRequest], is_batch: bool, store_written: bool) -> Result<()> {
        let config = &self.shared.config;
        let mut total = 0usize;
        for (i, r) in requests.iter().enumerate() {
            if let Some(k) = r.causation_item {
                if k as usize >= i {
                    return Err(Error::InvalidCausation(format!(
                        "item {i} names item {k} as its cause; a cause must be an earlier item of the batch"
                    )));
                }
            }
            validate_coordinate_part("entity", &r.entity)?;
            validate_coordinate_part("scope", &r.scope)?;
            validate_kind_as(&r.kind, store_written)?;
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
        store_written: bool,
    ) -> Result<Vec<AppendReceipt>> {
        let writer = self.writer()?;
        self.validate(&requests, is_batch, store_written)?;
        if requests.is_empty() {
            return Ok(Vec::new());
        }
        let deadline = std::cell::OnceCell::new();
        let (mut w, writes, index) = loop {
            if !fenced {
                self.wait_for_fence(&deadline)?;
            }
            let mut w = writer.lock();
            w.check_healthy()?;
            self.check_open()?;
            let writes = match &self.shared.sharing {
                Some(mode) => Some(self.lock_shared_writes(mode, &mut w)?),
                None => None,
            };
            let index = self.shared.index.read();
            match (index.visibility.open_fence.is_some(), fenced) {
                // Another process's fence: wait for it (or cancel it when its owner died).
                (true, false) if self.fence_is_elsewhere() => {
                    drop(index);
                    self.wait_for_fence_elsewhere(w, writes, &deadline)?;
                }
                // A fence opened between the wait and the lock: wait for that one too.
                (true, false) => continue,
                (false, true) => return Err(Error::FenceClosed),
                _ => break (w, writes, index),
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
            let fields = HashedFields {
                entity_sequence: clock,
                entity: &r.entity,
                scope: &r.scope,
                kind: &r.kind,
                payload_version: r.payload_version,
                payload: &r.payload,
            };
            let hash = chain_hash(&prev_hash, fields);
            heads.insert(&r.entity, (clock + 1, hash));
            let event_id = w.clock.next_id();
            let (causation_id, cause_correlation) = self.cause_of(&index, r, &records)?;
            records.push(EventRecord {
                event_id,
                global_sequence: w.written() + i as u64,
                entity: Arc::from(r.entity.as_str()),
                scope: Arc::from(r.scope.as_str()),
                kind: Arc::from(r.kind.as_str()),
                entity_sequence: clock,
                timestamp_us: w.clock.next_timestamp_us(),
                causation_id,
                correlation_id: r.correlation_id.or(cause_correlation).unwrap_or(event_id),
                prev_hash,
                hash,
                idempotency_key: r.idempotency_key.clone(),
                payload_version: r.payload_version,
                payload: Vec::new(),
            });
        }
        drop(index);
        for (record, request) in records.iter_mut().zip(requests) {
            record.payload = request.payload;
        }
        if let Some(mode) = &self.shared.sharing {
            self.begin_shared_write(mode);
        }
        let locations = w.write_batch(&records, &self.shared.segments)?;
        self.shared.appends.fetch_add(1, Ordering::Relaxed);
        self.shared.appended_events.fetch_add(records.len() as u64, Ordering::Relaxed);
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
                    causation_id: r.causation_id,
                    correlation_id: r.correlation_id,
                    visible: !fenced,
                });
            }
        }
        if let Some(mode) = &self.shared.sharing {
            self.publish_writes(mode, &w);
        }
        drop(writes);
        if !fenced {
            self.shared.announce_commit();
        }
        let written = w.written();
        drop(w);
        match self.shared.config.sync {
            SyncMode::Always => self.shared.make_durable(written, writer)?,
            SyncMode::Batch
                if written.saturating_sub(self.shared.durable_count())
                    >= self.shared.config.sync_every_n_events =>
            {
                self.shared.kick_flusher()
            }
            _ => {}
        }
        let durable = self.shared.durable_count();
        let store_id = self.shared.store_id;
        Ok(records.iter().map(|r| self.sign(r.receipt(store_id, r.global_sequence < durable))).collect())
    }

    /// The causation id of request `r` (an earlier item of this batch, or the id it names)
    /// and, when it asks to inherit it, the cause's correlation id. A cause outside this
    /// store (or hidden) is kept as given and lends no correlation.
    fn cause_of(
        &self,
        index: &Index,
        r: &AppendRequest,
        earlier: &[EventRecord],
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
        let durable = self.shared.durable_count();
        let mut receipts = Vec::with_capacity(stored.len());
        for (r, stored) in requests.iter().zip(&stored) {
            let event = stored.view();
            let (entity, scope, kind) = event.names();
            let same = entity == r.entity
                && scope == r.scope
                && kind == r.kind
                && event.payload_version() == r.payload_version
                && event.payload() == r.payload;
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
