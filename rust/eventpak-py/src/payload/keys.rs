//! Dict keys repeat across events ("amount", "currency", ...): short ones are kept in a
//! small direct-mapped cache so decoding reuses one string object, with its hash already
//! computed, instead of allocating and hashing a new one per event.

use std::str::Utf8Error;
use std::sync::Mutex;

use pyo3::prelude::*;
use pyo3::types::PyString;

const KEY_CACHE_SLOTS: usize = 1024;
const MAX_CACHED_KEY: usize = 32;
/// Each slot keeps the key's text beside its string object, so a hit is compared in Rust
/// without asking Python for the string's UTF-8, and the raw bytes of a key are compared
/// before they are validated: bytes equal to a cached key's text are valid UTF-8.
static KEY_CACHE: Mutex<Vec<Option<CachedKey>>> = Mutex::new(Vec::new());
type CachedKey = (Box<str>, Py<PyString>);

/// The string object for the dict key whose msgpack `str` bytes are `raw`, from the cache
/// when it holds it; an error when they are not UTF-8.
pub fn cached_key<'py>(py: Python<'py>, raw: &[u8]) -> Result<Bound<'py, PyString>, Utf8Error> {
    if raw.len() > MAX_CACHED_KEY {
        return Ok(PyString::new(py, std::str::from_utf8(raw)?));
    }
    // FNV-1a: cheap and good enough to spread short keys over the slots.
    let hash =
        raw.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    let slot = hash as usize % KEY_CACHE_SLOTS;
    let mut cache = KEY_CACHE.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if cache.is_empty() {
        cache.resize_with(KEY_CACHE_SLOTS, || None);
    }
    if let Some((text, hit)) = &cache[slot] {
        if text.as_bytes() == raw {
            return Ok(hit.bind(py).clone());
        }
    }
    let key = std::str::from_utf8(raw)?;
    let fresh = PyString::intern(py, key);
    cache[slot] = Some((key.into(), fresh.clone().unbind()));
    Ok(fresh)
}
