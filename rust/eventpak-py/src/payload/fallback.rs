//! Values that are not of an exact built-in type: subclasses of the built-in types (an
//! `IntEnum`, a `StrEnum`, an `OrderedDict`, a namedtuple), encoded as their base type;
//! datetimes; and everything else, which goes through `default`. Kept out of line, so that
//! the walk's hot path stays small; every path here may run Python code, so each first takes
//! a reference of its own to the value.

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

use super::containers::{too_deep, MAX_DEPTH};
use super::encode::{raised, refused};
use super::timestamp;
use super::walk::{Step, Walk};
use super::write;
use crate::args::type_name;

impl<'py> Walk<'_, 'py> {
    /// Writes `obj`, which is of no exact type the walk knows.
    ///
    /// # Safety
    /// `obj` points to a live object (see [`Walk::value`]).
    #[inline(never)]
    pub(super) unsafe fn fallback(&mut self, obj: *mut ffi::PyObject, depth: u32) -> Step {
        // SAFETY: `obj` is live (this function's contract); from here on this reference keeps
        // it alive, whatever Python code runs.
        let obj = unsafe { Borrowed::from_ptr(self.py, obj) }.to_owned();
        let ptr = obj.as_ptr();
        // Subclasses of the built-in types (`bool` has none), in the order of the exact types'
        // checks; the type checks only read the type's flags and run no Python code.
        // SAFETY: each branch hands `ptr`, held by `obj`, to the writer of its base type.
        unsafe {
            if obj.is_instance_of::<PyInt>() {
                self.int(ptr, depth)
            } else if obj.is_instance_of::<PyFloat>() {
                self.float(ptr)
            } else if obj.is_instance_of::<PyString>() {
                self.str(ptr)
            } else if obj.is_instance_of::<PyBytes>() {
                self.bytes(ptr)
            } else if obj.is_instance_of::<PyList>() {
                self.list(ptr, depth)
            } else if obj.is_instance_of::<PyTuple>() {
                self.tuple(ptr, depth)
            } else if obj.is_instance_of::<PyDict>() {
                self.dict(ptr, depth)
            } else {
                self.datetime_or_unknown(&obj, depth)
            }
        }
    }

    /// An aware datetime as a msgpack timestamp; a naive one, or any other value, goes to
    /// `default`.
    fn datetime_or_unknown(&mut self, obj: &Bound<'py, PyAny>, depth: u32) -> Step {
        let is_datetime = timestamp::is_datetime(obj).map_err(|e| raised("isinstance() raised".into(), e))?;
        if !is_datetime {
            return self.unknown(obj, depth, || format!("{} is not msgpack-serializable", type_name(obj)));
        }
        match timestamp::unix_parts(obj) {
            Ok(Some((seconds, nanos))) => {
                write::ext(self.out, timestamp::EXT_TYPE, &timestamp::ext_data(seconds, nanos));
                Ok(())
            }
            Ok(None) => {
                self.unknown(obj, depth, || "a naive datetime (without tzinfo) names no instant".into())
            }
            Err(err) => Err(raised("reading the datetime's UTC offset raised".into(), err)),
        }
    }

    /// A value msgpack cannot carry (`why` says why): hands it to `default` when there is
    /// one and writes what it returns in its place, one level deeper.
    pub(super) fn unknown(
        &mut self,
        obj: &Bound<'py, PyAny>,
        depth: u32,
        why: impl FnOnce() -> String,
    ) -> Step {
        let Some(default) = self.default else { return Err(refused(why())) };
        let shown = type_name(obj);
        match default.call1((obj,)) {
            Ok(value) if value.is(obj) => {
                Err(refused(format!("default() returned the {shown} it was given")))
            }
            Ok(_) if depth >= MAX_DEPTH => Err(too_deep()),
            // SAFETY: `value` is live, and this reference keeps it alive while it is written.
            Ok(value) => unsafe { self.value(value.as_ptr(), depth + 1) },
            Err(err) => Err(raised(format!("default() raised on a {shown}"), err)),
        }
    }
}
