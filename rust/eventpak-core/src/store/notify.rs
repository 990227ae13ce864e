//! A file descriptor that becomes readable when events become visible, so an event loop
//! (asyncio, uvloop) can wait for commits without holding a thread.
//!
//! The descriptor is an `eventfd` on Linux and a non-blocking pipe elsewhere. Writing to it
//! costs a system call, so a commit signals it only while it is *armed*: a waiter arms it,
//! re-checks the commit generation, then waits for readability; the first commit after
//! that disarms and signals it once. A busy reader that never runs dry never arms it, and
//! commits then pay one atomic swap.
//!
//! In shared mode, commits of other processes reach this process only through the futex
//! word in the shared page; one relay thread per store (started with the notifier, blocked
//! in the futex wait, stopped at close) turns them into signals. Exclusive stores need no
//! thread at all: the committing thread signals directly.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::Mutex;

use super::{Shared, Store};
use crate::error::{Error, Result};

/// How long one futex wait of the relay thread lasts: commits and close wake it sooner;
/// the bound only keeps a lost wake-up from parking it for ever.
const RELAY_WAIT: Duration = Duration::from_secs(60);

/// The readable-on-commit descriptor of a store (see the module docs).
pub struct CommitNotifier {
    read: OwnedFd,
    /// The pipe's write end; `None` for an eventfd, which is read and written through one fd.
    write: Option<OwnedFd>,
    armed: AtomicBool,
    stopping: AtomicBool,
}

impl CommitNotifier {
    fn new() -> io::Result<CommitNotifier> {
        let (read, write) = open_descriptor()?;
        Ok(CommitNotifier { read, write, armed: AtomicBool::new(false), stopping: AtomicBool::new(false) })
    }

    /// The descriptor to watch for readability. It stays open while the store is.
    pub fn fd(&self) -> RawFd {
        self.read.as_raw_fd()
    }

    /// Asks for a signal at the next commit. Arm, then re-check the commit generation
    /// (or poll again), then wait: a commit between the check and the arming is not lost.
    pub fn arm(&self) {
        self.armed.store(true, Ordering::SeqCst);
    }

    /// Empties the descriptor after it became readable, so the loop does not see it again
    /// until the next signal.
    pub fn drain(&self) {
        let mut buf = [0u8; 64];
        // SAFETY: reads into a local buffer of the given length from a descriptor we own.
        // Non-blocking: EAGAIN (nothing left) ends it.
        while unsafe { libc::read(self.read.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) } > 0 {
            if self.write.is_none() {
                break; // One read empties an eventfd's counter.
            }
        }
    }

    /// Signals the descriptor if a waiter armed it.
    fn signal(&self) {
        if !self.armed.swap(false, Ordering::SeqCst) {
            return;
        }
        let one = 1u64.to_ne_bytes();
        let fd = self.write.as_ref().unwrap_or(&self.read).as_raw_fd();
        // SAFETY: writes 8 bytes from a local array to a descriptor we own. A full pipe
        // (EAGAIN) already holds a signal, which is all a waiter needs.
        unsafe { libc::write(fd, one.as_ptr().cast(), one.len()) };
    }
}

#[cfg(target_os = "linux")]
fn open_descriptor() -> io::Result<(OwnedFd, Option<OwnedFd>)> {
    // SAFETY: eventfd returns a new descriptor or -1; we own it from here.
    let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor nobody else owns.
    Ok((unsafe { OwnedFd::from_raw_fd(fd) }, None))
}

#[cfg(not(target_os = "linux"))]
fn open_descriptor() -> io::Result<(OwnedFd, Option<OwnedFd>)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: pipe fills the two-element array with new descriptors, or fails.
    if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both are fresh descriptors nobody else owns.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    for fd in [&read, &write] {
        // SAFETY: fcntl on descriptors we own; failure leaves a blocking pipe, reported.
        let ok = unsafe {
            libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK) == 0
                && libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) == 0
        };
        if !ok {
            return Err(io::Error::last_os_error());
        }
    }
    Ok((read, Some(write)))
}

/// A store's notifier, made on first use, and its relay thread in shared mode.
#[derive(Default)]
pub(super) struct NotifierSlot {
    notifier: OnceLock<Arc<CommitNotifier>>,
    relay: Mutex<Option<JoinHandle<()>>>,
}

impl NotifierSlot {
    /// Signals the notifier, if one was made and a waiter armed it.
    pub(super) fn signal(&self) {
        if let Some(notifier) = self.notifier.get() {
            notifier.signal();
        }
    }
}

impl Shared {
    /// The relay of a shared store: turns every change of the shared commit word (a commit
    /// by any process) into a signal, until the store closes.
    fn relay_commits(&self, notifier: &CommitNotifier) {
        let Some(mode) = &self.sharing else { return };
        let commits = mode.coord.mem.commits();
        let mut seen = commits.load();
        while !notifier.stopping.load(Ordering::SeqCst) {
            commits.wait(seen, RELAY_WAIT);
            let now = commits.load();
            if now != seen {
                seen = now;
                notifier.signal();
            }
        }
    }
}

impl Store {
    /// The store's readable-on-commit descriptor (made on first call; one per store).
    pub fn commit_notifier(&self) -> Result<Arc<CommitNotifier>> {
        self.check_open()?;
        let slot = &self.shared.notifier;
        let mut relay = slot.relay.lock();
        if let Some(notifier) = slot.notifier.get() {
            return Ok(notifier.clone());
        }
        let notifier =
            Arc::new(CommitNotifier::new().map_err(|e| Error::storage("making the commit descriptor", e))?);
        if self.shared.sharing.is_some() {
            let (shared, relayed) = (self.shared.clone(), notifier.clone());
            let handle = std::thread::Builder::new()
                .name("eventpak-commit-relay".into())
                .spawn(move || shared.relay_commits(&relayed))
                .map_err(|e| Error::storage("starting the commit relay thread", e))?;
            *relay = Some(handle);
        }
        let _ = slot.notifier.set(notifier.clone());
        Ok(notifier)
    }

    /// Stops the relay thread (at close): it is woken through the commit word it waits on.
    pub(super) fn stop_commit_relay(&self) {
        let slot = &self.shared.notifier;
        let Some(handle) = slot.relay.lock().take() else { return };
        if let Some(notifier) = slot.notifier.get() {
            notifier.stopping.store(true, Ordering::SeqCst);
        }
        self.shared.announce_commit();
        let _ = handle.join(); // The relay never panics: it only waits and writes.
    }
}
