//! Dict keys repeat across events ("amount", "currency", ...): short ones are kept in a
//! small direct-mapped cache so decoding reuses one string object, with its hash already
//! computed, instead of validating, allocating and hashing a new one per event.
//!
//! A key of up to 32 bytes is read as four machine words (overlapping reads for shorter
//! ones), which with its length identify its bytes exactly: a hit is a few integer
//! comparisons, with no call to `memcmp` and no UTF-8 check (bytes equal to a cached key's
//! are valid UTF-8).

use std::cell::UnsafeCell;
use std::str::Utf8Error;

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyString;

const KEY_CACHE_SLOTS: usize = 512;
const MAX_CACHED_KEY: usize = 32;

/// A key's bytes as its length and four words; equal shapes mean equal bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Shape {
    len: usize,
    words: [u64; 4],
}

struct Slot {
    shape: Shape,
    /// A strong reference to the cached string, or null for an empty slot.
    key: *mut ffi::PyObject,
}

/// The cache, used only with the GIL held (every access takes a `Python` token). The
/// extension module is not declared free-threading-ready, so holding the GIL means no other
/// thread runs Python or this code, and nothing here runs Python code that could re-enter it
/// between a lookup and the store that follows.
struct KeyCache(UnsafeCell<[Slot; KEY_CACHE_SLOTS]>);

// SAFETY: see `KeyCache`: the GIL serialises every access.
unsafe impl Sync for KeyCache {}

const EMPTY: Slot = Slot { shape: Shape { len: 0, words: [0; 4] }, key: std::ptr::null_mut() };
static KEY_CACHE: KeyCache = KeyCache(UnsafeCell::new([EMPTY; KEY_CACHE_SLOTS]));

#[inline(always)]
fn word(raw: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(raw[at..at + 8].try_into().expect("8 bytes"))
}

/// The shape of `raw` (at most [`MAX_CACHED_KEY`] bytes). Reads overlap for lengths that
/// are not multiples of 8; given the length, every byte is still covered by some word.
#[inline(always)]
fn shape_of(raw: &[u8]) -> Shape {
    let len = raw.len();
    let words = match len {
        0 => [0; 4],
        1..=3 => [u64::from(raw[0]) | u64::from(raw[len / 2]) << 8 | u64::from(raw[len - 1]) << 16, 0, 0, 0],
        4..=7 => {
            let low = u32::from_le_bytes(raw[..4].try_into().expect("4 bytes"));
            let high = u32::from_le_bytes(raw[len - 4..].try_into().expect("4 bytes"));
            [u64::from(low) | u64::from(high) << 32, 0, 0, 0]
        }
        8..=16 => [word(raw, 0), word(raw, len - 8), 0, 0],
        _ => [word(raw, 0), word(raw, 8), word(raw, len - 16), word(raw, len - 8)],
    };
    Shape { len, words }
}

#[inline(always)]
fn slot_of(shape: &Shape) -> usize {
    let [a, b, c, d] = shape.words;
    let mixed = a ^ b.rotate_left(17) ^ c.rotate_left(31) ^ d.rotate_left(47) ^ shape.len as u64;
    (mixed.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32) as usize % KEY_CACHE_SLOTS
}

/// The string object for the dict key whose msgpack `str` bytes are `raw`, from the cache
/// when it holds it; an error when they are not UTF-8.
#[inline]
pub fn cached_key<'py>(py: Python<'py>, raw: &[u8]) -> Result<Bound<'py, PyString>, Utf8Error> {
    if raw.len() > MAX_CACHED_KEY {
        return Ok(PyString::new(py, std::str::from_utf8(raw)?));
    }
    let shape = shape_of(raw);
    // SAFETY: the GIL is held (`py`), which makes this the only access (see `KeyCache`).
    let slot = unsafe { &mut (*KEY_CACHE.0.get())[slot_of(&shape)] };
    if !slot.key.is_null() && slot.shape == shape {
        // SAFETY: the slot holds a strong reference to a live str; this adds one for the
        // caller, which the returned `Bound` owns.
        return Ok(unsafe {
            super::refs::add_ref(slot.key);
            Bound::from_owned_ptr(py, slot.key).downcast_into_unchecked()
        });
    }
    let fresh = PyString::intern(py, std::str::from_utf8(raw)?);
    let old = std::mem::replace(&mut slot.key, fresh.clone().into_ptr());
    slot.shape = shape;
    if !old.is_null() {
        // SAFETY: `old` was the slot's own strong reference. Releasing it may free a str,
        // which runs no Python code that could reach this cache.
        unsafe { ffi::Py_DECREF(old) };
    }
    Ok(fresh)
}
