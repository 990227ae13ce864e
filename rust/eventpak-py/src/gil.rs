//! The one way the binding calls into the engine: with the GIL released, so other
//! Python threads run while Rust works, waits on locks or waits for fsync.
//!
//! Two things can go wrong around that and are handled here, once:
//! - a Rust panic must reach Python as a typed `ep.EventpakError`, never as PyO3's
//!   `PanicException` (a `BaseException` that `except Exception` does not catch);
//! - while the interpreter exits, a daemon thread that takes the GIL back is ended by
//!   CPython with a forced unwind, which aborts the process when it crosses Rust frames.
//!   Once `mark_exiting` ran (from an `atexit` hook), threads other than the exiting one
//!   that come back from the engine park for good instead: the process is ending anyway.

use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::thread::ThreadId;

use eventpak_core::{Error, Result};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

use crate::errors::to_py;

static EXITING: AtomicBool = AtomicBool::new(false);
static EXIT_STARTED: AtomicBool = AtomicBool::new(false);
static EXITING_THREAD: OnceLock<ThreadId> = OnceLock::new();

/// Called by the package's `atexit` hook before it closes the open stores, in the thread
/// that runs interpreter shutdown: from then on, another thread whose engine call ends
/// because its store was closed (a cursor parked in `pull_batch` in a daemon thread) stays
/// parked instead of raising `StoreClosed` into a thread the interpreter is about to drop.
#[pyfunction]
pub fn mark_exit_started() {
    let _ = EXITING_THREAD.set(std::thread::current().id());
    EXIT_STARTED.store(true, Ordering::Release);
}

/// Called by the package's `atexit` hook in the thread that runs interpreter shutdown.
#[pyfunction]
pub fn mark_exiting() {
    let _ = EXITING_THREAD.set(std::thread::current().id());
    EXITING.store(true, Ordering::Release);
}

/// Parks this thread for good if the interpreter is exiting on another thread, or, once
/// exit has started, if `closed` (its call ended because its store was closed at exit).
fn park_if_exiting(closed: bool) {
    let exiting = EXITING.load(Ordering::Acquire) || (closed && EXIT_STARTED.load(Ordering::Acquire));
    if exiting && EXITING_THREAD.get() != Some(&std::thread::current().id()) {
        loop {
            std::thread::park();
        }
    }
}

/// Whether this is the interpreter's main thread (the only one that runs signal handlers).
/// Answered without running Python code after the first call, so it is safe while the
/// interpreter shuts down.
fn on_main_thread(py: Python<'_>) -> PyResult<bool> {
    let main = MAIN_THREAD.get_or_try_init(py, || {
        py.import("threading")?.call_method0("main_thread")?.getattr("ident")?.extract()
    })?;
    // SAFETY: a plain query of the calling thread's id, valid with or without the GIL.
    Ok(unsafe { PyThread_get_thread_ident() } == *main)
}

static MAIN_THREAD: PyOnceLock<std::ffi::c_ulong> = PyOnceLock::new();

extern "C" {
    // Part of CPython's stable ABI; the same ident `threading.get_ident()` returns.
    fn PyThread_get_thread_ident() -> std::ffi::c_ulong;
}

thread_local! {
    /// The exception a signal handler raised during an engine wait on this thread.
    static RAISED: RefCell<Option<PyErr>> = const { RefCell::new(None) };
}

/// The main thread's check between slices of a long engine wait (another thread's fence):
/// runs the pending signal handlers; one that raises (Ctrl-C) ends the wait, and its
/// exception is what the call raises.
fn signal_raised() -> bool {
    Python::attach(|py| match py.check_signals() {
        Ok(()) => false,
        Err(err) => {
            RAISED.with(|raised| *raised.borrow_mut() = Some(err));
            true
        }
    })
}

/// Runs `work` without the GIL and maps its error (or panic) to a typed Python exception.
/// On the main thread, a signal handler that raises during a long wait of the engine ends
/// the call with that exception (nothing written).
pub fn detached<T: Send>(
    py: Python<'_>,
    data_dir: &str,
    work: impl FnOnce() -> Result<T> + Send,
) -> PyResult<T> {
    let main = on_main_thread(py).unwrap_or(false);
    py.detach(|| {
        park_if_exiting(false);
        let run = || {
            catch_unwind(AssertUnwindSafe(work)).unwrap_or_else(|panic| {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic".into());
                Err(Error::Internal(format!("the engine panicked: {what}")))
            })
        };
        let outcome = if main { eventpak_core::interruptible(signal_raised, run) } else { run() };
        park_if_exiting(matches!(outcome, Err(Error::StoreClosed)));
        outcome
    })
    .map_err(|e| match e {
        Error::Interrupted => {
            RAISED.with(|raised| raised.borrow_mut().take()).unwrap_or_else(|| to_py(e, data_dir))
        }
        e => to_py(e, data_dir),
    })
}
