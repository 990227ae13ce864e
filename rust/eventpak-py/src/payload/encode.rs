//! Python values to msgpack, written straight from the objects into a byte buffer (see
//! `walk.rs`). Values msgpack cannot carry go through the caller's `default`, if any.

use pyo3::exceptions::PyException;
use pyo3::prelude::*;

use super::hold::OpenStack;
use super::output::{release, Long};
use super::walk::Walk;
use crate::errors::PayloadNotSerializable;

/// Why encoding stopped: a value msgpack cannot carry; a Python exception (from `default`,
/// or from Python code the encoder had to call) with what was being done; or Python itself
/// failing (out of memory).
enum Failure {
    Refused(String),
    Raised(String, PyErr),
    Python(PyErr),
}

/// An encoding failure (see [`Failure`]). Boxed, so that every `Result` on the encoder's hot
/// path stays one word wide.
pub struct Fail(Box<Failure>);

/// A value the payload cannot hold, and why.
#[cold]
pub fn refused(reason: String) -> Fail {
    Fail(Box::new(Failure::Refused(reason)))
}

/// A Python exception raised while `what` was being done.
#[cold]
pub fn raised(what: String, cause: PyErr) -> Fail {
    Fail(Box::new(Failure::Raised(what, cause)))
}

/// Python itself failed (out of memory): its exception is raised as it is.
#[cold]
pub fn python(err: PyErr) -> Fail {
    Fail(Box::new(Failure::Python(err)))
}

impl Fail {
    /// The exception to raise: `ep.PayloadNotSerializable` (a `TypeError`), with a Python
    /// exception as its `__cause__`. An exception that is not an `Exception`
    /// (`KeyboardInterrupt`, `SystemExit`), or a `PayloadNotSerializable` raised by a nested
    /// encoding, passes through as it is.
    pub(super) fn into_py(self, py: Python<'_>) -> PyErr {
        let (what, cause) = match *self.0 {
            Failure::Refused(reason) => {
                return PayloadNotSerializable::new_err((format!("payload is not serializable: {reason}"),))
            }
            Failure::Raised(what, cause) => (what, cause),
            Failure::Python(err) => return err,
        };
        if !cause.is_instance_of::<PyException>(py) || cause.is_instance_of::<PayloadNotSerializable>(py) {
            return cause;
        }
        let shown = cause.value(py).get_type().name().map(|n| n.to_string()).unwrap_or_default();
        let reason = format!("payload is not serializable: {what}: {shown}: {}", cause.value(py));
        let wrapped = PayloadNotSerializable::new_err((reason,));
        wrapped.set_cause(py, Some(cause));
        wrapped
    }
}

/// Appends the msgpack encoding of the payload `obj` to `out`. A value msgpack cannot carry
/// is passed to `default` when given (as `json.dumps` does), and its result encoded in its
/// place; without `default`, or when `default` raises, `ep.PayloadNotSerializable` (a
/// `TypeError`) is raised, with the exception `default` raised as its `__cause__`. An
/// exception that is not an `Exception` (`KeyboardInterrupt`, `SystemExit`), or a
/// `PayloadNotSerializable`, is raised as it is. On error `out` is left as it was.
pub fn encode_into(
    obj: &Bound<'_, PyAny>,
    default: Option<&Bound<'_, PyAny>>,
    out: &mut Vec<u8>,
) -> PyResult<()> {
    write(obj, default, out, None).map_err(|fail| fail.into_py(obj.py()))
}

/// [`encode_into`], failing with a [`Fail`] that becomes an exception only when raised. With
/// `long`, strs and bytes of at least [`BY_REFERENCE`](super::output::BY_REFERENCE) bytes are
/// noted there rather than copied into `out` (see `output.rs`).
#[inline(always)]
pub(super) fn write(
    obj: &Bound<'_, PyAny>,
    default: Option<&Bound<'_, PyAny>>,
    out: &mut Vec<u8>,
    mut long: Option<&mut Vec<Long>>,
) -> Result<(), Fail> {
    let (start, noted) = (out.len(), long.as_ref().map_or(0, |l| l.len()));
    // Most payloads are small: one reservation here spares the first few regrowths.
    out.reserve(128);
    let mut open = OpenStack::uninit();
    let default = default.filter(|d| !d.is_none());
    let mut walk = Walk::new(obj.py(), default, out, long.as_deref_mut(), &mut open);
    // SAFETY: `obj` is a live object, and the caller's reference keeps it alive throughout.
    let result = unsafe { walk.root(obj.as_ptr()) };
    if result.is_err() {
        walk.release_open();
        out.truncate(start);
        if let Some(long) = long {
            release(obj.py(), long, noted);
        }
    }
    result
}
