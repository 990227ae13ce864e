//! The store: one data dir, one writer, one index, any number of readers.

mod append;
mod backup;
mod causal;
mod checkpoint;
mod compact;
mod durable;
mod fence;
mod forget;
mod guards;
mod identity;
mod leases;
mod lock;
mod notify;
mod open;
mod read;
mod receipts;
mod replay;
mod replica;
mod shared_mode;
mod stamp;
mod validate;
mod verify;

pub use backup::{BackupReport, BACKUP_PENDING_FILE};
pub use checkpoint::{CheckpointStatus, Lag};
pub use compact::{CompactionReport, Retention, Selection};
pub use identity::STORE_ID_FILE;
pub use leases::{WorkerLease, LEASES_DIR};
pub use lock::LOCK_FILE;
pub use notify::CommitNotifier;
pub use read::Stats;
pub use replica::{ApplyOutcome, ReplicaOrigin, REPLICA_ORIGIN_FILE};
pub use verify::{VerifyProblem, VerifyReport};

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Condvar, Mutex, RwLock};

use crate::config::StoreConfig;
use crate::error::{Error, Result};
use crate::index::{write_checkpoint, CheckpointCover, Index};
use crate::io::Storage;
use crate::receipt::ReceiptKeys;
use crate::recovery::RecoveryReport;
use crate::segment::SegmentSet;
use crate::sync::Durability;
use crate::writer::Writer;

#[derive(Default)]
struct FlushSignal {
    stop: bool,
    kick: bool,
}

pub(crate) struct Shared {
    data_dir: PathBuf,
    storage: Arc<dyn Storage>,
    config: StoreConfig,
    /// `None` for a read-only store.
    writer: Option<Mutex<Writer>>,
    index: RwLock<Index>,
    segments: SegmentSet,
    durability: Durability,
    closed: AtomicBool,
    report: RecoveryReport,
    flush: Mutex<FlushSignal>,
    flush_wake: Condvar,
    /// Bumped whenever events become visible (and on `wake_waiters`): what blocking
    /// readers wait on, so they wake on commit instead of polling.
    commits: Mutex<u64>,
    commit_wake: Condvar,
    /// Which thread's fence is open; appends from other threads wait on it.
    fence: fence::FenceGate,
    /// Random bytes fixed when the data dir was created (`store.id`).
    store_id: [u8; 16],
    /// The key receipts are signed with, and the keys whose signatures are accepted.
    receipt_keys: ReceiptKeys,
    /// The fork epoch and process id at open: a store is unusable in a forked child.
    fork_epoch: u64,
    opened_by_pid: u32,
    /// Set when the data dir is shared with other processes (`shared=True`).
    sharing: Option<shared_mode::SharedMode>,
    /// Bumped when a worker lease is released (exclusive mode; shared mode uses a futex).
    leases: Mutex<u32>,
    lease_released: Condvar,
    /// The readable-on-commit descriptor for event loops, made on first use.
    notifier: notify::NotifierSlot,
    /// Appends that wrote events (a batch is one), and the events they wrote, through this
    /// store since it was opened (what `stats()` and the metrics report).
    appends: AtomicU64,
    appended_events: AtomicU64,
    /// A tracking record was written with no event and no fsync has covered it yet.
    unsynced_records: AtomicBool,
    /// Set when the data dir is a replica's (`replica.origin`): only replication writes.
    replica: RwLock<Option<replica::ReplicaOrigin>>,
    /// Held by a compaction from start to end, and by `verify` and `close`, which must not
    /// see a segment swapped under them.
    compaction: Mutex<()>,
    /// Held shared by readers from looking events up in the index to reading their frames,
    /// and exclusively by a compaction while it swaps segments and their index entries: a
    /// reader never reads a place the index gave it in a file swapped since. (Appends never
    /// take it, so a reader mapping a large segment does not hold them up.)
    segment_swap: RwLock<()>,
    /// The data keys of an encrypted store; `None` for a clear one.
    keys: Option<crate::crypt::PayloadKeys>,
}

/// Bumped in every child process right after `fork()` (the binding registers the hook), so
/// a store opened before a fork knows, with one atomic load, that it is in a child.
static FORK_EPOCH: AtomicU64 = AtomicU64::new(0);

/// Marks this process as a fresh child of a `fork()`: every store opened before the fork is
/// unusable here (its locks, threads and writer belong to the parent).
pub fn note_fork_in_child() {
    FORK_EPOCH.fetch_add(1, Ordering::AcqRel);
    crate::coord::fork::detach_in_child();
}

