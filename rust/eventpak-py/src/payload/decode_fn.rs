//! `_native.decode_payload` as a plain one-argument C function (`METH_O`) rather than a
//! `#[pyfunction]`: PyO3's argument parsing (a vectorcall frame, keyword matching and a
//! typed extraction) costs about as much as decoding a small dict's last few fields, and
//! the projection cache decodes every cached state through this function.

use std::ffi::{c_char, c_int};

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyCFunction, PyModule};
use pyo3::{ffi, PyErr};

const NAME: &std::ffi::CStr = c"decode_payload";
/// The signature line (`$module, data, /`) lets `inspect.signature` read the function.
const DOC: &std::ffi::CStr = c"decode_payload($module, data, /)\n--\n\n\
Decodes msgpack bytes the way the store does. Raises PayloadNotDecodable (a ValueError)\n\
unless the bytes hold exactly one msgpack value whose every str is UTF-8 and whose\n\
extensions are timestamps.";

/// The C entry point CPython calls with the module and the one argument.
unsafe extern "C" fn decode_payload(
    _module: *mut ffi::PyObject,
    data: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: CPython calls a METH_O function while attached, `data` borrowed and alive.
    let py = unsafe { Python::assume_attached() };
    let data = unsafe { Bound::from_borrowed_ptr(py, data) };
    let decoded = match data.cast::<PyBytes>() {
        Ok(bytes) => super::decode(py, bytes.as_bytes()),
        Err(_) => Err(PyTypeError::new_err(format!(
            "decode_payload() argument must be bytes, not {}",
            data.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "?".into())
        ))),
    };
    match decoded {
        Ok(value) => value.into_ptr(),
        Err(err) => {
            err.restore(py);
            // Objects an error path let go of (a fetched exception) went to PyO3's deferred
            // release pool, since this entry point did not go through PyO3's: attaching
            // through PyO3 releases them now rather than at some later native call.
            Python::attach(|_| ());
            std::ptr::null_mut()
        }
    }
}

/// Adds `decode_payload` to `module`.
pub fn add_to(module: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = module.py();
    // The definition must outlive the function object; one per module init, never freed.
    let def = Box::leak(Box::new(ffi::PyMethodDef {
        ml_name: NAME.as_ptr() as *const c_char,
        ml_meth: ffi::PyMethodDefPointer { PyCFunction: decode_payload },
        ml_flags: ffi::METH_O as c_int,
        ml_doc: DOC.as_ptr() as *const c_char,
    }));
    let module_name = module.name()?;
    // SAFETY: `def` is 'static; the module and its name are live references.
    let function = unsafe {
        let ptr = ffi::PyCFunction_NewEx(def, module.as_ptr(), module_name.as_ptr());
        Bound::from_owned_ptr_or_err(py, ptr)?.cast_into::<PyCFunction>().map_err(PyErr::from)?
    };
    module.add("decode_payload", function)
}
