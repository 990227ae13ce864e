//! Waiting on a 32-bit word in shared memory until another process changes it.
//!
//! On Linux this is a futex on the mapped word (a non-private one, so waiters in other
//! processes that map the same file page are woken too). Elsewhere there is no portable
//! cross-process wait on a word, so a waiter sleeps in short steps and re-reads it.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// A futex word with a count of waiters, so a waker with nobody waiting pays no syscall.
pub struct WakeWord<'a> {
    /// The word itself: bumped on every wake.
    pub word: &'a AtomicU32,
    /// How many threads (in any process) are, or are about to be, blocked on `word`.
    pub waiters: &'a AtomicU32,
}

impl WakeWord<'_> {
    /// The current value, to pass to [`WakeWord::wait`].
    pub fn load(&self) -> u32 {
        self.word.load(Ordering::SeqCst)
    }

    /// Blocks until the word differs from `seen`, a wake arrives, or `timeout` passes.
    /// May return early (spurious wake-ups are allowed); callers re-check what they wait for.
    pub fn wait(&self, seen: u32, timeout: Duration) {
        // Registering before re-reading the word pairs with `wake`, which bumps the word
        // before reading the count: one of the two always sees the other.
        self.waiters.fetch_add(1, Ordering::SeqCst);
        if self.word.load(Ordering::SeqCst) == seen {
            wait_on(self.word, seen, timeout);
        }
        self.waiters.fetch_sub(1, Ordering::SeqCst);
    }

    /// Bumps the word and wakes every waiter.
    pub fn wake(&self) {
        self.word.fetch_add(1, Ordering::SeqCst);
        // A waiter killed while blocked leaves the count above zero for good: that only
        // costs later wakers a syscall each, never a missed wake-up.
        if self.waiters.load(Ordering::SeqCst) != 0 {
            wake_all(self.word);
        }
    }
}

#[cfg(target_os = "linux")]
fn wait_on(word: &AtomicU32, seen: u32, timeout: Duration) {
    let ts = libc::timespec {
        tv_sec: timeout.as_secs().min(i32::MAX as u64) as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: `word` is a valid, aligned u32 for the duration of the call; FUTEX_WAIT only
    // reads it and returns on a value mismatch, a wake, a signal or the timeout.
    unsafe {
        libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAIT, seen, &ts as *const libc::timespec);
    }
}

#[cfg(target_os = "linux")]
fn wake_all(word: &AtomicU32) {
    // SAFETY: as above; FUTEX_WAKE does not touch the word.
    unsafe {
        libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, i32::MAX);
    }
}

#[cfg(not(target_os = "linux"))]
fn wait_on(word: &AtomicU32, seen: u32, timeout: Duration) {
    let step = Duration::from_millis(1);
    let deadline = std::time::Instant::now() + timeout;
    while word.load(Ordering::SeqCst) == seen && std::time::Instant::now() < deadline {
        std::thread::sleep(step);
    }
}

#[cfg(not(target_os = "linux"))]
fn wake_all(_word: &AtomicU32) {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Instant;

    #[test]
    fn a_wake_ends_a_wait_and_a_changed_word_is_not_waited_on() {
        let cells = Arc::new((AtomicU32::new(0), AtomicU32::new(0)));
        let waiter = {
            let cells = cells.clone();
            std::thread::spawn(move || {
                let word = WakeWord { word: &cells.0, waiters: &cells.1 };
                let started = Instant::now();
                while word.load() == 0 {
                    word.wait(0, Duration::from_secs(30));
                }
                started.elapsed()
            })
        };
        while cells.1.load(Ordering::SeqCst) == 0 {
            std::thread::yield_now();
        }
        WakeWord { word: &cells.0, waiters: &cells.1 }.wake();
        assert!(waiter.join().unwrap() < Duration::from_secs(30));
        let word = WakeWord { word: &cells.0, waiters: &cells.1 };
        let started = Instant::now();
        word.wait(0, Duration::from_secs(30)); // The word is 1 now: no wait at all.
        assert!(started.elapsed() < Duration::from_secs(30));
    }
}
