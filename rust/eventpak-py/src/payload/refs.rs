//! Reference counting in the decoder's hot loop, written inline the way CPython 3.11's
//! limited-API `Py_INCREF` / `Py_DECREF` macros are: C extensions built for the 3.11 stable
//! ABI do exactly this, and later interpreters keep it working for them (immortal objects
//! carry a reference count with room for such increments and decrements, PEP 683). PyO3
//! calls `_Py_IncRef` / `_Py_DecRef` instead, a call through the PLT for every reference;
//! a dict entry costs two of them.

use pyo3::ffi;

/// Adds a reference to `obj`.
///
/// # Safety
/// `obj` is a live object and the GIL is held.
#[inline(always)]
pub unsafe fn add_ref(obj: *mut ffi::PyObject) {
    // SAFETY: see the function's contract.
    unsafe { (*obj).ob_refcnt += 1 };
}

/// Gives up a reference to `obj` that is not its last: another holder (the container it was
/// just stored in) keeps it alive, so the count cannot reach zero and nothing is freed.
///
/// # Safety
/// The caller owns a reference to `obj`, another one is held elsewhere, and the GIL is held.
#[inline(always)]
pub unsafe fn release_not_last(obj: *mut ffi::PyObject) {
    // SAFETY: see the function's contract.
    unsafe { (*obj).ob_refcnt -= 1 };
}

/// Gives up a reference to `obj`, freeing it when it was the last. For a dict key: a dict
/// that already holds an equal key keeps that one, so a repeated key's object may have no
/// other holder.
///
/// # Safety
/// The caller owns a reference to `obj` and the GIL is held.
#[inline(always)]
pub unsafe fn release(obj: *mut ffi::PyObject) {
    // SAFETY: see the function's contract; the last reference goes through CPython.
    unsafe {
        if (*obj).ob_refcnt == 1 {
            ffi::Py_DecRef(obj);
        } else {
            (*obj).ob_refcnt -= 1;
        }
    }
}
