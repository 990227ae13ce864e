//! Durability and wake-ups shared by the store's callers and its flusher thread.

use std::time::Duration;

use parking_lot::Mutex;

use std::sync::atomic::Ordering;

use super::Shared;
use crate::error::{Error, Result};
use crate::sync::Durability;
use crate::writer::Writer;

impl Shared {
    /// Returns once events `0..upto` are durable: group commit within this process, and in
    /// shared mode across processes (an fsync by any process counts).
    pub(super) fn make_durable(&self, upto: u64, writer: &Mutex<Writer>) -> Result<()> {
        let Some(mode) = &self.sharing else {
            return self.durability.make_durable(upto, || Durability::lead(writer));
        };
        if mode.coord.mem.durable() >= upto {
            return Ok(());
        }
        self.durability.make_durable(upto, || {
            self.lead_shared_sync(mode, upto).inspect_err(|e| writer.lock().poison(e.clone()))
        })
    }

    /// fsyncs the active segment now, for tracking records written with no event (no event
    /// count covers them, so group commit does not see them). A failure poisons the writer.
    pub(super) fn sync_records(&self, writer: &Mutex<Writer>) -> Result<()> {
        let active = {
            let w = writer.lock();
            w.check_healthy()?;
            w.active_for_sync()
        };
        // Released: the close fsynced every record.
        let Some(active) = active else { return Ok(()) };
        active.sync().map_err(|e| {
            let failure = Error::storage("fsync of a tracking record", e);
            writer.lock().poison(failure.clone());
            failure
        })
    }

    /// fsyncs tracking records written with no event since the last such fsync, if any.
    pub(super) fn sync_pending_records(&self, writer: &Mutex<Writer>) -> Result<()> {
        if self.unsynced_records.swap(false, Ordering::AcqRel) {
            self.sync_records(writer)?;
        }
        Ok(())
    }

    /// Events written so far: by this process's writer, or published by any process.
    pub(super) fn log_written(&self, writer: &Mutex<Writer>) -> u64 {
        match &self.sharing {
            Some(mode) => mode.coord.mem.published_seq(),
            None => writer.lock().written(),
        }
    }

    /// Events made durable so far (by any process, in shared mode).
    pub(super) fn durable_count(&self) -> u64 {
        let own = self.durability.durable();
        self.sharing.as_ref().map_or(own, |mode| own.max(mode.coord.mem.durable()))
    }

    /// Batch mode: fsync when kicked (enough unsynced events) or every interval.
    pub(super) fn run_flusher(&self) {
        let Some(writer) = &self.writer else { return };
        let interval = Duration::from_millis(self.config.sync_interval_ms);
        loop {
            {
                let mut signal = self.flush.lock();
                if !signal.stop && !signal.kick {
                    self.flush_wake.wait_for(&mut signal, interval);
                }
                if signal.stop {
                    return;
                }
                signal.kick = false;
            }
            let written = self.log_written(writer);
            if written > self.durable_count() {
                // A failure poisons the writer; appends and sync() report it from there.
                let _ = self.make_durable(written, writer);
            }
            let _ = self.sync_pending_records(writer);
        }
    }

    /// Wakes blocked readers (in every process sharing the data dir): new events are visible.
    pub(super) fn announce_commit(&self) {
        if let Some(mode) = &self.sharing {
            mode.coord.mem.commits().wake();
            return;
        }
        *self.commits.lock() += 1;
        self.commit_wake.notify_all();
        self.notifier.signal();
    }

    pub(super) fn kick_flusher(&self) {
        self.flush.lock().kick = true;
        self.flush_wake.notify_one();
    }
}
