//! The walk over a payload's objects, writing msgpack as it goes. A value's type is compared
//! with the exact built-in types first (one pointer comparison each); only a value of any
//! other type goes to `fallback.rs` (subclasses, datetimes, `default`).
//!
//! Values are read through borrowed pointers, with no reference counting: `hold.rs` says why
//! that is sound.

use std::ptr::addr_of_mut;

use pyo3::ffi;
use pyo3::prelude::*;

use super::encode::{refused, Fail};
use super::hold::OpenStack;
use super::output::{Kind, Long, BY_REFERENCE};
use super::write;

/// Whether one value was written.
pub type Step = Result<(), Fail>;

/// One encoding: where it writes and the `default` it calls.
pub struct Walk<'a, 'py> {
    pub(super) py: Python<'py>,
    pub(super) default: Option<&'a Bound<'py, PyAny>>,
    pub(super) out: &'a mut Vec<u8>,
    /// Where long strs and bytes are noted instead of copied into `out`, if anywhere.
    pub(super) long: Option<&'a mut Vec<Long>>,
    /// The containers whose items are being written, outermost first: `open[..open_len]`.
    pub(super) open: &'a mut OpenStack,
    pub(super) open_len: usize,
    /// `open[..held]` are held: the walk took a reference to each (see `hold.rs`).
    pub(super) held: usize,
}

impl<'a, 'py> Walk<'a, 'py> {
    /// A walk writing to `out`, handing unknown values to `default` when given, noting long
    /// strs and bytes in `long` when given, and keeping the containers it is in in `open`.
    #[inline(always)]
    pub fn new(
        py: Python<'py>,
        default: Option<&'a Bound<'py, PyAny>>,
        out: &'a mut Vec<u8>,
        long: Option<&'a mut Vec<Long>>,
        open: &'a mut OpenStack,
    ) -> Self {
        Walk { py, default, out, long, open, open_len: 0, held: 0 }
    }

    /// Writes `obj`, the payload itself: most payloads are dicts, so that check comes first.
    ///
    /// # Safety
    /// `obj` points to a live object that stays alive throughout.
    #[inline(always)]
    pub unsafe fn root(&mut self, obj: *mut ffi::PyObject) -> Step {
        // SAFETY: `obj` is live (this function's contract); the type object is a static of
        // the interpreter, only compared by address here.
        unsafe {
            if ffi::Py_TYPE(obj) == addr_of_mut!(ffi::PyDict_Type) {
                return self.dict(obj, 0);
            }
            self.value(obj, 0)
        }
    }

    /// Writes `obj`, a value `depth` levels deep (the payload itself is level 0). Inlined
    /// into each container's loop, so that a scalar item costs no call of its own.
    ///
    /// # Safety
    /// `obj` points to a live object: the payload, an item of an open container, or a value
    /// the caller holds (see `hold.rs`).
    #[inline(always)]
    pub unsafe fn value(&mut self, obj: *mut ffi::PyObject, depth: u32) -> Step {
        // SAFETY: `obj` is live (this function's contract); the type objects and the
        // singletons are statics of the interpreter, only compared by address here.
        unsafe {
            let ty = ffi::Py_TYPE(obj);
            if ty == addr_of_mut!(ffi::PyUnicode_Type) {
                self.str(obj)
            } else if ty == addr_of_mut!(ffi::PyLong_Type) {
                self.int(obj, depth)
            } else if ty == addr_of_mut!(ffi::PyFloat_Type) {
                self.float(obj)
            } else if ty == addr_of_mut!(ffi::PyBool_Type) {
                write::boolean(self.out, obj == ffi::Py_True());
                Ok(())
            } else if obj == ffi::Py_None() {
                write::nil(self.out);
                Ok(())
            } else if ty == addr_of_mut!(ffi::PyDict_Type) {
                self.dict(obj, depth)
            } else if ty == addr_of_mut!(ffi::PyList_Type) {
                self.list(obj, depth)
            } else if ty == addr_of_mut!(ffi::PyTuple_Type) {
                self.tuple(obj, depth)
            } else if ty == addr_of_mut!(ffi::PyBytes_Type) {
                self.bytes(obj)
            } else {
                self.fallback(obj, depth)
            }
        }
    }

    /// A str (or str subclass) as UTF-8; one holding lone surrogates is refused.
    ///
    /// # Safety
    /// `obj` is a live str.
    #[inline(always)]
    pub(super) unsafe fn str(&mut self, obj: *mut ffi::PyObject) -> Step {
        let mut len: ffi::Py_ssize_t = 0;
        // SAFETY: `obj` is a live str. Its UTF-8, cached in the str, lives as long as the str
        // and is copied out before anything else runs.
        unsafe {
            let data = ffi::PyUnicode_AsUTF8AndSize(obj, &mut len);
            if data.is_null() {
                return Err(not_utf8(self.py));
            }
            let text = std::slice::from_raw_parts(data.cast::<u8>(), len as usize);
            if text.len() >= BY_REFERENCE {
                return self.long(obj, text, Kind::Str);
            }
            write::str(self.out, text);
        }
        Ok(())
    }

    /// An int (or int subclass) in the smallest integer form; one outside both the signed
    /// and the unsigned 64-bit range goes to `default`.
    ///
    /// # Safety
    /// `obj` is a live int.
    #[inline(always)]
    pub(super) unsafe fn int(&mut self, obj: *mut ffi::PyObject, depth: u32) -> Step {
        let mut overflow = 0;
        // SAFETY: `obj` is a live int: reading it neither fails nor calls `__index__`.
        let value = unsafe { ffi::PyLong_AsLongLongAndOverflow(obj, &mut overflow) };
        if overflow != 0 {
            // SAFETY: as above.
            return unsafe { self.wide_int(obj, depth, overflow) };
        }
        write::int(self.out, value);
        Ok(())
    }

    /// A float (or float subclass) as float64.
    ///
    /// # Safety
    /// `obj` is a live float.
    #[inline(always)]
    pub(super) unsafe fn float(&mut self, obj: *mut ffi::PyObject) -> Step {
        // SAFETY: `obj` is a live float: reading it neither fails nor calls `__float__`.
        write::float(self.out, unsafe { ffi::PyFloat_AsDouble(obj) });
        Ok(())
    }

    /// A bytes (or bytes subclass) as bin.
    ///
    /// # Safety
    /// `obj` is a live bytes.
    #[inline(never)]
    pub(super) unsafe fn bytes(&mut self, obj: *mut ffi::PyObject) -> Step {
        // SAFETY: `obj` is a live bytes object, whose buffer holds its size in bytes and is
        // copied out before anything else runs.
        unsafe {
            let data = ffi::PyBytes_AsString(obj);
            let data = std::slice::from_raw_parts(data.cast::<u8>(), ffi::PyBytes_Size(obj) as usize);
            if data.len() >= BY_REFERENCE {
                return self.long(obj, data, Kind::Bin);
            }
            write::bin(self.out, data);
        }
        Ok(())
    }
}

/// The refusal of a value longer than msgpack's 32-bit length fields can describe.
#[cold]
pub fn too_long(what: &str, len: usize) -> Fail {
    refused(format!("a {what} of length {len} is longer than msgpack can hold (2**32 - 1)"))
}

/// A str `PyUnicode_AsUTF8AndSize` refused (lone surrogates): the refusal says why.
#[cold]
fn not_utf8(py: Python<'_>) -> Fail {
    refused(format!("{}", PyErr::fetch(py)))
}
