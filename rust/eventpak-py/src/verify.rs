//! `NativeStore.verify`: the full integrity check, with progress reported to a Python
//! callable between chunks of work (the check itself runs without the GIL).

use pyo3::prelude::*;

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
            store.verify(&mut report_progress)
        })?;
        if let Some(e) = raised {
            return Err(e);
        }
        let problems = report
            .problems
            .into_iter()
            .map(|p| (p.path.display().to_string(), p.offset, p.sequence, p.reason))
            .collect();
        Ok((report.events, report.segments, report.bytes, problems, report.problems_not_listed))
    }
}
