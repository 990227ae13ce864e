//! Values that are not of an exact built-in type: subclasses of the built-in types (an
//! `IntEnum`, a `StrEnum`, a namedtuple), encoded as their base type; dict subclasses (an
//! `OrderedDict`), as their `items()` show them; datetimes; and everything else (ints beyond
//! 64 bits included), which goes through `default`. Kept out of line, so that the walk's hot
//! path stays small. Subclasses other than dicts are read like their base types; the other
//! paths run Python code, so they first hold what the walk reads (`hold.rs`) and take a
//! reference of their own to the value.

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

use super::containers::{too_deep, MAX_DEPTH};
use super::encode::{raised, refused};
use super::timestamp;
use super::walk::{too_long, Step, Walk};
use super::write;
use crate::args::type_name;
use crate::exit::calling_python;

impl<'py> Walk<'_, 'py> {
    /// An int beyond `i64`: as uint64 when it fits, else through `default`.
    ///
    /// # Safety
    /// `obj` is a live int.
    #[inline(never)]
    pub(super) unsafe fn wide_int(&mut self, obj: *mut ffi::PyObject, depth: u32, overflow: i32) -> Step {
        if overflow > 0 {
            // SAFETY: `obj` is a live int; an overflow error is cleared at once.
            unsafe {
                let value = ffi::PyLong_AsUnsignedLongLong(obj);
                if value != u64::MAX || ffi::PyErr_Occurred().is_null() {
                    write::uint(self.out, value);
                    return Ok(());
                }
                ffi::PyErr_Clear();
            }
        }
        // Python code runs from here on (`default`): hold what the walk reads first.
        self.hold();
        // SAFETY: `obj` is live (this function's contract).
        let obj = unsafe { Borrowed::from_ptr(self.py, obj) }.to_owned();
        self.unknown(&obj, depth, || "int outside the 64-bit range msgpack can hold".into())
    }

    /// Writes `obj`, which is of no exact type the walk knows.
    ///
    /// # Safety
    /// `obj` points to a live object (see [`Walk::value`]).
    #[inline(never)]
    pub(super) unsafe fn fallback(&mut self, ptr: *mut ffi::PyObject, depth: u32) -> Step {
        // SAFETY: `ptr` is live (this function's contract).
        let obj = unsafe { Borrowed::from_ptr(self.py, ptr) };
        // Subclasses of the built-in types (`bool` has none), in the order of the exact types'
        // checks; the type checks only read the type's flags and run no Python code.
        // SAFETY: each branch hands `ptr`, live, to the writer of its base type.
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
                // Python code runs from here on (`items()`): hold what the walk reads first.
                self.hold();
                self.mapping(&obj.to_owned(), depth)
            } else {
                // Python code runs from here on: hold what the walk reads first, and the value.
                self.hold();
                self.datetime_or_unknown(&obj.to_owned(), depth)
            }
        }
    }

    /// A dict subclass as a map of what its `items()` gives, in that order, as `json` and
    /// msgpack-python write one: its storage need not be what it shows (an `OrderedDict`
    /// moved with `move_to_end` keeps its dict order; a multi-value mapping stores lists).
    /// The items are taken first, so the mapping changing meanwhile cannot mix two states.
    fn mapping(&mut self, obj: &Bound<'py, PyAny>, depth: u32) -> Step {
        let shown = type_name(obj);
        let items = calling_python(obj.py(), || {
            obj.call_method0("items").and_then(|items| items.try_iter()?.collect::<PyResult<Vec<_>>>())
        })
        .map_err(|e| raised(format!("{shown}.items() raised"), e))?;
        if items.len() > write::MAX_LEN {
            return Err(too_long("dict", items.len()));
        }
        write::map_header(self.out, items.len());
        for item in &items {
            let Ok((key, value)) = item.extract::<(Bound<'py, PyAny>, Bound<'py, PyAny>)>() else {
                return Err(refused(format!(
                    "{shown}.items() gave {}, not a (key, value) pair",
                    type_name(item)
                )));
            };
            // SAFETY: `items` holds each pair, and each pair its key and value, until the end.
            unsafe { self.key(key.as_ptr())? };
            if depth >= MAX_DEPTH {
                return Err(too_deep());
            }
            // SAFETY: as above.
            unsafe { self.value(value.as_ptr(), depth + 1)? };
        }
        // Dropping the items may free long data noted from them.
        self.hold();
        Ok(())
    }

    /// An aware datetime as a msgpack timestamp; a naive one, or any other value, goes to
    /// `default`.
    fn datetime_or_unknown(&mut self, obj: &Bound<'py, PyAny>, depth: u32) -> Step {
        let is_datetime = timestamp::is_datetime(obj).map_err(|e| raised("isinstance() raised".into(), e))?;
        if !is_datetime {
            return self.unknown(obj, depth, || format!("{} is not msgpack-serializable", type_name(obj)));
        }
        match timestamp::unix_parts(obj) {
            Ok(Some((seconds, _))) if !timestamp::fits_datetime(seconds) => self.unknown(obj, depth, || {
                "an aware datetime whose UTC instant is outside years 1 to 9999 could not be read back".into()
            }),
            Ok(Some((seconds, nanos))) => {
                write::ext(self.out, timestamp::EXT_TYPE, &timestamp::ext_data(seconds, nanos));
                Ok(())
            }
            Ok(None) => {
                self.unknown(obj, depth, || "a naive datetime (without tzinfo) names no instant".into())
            }
            Err(err) => Err(raised("reading the datetime's instant raised".into(), err)),
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
        match calling_python(obj.py(), || default.call1((obj,))) {
            Ok(value) if value.is(obj) => {
                Err(refused(format!("default() returned the {shown} it was given")))
            }
            Ok(_) if depth >= MAX_DEPTH => Err(too_deep()),
            Ok(value) => {
                // SAFETY: `value` is live, and this reference keeps it alive while it is written.
                unsafe { self.value(value.as_ptr(), depth + 1)? };
                // Dropping `value` may free long data noted from it.
                self.hold();
                Ok(())
            }
            Err(err) => Err(raised(format!("default() raised on a {shown}"), err)),
        }
    }
}
