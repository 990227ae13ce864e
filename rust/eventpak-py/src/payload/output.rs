//! A payload's encoding as a new Python `bytes` ([`encode_bytes`]). It is written into a
//! scratch buffer kept between calls, except for long strs and bytes: those are only noted,
//! with a reference to their object, and their data is copied once, straight into the
//! result, instead of into the buffer first and then again.

use std::cell::RefCell;
use std::ptr::{copy_nonoverlapping, null};

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use super::encode::{python, write, Fail};

/// Strs and bytes at least this long are copied straight into the result: past a KiB, a
/// copy costs more than holding a reference and noting where the data goes.
pub const BY_REFERENCE: usize = 1024;

/// Scratch buffers larger than this are freed after use rather than kept for the next call.
const KEEP_SCRATCH: usize = 1 << 20;

/// A long str's UTF-8 or bytes' data, which belongs at `at` in the scratch buffer.
pub struct Long {
    at: usize,
    /// Keeps `data` alive and unchanged: it is the object's own immutable buffer.
    _owner: Py<PyAny>,
    data: *const u8,
    len: usize,
}

impl Long {
    /// `data`, which belongs at `at`, held by a reference to `owner`.
    ///
    /// # Safety
    /// `data` is the buffer of the str (its cached UTF-8) or bytes `owner`, which lives and
    /// stays unchanged as long as the object does.
    pub unsafe fn new(at: usize, owner: Py<PyAny>, data: &[u8]) -> Self {
        Long { at, _owner: owner, data: data.as_ptr(), len: data.len() }
    }
}

/// What an encoding writes into: the buffer, and the long data kept apart from it.
struct Scratch {
    buf: Vec<u8>,
    long: Vec<Long>,
}

thread_local! {
    /// Kept between calls, so that an encoding allocates nothing but its `bytes`.
    static SCRATCH: RefCell<Scratch> = const { RefCell::new(Scratch::new()) };
}

/// Encodes the payload `obj` (see [`super::encode_into`]) as a Python `bytes` object.
#[inline]
pub fn encode_bytes<'py>(
    obj: &Bound<'py, PyAny>,
    default: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyBytes>> {
    // Everything inside returns results of two words at most, passed in registers: results
    // with a `PyErr` are passed through memory, which costs more than the encoding of a
    // small payload.
    let result = SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
        Ok(mut scratch) => scratch.encode(obj, default),
        // A nested call, from `default`: the outer one is using the scratch.
        Err(_) => Scratch::new().encode(obj, default),
    });
    result.map_err(|fail| fail.into_py(obj.py()))
}

impl Scratch {
    const fn new() -> Self {
        Scratch { buf: Vec::new(), long: Vec::new() }
    }

    #[inline]
    fn encode<'py>(
        &mut self,
        obj: &Bound<'py, PyAny>,
        default: Option<&Bound<'py, PyAny>>,
    ) -> Result<Bound<'py, PyBytes>, Fail> {
        let result = write(obj, default, &mut self.buf, Some(&mut self.long))
            .and_then(|()| assemble(obj.py(), &self.buf, &self.long));
        self.buf.clear();
        self.long.clear(); // drops the references while the thread is attached
        if self.buf.capacity() > KEEP_SCRATCH {
            self.buf = Vec::new();
        }
        result
    }
}

/// The bytes of `buf` with each long data inserted where it belongs.
#[inline]
fn assemble<'py>(py: Python<'py>, buf: &[u8], long: &[Long]) -> Result<Bound<'py, PyBytes>, Fail> {
    if long.is_empty() {
        // SAFETY: `buf` holds `buf.len()` bytes, which the new bytes object copies.
        let raw =
            unsafe { ffi::PyBytes_FromStringAndSize(buf.as_ptr().cast(), buf.len() as ffi::Py_ssize_t) };
        // SAFETY: `raw` is a new reference to a bytes object, or null with an exception set.
        return unsafe { Bound::from_owned_ptr_or_err(py, raw).map(|b| b.downcast_into_unchecked()) }
            .map_err(python);
    }
    join(py, buf, long)
}

/// [`assemble`] with long data to insert.
#[inline(never)]
fn join<'py>(py: Python<'py>, buf: &[u8], long: &[Long]) -> Result<Bound<'py, PyBytes>, Fail> {
    let len = buf.len() + long.iter().map(|l| l.len).sum::<usize>();
    // SAFETY: the new bytes object has room for exactly `len` bytes, which the copies fill
    // in order: the parts of `buf` between the long data (the `at` offsets increase, each
    // within `buf`), and each long data, alive while its `Long` holds its owner.
    unsafe {
        let raw = ffi::PyBytes_FromStringAndSize(null(), len as ffi::Py_ssize_t);
        let bytes = Bound::from_owned_ptr_or_err(py, raw).map_err(python)?;
        let mut to = ffi::PyBytes_AsString(bytes.as_ptr()).cast::<u8>();
        let mut from = 0;
        for part in long {
            let gap = &buf[from..part.at];
            copy_nonoverlapping(gap.as_ptr(), to, gap.len());
            copy_nonoverlapping(part.data, to.add(gap.len()), part.len);
            to = to.add(gap.len() + part.len);
            from = part.at;
        }
        let rest = &buf[from..];
        copy_nonoverlapping(rest.as_ptr(), to, rest.len());
        Ok(bytes.downcast_into_unchecked())
    }
}
