//! The append path: validate, check idempotency and compare-and-set, chain, write, index,
//! then wait for durability as the sync mode asks.

use std::sync::atomic::Ordering;

use parking_lot::Mutex;

use super::stamp::Stamped;
use super::Store;
use crate::compaction::content_digest;
use crate::conditions::{validate_tracking_name, CommitGuards};
use crate::config::SyncMode;
use crate::error::{Error, Result};
use crate::event::{AppendRequest, EventRecord, WallClock};
use crate::index::{Index, NewEntry};
use crate::receipt::AppendReceipt;
use crate::segment::TrackingFields;
use crate::writer::{FrameLocation, Writer};

/// How a commit goes: as one event or an atomic batch, through the open fence or not,
/// with the reserved kinds allowed or not, with its durability wait or without.
#[derive(Clone, Copy)]
struct Mode {
    is_batch: bool,
    fenced: bool,
    store_written: bool,
    settle: bool,
}

const SINGLE: Mode = Mode { is_batch: false, fenced: false, store_written: false, settle: true };
const BATCH: Mode = Mode { is_batch: true, ..SINGLE };

impl Store {
    /// Appends one event. Refused with [`Error::FenceActive`] while a fence is open.
    pub fn append(&self, request: AppendRequest) -> Result<AppendReceipt> {
        self.append_guarded(request, CommitGuards::none())
    }

    /// Appends one event if `guards.condition` holds, recording `guards.tracking` with it
    /// (see [`Store::append_batch_guarded`]).
    pub fn append_guarded(&self, request: AppendRequest, guards: CommitGuards) -> Result<AppendReceipt> {
        let mut receipts = self.commit(vec![request], SINGLE, &guards)?;
        Ok(receipts.pop().expect("one receipt per request"))
    }

    /// Appends events atomically: all of them become visible, or none.
    pub fn append_batch(&self, requests: Vec<AppendRequest>) -> Result<Vec<AppendReceipt>> {
        self.commit(requests, BATCH, &CommitGuards::none())
    }

    /// Appends events atomically, in one step with checking `guards.condition`
    /// ([`Error::AppendConditionFailed`] writes nothing) and with writing `guards.tracking`
    /// ([`Error::TrackingConflict`] when its position is not past the recorded one). A
    /// keyed batch already committed returns its original receipts before either is
    /// looked at. With no requests, only the condition is checked and the tracking record
    /// written.
    pub fn append_batch_guarded(
        &self,
        requests: Vec<AppendRequest>,
        guards: CommitGuards,
    ) -> Result<Vec<AppendReceipt>> {
        self.commit(requests, BATCH, &guards)
    }

    /// Appends, atomically, events the store writes itself (denials, bypass audits, dead
    /// letters): like [`Store::append_batch_guarded`], but the kinds of
    /// [`RESERVED_KINDS`](crate::RESERVED_KINDS) are accepted beside ordinary ones.
    pub fn append_reserved_batch(
        &self,
        requests: Vec<AppendRequest>,
        guards: CommitGuards,
    ) -> Result<Vec<AppendReceipt>> {
        self.commit(requests, Mode { store_written: true, ..BATCH }, &guards)
    }

    /// Appends events through the open fence: written now, visible at its commit.
    pub fn fence_append_batch(&self, requests: Vec<AppendRequest>) -> Result<Vec<AppendReceipt>> {
        self.commit(requests, Mode { fenced: true, ..BATCH }, &CommitGuards::none())
    }

    /// Appends each request as its own event, exactly as that many [`Store::append`] calls
    /// would (one failing leaves the others alone), but with one durability wait for all of
    /// them: with `sync="always"` every written event is fsynced before this returns, by
    /// one group commit. Event loops use it to append for many tasks in one call.
    pub fn append_each(&self, requests: Vec<AppendRequest>) -> Vec<Result<AppendReceipt>> {
        let mut outcomes: Vec<Result<AppendReceipt>> = requests
            .into_iter()
            .map(|r| {
                let mode = Mode { settle: false, ..SINGLE };
                self.commit(vec![r], mode, &CommitGuards::none()).map(|mut v| v.remove(0))
            })
            .collect();
        let Some(written) = outcomes.iter().flatten().map(|r| r.global_sequence + 1).max() else {
            return outcomes;
        };
        let Ok(writer) = self.writer("appending") else { return outcomes };
        if let Err(e) = self.settle(written, writer) {
            // As with single appends, an event whose fsync failed is not acknowledged.
            for outcome in outcomes.iter_mut().filter(|o| o.is_ok()) {
                *outcome = Err(e.clone());
            }
            return outcomes;
        }
        let durable = self.shared.durable_count();
        for receipt in outcomes.iter_mut().flatten() {
            receipt.durable = receipt.global_sequence < durable;
        }
        outcomes
    }

