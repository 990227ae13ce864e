//! Group commit: appenders that need durability share fsyncs.
//!
//! The first appender to need an fsync becomes the leader: it notes how many events are
//! written, fsyncs without holding the writer lock (so others keep writing), then
//! publishes the new durable count and wakes everyone. Appenders whose events were
//! covered return; the rest elect the next leader. N concurrent appenders therefore pay
//! for about two fsyncs, not N.

use parking_lot::{Condvar, Mutex};

use crate::error::{Error, Result};
use crate::writer::Writer;

#[derive(Default)]
struct State {
    /// Events `0..durable` are covered by an fsync.
    durable: u64,
    leader_active: bool,
    failure: Option<String>,
    /// While set, leaders wait before fsyncing (a test hook that makes "blocked in
    /// fsync" observable without a slow disk).
    paused: bool,
}

/// Tracks which events are durable and runs the shared fsyncs.
#[derive(Default)]
pub struct Durability {
    state: Mutex<State>,
    changed: Condvar,
}

impl Durability {
    /// Starts with events `0..durable` already durable (those found on disk at open).
    pub fn new(durable: u64) -> Self {
        Durability { state: Mutex::new(State { durable, ..Default::default() }), changed: Condvar::new() }
    }

    /// Holds (`true`) or releases (`false`) every fsync of the group-commit path.
    pub fn set_paused(&self, paused: bool) {
        self.state.lock().paused = paused;
        self.changed.notify_all();
    }

    /// Number of leading events covered by an fsync.
    pub fn durable(&self) -> u64 {
        self.state.lock().durable
    }

    /// Returns once events `0..upto` are durable, fsyncing as leader when needed.
    pub fn make_durable(&self, upto: u64, writer: &Mutex<Writer>) -> Result<()> {
        let mut state = self.state.lock();
        loop {
            if state.durable >= upto {
                return Ok(());
            }
            if let Some(failure) = &state.failure {
                return Err(Error::StorageFailed(failure.clone()));
            }
            if state.leader_active {
                self.changed.wait(&mut state);
                continue;
            }
            state.leader_active = true;
            while state.paused {
                self.changed.wait(&mut state);
            }
            drop(state);
            let outcome = Self::lead(writer);
            state = self.state.lock();
            state.leader_active = false;
            match outcome {
                Ok(covered) => state.durable = state.durable.max(covered),
                Err(failure) => state.failure = Some(failure),
            }
            self.changed.notify_all();
        }
    }

    /// One fsync of everything written so far; returns the covered event count.
    fn lead(writer: &Mutex<Writer>) -> std::result::Result<u64, String> {
        let (file, written) = {
            let w = writer.lock();
            if let Some(failure) = w.failure() {
                return Err(failure.to_owned());
            }
            (w.active_file(), w.written())
        };
        // Older segments were fsynced when the writer rotated away from them, so the
        // active file is the only one that can hold unsynced events.
        match file.sync_data() {
            Ok(()) => Ok(written),
            Err(e) => {
                let failure = format!("fsync of the active segment failed: {e}");
                writer.lock().poison(failure.clone());
                Err(failure)
            }
        }
    }
}
