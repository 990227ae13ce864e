//! The append methods of `NativeStore`: arguments are turned into engine requests with the
//! GIL held (payloads are encoded then), and the engine appends without it.

use pyo3::prelude::*;

use crate::args::opt_int_arg;
use crate::event::AppendReceipt;
use crate::guards::{guards, tracking_name};
use crate::request::{build, build_items, Options};
use crate::store::NativeStore;

#[pymethods]
impl NativeStore {
    /// Appends one event and returns its receipt.
    #[pyo3(signature = (coord, kind, payload, *, idempotency_key=None, expected_sequence=None, causation_id=None, correlation_id=None, caused_by=None, payload_version=None, tags=None, condition=None, tracking=None))]
    #[allow(clippy::too_many_arguments)]
    fn append(
        &self,
        py: Python<'_>,
        coord: &Bound<'_, PyAny>,
        kind: &Bound<'_, PyAny>,
        payload: &Bound<'_, PyAny>,
        idempotency_key: Option<&Bound<'_, PyAny>>,
        expected_sequence: Option<&Bound<'_, PyAny>>,
        causation_id: Option<&Bound<'_, PyAny>>,
        correlation_id: Option<&Bound<'_, PyAny>>,
        caused_by: Option<&Bound<'_, PyAny>>,
        payload_version: Option<&Bound<'_, PyAny>>,
        tags: Option<&Bound<'_, PyAny>>,
        condition: Option<&Bound<'_, PyAny>>,
        tracking: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<AppendReceipt> {
        let expected_sequence = opt_int_arg(expected_sequence, "expected_sequence")?;
        let payload_version = opt_int_arg(payload_version, "payload_version")?.unwrap_or(0);
        let options = Options {
            idempotency_key,
            expected_sequence,
            causation_id,
            correlation_id,
            caused_by,
            payload_version,
            tags,
        };
        let request = build(coord, kind, payload, options, self.default_encoder(py).as_ref())?;
        let guards = guards(condition, tracking)?;
        if guards.is_empty() {
            return self.run(py, |s| s.append(request)).map(AppendReceipt::from);
        }
        self.run(py, |s| s.append_guarded(request, guards)).map(AppendReceipt::from)
    }

    /// Appends events atomically; returns one receipt per event. With `condition`, only if
    /// it holds; with `tracking`, recording it in the same commit (items may then be empty).
    #[pyo3(signature = (items, *, condition=None, tracking=None))]
    fn append_batch(
        &self,
        py: Python<'_>,
        items: &Bound<'_, PyAny>,
        condition: Option<&Bound<'_, PyAny>>,
        tracking: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Vec<AppendReceipt>> {
        let requests = build_items(items, self.default_encoder(py).as_ref())?;
        let guards = guards(condition, tracking)?;
        let receipts = if guards.is_empty() {
            self.run(py, |s| s.append_batch(requests))?
        } else {
            self.run(py, |s| s.append_batch_guarded(requests, guards))?
        };
        Ok(receipts.into_iter().map(AppendReceipt::from).collect())
    }

    /// The position recorded for tracking name `name`, or None.
    fn tracking_position(&self, py: Python<'_>, name: &Bound<'_, PyAny>) -> PyResult<Option<u64>> {
        let name = tracking_name(name)?;
        self.run(py, |s| s.tracking_position(&name))
    }

    /// Appends atomically events the store writes itself: the reserved kinds (denials,
    /// bypass audits, dead letters) are accepted beside ordinary ones, with `condition` and
    /// `tracking` as `append_batch` takes them. Used by the package only, never re-exported
    /// on `ep.Store`.
    #[pyo3(name = "_append_reserved_batch", signature = (items, *, condition=None, tracking=None))]
    fn append_reserved_batch(
        &self,
        py: Python<'_>,
        items: &Bound<'_, PyAny>,
        condition: Option<&Bound<'_, PyAny>>,
        tracking: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Vec<AppendReceipt>> {
        let requests = build_items(items, self.default_encoder(py).as_ref())?;
        let guards = guards(condition, tracking)?;
        let receipts = self.run(py, |s| s.append_reserved_batch(requests, guards))?;
        Ok(receipts.into_iter().map(AppendReceipt::from).collect())
    }
}
