//! The store: one data dir, one writer, one index, any number of readers.

mod append;
mod causal;
mod checkpoint;
mod fence;
mod identity;
mod leases;
mod lock;
mod read;
mod receipts;
mod replay;
mod shared_mode;
mod verify;

pub use identity::STORE_ID_FILE;
pub use leases::{WorkerLease, LEASES_DIR};
pub use lock::LOCK_FILE;
pub use read::Stats;
pub use verify::{VerifyProblem, VerifyReport};

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Condvar, Mutex, RwLock};

use crate::config::{StoreConfig, SyncMode};
use crate::error::{Error, Result};
use crate::event::IdClock;
use crate::index::{write_checkpoint, CheckpointCover, Index};
use crate::io::{create_durable_dir, os_storage, Storage};
use crate::receipt::ReceiptKeys;
use crate::recovery::{recover, RecoveryOptions, RecoveryReport};
use crate::segment::{SegmentSet, SEGMENTS_DIR};
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
}

/// Bumped in every child process right after `fork()` (the binding registers the hook), so
/// a store opened before a fork knows, with one atomic load, that it is in a child.
static FORK_EPOCH: AtomicU64 = AtomicU64::new(0);

/// Marks this process as a fresh child of a `fork()`: every store opened before the fork is
/// unusable here (its locks, threads and writer belong to the parent).
pub fn note_fork_in_child() {
    FORK_EPOCH.fetch_add(1, Ordering::AcqRel);
}

/// An open event store. All methods take `&self`; the store is safe to share.
pub struct Store {
    shared: Arc<Shared>,
    flusher: Mutex<Option<JoinHandle<()>>>,
    lock_file: Mutex<Option<File>>,
}

impl Store {
    /// Opens (or creates) the store in `data_dir`, recovering the longest valid prefix.
    pub fn open(data_dir: &Path, config: StoreConfig) -> Result<Store> {
        Self::open_with(data_dir, config, os_storage())
    }

