//! Dicts, lists and tuples (and their subclasses) as msgpack maps and arrays. Each is open
//! (`hold.rs`) while its items are written, so that Python code run for an item cannot free
//! it. Such code can still resize it; that stops the encoding, since the length already
//! written would no longer match the items.

use std::ptr::{addr_of_mut, null_mut};

use pyo3::ffi;
use pyo3::prelude::*;

use super::encode::{refused, Fail};
use super::walk::{too_long, Step, Walk};
use super::write;

/// Deepest nesting of lists and dicts accepted in a payload (guards the Rust stack). Each
/// call of `default` counts as a level, so a `default` that never returns something
/// encodable ends here too.
pub const MAX_DEPTH: u32 = 256;

impl Walk<'_, '_> {
    /// A dict (or dict subclass) as a map, in the dict's own order. Keys must be str; they
    /// never go through `default` (as in `json.dumps`): a key is looked up by equality, and a
    /// converted key would not be the one that was stored.
    ///
    /// # Safety
    /// `obj` is a live dict.
    #[inline(never)]
    pub(super) unsafe fn dict(&mut self, obj: *mut ffi::PyObject, depth: u32) -> Step {
        // SAFETY: `obj` is a live dict (this function's contract).
        let len = unsafe { ffi::PyDict_Size(obj) } as usize;
        if len > write::MAX_LEN {
            return Err(too_long("dict", len));
        }
        write::map_header(self.out, len);
        if len == 0 {
            return Ok(());
        }
        let slot = self.open(obj)?;
        let (mut pos, mut key, mut value) = (0, null_mut(), null_mut());
        let mut written = 0;
        // SAFETY: the dict is open, so alive; `PyDict_Next` hands out borrowed items it keeps
        // alive, and stays in bounds even if Python code resized it in between.
        while unsafe { ffi::PyDict_Next(obj, &mut pos, &mut key, &mut value) } != 0 {
            if written == len {
                return Err(resized("dict"));
            }
            // SAFETY: `key` is borrowed from the dict (above).
            unsafe { self.key(key)? };
            if depth >= MAX_DEPTH {
                return Err(too_deep());
            }
            // SAFETY: `value` is borrowed from the dict (above).
            unsafe { self.value(value, depth + 1)? };
            written += 1;
            // Python code ran while the dict was open (it is held then): it may have changed
            // the dict without changing its size, e.g. taken keys out and put them back after
            // a resize renumbered its entries, so that going on from `pos` would write a key
            // twice. The entry just written must still be where it was.
            // SAFETY: the dict is held, so alive; `key` is only compared by address.
            if slot < self.held && !unsafe { entry_unchanged(obj, pos, key) } {
                // SAFETY: as above.
                let resized_too = unsafe { ffi::PyDict_Size(obj) } as usize != len;
                return Err(if resized_too { resized("dict") } else { changed("dict") });
            }
        }
        // SAFETY: `obj` is the dict opened in `slot`.
        if !unsafe { self.close(slot, obj, len, ffi::PyDict_Size) } || written != len {
            return Err(resized("dict"));
        }
        Ok(())
    }

    /// A dict key: a str (or str subclass), else the payload is refused.
    ///
    /// # Safety
    /// `key` is a live object.
    #[inline(always)]
    pub(super) unsafe fn key(&mut self, key: *mut ffi::PyObject) -> Step {
        // SAFETY: `key` is live (this function's contract).
        unsafe {
            if ffi::Py_TYPE(key) == addr_of_mut!(ffi::PyUnicode_Type) || ffi::PyUnicode_Check(key) != 0 {
                return self.str(key);
            }
            Err(not_a_str_key(Borrowed::from_ptr(self.py, key).to_owned()))
        }
    }

    /// A list (or list subclass) as an array, item by item by index.
    ///
    /// # Safety
    /// `obj` is a live list.
    #[inline(never)]
    pub(super) unsafe fn list(&mut self, obj: *mut ffi::PyObject, depth: u32) -> Step {
        // SAFETY: `obj` is a live list (this function's contract).
        let len = unsafe { ffi::PyList_Size(obj) } as usize;
        self.array_header(len, depth)?;
        if len == 0 {
            return Ok(());
        }
        let slot = self.open(obj)?;
        for index in 0..len {
            // SAFETY: the list is open, so alive; `PyList_GetItem` checks the index against
            // its current length and hands out a borrowed item it keeps alive.
            unsafe {
                let item = ffi::PyList_GetItem(obj, index as ffi::Py_ssize_t);
                if item.is_null() {
                    ffi::PyErr_Clear();
                    return Err(resized("list"));
                }
                self.value(item, depth + 1)?;
            }
        }
        // SAFETY: `obj` is the list opened in `slot`.
        if !unsafe { self.close(slot, obj, len, ffi::PyList_Size) } {
            return Err(resized("list"));
        }
        Ok(())
    }

    /// A tuple (or tuple subclass) as an array.
    ///
    /// # Safety
    /// `obj` is a live tuple.
    #[inline(never)]
    pub(super) unsafe fn tuple(&mut self, obj: *mut ffi::PyObject, depth: u32) -> Step {
        // SAFETY: `obj` is a live tuple (this function's contract).
        let len = unsafe { ffi::PyTuple_Size(obj) } as usize;
        self.array_header(len, depth)?;
        if len == 0 {
            return Ok(());
        }
        let slot = self.open(obj)?;
        for index in 0..len {
            // SAFETY: a tuple never changes size, so every index is in bounds, and the tuple
            // (open, so alive) keeps its borrowed items alive.
            unsafe { self.value(ffi::PyTuple_GetItem(obj, index as ffi::Py_ssize_t), depth + 1)? };
        }
        // SAFETY: `obj` is the tuple opened in `slot`; its length cannot have changed.
        unsafe { self.close(slot, obj, len, ffi::PyTuple_Size) };
        Ok(())
    }

    /// The header of an array of `len` items `depth` levels deep; refused when its items
    /// would nest too deep.
    #[inline(always)]
    fn array_header(&mut self, len: usize, depth: u32) -> Step {
        if len > write::MAX_LEN {
            return Err(too_long("list", len));
        }
        if len > 0 && depth >= MAX_DEPTH {
            return Err(too_deep());
        }
        write::array_header(self.out, len);
        Ok(())
    }
}

/// The refusal of a payload that nests deeper than [`MAX_DEPTH`].
#[cold]
pub fn too_deep() -> Fail {
    refused(format!("payload nests deeper than {MAX_DEPTH} levels"))
}

/// True when the entry `PyDict_Next` gave before moving to `pos` is still `key`'s.
///
/// # Safety
/// `dict` is a live dict; `key` is not dereferenced.
unsafe fn entry_unchanged(dict: *mut ffi::PyObject, pos: ffi::Py_ssize_t, key: *mut ffi::PyObject) -> bool {
    let (mut at, mut found, mut value) = (pos - 1, null_mut(), null_mut());
    // SAFETY: `dict` is live; `PyDict_Next` stays in bounds for any position.
    unsafe { ffi::PyDict_Next(dict, &mut at, &mut found, &mut value) != 0 && at == pos && found == key }
}

#[cold]
fn changed(what: &str) -> Fail {
    refused(format!("a {what} changed while it was being encoded"))
}

#[cold]
fn resized(what: &str) -> Fail {
    refused(format!("a {what} changed size while it was being encoded"))
}

#[cold]
fn not_a_str_key(key: Bound<'_, PyAny>) -> Fail {
    refused(format!("dict key {key} is not a str"))
}
