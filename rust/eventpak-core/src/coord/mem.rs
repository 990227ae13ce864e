//! `shared/mem`: one page mapped by every process that opened the data dir with
//! `shared=True`. It holds what the processes must agree on without a lock (how far the
//! log is published, how far it is durable) and the futex words they wait on.
//!
//! It is not a file of the log: it never needs to survive a crash. The first process to
//! open a shared session writes it from what recovery found; the others only join.

use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use memmap2::MmapMut;

use super::futex::WakeWord;

const MAGIC: u64 = u64::from_le_bytes(*b"EVPKSHM1");
const PAGE: usize = 4096;

// Offsets of the 8-byte cells (all aligned; the mapping is page aligned).
const MAGIC_AT: usize = 0;
/// Which of the two published slots is current (0 or 1).
const CURRENT_SLOT_AT: usize = 8;
/// Events readable by everyone: the lock-free readers' one load.
const PUBLISHED_SEQ_AT: usize = 16;
/// Events covered by an fsync.
const DURABLE_AT: usize = 24;
/// Process id of a writer between its first file change and its publish; 0 otherwise.
const WRITING_AT: usize = 32;
/// Bumped on every change of `hidden.ranges`.
const VISIBILITY_GEN_AT: usize = 40;
/// Process id owning the open fence (informational: liveness is told by a file lock).
const FENCE_OWNER_AT: usize = 48;
const COMMIT_WORD_AT: usize = 56;
const COMMIT_WAITERS_AT: usize = 60;
const LEASE_WORD_AT: usize = 64;
const LEASE_WAITERS_AT: usize = 68;
/// Id of the segment new frames go to, readable without the write lock (the fsync leader).
const ACTIVE_SEGMENT_AT: usize = 72;
/// Events the last group-commit fsync covered (what the next leader waits to gather).
const LAST_GROUP_AT: usize = 80;
/// Moving average of group-commit fsync time, in nanoseconds (bounds the gathering wait).
const FSYNC_AVG_NS_AT: usize = 88;
const DURABLE_WORD_AT: usize = 96;
const DURABLE_WAITERS_AT: usize = 100;
/// Bumped by every forget of an encrypted store: a process seeing it change reloads the
/// key file before opening another payload.
const KEYS_GEN_AT: usize = 104;
/// Two slots of [`Published`], written alternately so a writer killed mid-update never
/// leaves a torn current one.
const SLOTS_AT: usize = 128;
const SLOT_LEN: usize = 32;
/// The write lock (a pthread mutex on Linux, see `write_lock.rs`).
const WRITE_MUTEX_AT: usize = 256;
#[cfg(target_os = "linux")]
const _: () = assert!(
    std::mem::size_of::<libc::pthread_mutex_t>() <= 256
        && std::mem::align_of::<libc::pthread_mutex_t>() <= 64
        && WRITE_MUTEX_AT + 256 <= PAGE
);

/// Where the published log ends: read and written only under the write lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Published {
    /// Events in the log.
    pub seq: u64,
    /// Id of the segment new frames go to.
    pub segment_id: u64,
    /// Its length in bytes: everything past it is a dead writer's unpublished tail.
    pub segment_len: u64,
    /// The segment takes no more frames (an older format version): rotate first.
    pub rotate_before_write: bool,
}

/// The mapped page. Its file is closed once mapped: the mapping keeps the page, and a
/// store closed but still referenced holds no descriptor for it.
pub struct SharedMemory {
    map: MmapMut,
}

impl SharedMemory {
    /// Maps `path` (creating it, one page of zeros, when missing).
    pub fn open(path: &Path) -> std::io::Result<Self> {
        let file =
            OpenOptions::new().read(true).write(true).create(true).truncate(false).mode(0o600).open(path)?;
        if file.metadata()?.len() < PAGE as u64 {
            file.set_len(PAGE as u64)?;
        }
        // SAFETY: the file is never shrunk below one page while mapped (only `open` sizes
        // it, upwards), and every access goes through atomics.
        let map = unsafe { MmapMut::map_mut(&file)? };
        Ok(SharedMemory { map })
    }

    fn u64_at(&self, at: usize) -> &AtomicU64 {
        debug_assert!(at.is_multiple_of(8) && at + 8 <= PAGE);
        // SAFETY: in bounds and 8-aligned (the map is page aligned); AtomicU64 has the
        // layout of u64, and the page lives as long as `self`.
        unsafe { &*(self.map.as_ptr().add(at) as *const AtomicU64) }
    }