    /// Writes and publishes `requests`; with `mode.settle`, then waits for the durability
    /// the sync mode promises (without, the caller settles several commits at once).
    fn commit(
        &self,
        requests: Vec<AppendRequest>,
        mode: Mode,
        guards: &CommitGuards,
    ) -> Result<Vec<AppendReceipt>> {
        let Mode { is_batch, fenced, store_written, settle } = mode;
        let writer = self.writer("appending")?;
        self.refuse_on_replica("appending")?;
        self.validate(&requests, is_batch, store_written)?;
        if let Some(tracking) = &guards.tracking {
            validate_tracking_name(&tracking.name)?;
        }
        if requests.is_empty() && guards.is_empty() {
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
            if writes.is_some() {
                // The follow under the lock also noticed whether another process made the
                // dir a replica since this one opened it.
                self.refuse_on_replica("appending")?;
            }
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
        self.check_guards(&index, guards)?;
        if requests.is_empty() && guards.tracking.is_none() {
            return Ok(Vec::new()); // a condition alone: checked, nothing to write
        }
        // One clock reading stamps the whole commit (see `WallClock`).
        let now = WallClock::read();
        let timestamp_us = w.clock.timestamp_at(now);
        let first_sequence = w.written();
        let Stamped { stamps, sealed } = match self.stamp(&index, &requests, &mut w.clock, now) {
            Ok(stamped) => stamped,
            Err(e) => {
                // A key record that failed to write (or fsync) stops the writer, as a
                // failed frame write does: an fsync is never retried.
                if matches!(e, Error::StorageFailed { .. }) {
                    w.poison(e.clone());
                }
                return Err(e);
            }
        };
        drop(index);
        if let Some(mode) = &self.shared.sharing {
            self.begin_shared_write(mode);
        }
        let tracking = guards.tracking.as_ref().map(|t| TrackingFields {
            name: &t.name,
            position: t.position,
            timestamp_us,
        });
        let frames = stamps.iter().zip(&requests).enumerate();
        let frames = frames.map(|(i, (s, r))| s.frame(r, &sealed, first_sequence + i as u64, timestamp_us));
        let sealed_before = w.sealed_events();
        w.write_frames(frames, tracking, &self.shared.segments)?;
        if w.sealed_events() != sealed_before {
            // A segment sealed on the way was fsynced whole: every event before it is
            // durable, whatever the sync mode.
            self.shared.durability.covered(w.sealed_events());
        }
        if !requests.is_empty() {
            self.shared.appends.fetch_add(1, Ordering::Relaxed);
            self.shared.appended_events.fetch_add(requests.len() as u64, Ordering::Relaxed);
        }
        {
            let mut index = self.shared.index.write();
            for ((stamp, r), loc) in stamps.iter().zip(&requests).zip(w.batch_locations()) {
                index.insert_known(stamp.entry(r, &loc, !fenced), stamp.entity_id);
            }
            if let (Some(t), Some(loc)) = (&tracking, w.batch_locations().last()) {
                let place = (loc.segment, loc.offset, loc.len);
                index.tracking.record(t.name, t.position, place, w.written());
            }
        }
        if let Some(mode) = &self.shared.sharing {
            self.publish_writes(mode, &w);
        }
        drop(writes);
        if !fenced && !requests.is_empty() {
            self.shared.announce_commit();
        }
        let written = w.written();
        drop(w);
        let appended = requests.len();
        // Their names and payloads were copied into the log: freed outside the writer lock.
        drop(requests);
        if appended == 0 {
            self.settle_records(writer)?;
        } else if settle {
            self.settle(written, writer)?;
        }
        let durable = self.shared.durable_count();
        let store_id = self.shared.store_id;
        let mut receipts = Vec::with_capacity(stamps.len());
        for (i, s) in stamps.iter().enumerate() {
            let seq = first_sequence + i as u64;
            let (id, clock, hash) = (s.event_id, s.entity_sequence, s.hash);
            receipts.push(AppendReceipt::new(store_id, id, seq, clock, hash, timestamp_us, seq < durable));
        }
        // Signed where they lie: a receipt is large, and each move of one is a copy.
        if let Some(signer) = &self.shared.receipt_keys.signer {
            receipts.iter_mut().for_each(|r| r.sign_with(signer.clone()));
        }
        Ok(receipts)
    }

    /// What the sync mode promises once events `0..written` are written: an fsync through
    /// them (`always`), a flush once enough are pending (`batch`), nothing (`never`).
    fn settle(&self, written: u64, writer: &Mutex<Writer>) -> Result<()> {
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
        Ok(())
    }

    /// For keyed requests already committed: the original receipts when the content is
    /// the same, [`Error::IdempotencyConflict`] when it differs or a batch is partly there.
    fn replayed_receipts(
        &self,
        index: &Index,
        requests: &[AppendRequest],
    ) -> Result<Option<Vec<AppendReceipt>>> {
        if requests.iter().all(|r| r.idempotency_key.is_none()) {
            return Ok(None);
        }
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
        // A removed event's receipt comes from the compaction record.
        let removed = |seq: u64| index.entry(seq).is_some_and(|m| m.is_hole());
        let kept: Vec<u64> = seqs.iter().copied().filter(|&s| !removed(s)).collect();
        let mut stored = self.read_locked(index, &kept)?.into_iter();
        let durable = self.shared.durable_count();
        let mut receipts = Vec::with_capacity(seqs.len());
        for (r, &seq) in requests.iter().zip(&seqs) {
            let key = r.idempotency_key.as_deref().unwrap_or_default();
            let conflict = || {
                Error::IdempotencyConflict(format!(
                    "key {:?} was used for different content (event {seq})",
                    String::from_utf8_lossy(key)
                ))
            };
            if removed(seq) {
                let original = index.compacted.keys.get(key).ok_or_else(|| {
                    Error::Internal(format!("the receipt of removed event {seq} is not in compacted.ranges"))
                })?;
                let tags = r.tags.iter().map(String::as_str);
                let names = (&*r.entity, &*r.scope, &*r.kind);
                let digest = |payload| content_digest(names, r.payload_version, payload, tags.clone());
                if digest(Some(&r.payload)) != original.content && digest(None) != original.content {
                    return Err(conflict());
                }
                let (id, clock, hash, at) =
                    (original.event_id, original.entity_sequence, original.hash, original.timestamp_us);
                let receipt =
                    AppendReceipt::new(self.shared.store_id, id, seq, clock, hash, at, seq < durable);
                receipts.push(self.sign(receipt));
                continue;
            }
            let stored =
                stored.next().ok_or_else(|| Error::Internal(format!("event {seq} did not read back")))?;
            let event = stored.view();
            let (entity, scope, kind) = event.names();
            let same = entity == r.entity
                && scope == r.scope
                && kind == r.kind
                && event.payload_version() == r.payload_version
                && self.same_payload(&event, &r.payload)?
                && event.tags().eq(r.tags.iter().map(String::as_str));
            if !same {
                return Err(conflict());
            }
            let (seq, clock) = (event.global_sequence, event.entity_sequence());
            let (id, hash, at) = (event.event_id(), event.hash(), event.timestamp_us());
            let original = AppendReceipt::new(self.shared.store_id, id, seq, clock, hash, at, seq < durable);
            receipts.push(self.sign(original));
        }
        Ok(Some(receipts))
    }
}

impl Store {
    /// Whether the stored payload of `event` is `payload`: opened first in an encrypted
    /// store (sealing is randomized); a forgotten payload cannot be compared and counts as
    /// the same, so a retried append still gets its original receipt.
    fn same_payload(&self, event: &crate::segment::FrameView<'_>, payload: &[u8]) -> Result<bool> {
        let Some(keys) = &self.shared.keys else { return Ok(event.payload() == payload) };
        match super::forget::open_view(keys, event) {
            Ok(plain) => Ok(plain == payload),
            Err(Error::PayloadForgotten { .. }) => Ok(true),
            Err(e) => Err(e),
        }
    }
}

/// The index entry of `r`, written at `loc`.
pub(super) fn entry_of<'a>(r: &'a EventRecord, loc: &FrameLocation, visible: bool) -> NewEntry<'a> {
    NewEntry {
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
        visible,
        tags: r.tags.iter().map(String::as_str).collect(),
    }
}
