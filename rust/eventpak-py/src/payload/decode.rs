//! msgpack to Python values in one pass over the stored bytes. The reader is strict: the
//! bytes must hold exactly one well-formed value, every `str` must be UTF-8 (a generic
//! msgpack decoder hands an invalid one over as bytes, which would read back as a different
//! type), and nothing may follow the value. Anything else raises `ep.PayloadNotDecodable`.

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyFloat, PyInt};

use super::fail::{cut_short, malformed, not_utf8, Fail};
use super::keys::cached_key;
use super::refs;
use super::timestamp;

/// Deepest nesting of arrays and maps accepted (rmp-serde's limit, which decoded payloads before).
const MAX_DEPTH: usize = 1024;

type Decoded<'py> = Result<Bound<'py, PyAny>, Fail>;

struct Reader<'a, 'py> {
    py: Python<'py>,
    buf: &'a [u8],
    pos: usize,
    depth: usize,
}

impl<'a, 'py> Reader<'a, 'py> {
    #[inline]
    fn take(&mut self, n: usize) -> Result<&'a [u8], Fail> {
        let Some(bytes) = self.buf.get(self.pos..).and_then(|rest| rest.get(..n)) else {
            return Err(cut_short(n, self.pos, self.buf.len() - self.pos));
        };
        self.pos += n;
        Ok(bytes)
    }

    #[inline]
    fn array<const N: usize>(&mut self) -> Result<[u8; N], Fail> {
        Ok(self.take(N)?.try_into().expect("take returns N bytes"))
    }

    #[inline]
    fn byte(&mut self) -> Result<u8, Fail> {
        Ok(self.take(1)?[0])
    }

    /// The big-endian length field of a sized marker: 1, 2 or 4 bytes for `width` 0, 1, 2.
    #[inline]
    fn sized(&mut self, width: u8) -> Result<usize, Fail> {
        Ok(match width {
            0 => usize::from(self.byte()?),
            1 => usize::from(u16::from_be_bytes(self.array()?)),
            _ => u32::from_be_bytes(self.array()?) as usize,
        })
    }

    fn value(&mut self) -> Decoded<'py> {
        let py = self.py;
        let marker = self.byte()?;
        Ok(match marker {
            0x00..=0x7f => PyInt::new(py, marker).into_any(),
            0x80..=0x8f => return self.map(usize::from(marker & 0x0f)),
            0x90..=0x9f => return self.list(usize::from(marker & 0x0f)),
            0xa0..=0xbf => return self.str(usize::from(marker & 0x1f)),
            // SAFETY (the three below): the addresses of static singletons.
            0xc0 => self.singleton(unsafe { ffi::Py_None() }),
            0xc2 => self.singleton(unsafe { ffi::Py_False() }),
            0xc3 => self.singleton(unsafe { ffi::Py_True() }),
            0xc4..=0xc6 => {
                let n = self.sized(marker - 0xc4)?;
                return self.bin(n);
            }
            0xc7..=0xc9 => {
                let n = self.sized(marker - 0xc7)?;
                return self.ext(n);
            }
            0xca => PyFloat::new(py, f32::from_be_bytes(self.array()?).into()).into_any(),
            0xcb => PyFloat::new(py, f64::from_be_bytes(self.array()?)).into_any(),
            0xcc => PyInt::new(py, self.byte()?).into_any(),
            0xcd => PyInt::new(py, u16::from_be_bytes(self.array()?)).into_any(),
            0xce => PyInt::new(py, u32::from_be_bytes(self.array()?)).into_any(),
            0xcf => PyInt::new(py, u64::from_be_bytes(self.array()?)).into_any(),
            0xd0 => PyInt::new(py, i8::from_be_bytes(self.array()?)).into_any(),
            0xd1 => PyInt::new(py, i16::from_be_bytes(self.array()?)).into_any(),
            0xd2 => PyInt::new(py, i32::from_be_bytes(self.array()?)).into_any(),
            0xd3 => PyInt::new(py, i64::from_be_bytes(self.array()?)).into_any(),
            0xd4..=0xd8 => return self.ext(1 << (marker - 0xd4)),
            0xd9..=0xdb => {
                let n = self.sized(marker - 0xd9)?;
                return self.str(n);
            }
            0xdc | 0xdd => {
                let n = self.sized(marker - 0xdb)?;
                return self.list(n);
            }
            0xde | 0xdf => {
                let n = self.sized(marker - 0xdd)?;
                return self.map(n);
            }
            0xe0..=0xff => PyInt::new(py, marker as i8).into_any(),
            0xc1 => return Err(self.malformed_here("the reserved marker 0xc1")),
        })
    }

    /// A new reference to `None`, `True` or `False`.
    #[inline(always)]
    fn singleton(&self, obj: *mut ffi::PyObject) -> Bound<'py, PyAny> {
        // SAFETY: the singletons live as long as the interpreter; the added reference is the
        // returned `Bound`'s own.
        unsafe {
            refs::add_ref(obj);
            Bound::from_owned_ptr(self.py, obj)
        }
    }

    fn malformed_here(&self, what: &str) -> Fail {
        malformed(format!("{what} at byte {}", self.pos - 1))
    }

    fn str(&mut self, len: usize) -> Decoded<'py> {
        let at = self.pos;
        let raw = self.take(len)?;
        // CPython validates UTF-8 while it builds the str: checking it in Rust first would read
        // every string twice. Only a refusal asks Rust where the bad byte is.
        // SAFETY: `raw` is a live slice of `len` bytes; the call returns a new reference or
        // NULL with an exception set, which is cleared here and replaced by our own error.
        let ptr = unsafe {
            pyo3::ffi::PyUnicode_DecodeUTF8(
                raw.as_ptr().cast(),
                raw.len() as pyo3::ffi::Py_ssize_t,
                c"strict".as_ptr(),
            )
        };
        if ptr.is_null() {
            let failed = PyErr::fetch(self.py);
            return Err(match std::str::from_utf8(raw) {
                Err(e) => not_utf8(at, e),
                Ok(_) => failed.into(), // valid UTF-8: Python itself failed (out of memory)
            });
        }
        // SAFETY: a non-NULL result is a new, owned reference to a str.
        Ok(unsafe { Bound::from_owned_ptr(self.py, ptr) })
    }

    fn bin(&mut self, len: usize) -> Decoded<'py> {
        Ok(PyBytes::new(self.py, self.take(len)?).into_any())
    }

    /// Enters a container of `items` values: refused when it nests too deep or claims more
    /// values than bytes are left (every value takes at least one byte), so a forged length
    /// never drives an allocation.
    fn enter(&mut self, items: usize) -> Result<(), Fail> {
        let left = self.buf.len() - self.pos;
        if items > left {
            let at = self.pos;
            return Err(malformed(format!(
                "cut short: {items} values claimed at byte {at}, {left} bytes left"
            )));
        }
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.malformed_here(&format!("nesting deeper than {MAX_DEPTH} levels")));
        }
        Ok(())
    }

    fn list(&mut self, len: usize) -> Decoded<'py> {
        self.enter(len)?;
        // Filled in place: no intermediate vector. A list left part-filled by an error holds
        // NULLs, which its deallocation skips.
        // SAFETY: `PyList_New` returns a new reference or NULL with an exception set.
        let list = unsafe { Bound::from_owned_ptr_or_err(self.py, ffi::PyList_New(len as ffi::Py_ssize_t))? };
        for i in 0..len {
            let item = self.value()?;
            // SAFETY: `i` is within the list's length; `PyList_SetItem` steals the item's
            // reference, and only fails for a bad index or a non-list.
            unsafe { ffi::PyList_SetItem(list.as_ptr(), i as ffi::Py_ssize_t, item.into_ptr()) };
        }
        self.depth -= 1;
        Ok(list)
    }

    fn map(&mut self, len: usize) -> Decoded<'py> {
        self.enter(len.saturating_mul(2))?;
        let dict = PyDict::new(self.py);
        for _ in 0..len {
            let key = self.key()?;
            let value = self.value()?;
            // SAFETY: three live objects; `PyDict_SetItem` takes its own references, and on
            // failure (an unhashable key cannot come from `key()`; out of memory) sets an
            // exception, which `PyErr::fetch` takes.
            if unsafe { ffi::PyDict_SetItem(dict.as_ptr(), key.as_ptr(), value.as_ptr()) } != 0 {
                return Err(PyErr::fetch(self.py).into());
            }
            // SAFETY: the dict now holds the value, so ours is not its last reference; it
            // holds the key unless an equal key was stored before (a repeated key in the map:
            // the dict keeps the first key object and the last value), so that one may be.
            unsafe {
                refs::release(key.into_ptr());
                refs::release_not_last(value.into_ptr());
            }
        }
        self.depth -= 1;
        Ok(dict.into_any())
    }

    /// A dict key: a str (through the key cache), an int or bytes; nothing else is hashable
    /// the way a payload needs.
    fn key(&mut self) -> Decoded<'py> {
        let len = match self.buf.get(self.pos) {
            Some(&m @ 0xa0..=0xbf) => {
                self.pos += 1;
                usize::from(m & 0x1f)
            }
            Some(&m @ 0xd9..=0xdb) => {
                self.pos += 1;
                self.sized(m - 0xd9)?
            }
            Some(0x00..=0x7f | 0xcc..=0xd3 | 0xe0..=0xff | 0xc4..=0xc6) | None => return self.value(),
            Some(_) => {
                self.pos += 1;
                return Err(self.malformed_here("a dict key that is not a str, an int or bytes"));
            }
        };
        let at = self.pos;
        let raw = self.take(len)?;
        cached_key(self.py, raw).map(Bound::into_any).map_err(|e| not_utf8(at, e))
    }

    /// A msgpack extension of `len` data bytes; only timestamps (type -1) are known.
    fn ext(&mut self, len: usize) -> Decoded<'py> {
        let tag = i8::from_be_bytes(self.array()?);
        let data = self.take(len)?;
        if tag != timestamp::EXT_TYPE {
            return Err(malformed(format!("msgpack extension type {tag} is not supported")));
        }
        let (seconds, nanos) = timestamp::parse_ext(data).map_err(malformed)?;
        // The only failure is a date past datetime's range: a property of the bytes.
        timestamp::to_datetime(self.py, seconds, nanos).map_err(|e| malformed(e.value(self.py).to_string()))
    }
}

/// Decodes msgpack bytes holding exactly one value into Python values.
pub fn decode<'py>(py: Python<'py>, bytes: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    let mut reader = Reader { py, buf: bytes, pos: 0, depth: 0 };
    let decoded = reader.value().and_then(|value| match bytes.len() - reader.pos {
        0 => Ok(value),
        n => Err(malformed(format!("{n} trailing bytes after the value, from byte {}", reader.pos))),
    });
    decoded.map_err(Fail::into_py)
}
