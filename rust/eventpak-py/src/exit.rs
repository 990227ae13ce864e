//! Interpreter exit and the threads it leaves behind.
//!
//! While the interpreter finalizes, CPython ends a daemon thread that takes the GIL back
//! with a forced unwind (`pthread_exit`). Through Python's own frames that is harmless;
//! through a Rust frame it aborts the process ("FATAL: exception not rethrown"), because
//! every PyO3 entry point catches unwinds. Two kinds of thread can be caught that way:
//! - one coming back from engine work done without the GIL: it takes the GIL to return;
//! - one running Python code called from Rust (an upcaster, `default=`, a progress
//!   callback, a compaction predicate): the interpreter hands the GIL between threads
//!   while Python code runs, so such code may have to take it back at any moment.
//!
//! The package's `atexit` hook runs before finalization starts. It marks the exit, then
//! waits (bounded) for the Python code called from Rust that is running at that instant
//! to return. From the mark on, a thread about to come back from the engine, or to call
//! Python code from Rust, parks for good instead: the process is ending anyway.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, OnceLock};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use pyo3::prelude::*;

static EXITING: AtomicBool = AtomicBool::new(false);
static EXIT_STARTED: AtomicBool = AtomicBool::new(false);
static EXITING_THREAD: OnceLock<ThreadId> = OnceLock::new();

/// Calls from Rust into Python code running now, in every thread.
static IN_PYTHON: AtomicUsize = AtomicUsize::new(0);
/// Signalled when `IN_PYTHON` drops to nothing; the mutex guards no data, only the wait.
static RETURNED: (Mutex<()>, Condvar) = (Mutex::new(()), Condvar::new());

thread_local! {
    /// How many of `IN_PYTHON`'s calls are this thread's (a callback may call back in).
    static DEPTH: Cell<usize> = const { Cell::new(0) };
}

/// Called by the package's `atexit` hook before it closes the open stores, in the thread
/// that runs interpreter shutdown: from then on, another thread whose engine call ends
/// because its store was closed (a cursor parked in `pull_batch` in a daemon thread) stays
/// parked instead of raising `StoreClosed` into a thread the interpreter is about to drop.
#[pyfunction]
pub fn mark_exit_started() {
    let _ = EXITING_THREAD.set(std::thread::current().id());
    EXIT_STARTED.store(true, Ordering::Release);
}

/// Called by the package's `atexit` hook in the thread that runs interpreter shutdown:
/// marks the exit, then waits up to `timeout` seconds (without the GIL) for the Python
/// code that other threads called from Rust to return. False when some is still running.
#[pyfunction]
#[pyo3(signature = (timeout=5.0))]
pub fn mark_exiting(py: Python<'_>, timeout: f64) -> bool {
    let _ = EXITING_THREAD.set(std::thread::current().id());
    // SeqCst pairs with `enter`: a thread either sees the mark, or is counted before it.
    EXITING.store(true, Ordering::SeqCst);
    let own = DEPTH.with(Cell::get);
    // `None`: a timeout too long to reach, waited without a bound.
    let deadline =
        Duration::try_from_secs_f64(timeout.max(0.0)).ok().and_then(|wait| Instant::now().checked_add(wait));
    py.detach(|| {
        let (lock, returned) = &RETURNED;
        let mut guard = lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        while IN_PYTHON.load(Ordering::SeqCst) > own {
            let left =
                deadline.map_or(Duration::from_secs(3600), |at| at.saturating_duration_since(Instant::now()));
            if left.is_zero() {
                return false;
            }
            guard = returned.wait_timeout(guard, left).unwrap_or_else(|poisoned| poisoned.into_inner()).0;
        }
        true
    })
}

/// In a child just forked only the forking thread lives on: the calls into Python that
/// other threads were making will never return here, and exit must not wait for them.
pub fn after_fork_in_child() {
    IN_PYTHON.store(DEPTH.with(Cell::get), Ordering::SeqCst);
}

fn is_exiting_thread() -> bool {
    EXITING_THREAD.get() == Some(&std::thread::current().id())
}

/// Parks this thread for good if the interpreter is exiting on another thread, or, once
/// exit has started, if `closed` (its call ended because its store was closed at exit).
pub fn park_if_exiting(closed: bool) {
    let exiting = EXITING.load(Ordering::SeqCst) || (closed && EXIT_STARTED.load(Ordering::Acquire));
    if exiting && !is_exiting_thread() {
        park_for_good();
    }
}

/// Never returns. Without the GIL. The calls into Python this thread made from Rust will
/// never resume, so the exit does not wait for them.
fn park_for_good() -> ! {
    leave(DEPTH.with(|depth| depth.replace(0)));
    loop {
        std::thread::park();
    }
}

/// Counts a call into Python code; false (and not counted) once the exit is marked.
fn enter() -> bool {
    IN_PYTHON.fetch_add(1, Ordering::SeqCst);
    DEPTH.with(|depth| depth.set(depth.get() + 1));
    if EXITING.load(Ordering::SeqCst) && !is_exiting_thread() {
        leave(1);
        DEPTH.with(|depth| depth.set(depth.get() - 1));
        return false;
    }
    true
}

fn leave(calls: usize) {
    if calls == 0 {
        return;
    }
    if IN_PYTHON.fetch_sub(calls, Ordering::SeqCst) == calls {
        let (lock, returned) = &RETURNED;
        // Taken so the wake-up cannot fall between the waiter's check and its wait.
        drop(lock.lock());
        returned.notify_all();
    }
}

/// Ends a counted call when dropped, also when the call unwinds.
pub struct Counted;

impl Drop for Counted {
    fn drop(&mut self) {
        DEPTH.with(|depth| depth.set(depth.get() - 1));
        leave(1);
    }
}

/// Called without the GIL by a thread about to take it back and run what may be Python
/// code before its call returns (an engine call's error is built by a Python class):
/// counted until the guard drops. Once the exit is marked, parks for good instead.
pub fn returning_to_python() -> Counted {
    if !enter() {
        park_for_good();
    }
    Counted
}

/// Runs `call`, which runs Python code (a user's callback), from Rust with the GIL held.
/// Once the exit is marked, parks for good instead (the GIL released first).
pub fn calling_python<R>(py: Python<'_>, call: impl FnOnce() -> R) -> R {
    if !enter() {
        py.detach(|| park_for_good());
    }
    let _counted = Counted;
    call()
}

/// Takes the GIL from engine work done without it and runs `call`, which runs Python
/// code. Once the exit is marked, parks for good instead; counted until the GIL is
/// released again, so the exit waits for the whole call.
pub fn attach_calling_python<R>(call: impl FnOnce(Python<'_>) -> R) -> R {
    if !enter() {
        park_for_good();
    }
    let _counted = Counted;
    Python::attach(call)
}
