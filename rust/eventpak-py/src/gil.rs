//! The one way the binding calls into the engine: with the GIL released, so other
//! Python threads run while Rust works, waits on locks or waits for fsync.
//!
//! A Rust panic must reach Python as a typed `ep.EventpakError`, never as PyO3's
//! `PanicException` (a `BaseException` that `except Exception` does not catch); and a
//! thread coming back from the engine while the interpreter exits must not take the GIL
//! again ([`crate::exit`]).

use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};

use eventpak_core::{Error, Result};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

use crate::errors::to_py;
use crate::exit::{calling_python, park_if_exiting, returning_to_python};

/// Whether this is the interpreter's main thread (the only one that runs signal handlers).
/// Answered without running Python code after the first call, so it is safe while the
/// interpreter shuts down.
fn on_main_thread(py: Python<'_>) -> PyResult<bool> {
    let main = MAIN_THREAD.get_or_try_init(py, || {
        // `threading.main_thread()` is Python code.
        calling_python(py, || {
            py.import("threading")?.call_method0("main_thread")?.getattr("ident")?.extract()
        })
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
    let (outcome, _returning) = py.detach(|| {
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
        // Counted from before the GIL is taken back until the error (whose class runs
        // Python code as it is built) is made: the exit waits for this thread rather than
        // end it inside this call.
        (outcome, returning_to_python())
    });
    outcome.map_err(|e| {
        let err = match e {
            Error::Interrupted => {
                RAISED.with(|raised| raised.borrow_mut().take()).unwrap_or_else(|| to_py(e, data_dir))
            }
            e => to_py(e, data_dir),
        };
        // Built now, not when PyO3 raises it after this returns (still inside the call).
        let _ = err.value(py);
        err
    })
}
