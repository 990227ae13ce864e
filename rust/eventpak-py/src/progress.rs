//! A Python `progress(done, total)` callback driven by engine work that runs without the
//! GIL: the GIL is taken for each call, and an exception from the callback stops the work
//! and is what the caller gets.

use pyo3::prelude::*;

use crate::exit::attach_calling_python;

/// The callback of one call (`None`: no callback) and the first exception it raised.
pub struct ProgressCallback {
    callback: Option<Py<PyAny>>,
    raised: Option<PyErr>,
}

impl ProgressCallback {
    /// Wraps the `progress=` argument of a native method.
    pub fn new(callback: Option<Py<PyAny>>) -> Self {
        ProgressCallback { callback, raised: None }
    }

    /// Calls `progress(done, total)`; false (stop the work) once it raised.
    pub fn report(&mut self, done: u64, total: u64) -> bool {
        let Some(callback) = &self.callback else { return true };
        attach_calling_python(|py| match callback.call1(py, (done, total)) {
            Ok(_) => true,
            Err(e) => {
                self.raised.get_or_insert(e);
                false
            }
        })
    }

    /// The work's result, unless the callback raised: its exception is why the work stopped.
    pub fn finish<T>(self, result: PyResult<T>) -> PyResult<T> {
        match self.raised {
            Some(e) => Err(e),
            None => result,
        }
    }
}
