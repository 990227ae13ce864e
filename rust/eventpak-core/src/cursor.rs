//! Cursors: ordered, at-least-once pull delivery of the visible events of a region.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::cursor_checkpoint::{checkpoint_path, CursorCheckpoint};
use crate::error::{Error, Result};
use crate::interrupt;
use crate::region::Region;
use crate::segment::StoredEvent;
use crate::store::Store;

/// A delivery that jumped over cancelled fence ranges or ranges removed by compaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GapObservation {
    /// The sequence the cursor would have delivered next with no gap.
    pub expected_sequence: u64,
    /// The sequence it delivered.
    pub delivered_sequence: u64,
    /// Cancelled ranges inside `[expected_sequence, delivered_sequence)`, half-open.
    pub cancelled_ranges: Vec<(u64, u64)>,
    /// Ranges removed by compaction inside `[expected_sequence, delivered_sequence)`,
    /// half-open and maximal.
    pub compacted_ranges: Vec<(u64, u64)>,
}

/// A ring buffer of the newest gap observations.
#[derive(Clone, Debug)]
struct GapBuffer {
    capacity: usize,
    items: VecDeque<GapObservation>,
}

/// A cursor's position and filters; the store it reads is passed to each call.
#[derive(Clone, Debug)]
pub struct Cursor {
    region: Region,
    position: u64,
    started: bool,
    gaps: Option<GapBuffer>,
}

impl Cursor {
    /// A fresh cursor at the start of the log.
    pub fn new(region: Region) -> Self {
        Cursor { region, position: 0, started: false, gaps: None }
    }

    /// The cursor's region.
    pub fn region(&self) -> &Region {
        &self.region
    }

    /// Last delivered global sequence (0 before the first delivery).
    pub fn position(&self) -> u64 {
        self.position
    }

    /// False until the first delivery, so that sequence 0 is never skipped.
    pub fn started(&self) -> bool {
        self.started
    }

    /// Moves the cursor (resuming from a checkpoint, or rewinding a worker).
    pub fn seek(&mut self, position: u64, started: bool) {
        self.position = position;
        self.started = started;
    }

    /// Records gap observations in a ring of `capacity` (`None` turns recording off).
    pub fn set_gap_capacity(&mut self, capacity: Option<usize>) {
        self.gaps = capacity.map(|capacity| GapBuffer { capacity: capacity.max(1), items: VecDeque::new() });
    }

    /// Drains the recorded gap observations, oldest first.
    pub fn take_gaps(&mut self) -> Vec<GapObservation> {
        self.gaps.as_mut().map(|g| g.items.drain(..).collect()).unwrap_or_default()
    }

    /// Delivers up to `max` matching events after the position, without waiting.
    pub fn poll_batch(&mut self, store: &Store, max: usize) -> Result<Vec<StoredEvent>> {
        let hits = store.query_hits_after(&self.region, self.position, self.started, max)?;
        let Some(&last) = hits.last() else { return Ok(Vec::new()) };
        let events = store.read_events(&hits)?;
        if self.gaps.is_some() {
            let mut expected = if self.started { self.position + 1 } else { self.position };
            for &delivered in &hits {
                if delivered > expected {
                    self.record_gap(store, expected, delivered);
                }
                expected = delivered + 1;
            }
        }
        self.position = last;
        self.started = true;
        Ok(events)
    }

    fn record_gap(&mut self, store: &Store, expected: u64, delivered: u64) {
        let cancelled_ranges = store.cancelled_within(expected, delivered);
        let compacted_ranges = store.compacted_within(expected, delivered);
        let Some(gaps) = self.gaps.as_mut() else { return };
        if cancelled_ranges.is_empty() && compacted_ranges.is_empty() {
            return;
        }
        if gaps.items.len() == gaps.capacity {
            gaps.items.pop_front();
        }
        gaps.items.push_back(GapObservation {
            expected_sequence: expected,
            delivered_sequence: delivered,
            cancelled_ranges,
            compacted_ranges,
        });
    }

    /// Delivers up to `max` events, waiting up to `timeout` for the first one. The wait
    /// sleeps on the store's commit signal, so a commit wakes it at once. Returns early
    /// (possibly empty) when `interrupted` says so after a wake-up.
    pub fn pull_batch(
        &mut self,
        store: &Store,
        max: usize,
        timeout: Duration,
        interrupted: &dyn Fn() -> bool,
    ) -> Result<Vec<StoredEvent>> {
        wait_for_events(store, max, timeout, interrupted, || self.poll_batch(store, max))
    }

    /// The cursor's position as a checkpoint bound to its region.
    pub fn checkpoint(&self) -> CursorCheckpoint {
        CursorCheckpoint {
            position: self.position,
            started: self.started,
            process_boot_ns: None,
            region_identity: Some(self.region.checkpoint_identity()),
        }
    }

    /// Moves the cursor to checkpoint `id` of `store`; `false` (and no move) when there is
    /// none. A checkpoint saved for another region is refused, never silently reused.
    pub fn resume(&mut self, store: &Store, id: &str) -> Result<bool> {
        let Some(saved) = store.load_cursor_checkpoint(id)? else { return Ok(false) };
        let expected = self.region.checkpoint_identity();
        if saved.region_identity.as_deref() != Some(expected.as_str()) {
            let path = checkpoint_path(store.data_dir(), id)?;
            return Err(Error::CursorCheckpointRegionMismatch {
                path,
                stored: saved.region_identity,
                expected,
            });
        }
        self.seek(saved.position, saved.started);
        Ok(true)
    }

    /// Makes the cursor's position durable as checkpoint `id` (see
    /// [`Store::commit_cursor_checkpoint`]).
    pub fn commit(&self, store: &Store, id: &str) -> Result<()> {
        store.commit_cursor_checkpoint(id, &self.checkpoint())
    }
}

/// Calls `poll` until it returns events, `max` is 0, `interrupted` says so, or `timeout`
/// passes, sleeping on the store's commit signal in between. `poll` runs outside any lock
/// this function holds, so a caller that guards its cursor with a lock takes it per poll
/// and never holds it across the wait. A check installed with [`crate::interruptible`]
/// is asked before each sleep, which then lasts one slice at most.
pub fn wait_for_events(
    store: &Store,
    max: usize,
    timeout: Duration,
    interrupted: &dyn Fn() -> bool,
    mut poll: impl FnMut() -> Result<Vec<StoredEvent>>,
) -> Result<Vec<StoredEvent>> {
    let deadline = Instant::now() + timeout;
    loop {
        // Read the generation before polling: a commit landing in between changes it, so
        // the wait below returns at once instead of missing that commit.
        let generation = store.commit_generation();
        let batch = poll()?;
        if !batch.is_empty() || max == 0 || interrupted() {
            return Ok(batch);
        }
        if Instant::now() >= deadline {
            return Ok(batch);
        }
        // Nothing yet: a caller's check (Ctrl-C on Python's main thread) may end the wait.
        interrupt::check()?;
        let slice_end = interrupt::slice_end(deadline);
        store.wait_for_commit(generation, slice_end.saturating_duration_since(Instant::now()));
    }
}
