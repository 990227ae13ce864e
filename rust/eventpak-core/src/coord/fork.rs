//! Locks a forked child lets go of.
//!
//! An `flock` belongs to an open file description, and a child made by `fork()` (without
//! `exec`) holds a reference to every description its parent had open. If the parent then
//! dies holding a lock (the write lock, a worker lease), the lock would stay held for as
//! long as the child lives, and every other process would wait on it. So every lock file
//! is registered here, and right after a fork the child points each registered descriptor
//! at `/dev/null` instead: its stores from before the fork are unusable anyway.

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicI32, Ordering};

/// Lock descriptors tracked at once (a store holds about six); past that, a lock is simply
/// not detached in children.
const SLOTS: usize = 1024;
const FREE: i32 = -1;

static HELD: [AtomicI32; SLOTS] = [const { AtomicI32::new(FREE) }; SLOTS];

/// Tracks `fd` as a lock descriptor (lock-free: the fork hook may run while another thread
/// of the parent was in here).
pub fn register(fd: RawFd) {
    let _ =
        HELD.iter().find(|slot| slot.compare_exchange(FREE, fd, Ordering::AcqRel, Ordering::Relaxed).is_ok());
}

/// Stops tracking `fd` (it is being closed).
pub fn unregister(fd: RawFd) {
    let _ =
        HELD.iter().find(|slot| slot.compare_exchange(fd, FREE, Ordering::AcqRel, Ordering::Relaxed).is_ok());
}

/// In a child just forked: every tracked descriptor now refers to `/dev/null`, so the child
/// holds no reference to its parent's locked files.
pub fn detach_in_child() {
    // SAFETY: plain descriptor calls on descriptors this process owns; `dup3` atomically
    // replaces each tracked one, so its number stays valid for the `File` that owns it.
    unsafe {
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
        if null < 0 {
            return;
        }
        for slot in &HELD {
            let fd = slot.swap(FREE, Ordering::AcqRel);
            if fd >= 0 {
                libc::dup3(null, fd, libc::O_CLOEXEC);
            }
        }
        libc::close(null);
    }
}
