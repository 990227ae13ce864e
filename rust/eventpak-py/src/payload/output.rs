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
use super::walk::{too_long, Step, Walk};
use super::write as form;

/// Strs and bytes at least this long are copied straight into the result: past a KiB, a
/// copy costs more than holding a reference and noting where the data goes.
pub const BY_REFERENCE: usize = 1024;

/// Scratch buffers larger than this are freed after use rather than kept for the next call.
const KEEP_SCRATCH: usize = 1 << 20;

/// A long str's UTF-8 or bytes' data, which belongs at `at` in the scratch buffer.
pub struct Long {
    at: usize,
    /// The str or bytes `data` is the buffer of: borrowed while the payload keeps it alive,
    /// held (a reference of the walk's own) once Python code may have run (see `hold.rs`).
    owner: *mut ffi::PyObject,
    held: bool,
    data: *const u8,
    len: usize,
}

impl Long {
    /// `data`, which belongs at `at`, borrowed from `owner`.
    ///
    /// # Safety
    /// `data` is the buffer of the str (its cached UTF-8) or bytes `owner`, which stays
    /// unchanged as long as the object lives.
    pub unsafe fn new(at: usize, owner: *mut ffi::PyObject, data: &[u8]) -> Self {
        Long { at, owner, held: false, data: data.as_ptr(), len: data.len() }
    }

    /// Whether the walk holds a reference to the owner.
    pub fn held(&self) -> bool {
        self.held
    }

    /// Takes a reference to the owner.
    ///
    /// # Safety
    /// The owner is alive, and not held yet.
    pub unsafe fn hold(&mut self, _py: Python<'_>) {
        // SAFETY: the owner is alive (this function's contract), and the thread is attached.
        unsafe { ffi::Py_IncRef(self.owner) };
        self.held = true;
    }
}

/// Drops `long[from..]`, and the references held to their owners.
#[inline]
pub fn release(_py: Python<'_>, long: &mut Vec<Long>, from: usize) {
    if long.len() <= from {
        return;
    }
    for part in long.drain(from..).filter(|part| part.held) {
        // SAFETY: the reference was taken by `Long::hold`, and the thread is attached.
        unsafe { ffi::Py_DecRef(part.owner) };
    }
}

/// Which msgpack family long data is written as.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Str,
    Bin,
}

impl Walk<'_, '_> {
    /// A str's UTF-8 or a bytes' data of at least [`BY_REFERENCE`] bytes: noted in `long`
    /// when the walk keeps long data apart (writing only its header), else written.
    ///
    /// # Safety
    /// `data` is the buffer of `obj`, a live str (its UTF-8) or bytes.
    #[inline(never)]
    pub(super) unsafe fn long(&mut self, obj: *mut ffi::PyObject, data: &[u8], kind: Kind) -> Step {
        if data.len() > form::MAX_LEN {
            return Err(too_long(if kind == Kind::Str { "str" } else { "bytes" }, data.len()));
        }
        let Some(long) = self.long.as_deref_mut() else {
            match kind {
                Kind::Str => form::str(self.out, data),
                Kind::Bin => form::bin(self.out, data),
            }
            return Ok(());
        };
        match kind {
            Kind::Str => form::str_header(self.out, data.len()),
            Kind::Bin => form::bin_header(self.out, data.len()),
        }
        // SAFETY: `data` is the buffer of `obj` (this function's contract), which stays
        // unchanged as long as `obj` lives: strs and bytes are immutable.
        long.push(unsafe { Long::new(self.out.len(), obj, data) });
        Ok(())
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

    #[inline(always)]
    fn encode<'py>(
        &mut self,
        obj: &Bound<'py, PyAny>,
        default: Option<&Bound<'py, PyAny>>,
    ) -> Result<Bound<'py, PyBytes>, Fail> {
        // Empty unless an earlier call panicked half-way: then its notes are dropped (and
        // their references leaked, which is safe), not copied into this result.
        self.buf.clear();
        self.long.clear();
        let result = write(obj, default, &mut self.buf, Some(&mut self.long))
            .and_then(|()| assemble(obj.py(), &self.buf, &self.long));
        release(obj.py(), &mut self.long, 0);
        if self.buf.capacity() > KEEP_SCRATCH {
            self.buf = Vec::new();
        }
        result
    }
}

/// The bytes of `buf` with each long data inserted where it belongs.
#[inline(always)]
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
    // within `buf`), and each long data, alive as its owner is: held by the walk, or else
    // noted after Python code last ran, so still kept alive by the payload (`hold.rs`).
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