    /// [`Store::open`] with every mutating file operation going through `storage`
    /// (tests use this to inject I/O faults and to record what was made durable).
    pub fn open_with(data_dir: &Path, config: StoreConfig, storage: Arc<dyn Storage>) -> Result<Store> {
        config.validate()?;
        let seed = config.signing_key.as_ref().map(|s| s.0.as_slice());
        let receipt_keys = ReceiptKeys::new(seed, &config.verify_keys)
            .map_err(|e| Error::InvalidConfig(format!("receipt keys: {e}")))?;
        let fork_epoch = FORK_EPOCH.load(Ordering::Acquire);
        if data_dir.exists() && !data_dir.is_dir() {
            return Err(Error::InvalidConfig(format!("data dir {} is not a directory", data_dir.display())));
        }
        if !data_dir.is_dir() {
            if !config.create || config.read_only {
                return Err(Error::InvalidConfig(format!(
                    "data dir {} does not exist (create=False or read_only=True)",
                    data_dir.display()
                )));
            }
            create_durable_dir(&*storage, data_dir)
                .map_err(|e| Error::storage("creating the data dir", e))?;
        }
        let segments_dir = data_dir.join(SEGMENTS_DIR);
        if config.read_only && !segments_dir.is_dir() {
            return Err(Error::InvalidConfig(format!(
                "{} holds no eventpak store (read_only=True creates nothing)",
                data_dir.display()
            )));
        }
        let lock_file = lock::take_lock(data_dir, config.read_only, config.shared)?;
        if !config.read_only {
            create_durable_dir(&*storage, &segments_dir)
                .map_err(|e| Error::storage("creating the segments dir", e))?;
        }
        let segments = SegmentSet::new(config.segment_max_bytes);
        let (mut recovered, session) = if config.shared {
            let session = shared_mode::join_session(&*storage, data_dir, &segments_dir, &config, &segments)?;
            (session.recovered, Some((session.mode, session.first, session.open_lock)))
        } else if segments_dir.is_dir() {
            let options = RecoveryOptions {
                use_index_checkpoint: config.enable_index_checkpoint,
                read_only: config.read_only,
                stop_at: None,
                last_segment: None,
            };
            (recover(&*storage, data_dir, &segments_dir, options, &segments)?, None)
        } else {
            (recover_nothing(), None)
        };
        let store_id = identity::load_or_create(&*storage, data_dir, config.read_only)?;
        let written = recovered.index.len();
        let writer = if config.read_only {
            None
        } else {
            // (A joining process holds the write lock here: nobody rotates meanwhile.)
            let _writes = session.as_ref().map(|(mode, _, _)| mode.coord.writes.lock()).transpose()?;
            Some(Mutex::new(start_writer(&storage, &segments_dir, &config, &segments, &mut recovered)?))
        };
        let sharing = session.map(|(mode, first, open_lock)| {
            if first {
                let (segment_id, segment_len) = match &writer {
                    Some(w) => w.lock().end(),
                    None => recovered
                        .segments
                        .last()
                        .copied()
                        .unwrap_or((0, crate::segment::SEGMENT_HEADER_LEN as u64)),
                };
                let published = crate::coord::Published {
                    seq: written,
                    segment_id,
                    segment_len,
                    rotate_before_write: recovered.rotate_before_write,
                };
                shared_mode::start_session(&mode, published, config.read_only);
            }
            drop(open_lock);
            mode
        });
        let sync_mode = config.sync;
        let shared = Arc::new(Shared {
            data_dir: data_dir.to_owned(),
            storage,
            config,
            writer,
            index: RwLock::new(recovered.index),
            segments,
            durability: Durability::new(written),
            closed: AtomicBool::new(false),
            report: recovered.report,
            flush: Mutex::default(),
            flush_wake: Condvar::new(),
            commits: Mutex::new(0),
            commit_wake: Condvar::new(),
            fence: fence::FenceGate::default(),
            store_id,
            receipt_keys,
            fork_epoch,
            opened_by_pid: std::process::id(),
            sharing,
            leases: Mutex::new(0),
            lease_released: Condvar::new(),
        });
        let flusher = (sync_mode == SyncMode::Batch && shared.writer.is_some())
            .then(|| {
                let shared = shared.clone();
                std::thread::Builder::new()
                    .name("eventpak-flusher".into())
                    .spawn(move || shared.run_flusher())
                    .map_err(|e| Error::storage("starting the flusher thread", e))
            })
            .transpose()?;
        Ok(Store { shared, flusher: Mutex::new(flusher), lock_file: Mutex::new(Some(lock_file)) })
    }

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

    fn writer(&self) -> Result<&Mutex<Writer>> {
        self.check_open()?;
        self.shared.writer.as_ref().ok_or(Error::ReadOnlyStore("appending"))
    }

    /// Makes every event appended so far durable (an fsync barrier).
    pub fn sync(&self) -> Result<()> {
        self.durable_through(self.writer()?, Writer::written)
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
        self.durable_through(writer, |_| seq.saturating_add(1))
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
        if self.forked() || self.shared.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        // An unfinished fence never commits: hide its events before the checkpoint.
        let healthy = self.shared.writer.as_ref().filter(|w| w.lock().failure().is_none());
        // (A poisoned writer leaves the fence's marker on disk: reopening hides its events.)
        let fence = healthy.map_or(Ok(()), |w| self.cancel_open_fence(w));
        self.shared.flush.lock().stop = true;
        self.shared.flush_wake.notify_all();
        if let Some(handle) = self.flusher.lock().take() {
            let _ = handle.join(); // The flusher never panics; its failures poison the writer.
        }
        let outcome = fence.and(self.finish_writer());
        if let Some(mode) = &self.shared.sharing {
            mode.coord.leave();
        }
        self.lock_file.lock().take();
        outcome
    }