    fn u32_at(&self, at: usize) -> &AtomicU32 {
        debug_assert!(at.is_multiple_of(4) && at + 4 <= PAGE);
        // SAFETY: as in `u64_at`, for a 4-aligned u32.
        unsafe { &*(self.map.as_ptr().add(at) as *const AtomicU32) }
    }

    /// The write lock's mutex, in the page.
    #[cfg(target_os = "linux")]
    pub fn write_mutex(&self) -> *mut libc::pthread_mutex_t {
        // SAFETY: in bounds and aligned (checked above); the page lives as long as `self`.
        unsafe { self.map.as_ptr().add(WRITE_MUTEX_AT) as *mut libc::pthread_mutex_t }
    }

    /// How many forgets rewrote the key file (of an encrypted store) in this session.
    pub fn keys_generation(&self) -> u64 {
        self.u64_at(KEYS_GEN_AT).load(Ordering::Acquire)
    }

    /// Counts a forget (after the key file was rewritten); returns the new count.
    pub fn bump_keys_generation(&self) -> u64 {
        self.u64_at(KEYS_GEN_AT).fetch_add(1, Ordering::AcqRel) + 1
    }

    /// True once a first opener has written the page for a live session.
    pub fn is_initialized(&self) -> bool {
        self.u64_at(MAGIC_AT).load(Ordering::Acquire) == MAGIC
    }

    /// Starts a session from what recovery found (only the first opener, under the open lock).
    pub fn initialize(&self, published: Published, needs_repair: bool) {
        self.u64_at(MAGIC_AT).store(0, Ordering::Release);
        self.u64_at(CURRENT_SLOT_AT).store(0, Ordering::Relaxed);
        self.write_slot(0, published);
        self.u64_at(ACTIVE_SEGMENT_AT).store(published.segment_id, Ordering::Relaxed);
        self.u64_at(PUBLISHED_SEQ_AT).store(published.seq, Ordering::Relaxed);
        // Recovery made what it found durable (or, read-only, found it so after a clean close).
        self.u64_at(DURABLE_AT).store(published.seq, Ordering::Relaxed);
        // A read-only first opener cannot cut a torn tail: the first writer does, as it
        // would after a writer died mid-frame.
        self.u64_at(WRITING_AT).store(u64::from(needs_repair), Ordering::Relaxed);
        self.u64_at(FENCE_OWNER_AT).store(0, Ordering::Relaxed);
        self.u64_at(VISIBILITY_GEN_AT).fetch_add(1, Ordering::Relaxed);
        self.u64_at(MAGIC_AT).store(MAGIC, Ordering::Release);
    }

    fn write_slot(&self, slot: u64, p: Published) {
        let at = SLOTS_AT + slot as usize * SLOT_LEN;
        self.u64_at(at).store(p.seq, Ordering::Relaxed);
        self.u64_at(at + 8).store(p.segment_id, Ordering::Relaxed);
        self.u64_at(at + 16).store(p.segment_len, Ordering::Relaxed);
        self.u64_at(at + 24).store(u64::from(p.rotate_before_write), Ordering::Relaxed);
    }

    /// The current published position (call under the write lock).
    pub fn published(&self) -> Published {
        let at = SLOTS_AT + self.u64_at(CURRENT_SLOT_AT).load(Ordering::Acquire) as usize * SLOT_LEN;
        Published {
            seq: self.u64_at(at).load(Ordering::Relaxed),
            segment_id: self.u64_at(at + 8).load(Ordering::Relaxed),
            segment_len: self.u64_at(at + 16).load(Ordering::Relaxed),
            rotate_before_write: self.u64_at(at + 24).load(Ordering::Relaxed) != 0,
        }
    }

    /// Publishes a new end of the log (under the write lock, after its frames are written):
    /// the other slot is filled, then made current, then the readers' count moves.
    pub fn publish(&self, p: Published) {
        let next = 1 - self.u64_at(CURRENT_SLOT_AT).load(Ordering::Relaxed);
        self.write_slot(next, p);
        self.u64_at(CURRENT_SLOT_AT).store(next, Ordering::Release);
        self.u64_at(ACTIVE_SEGMENT_AT).store(p.segment_id, Ordering::Release);
        self.u64_at(PUBLISHED_SEQ_AT).store(p.seq, Ordering::Release);
    }

