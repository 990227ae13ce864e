//! The checks an append makes in the same step as its write (under the writer lock, and
//! in shared mode under the write lock after following the log to its published end): its
//! condition and its tracking record. And the durability of a tracking record written
//! without events, which no event count covers.

use std::sync::atomic::Ordering;

use parking_lot::Mutex;

use super::Store;
use crate::conditions::CommitGuards;
use crate::config::SyncMode;
use crate::error::{Error, Result};
use crate::index::Index;
use crate::writer::Writer;

impl Store {
    /// Refuses the append when its condition fails (a visible event of the condition's
    /// region after its position) or its tracking position is not past the recorded one.
    pub(super) fn check_guards(&self, index: &Index, guards: &CommitGuards) -> Result<()> {
        if let Some(condition) = &guards.condition {
            let (position, started) = condition.after.map_or((0, false), |after| (after, true));
            let first = index.query_hits_after(&condition.fail_if_events_match, position, started, 1);
            if let Some(&global_sequence) = first.first() {
                return Err(Error::AppendConditionFailed { global_sequence });
            }
        }
        if let Some(tracking) = &guards.tracking {
            if let Some(recorded) = index.tracking_position(&tracking.name) {
                if tracking.position <= recorded {
                    return Err(Error::TrackingConflict {
                        name: tracking.name.clone(),
                        position: tracking.position,
                        recorded,
                    });
                }
            }
        }
        Ok(())
    }

    /// A tracking record was written with no event: with `sync="always"` it is fsynced
    /// now; otherwise the next `sync()`, flush or close fsyncs it.
    pub(super) fn settle_records(&self, writer: &Mutex<Writer>) -> Result<()> {
        match self.shared.config.sync {
            SyncMode::Always => self.shared.sync_records(writer),
            _ => {
                self.shared.unsynced_records.store(true, Ordering::Release);
                Ok(())
            }
        }
    }

    /// The position recorded for tracking name `name`, if any. In shared mode the log is
    /// followed to its published end first (under the write lock, briefly), so a record any
    /// process committed before this call is seen.
    pub fn tracking_position(&self, name: &str) -> Result<Option<u64>> {
        self.check_open()?;
        if let Some(mode) = &self.shared.sharing {
            let _writes = mode.coord.lock_writes()?;
            let published = mode.coord.mem.published();
            self.follow_to_end(mode, (published.segment_id, published.segment_len))?;
        }
        Ok(self.shared.index.read().tracking_position(name))
    }
}
