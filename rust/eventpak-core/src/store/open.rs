//! Opening a data dir: validate, lock, recover (alone, or joining a shared session), start
//! the writer and the flusher.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{Condvar, Mutex, RwLock};

use super::replica::ReplicaOrigin;
use super::{fence, identity, lock, shared_mode, Shared, Store, FORK_EPOCH};
use crate::config::{StoreConfig, SyncMode};
use crate::error::{Error, Result};
use crate::event::IdClock;
use crate::index::Index;
use crate::io::{create_durable_dir, os_storage, Storage};
use crate::receipt::ReceiptKeys;
use crate::recovery::{recover, RecoveryOptions, RecoveryReport};
use crate::segment::{SegmentSet, SEGMENTS_DIR};
use crate::sync::Durability;
use crate::writer::Writer;

impl Store {
    /// Opens (or creates) the store in `data_dir`, recovering the longest valid prefix.
    pub fn open(data_dir: &Path, config: StoreConfig) -> Result<Store> {
        Self::open_with(data_dir, config, os_storage())
    }

    /// [`Store::open`] with every mutating file operation going through `storage`
    /// (tests use this to inject I/O faults and to record what was made durable).
    pub fn open_with(data_dir: &Path, config: StoreConfig, storage: Arc<dyn Storage>) -> Result<Store> {
        config.validate()?;
        // Every file of the store is reached through this path for its whole life: a
        // relative one would move with the process's working directory (a segment sealed,
        // a lease taken or a checkpoint saved in another folder).
        let data_dir = &std::path::absolute(data_dir)
            .map_err(|e| Error::storage("finding the working directory for a relative data dir", e))?;
        // A backup being moved into this folder: its files are a mix of two backups (unless
        // that backup is still running: then the folder is locked, and that is the answer).
        super::backup::refuse_unfinished(data_dir).or_else(|e| lock::refuse_if_held(data_dir).and(Err(e)))?;
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
            create_durable_dir(&*storage, data_dir).map_err(|e| match e.kind() {
                // A file where a parent folder belongs: the path can never be a data dir,
                // which is a usage error, not a failing disk.
                std::io::ErrorKind::NotADirectory => Error::InvalidConfig(format!(
                    "data dir {} cannot be made: a parent of it is a file, not a directory",
                    data_dir.display()
                )),
                _ => Error::storage("creating the data dir", e),
            })?;
        }
        // Links resolved once, now: a link on the path re-pointed while the store is open (a
        // deploy switching `current` to a new release) must not move it into another store.
        let resolved = data_dir.canonicalize().map_err(|e| Error::storage("resolving the data dir", e))?;
        let data_dir = &resolved;
        let segments_dir = data_dir.join(SEGMENTS_DIR);
        if (config.read_only || !config.create) && !segments_dir.is_dir() {
            // Say so when it is what a killed first backup left, or that a first backup still
            // runs into it (it holds the lock).
            super::backup::refuse_interrupted_first(data_dir)
                .or_else(|e| lock::refuse_if_held(data_dir).and(Err(e)))?;
            let why = if config.read_only { "read_only=True" } else { "create=False" };
            return Err(Error::InvalidConfig(format!(
                "{} holds no eventpak store ({why} creates nothing)",
                data_dir.display()
            )));
        }
        let lock_file = lock::take_lock(data_dir, config.read_only, config.shared)?;
        // A refused open leaves no process id in `LOCK`: it names only a holder that runs.
        let mut holder = HolderNote { data_dir, written: !config.read_only && !config.shared };
        // Under the lock: a first backup still running into this folder is `StoreLocked`.
        super::backup::refuse_interrupted_first(data_dir)?;
        // Before anything is written: a key that does not fit the store is refused here.
        let key = config.encryption_key.as_ref().map(|k| k.0.as_slice());
        let opened = crate::crypt::open_keys(
            data_dir,
            &segments_dir,
            &storage,
            key,
            (config.read_only, config.shared),
        )?;
        let mut keys = opened.keys;
        if !config.read_only {
            create_durable_dir(&*storage, &segments_dir)
                .map_err(|e| Error::storage("creating the segments dir", e))?;
        }
        let segments = SegmentSet::new(config.segment_max_bytes);
        let (mut recovered, session) = if config.shared {
            let session = shared_mode::join_session(&*storage, data_dir, &segments_dir, &config, &segments)?;
            if !config.read_only {
                // Under the session's open lock: another process may have made the store
                // meanwhile, in the other mode.
                crate::crypt::recheck_shared(
                    &*storage,
                    data_dir,
                    &segments_dir,
                    keys.is_some(),
                    opened.key_file_found,
                )?;
            }
            (session.recovered, Some((session.mode, session.first, session.open_lock)))
        } else if segments_dir.is_dir() {
            let options = RecoveryOptions {
                use_index_checkpoint: config.enable_index_checkpoint,
                read_only: config.read_only,
                stop_at: None,
                last_segment: None,
                sequence_jumps: ReplicaOrigin::exists(data_dir),
            };
            (recover(&*storage, data_dir, &segments_dir, options, &segments)?, None)
        } else {
            (recover_nothing(), None)
        };
        // A store that has the data dir to itself (an exclusive open, or the first of a shared
        // session, under its open lock) knows every temp file there is a dead process's.
        if !config.read_only && session.as_ref().is_none_or(|(_, first, _)| *first) {
            crate::io::remove_temps(data_dir);
            crate::io::remove_temps(&data_dir.join(crate::cursor_checkpoint::CURSORS_DIR));
        }
        let store_id = identity::load_or_create(&*storage, data_dir, config.read_only)?;
        let replica = ReplicaOrigin::load(data_dir)?;
        let written = recovered.index.len();
        let writer = if config.read_only {
            None
        } else {
            // (A joining process holds the write lock here: nobody rotates meanwhile.)
            let _writes = session.as_ref().map(|(mode, _, _)| mode.coord.lock_writes()).transpose()?;
            let encrypted = keys.is_some();
            Some(Mutex::new(start_writer(
                &storage,
                &segments_dir,
                &config,
                &segments,
                &mut recovered,
                encrypted,
            )?))
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
            open_lock.unlock();
            mode
        });
        if let (Some(keys), true) = (keys.as_mut(), config.shared) {
            keys.attach_shared(&data_dir.join(crate::coord::SHARED_DIR).join("mem"))?;
        }
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
            notifier: Default::default(),
            appends: AtomicU64::new(0),
            appended_events: AtomicU64::new(0),
            unsynced_records: AtomicBool::new(false),
            replica: RwLock::new(replica),
            compaction: Mutex::new(()),
            segment_swap: RwLock::new(()),
            keys,
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
        holder.written = false; // opened: the id stays until close clears it
        Ok(Store { shared, flusher: Mutex::new(flusher), lock_file: Mutex::new(Some(lock_file)) })
    }
}