    fn finish_writer(&self) -> Result<()> {
        let Some(writer) = &self.shared.writer else { return Ok(()) };
        if writer.lock().failure().is_some() {
            // The failure was raised by the call that hit it and stays in `stats()`; a
            // poisoned writer is released without another fsync or an index checkpoint.
            return Ok(());
        }
        if self.shared.sharing.is_some() {
            // Others may still be appending: make durable what is published now, and write
            // the checkpoint of the log as it is under the write lock.
            self.shared.make_durable(self.shared.log_written(writer), writer)?;
        } else {
            writer.lock().sync_active().map_err(|e| Error::storage("fsync at close", e))?;
        }
        if !self.shared.config.enable_index_checkpoint {
            return Ok(());
        }
        let (mut w, _writes) = self.lock_writer(writer)?;
        if self.shared.index.read().visibility.open_fence.is_some() {
            // Another process's fence is open: a checkpoint now would record its events as
            // hidden for good. The last process to close writes one.
            return Ok(());
        }
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

/// The writer of a writable open, at the end of the recovered log (creating the first
/// segment of a new store). What survived a crash may sit only in the page cache, so the
/// active segment is fsynced: `durable` receipts never rest on unsynced history.
fn start_writer(
    storage: &Arc<dyn Storage>,
    segments_dir: &Path,
    config: &StoreConfig,
    segments: &SegmentSet,
    recovered: &mut crate::recovery::Recovered,
) -> Result<Writer> {
    if recovered.segments.is_empty() {
        let first = segments_dir.join(crate::segment::segment_file_name(0));
        // A joining process finds it made (and published) by the session's first writer.
        if !first.exists() {
            Writer::create_segment(&**storage, segments_dir, 0, 0)
                .map_err(|e| Error::storage("creating the first segment", e))?;
        }
        segments.push(0, first.clone())?;
        let len = std::fs::metadata(&first).map_err(|e| Error::storage("reading segment size", e))?.len();
        recovered.segments.push((0, len));
    }
    let &(id, len) = recovered.segments.last().expect("a segment exists");
    let clock = IdClock::resume(recovered.index.last_event_id(), recovered.last_timestamp_us);
    let position = (segments.len() - 1) as u32;
    let writer = Writer::resume(
        storage.clone(),
        segments_dir,
        config.segment_max_bytes,
        (id, position, len),
        (recovered.index.len(), recovered.rotate_before_write),
        clock,
    )?;
    writer.sync_active().map_err(|e| Error::storage("fsync at open", e))?;
    Ok(writer)
}

fn recover_nothing() -> crate::recovery::Recovered {
    crate::recovery::Recovered {
        index: Index::default(),
        segments: Vec::new(),
        last_timestamp_us: 0,
        report: RecoveryReport { index_checkpoint: "missing", ..Default::default() },
        rotate_before_write: false,
    }
}

impl Shared {
    /// Returns once events `0..upto` are durable: group commit within this process, and in
    /// shared mode across processes (an fsync by any process counts).
    fn make_durable(&self, upto: u64, writer: &Mutex<Writer>) -> Result<()> {
        let Some(mode) = &self.sharing else {
            return self.durability.make_durable(upto, || Durability::lead(writer));
        };
        if mode.coord.mem.durable() >= upto {
            return Ok(());
        }
        self.durability.make_durable(upto, || {
            self.lead_shared_sync(mode).inspect_err(|e| writer.lock().poison(e.clone()))
        })
    }

    /// Events written so far: by this process's writer, or published by any process.
    fn log_written(&self, writer: &Mutex<Writer>) -> u64 {
        match &self.sharing {
            Some(mode) => mode.coord.mem.published_seq(),
            None => writer.lock().written(),
        }
    }

    /// Events made durable so far (by any process, in shared mode).
    fn durable_count(&self) -> u64 {
        let own = self.durability.durable();
        self.sharing.as_ref().map_or(own, |mode| own.max(mode.coord.mem.durable()))
    }

    /// Batch mode: fsync when kicked (enough unsynced events) or every interval.
    fn run_flusher(&self) {
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
        }
    }

    /// Wakes blocked readers (in every process sharing the data dir): new events are visible.
    fn announce_commit(&self) {
        if let Some(mode) = &self.sharing {
            mode.coord.mem.commits().wake();
            return;
        }
        *self.commits.lock() += 1;
        self.commit_wake.notify_all();
    }

    fn kick_flusher(&self) {
        self.flush.lock().kick = true;
        self.flush_wake.notify_one();
    }
}