/// An open event store. All methods take `&self`; the store is safe to share.
pub struct Store {
    shared: Arc<Shared>,
    flusher: Mutex<Option<JoinHandle<()>>>,
    lock_file: Mutex<Option<crate::coord::FileLock>>,
}

impl Store {
    /// The data dir this store owns.
    pub fn data_dir(&self) -> &Path {
        &self.shared.data_dir
    }

    /// The options the store was opened with.
    pub fn config(&self) -> &StoreConfig {
        &self.shared.config
    }

    /// The store's identity: 16 random bytes fixed when its data dir was created.
    pub fn store_id(&self) -> [u8; 16] {
        self.shared.store_id
    }

    /// True once `close` ran, and in a child process forked after the store was opened.
    pub fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::Acquire) || self.forked()
    }

    /// True in a child forked after this store was opened.
    fn forked(&self) -> bool {
        FORK_EPOCH.load(Ordering::Acquire) != self.shared.fork_epoch
    }

    /// Refuses use of a closed store, and of one opened before a fork in the forked child
    /// (checked before any lock is taken: a lock held at fork time stays held in the child).
    pub fn check_open(&self) -> Result<()> {
        if self.forked() {
            return Err(Error::OpenedBeforeFork { pid: self.shared.opened_by_pid });
        }
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(Error::StoreClosed);
        }
        Ok(())
    }

    /// The writer, for `operation` (named when a read-only store refuses it).
    fn writer(&self, operation: &'static str) -> Result<&Mutex<Writer>> {
        self.check_open()?;
        self.shared.writer.as_ref().ok_or(Error::ReadOnlyStore(operation))
    }

    /// Makes every event appended so far durable (an fsync barrier).
    /// In shared mode, every event any process has appended so far. A read-only store
    /// appends nothing, so it has nothing to make durable: a no-op there, not a refusal
    /// (the writers' own `sync` and `sync` policy make their events durable).
    pub fn sync(&self) -> Result<()> {
        self.check_open()?;
        let published = self.shared.sharing.as_ref().map_or(0, |mode| mode.coord.mem.published_seq());
        let Some(writer) = self.shared.writer.as_ref() else { return Ok(()) };
        self.shared.sync_pending_records(writer)?;
        self.durable_through(writer, |w| w.written().max(published))
    }

    /// Waits until events `0..upto(writer)` are durable. A poisoned writer says so, even
    /// when nothing is left to sync.
    fn durable_through(&self, writer: &Mutex<Writer>, upto: impl FnOnce(&Writer) -> u64) -> Result<()> {
        let upto = {
            let w = writer.lock();
            w.check_healthy()?;
            upto(&w)
        };
        self.shared.make_durable(upto, writer)
    }

    /// A counter that changes whenever events become visible (in any process sharing the
    /// data dir).
    pub fn commit_generation(&self) -> u64 {
        match &self.shared.sharing {
            Some(mode) => u64::from(mode.coord.mem.commits().load()),
            None => *self.shared.commits.lock(),
        }
    }

    /// Blocks until the commit generation differs from `seen` or `timeout` passes;
    /// returns the generation then.
    pub fn wait_for_commit(&self, seen: u64, timeout: Duration) -> u64 {
        if let Some(mode) = &self.shared.sharing {
            let commits = mode.coord.mem.commits();
            commits.wait(seen as u32, timeout);
            return u64::from(commits.load());
        }
        let mut generation = self.shared.commits.lock();
        if *generation == seen {
            self.shared.commit_wake.wait_for(&mut generation, timeout);
        }
        *generation
    }

    /// Wakes every reader blocked in [`Store::wait_for_commit`] (to stop a worker).
    pub fn wake_waiters(&self) {
        if self.forked() {
            return; // The parent's waiters are not here, and its locks may be held forever.
        }
        self.shared.announce_commit();
    }

    /// Holds every group-commit fsync until called again with `false` (a test hook).
    pub fn pause_syncs(&self, paused: bool) {
        self.shared.durability.set_paused(paused);
    }

    /// Returns once the event at `seq` and all before it are durable (fsyncing if needed).
    /// Durable cursor checkpoints call this first, so a checkpoint never points past
    /// what survives a power loss.
    pub fn sync_through(&self, seq: u64) -> Result<()> {
        self.check_open()?;
        // A read-only store appends nothing; what it reads is all it will ever have.
        let Some(writer) = self.shared.writer.as_ref() else { return Ok(()) };
        // A position past the head (a cursor made with `after=` beyond it) asks for events
        // nobody wrote: waiting for them would never end. Everything written is what there
        // is to sync: alone on the data dir, what this writer wrote; shared, what any
        // process published (a delivered event always is).
        let sharing = self.shared.sharing.as_ref();
        self.durable_through(writer, |w| {
            let written = sharing.map_or_else(|| w.written(), |mode| mode.coord.mem.published_seq());
            seq.saturating_add(1).min(written)
        })
    }

    /// Number of leading events covered by an fsync (by any process, in shared mode).
    pub fn durable_events(&self) -> u64 {
        self.shared.durable_count()
    }

    /// Syncs, writes the index checkpoint and releases the data dir. Idempotent.
    /// The lock is released even when syncing or the checkpoint fails; the error is returned.
    /// In a forked child it does nothing: the writer, the flusher and the lock belong to
    /// the parent, which keeps using them.
    pub fn close(&self) -> Result<()> {
        if self.forked() {
            return Ok(());
        }
        self.refuse_inside_compaction("close()")?;
        if self.shared.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        // Readers blocked waiting for a commit wake up to meet `StoreClosed` now, not when
        // their timeout ends.
        self.shared.announce_commit();
        // A compaction under way finishes (or stops at its next check) first.
        drop(self.shared.compaction.lock());
        // An unfinished fence never commits: hide its events before the checkpoint.
        let healthy = self.shared.writer.as_ref().filter(|w| w.lock().failure().is_none());
        // (A poisoned writer leaves the fence's marker on disk: reopening hides its events.)
        let fence = healthy.map_or(Ok(()), |w| self.cancel_open_fence(w));
        self.shared.flush.lock().stop = true;
        self.shared.flush_wake.notify_all();
        self.stop_commit_relay();
        if let Some(handle) = self.flusher.lock().take() {
            let _ = handle.join(); // The flusher never panics; its failures poison the writer.
        }
        let finished = self.finish_writer();
        if let (Ok(()), Some(writer)) = (&finished, &self.shared.writer) {
            // Everything written is durable (or the writer is poisoned and says so).
            writer.lock().release();
        }
        let outcome = fence.and(finished);
        if let Some(mode) = &self.shared.sharing {
            // A fence a poisoned writer could not cancel is cancelled by the next writer of
            // another process, once it sees the fence lock free.
            mode.coord.fence.unlock();
            mode.leave();
        }
        if let Some(lock) = self.lock_file.lock().take() {
            if self.shared.sharing.is_none() && self.shared.writer.is_some() {
                lock::clear_holder(&self.shared.data_dir);
            }
            // Released explicitly: a child that another thread is forking for a subprocess
            // shares the lock's file description until it execs, and closing our descriptor
            // alone would leave the lock held until then.
            lock.unlock();
        }
        // A closed store that stays referenced (a handle kept by a worker, a cursor, an
        // application object) must not keep a descriptor and a mapping per segment.
        self.shared.segments.release();
        outcome
    }

    fn finish_writer(&self) -> Result<()> {
        let Some(writer) = &self.shared.writer else { return Ok(()) };
        if writer.lock().failure().is_some() {
            // The failure was raised by the call that hit it and stays in `stats()`; a
            // poisoned writer is released without another fsync or an index checkpoint.
            return Ok(());
        }
        if let Some(mode) = &self.shared.sharing {
            // Others may still be appending: what is published now is made durable, and
            // the checkpoint covers what this process has followed.
            self.shared.sync_pending_records(writer)?;
            self.shared.make_durable(self.shared.log_written(writer), writer)?;
            let enabled = self.shared.config.enable_index_checkpoint;
            return if enabled { self.write_shared_checkpoint(mode, writer) } else { Ok(()) };
        }
        writer.lock().sync_active().map_err(|e| Error::storage("fsync at close", e))?;
        if !self.shared.config.enable_index_checkpoint {
            return Ok(());
        }
        let mut w = writer.lock();
        let mut cover =
            CheckpointCover { last_timestamp_us: w.clock.next_timestamp_us(), ..Default::default() };
        for (id, path) in self.shared.segments.list() {
            let len = std::fs::metadata(&path).map_err(|e| Error::storage("reading segment size", e))?.len();
            cover.segments.push((id, len));
        }
        let index = self.shared.index.read();
        write_checkpoint(&*self.shared.storage, &self.shared.data_dir, &index, &cover)
            .map_err(|e| Error::storage("writing the index checkpoint", e))
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        // Dropping without close() still stops the flusher and releases the lock; there is
        // no caller left to hand an error to.
        let _ = self.close();
    }
}