/// The process id an exclusive writable open wrote into `LOCK`, cleared when the open fails
/// after taking the lock (dropped before the lock is, so still under it).
struct HolderNote<'a> {
    data_dir: &'a Path,
    written: bool,
}

impl Drop for HolderNote<'_> {
    fn drop(&mut self) {
        if self.written {
            lock::clear_holder(self.data_dir);
        }
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
    encrypted: bool,
) -> Result<Writer> {
    if recovered.segments.is_empty() {
        let first = segments_dir.join(crate::segment::segment_file_name(0));
        // A joining process finds it made (and published) by the session's first writer.
        if !first.exists() {
            Writer::create_segment_as(&**storage, segments_dir, (0, 0), encrypted)
                .map_err(|e| Error::storage("creating the first segment", e))?;
        }
        segments.push(0, first.clone())?;
        let len = std::fs::metadata(&first).map_err(|e| Error::storage("reading segment size", e))?.len();
        recovered.segments.push((0, len));
    }
    let &(id, len) = recovered.segments.last().expect("a segment exists");
    let clock = IdClock::resume(recovered.index.last_event_id(), recovered.last_timestamp_us);
    let position = (segments.len() - 1) as u32;
    let mut writer = Writer::resume(
        storage.clone(),
        segments_dir,
        config.segment_max_bytes,
        (id, position, len),
        (recovered.index.len(), recovered.rotate_before_write),
        clock,
    )?;
    writer.encrypted = encrypted;
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
