//! Why payload decoding stopped, kept small and out of the decoder's hot path.

use pyo3::prelude::*;

use crate::errors::PayloadNotDecodable;

/// Why decoding stopped: malformed bytes, or Python itself failed (out of memory). Boxed, so
/// that every `Result` on the hot path stays two words wide.
enum Failure {
    Malformed(String),
    Python(PyErr),
}

/// A decoding failure (see [`Failure`]).
pub struct Fail(Box<Failure>);

/// Bytes that are not one valid payload, and why.
pub fn malformed(reason: String) -> Fail {
    Fail(Box::new(Failure::Malformed(reason)))
}

impl From<PyErr> for Fail {
    fn from(e: PyErr) -> Self {
        Fail(Box::new(Failure::Python(e)))
    }
}

impl Fail {
    /// The Python exception: `ep.PayloadNotDecodable` for malformed bytes.
    pub fn into_py(self) -> PyErr {
        match *self.0 {
            Failure::Malformed(reason) => PayloadNotDecodable::new_err((reason,)),
            Failure::Python(e) => e,
        }
    }
}

/// Kept out of line: the reads that can fail this way are the hottest code of the decoder.
#[cold]
#[inline(never)]
pub fn cut_short(needed: usize, at: usize, left: usize) -> Fail {
    malformed(format!("cut short: {needed} bytes needed at byte {at}, {left} left"))
}

/// A msgpack `str` at byte `at` that is not UTF-8.
#[cold]
pub fn not_utf8(at: usize, e: std::str::Utf8Error) -> Fail {
    let bad = at + e.valid_up_to();
    malformed(format!("the str at byte {at} is not valid UTF-8 (byte {bad})"))
}
