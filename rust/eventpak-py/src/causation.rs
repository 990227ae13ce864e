//! Causal links from Python arguments: `caused_by=` (an `Event`, an `AppendReceipt`, an
//! event id or `PriorItem`) and `causation_id=` (an event id or `PriorItem`).

use eventpak_core::AppendRequest as CoreRequest;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyInt, PyType};

use crate::args::int_arg;
use crate::errors::InvalidCausation;
use crate::event::{from_uuid, AppendReceipt, Event};

/// In `append_batch`: the item at position `index` of the same batch, as a cause. Its id
/// is assigned at commit, so it cannot be known when the batch is built.
#[pyclass(frozen, eq, hash, module = "eventpak._native")]
#[derive(PartialEq, Eq, Hash)]
pub struct PriorItem {
    /// Position of the causing item in the batch (it must come before the item naming it).
    #[pyo3(get)]
    index: u32,
}

#[pymethods]
impl PriorItem {
    #[new]
    fn new(index: &Bound<'_, PyAny>) -> PyResult<Self> {
        // A negative position can never name an earlier item: the same refusal as a
        // position that is not earlier (made here, before any batch is built).
        let is_int = index.is_instance_of::<PyInt>() && !index.is_instance_of::<PyBool>();
        if is_int && index.lt(0)? {
            let reason = format!("PriorItem({index}): a batch item's position is never negative");
            return Err(InvalidCausation::new_err((reason,)));
        }
        Ok(PriorItem { index: int_arg(index, "index")? })
    }

    fn __repr__(&self) -> String {
        format!("PriorItem({})", self.index)
    }

    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> (Bound<'py, PyType>, (u32,)) {
        (slf.get_type(), (slf.get().index,))
    }
}

/// Sets the causal fields of `request` from `causation_id` and `caused_by` (at most one
/// of them). `caused_by` also takes the cause's correlation id unless one was given.
pub fn apply(
    request: &mut CoreRequest,
    causation_id: Option<&Bound<'_, PyAny>>,
    caused_by: Option<&Bound<'_, PyAny>>,
) -> PyResult<()> {
    let (causation_id, caused_by) =
        (causation_id.filter(|c| !c.is_none()), caused_by.filter(|c| !c.is_none()));
    let (cause, inherit) = match (causation_id, caused_by) {
        (Some(_), Some(_)) => {
            return Err(InvalidCausation::new_err(("give caused_by or causation_id, not both",)));
        }
        (Some(cause), None) => (cause, false),
        (None, Some(cause)) => (cause, true),
        (None, None) => return Ok(()),
    };
    let name = if inherit { "caused_by" } else { "causation_id" };
    if let Ok(item) = cause.downcast::<PriorItem>() {
        request.causation_item = Some(item.get().index);
    } else if let Ok(event) = cause.downcast::<Event>() {
        let view = event.get().stored().view();
        request.causation_id = Some(view.event_id());
        // The event is at hand: its correlation needs no lookup.
        if inherit && request.correlation_id.is_none() {
            request.correlation_id = Some(view.correlation_id());
        }
        return Ok(());
    } else if let Ok(receipt) = cause.downcast::<AppendReceipt>() {
        request.causation_id = Some(receipt.get().event_id_bytes());
    } else {
        request.causation_id = Some(from_uuid(cause, name)?);
    }
    request.correlation_from_cause = inherit;
    Ok(())
}
