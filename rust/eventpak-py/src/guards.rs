//! `AppendCondition` and `Tracking`: what an append may carry besides its events, as value
//! types (frozen, comparable, hashable, picklable).

use eventpak_core::{
    validate_tracking_name, AppendCondition as CoreCondition, CommitGuards, Tracking as CoreTracking,
};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyString, PyTuple};

use crate::args::{int_arg, opt_int_arg, type_name};
use crate::errors::{to_py, InvalidArgument};
use crate::names::utf8_text;
use crate::types::Region;

/// Fails an append when a visible event matching `fail_if_events_match` was committed
/// after the global sequence `after` (at all, when `after` is None).
#[pyclass(frozen, eq, hash, module = "eventpak._native")]
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct AppendCondition {
    pub inner: CoreCondition,
}

#[pymethods]
impl AppendCondition {
    #[new]
    #[pyo3(signature = (fail_if_events_match, after=None))]
    fn new(fail_if_events_match: &Bound<'_, PyAny>, after: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        let Ok(region) = fail_if_events_match.downcast::<Region>() else {
            let shown = type_name(fail_if_events_match);
            return Err(PyTypeError::new_err(format!(
                "fail_if_events_match must be an ep.Region, not {shown}"
            )));
        };
        let after = opt_int_arg(after, "after")?;
        Ok(AppendCondition {
            inner: CoreCondition { fail_if_events_match: region.get().inner.clone(), after },
        })
    }

    /// The events that must not exist after `after`.
    #[getter]
    fn fail_if_events_match(&self) -> Region {
        Region { inner: self.inner.fail_if_events_match.clone() }
    }

    /// Only events strictly after this global sequence count (None: every event).
    #[getter]
    fn after(&self) -> Option<u64> {
        self.inner.after
    }

    fn __repr__(&self) -> String {
        let region = self.inner.fail_if_events_match.checkpoint_identity();
        // Python's spelling of the value, as the constructor takes it back.
        let after = self.inner.after.map_or_else(|| "None".to_owned(), |n| n.to_string());
        format!("AppendCondition(Region({region:?}), after={after})")
    }

    fn __getnewargs__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let region = Py::new(py, self.fail_if_events_match())?;
        (region, self.inner.after).into_pyobject(py)
    }
}

/// A tracking name argument: a `str` (`TypeError` otherwise) of valid UTF-8; every other
/// rule, and this one, raise `ep.InvalidArgument` naming "tracking name".
pub fn tracking_name(name: &Bound<'_, PyAny>) -> PyResult<String> {
    let Ok(text) = name.downcast::<PyString>() else {
        return Err(PyTypeError::new_err(format!("tracking name must be a str, not {}", type_name(name))));
    };
    let text =
        utf8_text(text).map_err(|reason| InvalidArgument::new_err(("tracking name".to_owned(), reason)))?;
    validate_tracking_name(text).map_err(|e| to_py(e, ""))?;
    Ok(text.to_owned())
}

/// A consumer's position `position` in its input `name`, recorded atomically with the
/// batch that processed it.
#[pyclass(frozen, eq, hash, module = "eventpak._native")]
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Tracking {
    pub inner: CoreTracking,
}

#[pymethods]
impl Tracking {
    #[new]
    fn new(name: &Bound<'_, PyAny>, position: &Bound<'_, PyAny>) -> PyResult<Self> {
        let name = tracking_name(name)?;
        let position = int_arg(position, "position")?;
        CoreTracking::new(&name, position).map(|inner| Tracking { inner }).map_err(|e| to_py(e, ""))
    }

    /// The tracking name.
    #[getter]
    fn name(&self) -> &str {
        &self.inner.name
    }

    /// The position recorded.
    #[getter]
    fn position(&self) -> u64 {
        self.inner.position
    }

    fn __repr__(&self) -> String {
        format!("Tracking({:?}, {})", self.inner.name, self.inner.position)
    }

    fn __getnewargs__(&self) -> (String, u64) {
        (self.inner.name.clone(), self.inner.position)
    }
}

/// Reads the `condition=` and `tracking=` arguments of an append (None: not given).
pub fn guards(
    condition: Option<&Bound<'_, PyAny>>,
    tracking: Option<&Bound<'_, PyAny>>,
) -> PyResult<CommitGuards> {
    let condition = match condition.filter(|c| !c.is_none()) {
        None => None,
        Some(c) => Some(c.downcast::<AppendCondition>().map(|c| c.get().inner.clone()).map_err(|_| {
            PyTypeError::new_err(format!("condition must be an ep.AppendCondition, not {}", type_name(c)))
        })?),
    };
    let tracking = match tracking.filter(|t| !t.is_none()) {
        None => None,
        Some(t) => Some(t.downcast::<Tracking>().map(|t| t.get().inner.clone()).map_err(|_| {
            PyTypeError::new_err(format!("tracking must be an ep.Tracking, not {}", type_name(t)))
        })?),
    };
    Ok(CommitGuards { condition, tracking })
}
