//! Group commit: appenders that need durability share fsyncs.
//!
//! The first appender to need an fsync becomes the leader: it notes how many events are
//! written, fsyncs without holding the writer lock (so others keep writing), then
//! publishes the new durable count and wakes everyone. Appenders whose events were
//! covered return; the rest elect the next leader.
//!
//! Under steady concurrency the appenders just released by one fsync are still on their
//! way back (a Python thread must win the GIL again) when the next leader is elected. So
//! when the previous fsync carried several appenders, the leader first waits — at most
//! about one fsync's duration — for as many appenders to be waiting again, and one fsync
//! covers them all. A lone appender never waits.

use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::error::{Error, Result};
use crate::writer::Writer;

#[derive(Default)]
struct State {
    /// Events `0..durable` are covered by an fsync.
    durable: u64,
    leader_active: bool,
    failure: Option<Error>,
    /// While set, leaders wait before fsyncing (a test hook that makes "blocked in
    /// fsync" observable without a slow disk).
    paused: bool,
    /// Group-commit fsyncs done so far.
    fsyncs: u64,
    /// Threads inside `make_durable` right now.
    waiters: usize,
    /// How many appenders rode the previous fsync: the group the next leader waits for.
    last_group: usize,
    /// A leader is waiting for its group to gather (arrivals must wake it).
    gathering: bool,
    /// Moving average of fsync time, bounding how long a leader gathers.
    fsync_avg: Duration,
}

/// Tracks which events are durable and runs the shared fsyncs.
#[derive(Default)]
pub struct Durability {
    state: Mutex<State>,
    changed: Condvar,
}

/// Bounds of the gathering wait.
const MIN_GATHER: Duration = Duration::from_micros(20);
const MAX_GATHER: Duration = Duration::from_millis(2);

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

    /// Notes that events `0..upto` are covered by an fsync made outside a group commit
    /// (the one that seals a segment), waking waiters it satisfies.
    pub fn covered(&self, upto: u64) {
        let mut state = self.state.lock();
        if upto > state.durable {
            state.durable = upto;
            self.changed.notify_all();
        }
    }

    /// Number of group-commit fsyncs so far.
    pub fn fsyncs(&self) -> u64 {
        self.state.lock().fsyncs
    }

    /// Returns once events `0..upto` are durable, fsyncing as leader when needed: `lead`
    /// returns how many leading events are durable after it, and whether it ran an fsync
    /// (in shared mode another process's fsync may already have covered them).
    pub fn make_durable(&self, upto: u64, lead: impl Fn() -> Result<(u64, bool)>) -> Result<()> {
        let mut state = self.state.lock();
        state.waiters += 1;
        if state.gathering {
            self.changed.notify_all();
        }
        let outcome = loop {
            if state.durable >= upto {
                break Ok(());
            }
            if let Some(failure) = &state.failure {
                break Err(failure.clone());
            }
            if state.leader_active {
                self.changed.wait(&mut state);
                continue;
            }
            state.leader_active = true;
            while state.paused {
                self.changed.wait(&mut state);
            }
            self.gather(&mut state);
            state.last_group = state.waiters;
            drop(state);
            let started = Instant::now();
            let outcome = lead();
            let took = started.elapsed();
            state = self.state.lock();
            state.leader_active = false;
            state.fsync_avg = (state.fsync_avg * 7 + took) / 8;
            match outcome {
                Ok((covered, fsynced)) => {
                    state.durable = state.durable.max(covered);
                    state.fsyncs += u64::from(fsynced);
                }
                Err(failure) => state.failure = Some(failure),
            }
            self.changed.notify_all();
        };
        state.waiters -= 1;
        outcome
    }

    /// Waits, bounded by about one fsync, until as many appenders wait as rode the last fsync.
    fn gather(&self, state: &mut parking_lot::MutexGuard<'_, State>) {
        if state.last_group <= 1 {
            return;
        }
        let deadline = Instant::now() + state.fsync_avg.clamp(MIN_GATHER, MAX_GATHER);
        state.gathering = true;
        while state.waiters < state.last_group {
            if self.changed.wait_until(state, deadline).timed_out() {
                break;
            }
        }
        state.gathering = false;
    }

    /// One fsync of everything `writer` wrote so far; returns the covered event count.
    pub fn lead(writer: &Mutex<Writer>) -> Result<(u64, bool)> {
        let (file, written) = {
            let w = writer.lock();
            // Events written before a failed frame write are acknowledged once fsynced.
            if let Some(failure) = w.failure().filter(|_| !w.may_sync()) {
                return Err(failure.clone());
            }
            (w.active_for_sync(), w.written())
        };
        // Older segments were fsynced when the writer rotated away from them, so the
        // active file is the only one that can hold unsynced events; a released one was
        // fsynced by the close, after everything written.
        let Some(file) = file else { return Ok((written, true)) };
        match file.sync() {
            Ok(()) => Ok((written, true)),
            Err(e) => {
                let failure = Error::storage("fsync of the active segment", e);
                writer.lock().poison(failure.clone());
                Err(failure)
            }
        }
    }
}