    /// The segment new frames go to. Read after [`SharedMemory::published_seq`], it is the
    /// segment holding the newest of those events, or a later one.
    pub fn active_segment(&self) -> u64 {
        self.u64_at(ACTIVE_SEGMENT_AT).load(Ordering::Acquire)
    }

    /// Events readable by every process.
    pub fn published_seq(&self) -> u64 {
        self.u64_at(PUBLISHED_SEQ_AT).load(Ordering::Acquire)
    }

    /// Marks (pid) or clears (0) a writer between its first file change and its publish.
    pub fn set_writing(&self, pid: u64) {
        self.u64_at(WRITING_AT).store(pid, Ordering::Release);
    }

    /// Non-zero when the last writer died before publishing what it started to write.
    pub fn writing(&self) -> u64 {
        self.u64_at(WRITING_AT).load(Ordering::Acquire)
    }

    /// Events covered by an fsync, as far as any process knows.
    pub fn durable(&self) -> u64 {
        self.u64_at(DURABLE_AT).load(Ordering::Acquire)
    }

    /// Raises the durable count to `n` (never lowers it).
    pub fn note_durable(&self, n: u64) {
        self.u64_at(DURABLE_AT).fetch_max(n, Ordering::AcqRel);
    }

    /// Events the last group-commit fsync covered, and the average fsync time.
    pub fn last_fsync(&self) -> (u64, std::time::Duration) {
        let group = self.u64_at(LAST_GROUP_AT).load(Ordering::Relaxed);
        (group, std::time::Duration::from_nanos(self.u64_at(FSYNC_AVG_NS_AT).load(Ordering::Relaxed)))
    }

    /// Records a group-commit fsync (by the holder of the sync lock).
    pub fn note_fsync(&self, covered: u64, took: std::time::Duration) {
        self.u64_at(LAST_GROUP_AT).store(covered, Ordering::Relaxed);
        let avg = self.u64_at(FSYNC_AVG_NS_AT).load(Ordering::Relaxed);
        let took = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.u64_at(FSYNC_AVG_NS_AT).store(avg.saturating_mul(7).saturating_add(took) / 8, Ordering::Relaxed);
    }

    /// Bumped whenever `hidden.ranges` changes.
    pub fn visibility_gen(&self) -> u64 {
        self.u64_at(VISIBILITY_GEN_AT).load(Ordering::Acquire)
    }

    /// Announces a change of `hidden.ranges` (after it is saved).
    pub fn bump_visibility(&self) {
        self.u64_at(VISIBILITY_GEN_AT).fetch_add(1, Ordering::AcqRel);
    }

    /// Records who owns the open fence (0: nobody).
    pub fn set_fence_owner(&self, pid: u64) {
        self.u64_at(FENCE_OWNER_AT).store(pid, Ordering::Release);
    }

    /// Woken on every commit that makes events visible, and on fence transitions.
    pub fn commits(&self) -> WakeWord<'_> {
        WakeWord { word: self.u32_at(COMMIT_WORD_AT), waiters: self.u32_at(COMMIT_WAITERS_AT) }
    }

    /// Woken after every group-commit fsync.
    pub fn fsyncs(&self) -> WakeWord<'_> {
        WakeWord { word: self.u32_at(DURABLE_WORD_AT), waiters: self.u32_at(DURABLE_WAITERS_AT) }
    }

    /// Woken whenever a worker lease is released.
    pub fn leases(&self) -> WakeWord<'_> {
        WakeWord { word: self.u32_at(LEASE_WORD_AT), waiters: self.u32_at(LEASE_WAITERS_AT) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_publish_is_seen_through_a_second_mapping() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mem");
        let a = SharedMemory::open(&path).unwrap();
        assert!(!a.is_initialized());
        let start = Published { seq: 5, segment_id: 0, segment_len: 100, rotate_before_write: false };
        a.initialize(start, false);
        let b = SharedMemory::open(&path).unwrap();
        assert!(b.is_initialized());
        assert_eq!((b.published(), b.published_seq(), b.durable()), (start, 5, 5));
        let next = Published { seq: 9, segment_id: 1, segment_len: 64, rotate_before_write: false };
        a.publish(next);
        assert_eq!((b.published(), b.published_seq()), (next, 9));
        b.note_durable(7);
        b.note_durable(6);
        assert_eq!(a.durable(), 7);
    }
}
