//! `NativeStore.compact`: retention and compaction. The engine works without the GIL; it
//! is taken back only to call the Python predicate and the progress callback.

use std::collections::BTreeSet;

use eventpak_core::{Retention, Selection, StoredEvent};
use pyo3::prelude::*;

use crate::exit::attach_calling_python;
use crate::progress::ProgressCallback;
use crate::store::NativeStore;

#[pymethods]
impl NativeStore {
    /// Removes the events the rules (or `predicate`, which replaces them) select from the
    /// sealed segments; returns `(removed, kept, bytes_freed)`. An exception from
    /// `predicate` or `progress(done, total)` stops the compaction before anything changes
    /// and is raised.
    #[pyo3(signature = (max_age_us, kinds, keep_last_per_entity, predicate, progress))]
    fn compact(
        &self,
        py: Python<'_>,
        max_age_us: Option<u64>,
        kinds: Option<Vec<String>>,
        keep_last_per_entity: u64,
        predicate: Option<Py<PyAny>>,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<(u64, u64, u64)> {
        // The predicate's exception, which stops the compaction (as progress's does).
        let mut raised: Option<PyErr> = None;
        let mut progress = ProgressCallback::new(progress);
        let mut ask = |event: &StoredEvent| -> Option<bool> {
            let callback = predicate.as_ref()?;
            attach_calling_python(|py| {
                self.events(py, vec![event.clone()])
                    .and_then(|mut events| callback.call1(py, (events.remove(0),)))
                    .and_then(|verdict| verdict.bind(py).is_truthy())
                    .map_err(|e| raised = Some(e))
                    .ok()
            })
        };
        let by_predicate = predicate.is_some();
        let outcome = self.run(py, |store| {
            let selection = if by_predicate {
                Selection::Predicate(&mut ask)
            } else {
                Selection::Rules(Retention {
                    max_age_us,
                    kinds: kinds.map(BTreeSet::from_iter),
                    keep_last_per_entity,
                })
            };
            store.compact(selection, &mut |done, total| progress.report(done, total))
        });
        if let Some(e) = raised {
            return Err(e);
        }
        let report = progress.finish(outcome)?;
        Ok((report.removed, report.kept, report.bytes_freed))
    }
}
