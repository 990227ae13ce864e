//! Where an `Event` keeps its payload once read: one atomic pointer. Reading a set slot is one
//! load; setting it is one compare-and-swap (a `OnceLock`'s `Once` costs several times that,
//! once per event of every read).

use std::ptr::null_mut;
use std::sync::atomic::{AtomicPtr, Ordering};

use pyo3::ffi;
use pyo3::prelude::*;

/// An owned reference to a Python object, set at most once.
pub struct PayloadSlot(AtomicPtr<ffi::PyObject>);

impl PayloadSlot {
    /// An empty slot.
    pub const fn new() -> Self {
        PayloadSlot(AtomicPtr::new(null_mut()))
    }

    /// The object in the slot, if it was set.
    #[inline]
    pub fn get<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyAny>> {
        let ptr = self.0.load(Ordering::Acquire);
        // SAFETY: a non-null pointer is the slot's own reference to a live object, released
        // only when the slot is dropped; the new reference is the returned `Bound`'s.
        (!ptr.is_null()).then(|| unsafe { Bound::from_borrowed_ptr(py, ptr) })
    }

    /// Stores `value` unless the slot was set meanwhile (another thread may read the same
    /// event while an upcaster runs), and returns what the slot holds: the first value
    /// stored wins, so every read returns the same object.
    pub fn set_once<'py>(&self, value: Bound<'py, PyAny>) -> Bound<'py, PyAny> {
        let py = value.py();
        let ptr = value.clone().into_ptr();
        match self.0.compare_exchange(null_mut(), ptr, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => value,
            Err(winner) => {
                // SAFETY: `ptr` is the reference taken above, not stored; `winner` is the
                // slot's own reference to a live object.
                unsafe {
                    drop(Bound::from_owned_ptr(py, ptr));
                    Bound::from_borrowed_ptr(py, winner)
                }
            }
        }
    }
}

impl Drop for PayloadSlot {
    fn drop(&mut self) {
        let ptr = *self.0.get_mut();
        if !ptr.is_null() {
            // A slot is only ever filled under the GIL, by an event that Python holds, so it
            // is only ever dropped by Python's deallocator, with the GIL held: the reference
            // is released directly (going through `Python::attach` and PyO3's deferred
            // release cost about 55 instructions per event read, most of them thread-local
            // lookups that only confirm the GIL is held).
            // SAFETY: the slot's own reference, released once, with the GIL held (above).
            unsafe { ffi::Py_DECREF(ptr) };
        }
    }
}
