//! The causal walks of `NativeStore`: causes, effects, descendants and correlations.

use pyo3::prelude::*;

use crate::args::opt_int_arg;
use crate::event::{from_uuid, Event};
use crate::store::NativeStore;

#[pymethods]
impl NativeStore {
    /// The event, its cause, that cause's cause ... up to the root (at most `limit`).
    #[pyo3(signature = (event_id, *, limit=None))]
    fn causes(
        &self,
        py: Python<'_>,
        event_id: &Bound<'_, PyAny>,
        limit: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Vec<Py<Event>>> {
        let (id, limit) = (from_uuid(event_id, "event_id")?, opt_int_arg(limit, "limit")?);
        self.events(py, self.run(py, |s| s.causes(&id, limit))?)
    }

    /// The direct effects of the event, in commit order.
    fn effects(&self, py: Python<'_>, event_id: &Bound<'_, PyAny>) -> PyResult<Vec<Py<Event>>> {
        let id = from_uuid(event_id, "event_id")?;
        self.events(py, self.run(py, |s| s.effects(&id))?)
    }

    /// Every event the event caused, directly or not, breadth first.
    #[pyo3(signature = (event_id, *, max_depth=None))]
    fn descendants(
        &self,
        py: Python<'_>,
        event_id: &Bound<'_, PyAny>,
        max_depth: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Vec<Py<Event>>> {
        let (id, depth) = (from_uuid(event_id, "event_id")?, opt_int_arg(max_depth, "max_depth")?);
        self.events(py, self.run(py, |s| s.descendants(&id, depth))?)
    }

    /// The events carrying `correlation_id`, in commit order.
    #[pyo3(signature = (correlation_id, *, after=None, limit=None))]
    fn correlated(
        &self,
        py: Python<'_>,
        correlation_id: &Bound<'_, PyAny>,
        after: Option<&Bound<'_, PyAny>>,
        limit: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Vec<Py<Event>>> {
        let id = from_uuid(correlation_id, "correlation_id")?;
        let (after, limit) = (opt_int_arg(after, "after")?, opt_int_arg(limit, "limit")?);
        self.events(py, self.run(py, |s| s.correlated(&id, after, limit))?)
    }
}
