//! Worker leases: at most one live worker per checkpoint id, across every process that
//! opened the data dir. A lease is an `flock` on `leases/<id>.lease`, so it ends with its
//! holder however that ends (stop, crash, SIGKILL), and a standby takes it over.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Shared, Store, FORK_EPOCH};
use crate::coord::FileLock;
use crate::cursor_checkpoint::validate_checkpoint_id;
use crate::error::{Error, Result};
use crate::io::create_private_dir;

/// Folder of a data dir holding the worker lease files.
pub const LEASES_DIR: &str = "leases";

/// How often a waiting standby tries again when no release woke it: a holder that died
/// wakes nobody, so this bounds how late a standby notices.
const RETRY_INTERVAL: Duration = Duration::from_millis(200);

/// The right to run the worker of one checkpoint id; released when dropped.
pub struct WorkerLease {
    lock: FileLock,
    shared: Arc<Shared>,
    fork_epoch: u64,
}

impl Drop for WorkerLease {
    fn drop(&mut self) {
        // In a forked child the lock's file description is the parent's: unlocking it here
        // would end the parent's lease.
        if FORK_EPOCH.load(Ordering::Acquire) != self.fork_epoch {
            return;
        }
        self.lock.unlock();
        self.shared.announce_lease_release();
    }
}

impl Store {
    /// Takes the lease of `checkpoint_id`, waiting up to `timeout` for its holder (in this
    /// or another process) to release it; `None` when it is still held then.
    pub fn take_worker_lease(&self, checkpoint_id: &str, timeout: Duration) -> Result<Option<WorkerLease>> {
        self.check_open()?;
        validate_checkpoint_id(checkpoint_id)?;
        if self.shared.config.read_only {
            return Err(Error::ReadOnlyStore("taking a worker lease"));
        }
        let dir = self.shared.data_dir.join(LEASES_DIR);
        create_private_dir(&dir).map_err(|e| Error::storage("creating the leases dir", e))?;
        let lock = FileLock::open(&dir.join(format!("{checkpoint_id}.lease")))?;
        let deadline = Instant::now() + timeout;
        loop {
            let seen = self.shared.lease_generation();
            if lock.try_hold()? {
                let fork_epoch = self.shared.fork_epoch;
                return Ok(Some(WorkerLease { lock, shared: self.shared.clone(), fork_epoch }));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            self.shared.wait_for_lease_release(seen, left.min(RETRY_INTERVAL));
        }
    }
}

impl Shared {
    fn lease_generation(&self) -> u32 {
        match &self.sharing {
            Some(mode) => mode.coord.mem.leases().load(),
            None => *self.leases.lock(),
        }
    }

    fn wait_for_lease_release(&self, seen: u32, timeout: Duration) {
        match &self.sharing {
            Some(mode) => mode.coord.mem.leases().wait(seen, timeout),
            None => {
                let mut generation = self.leases.lock();
                if *generation == seen {
                    self.lease_released.wait_for(&mut generation, timeout);
                }
            }
        }
    }

    fn announce_lease_release(&self) {
        match &self.sharing {
            Some(mode) => mode.coord.mem.leases().wake(),
            None => {
                let mut generation = self.leases.lock();
                *generation = generation.wrapping_add(1);
                self.lease_released.notify_all();
            }
        }
    }
}
