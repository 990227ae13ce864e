//! `WorkerLease`: the right to run the worker of one checkpoint id, in any process.

use crate::args::timeout_arg;

use parking_lot::Mutex;
use pyo3::prelude::*;

use crate::names::CheckpointId;
use crate::store::NativeStore;

/// Held by the one live worker of a checkpoint id; `release()` (or the process ending)
/// hands it to a standby.
#[pyclass(frozen, module = "eventpak._native")]
pub struct WorkerLease {
    lease: Mutex<Option<eventpak_core::WorkerLease>>,
}

#[pymethods]
impl WorkerLease {
    /// Releases the lease (idempotent); a waiting standby takes it over.
    fn release(&self, py: Python<'_>) {
        let lease = self.lease.lock().take();
        py.detach(move || drop(lease));
    }

    /// True until `release()`.
    #[getter]
    fn held(&self) -> bool {
        self.lease.lock().is_some()
    }
}

#[pymethods]
impl NativeStore {
    /// Takes the worker lease of `checkpoint_id`, waiting up to `timeout` seconds for its
    /// holder (a worker in this or another process) to release it; `None` if still held.
    #[pyo3(signature = (checkpoint_id, timeout=0.0))]
    fn take_worker_lease(
        &self,
        py: Python<'_>,
        checkpoint_id: CheckpointId,
        timeout: f64,
    ) -> PyResult<Option<WorkerLease>> {
        let timeout = timeout_arg(timeout, "timeout")?;
        let id = checkpoint_id.0;
        let lease = self.run(py, move |store| store.take_worker_lease(&id, timeout))?;
        Ok(lease.map(|lease| WorkerLease { lease: Mutex::new(Some(lease)) }))
    }

    /// True when the store was opened with `read_only=True`.
    #[getter]
    fn read_only(&self) -> bool {
        self.engine().config().read_only
    }
}
