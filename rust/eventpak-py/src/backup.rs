//! `NativeStore.backup`: the online backup, copying without the GIL and reporting progress
//! to a Python callable between chunks.

use std::path::PathBuf;

use pyo3::prelude::*;

use crate::progress::ProgressCallback;
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
        let mut progress = ProgressCallback::new(progress);
        let report =
            self.run(py, |store| store.backup(&dest, &mut |done, total| progress.report(done, total)));
        let report = progress.finish(report)?;
        Ok((report.through, report.events, report.bytes_copied, report.incremental))
    }
}
