//! `NativeFence`: the store's visibility fence, opened on construction. The Python `Fence`
//! holds one and adds the `with` protocol and its state machine.

use pyo3::prelude::*;

use crate::event::AppendReceipt;
use crate::request::build_items;
use crate::store::NativeStore;

/// An open visibility fence of one store.
#[pyclass(frozen, module = "eventpak._native")]
pub struct NativeFence {
    store: Py<NativeStore>,
}

#[pymethods]
impl NativeFence {
    /// Opens the store's fence (raises `ep.FenceActive` if one is open).
    #[new]
    fn begin(py: Python<'_>, store: Py<NativeStore>) -> PyResult<Self> {
        store.get().run(py, |s| s.begin_fence())?;
        Ok(NativeFence { store })
    }

    /// Raises what opening a fence on `store` would raise at once (`ep.StoreClosed`,
    /// `ep.ReadOnlyStore`), without opening one.
    #[staticmethod]
    fn check(py: Python<'_>, store: &Bound<'_, NativeStore>) -> PyResult<()> {
        store.get().run(py, |s| s.check_can_fence())
    }

    /// Cancels the store's open fence if the calling thread opened it; true when it did.
    /// `Store.close()` calls it first, so appends waiting for that fence do not hold up the
    /// close for `fence_wait_ms`.
    #[staticmethod]
    fn cancel_own(py: Python<'_>, store: &Bound<'_, NativeStore>) -> PyResult<bool> {
        store.get().run(py, |s| s.cancel_fence_of_caller())
    }

    /// Appends events through the fence atomically.
    fn append_batch(&self, py: Python<'_>, items: &Bound<'_, PyAny>) -> PyResult<Vec<AppendReceipt>> {
        let store = self.store.get();
        let requests = build_items(items, store.default_encoder(py).as_ref())?;
        let receipts = store.run(py, |s| s.fence_append_batch(requests))?;
        Ok(receipts.into_iter().map(AppendReceipt::from).collect())
    }

    /// Makes the fence's events visible.
    fn commit(&self, py: Python<'_>) -> PyResult<()> {
        self.store.get().run(py, |s| s.commit_fence())
    }

    /// Hides the fence's events for good.
    fn cancel(&self, py: Python<'_>) -> PyResult<()> {
        self.store.get().run(py, |s| s.cancel_fence())
    }
}
