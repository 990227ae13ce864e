//! `NativeStore.backup`: the online backup, copying without the GIL and reporting progress
//! to a Python callable between chunks.

use std::path::PathBuf;

use pyo3::prelude::*;

use crate::store::NativeStore;

/// `(through, events, bytes_copied, incremental)`.
type Report = (Option<u64>, u64, u64, bool);

#[pymethods]
impl NativeStore {
    /// Backs the store up into `dest` (see `eventpak.Store.backup`); returns
    /// `(through, events, bytes_copied, incremental)`. An exception from
    /// `progress(done_bytes, total_bytes)` stops the backup and is raised.
    #[pyo3(signature = (dest, progress=None))]
    fn backup(&self, py: Python<'_>, dest: PathBuf, progress: Option<Py<PyAny>>) -> PyResult<Report> {
        let mut raised: Option<PyErr> = None;
        let report = self.run(py, |store| {
            let mut report_progress = |done: u64, total: u64| match &progress {
                None => true,
                Some(callback) => Python::attach(|py| match callback.call1(py, (done, total)) {
                    Ok(_) => true,
                    Err(e) => {
                        raised = Some(e);
                        false
                    }
                }),
            };
            store.backup(&dest, &mut report_progress)
        });
        if let Some(e) = raised {
            return Err(e);
        }
        let report = report?;
        Ok((report.through, report.events, report.bytes_copied, report.incremental))
    }
}
