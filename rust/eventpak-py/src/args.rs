//! Integer, timeout, bytes and bool arguments. An out-of-range value raises `ep.InvalidArgument` naming the argument,
//! a value of another type a `TypeError` saying what the argument takes: never a bare
//! `OverflowError` or a message naming Rust types.

use std::time::Duration;

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyByteArray, PyBytes, PyInt};

use crate::errors::InvalidArgument;

/// The Python type name of `value`, for messages.
pub fn type_name(value: &Bound<'_, PyAny>) -> String {
    value.get_type().name().map(|n| n.to_string()).unwrap_or_default()
}

/// A non-negative integer that fits `T`.
pub fn int_arg<T: TryFrom<u64>>(value: &Bound<'_, PyAny>, name: &str) -> PyResult<T> {
    // `True` is an int to Python, but never a sequence number or a count to a user.
    if value.is_instance_of::<PyBool>() || !value.is_instance_of::<PyInt>() {
        return Err(PyTypeError::new_err(format!("{name} must be an int, not {}", type_name(value))));
    }
    let too_large = || InvalidArgument::new_err((name.to_owned(), format!("{value} is too large")));
    // One extraction on the common path; only a refused value asks Python which side it is on.
    match value.extract::<u64>() {
        Ok(wide) => T::try_from(wide).map_err(|_| too_large()),
        Err(_) if value.lt(0)? => {
            Err(InvalidArgument::new_err((name.to_owned(), format!("must be >= 0, got {value}"))))
        }
        Err(_) => Err(too_large()),
    }
}

/// [`int_arg`] for an optional argument (`None` stays `None`).
pub fn opt_int_arg<T: TryFrom<u64>>(value: Option<&Bound<'_, PyAny>>, name: &str) -> PyResult<Option<T>> {
    value.filter(|v| !v.is_none()).map(|v| int_arg(v, name)).transpose()
}

/// The longest wait a timeout stands for (about 31 years): a longer one, `inf` included,
/// waits this long, which no caller outlives, instead of overflowing a deadline.
const LONGEST_WAIT: Duration = Duration::from_secs(1_000_000_000);

/// A timeout in seconds: at least 0, not NaN (`ep.InvalidArgument` naming `name`
/// otherwise); a longer one than [`LONGEST_WAIT`], `inf` included, is that.
pub fn timeout_arg(seconds: f64, name: &str) -> PyResult<Duration> {
    if seconds.is_nan() || seconds < 0.0 {
        let reason = format!("must be a number of seconds >= 0, got {seconds}");
        return Err(InvalidArgument::new_err((name.to_owned(), reason)));
    }
    Ok(Duration::try_from_secs_f64(seconds).map_or(LONGEST_WAIT, |wait| wait.min(LONGEST_WAIT)))
}

/// A `bytes` argument (a `bytearray` is copied): any other type raises a `TypeError` saying
/// the argument takes bytes, where PyO3's own extraction would name its Rust type.
pub struct BytesArg(pub Vec<u8>);

impl<'py> FromPyObject<'py> for BytesArg {
    fn extract_bound(ob: &Bound<'py, PyAny>) -> PyResult<Self> {
        if let Ok(bytes) = ob.downcast::<PyBytes>() {
            return Ok(BytesArg(bytes.as_bytes().to_vec()));
        }
        if let Ok(bytes) = ob.downcast::<PyByteArray>() {
            return Ok(BytesArg(bytes.to_vec()));
        }
        Err(PyTypeError::new_err(format!("must be bytes, not {}", type_name(ob))))
    }
}

/// A `bool` argument: any other type raises a `TypeError` saying the argument takes a bool.
pub struct BoolArg(pub bool);

impl<'py> FromPyObject<'py> for BoolArg {
    fn extract_bound(ob: &Bound<'py, PyAny>) -> PyResult<Self> {
        match ob.downcast::<PyBool>() {
            Ok(flag) => Ok(BoolArg(flag.is_true())),
            Err(_) => Err(PyTypeError::new_err(format!("must be a bool, not {}", type_name(ob)))),
        }
    }
}
