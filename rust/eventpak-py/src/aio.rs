//! What `eventpak.aio` needs from the engine: a descriptor an event loop watches for
//! commits, the commit generation to re-check after arming it, and one call that appends
//! the pending appends of many tasks with a single durability wait.

use std::sync::Arc;

use eventpak_core::CommitNotifier as CoreNotifier;
use pyo3::prelude::*;

use crate::event::AppendReceipt;
use crate::request::build_item;
use crate::store::NativeStore;

/// A descriptor that becomes readable after events become visible, once armed.
#[pyclass(frozen, module = "eventpak._native")]
pub struct CommitNotifier {
    inner: Arc<CoreNotifier>,
}

#[pymethods]
impl CommitNotifier {
    /// The descriptor an event loop watches for readability.
    fn fileno(&self) -> i32 {
        self.inner.fd()
    }

    /// Asks for a signal at the next commit; re-check for events after calling it.
    fn arm(&self) {
        self.inner.arm();
    }

    /// Empties the descriptor once it was seen readable.
    fn drain(&self) {
        self.inner.drain();
    }
}

#[pymethods]
impl NativeStore {
    /// The store's commit descriptor (one per store, made on first call).
    #[pyo3(name = "_commit_notifier")]
    fn commit_notifier(&self, py: Python<'_>) -> PyResult<CommitNotifier> {
        let inner = self.run(py, |s| s.commit_notifier())?;
        Ok(CommitNotifier { inner })
    }

    /// A counter that changes whenever events become visible (in any process sharing the
    /// data dir).
    #[pyo3(name = "_commit_generation")]
    fn commit_generation(&self) -> u64 {
        self.engine().commit_generation()
    }

    /// Appends each item (an `AppendRequest` or a `(coord, kind, payload)` tuple) as its
    /// own event, with one durability wait for all. Returns, per item, its receipt or the
    /// exception that refused it; one refusal leaves the others alone.
    #[pyo3(name = "_append_each")]
    fn append_each(&self, py: Python<'_>, items: Vec<Bound<'_, PyAny>>) -> PyResult<Vec<Py<PyAny>>> {
        let default = self.default_encoder(py);
        let mut scratch = Vec::new();
        let built: Vec<PyResult<_>> =
            items.iter().map(|item| build_item(item, default.as_ref(), &mut scratch)).collect();
        let mut requests = Vec::with_capacity(built.len());
        let mut outcomes: Vec<Option<Py<PyAny>>> = Vec::with_capacity(built.len());
        for b in built {
            match b {
                Ok(request) => {
                    requests.push(request);
                    outcomes.push(None);
                }
                Err(err) => outcomes.push(Some(err.into_value(py).into_any())),
            }
        }
        let mut written = self.run(py, |s| Ok(s.append_each(requests)))?.into_iter();
        outcomes
            .into_iter()
            .map(|slot| match slot {
                Some(refused) => Ok(refused),
                None => match written.next().expect("one outcome per request") {
                    Ok(receipt) => Ok(Py::new(py, AppendReceipt::from(receipt))?.into_any()),
                    Err(err) => Ok(crate::errors::to_py(err, self.shown_path()).into_value(py).into_any()),
                },
            })
            .collect()
    }
}
