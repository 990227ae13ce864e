//! `NativeStore.verify`: the full integrity check, with progress reported to a Python
//! callable between chunks of work (the check itself runs without the GIL).

use pyo3::prelude::*;

use crate::progress::ProgressCallback;
use crate::store::NativeStore;

/// `(path, offset, sequence, reason)` of one problem.
type Problem = (String, u64, Option<u64>, String);
/// `(events, segments, bytes, problems, problems_not_listed)`.
type Report = (u64, u64, u64, Vec<Problem>, u64);

#[pymethods]
impl NativeStore {
    /// Re-reads and checks the whole log, the index and the side files; returns
    /// `(events, segments, bytes, problems, problems_not_listed)`. `progress(done, total)`
    /// is called every few megabytes; an exception from it stops the check and is raised.
    #[pyo3(signature = (progress=None))]
    fn verify(&self, py: Python<'_>, progress: Option<Py<PyAny>>) -> PyResult<Report> {
        let mut progress = ProgressCallback::new(progress);
        let report = self.run(py, |store| store.verify(&mut |done, total| progress.report(done, total)));
        let report = progress.finish(report)?;
        let problems = report
            .problems
            .into_iter()
            .map(|p| (p.path.display().to_string(), p.offset, p.sequence, p.reason))
            .collect();
        Ok((report.events, report.segments, report.bytes, problems, report.problems_not_listed))
    }
}
