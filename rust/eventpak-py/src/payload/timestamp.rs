//! Datetimes in payloads: an aware `datetime.datetime` is stored as a msgpack timestamp
//! (extension type -1), the form every msgpack implementation reads back as an instant.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;

use crate::exit::calling_python;

/// The msgpack extension type of timestamps.
pub const EXT_TYPE: i8 = -1;

static DATETIME: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static TIMEDELTA: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static EPOCH: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// 1970-01-01T00:00:00+00:00, the origin of msgpack timestamps and of `timestamp_us`.
fn epoch(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
    EPOCH
        .get_or_try_init(py, || {
            let utc = py.import("datetime")?.getattr("timezone")?.getattr("utc")?;
            let datetime = DATETIME.import(py, "datetime", "datetime")?;
            datetime.call((1970, 1, 1, 0, 0, 0, 0, utc), None).map(Bound::unbind)
        })
        .map(|e| e.bind(py))
}

/// True when `obj` is a `datetime.datetime` (naive or aware).
pub fn is_datetime(obj: &Bound<'_, PyAny>) -> PyResult<bool> {
    obj.is_instance(DATETIME.import(obj.py(), "datetime", "datetime")?)
}

/// Seconds since the epoch (floored) and nanoseconds past them of an aware datetime;
/// `None` for a naive one, which names no instant.
pub fn unix_parts(obj: &Bound<'_, PyAny>) -> PyResult<Option<(i64, u32)>> {
    // A tzinfo (or a subclass's `utcoffset`) may be Python code.
    calling_python(obj.py(), || aware_unix_parts(obj))
}

fn aware_unix_parts(obj: &Bound<'_, PyAny>) -> PyResult<Option<(i64, u32)>> {
    if obj.call_method0("utcoffset")?.is_none() {
        return Ok(None);
    }
    // Aware subtraction is exact integer arithmetic in any timezone; a timedelta keeps
    // 0 <= seconds < 86400 and 0 <= microseconds < 10**6, so the parts come out floored.
    // `datetime`'s own subtraction: a subclass's `__sub__` could return anything.
    let py = obj.py();
    let delta = DATETIME.import(py, "datetime", "datetime")?.getattr("__sub__")?.call1((obj, epoch(py)?))?;
    let days: i64 = delta.getattr("days")?.extract()?;
    let seconds: i64 = delta.getattr("seconds")?.extract()?;
    let micros: u32 = delta.getattr("microseconds")?.extract()?;
    let instant = days.checked_mul(86_400).and_then(|s| s.checked_add(seconds));
    match instant {
        Some(instant) if (0..86_400).contains(&seconds) && micros < 1_000_000 => {
            Ok(Some((instant, micros * 1_000)))
        }
        _ => Err(PyValueError::new_err(format!(
            "the datetime is {days} days, {seconds} s and {micros} us from the epoch, which is no instant"
        ))),
    }
}

/// True when an instant `seconds` after the epoch reads back as a datetime: a UTC datetime
/// holds years 1 to 9999 only, so an aware datetime near either end whose offset moves it
/// past them (9999-12-31T23:00-05:00) names an instant no datetime can hold.
pub fn fits_datetime(seconds: i64) -> bool {
    // 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z.
    (-62_135_596_800..=253_402_300_799).contains(&seconds)
}

/// The extension data of a timestamp, in the smallest of the spec's three forms:
/// 32-bit seconds; 30-bit nanoseconds and 34-bit seconds; or 32-bit nanoseconds and
/// signed 64-bit seconds.
pub fn ext_data(seconds: i64, nanos: u32) -> Vec<u8> {
    if seconds >> 34 == 0 {
        let packed = (u64::from(nanos) << 34) | seconds as u64;
        if packed >> 32 == 0 {
            return (packed as u32).to_be_bytes().to_vec();
        }
        return packed.to_be_bytes().to_vec();
    }
    [nanos.to_be_bytes().as_slice(), &seconds.to_be_bytes()].concat()
}

/// Seconds and nanoseconds of timestamp extension data, in any of the three forms.
pub fn parse_ext(data: &[u8]) -> Result<(i64, u32), String> {
    let (seconds, nanos) = match data.len() {
        4 => (i64::from(u32::from_be_bytes(data.try_into().unwrap_or_default())), 0),
        8 => {
            let packed = u64::from_be_bytes(data.try_into().unwrap_or_default());
            ((packed & ((1 << 34) - 1)) as i64, (packed >> 34) as u32)
        }
        12 => {
            let nanos = u32::from_be_bytes(data[..4].try_into().unwrap_or_default());
            (i64::from_be_bytes(data[4..].try_into().unwrap_or_default()), nanos)
        }
        n => return Err(format!("a msgpack timestamp has 4, 8 or 12 bytes, not {n}")),
    };
    if nanos >= 1_000_000_000 {
        return Err(format!("msgpack timestamp with {nanos} nanoseconds"));
    }
    Ok((seconds, nanos))
}

/// An aware UTC datetime `seconds` and `nanos` after the epoch, to the microsecond (a
/// datetime holds no finer unit; the nanoseconds are floored, as msgpack-python does).
pub fn to_datetime(py: Python<'_>, seconds: i64, nanos: u32) -> PyResult<Bound<'_, PyAny>> {
    let timedelta = TIMEDELTA.import(py, "datetime", "timedelta")?;
    timedelta.call1((0, seconds, nanos / 1_000)).and_then(|delta| epoch(py)?.add(delta)).map_err(|_| {
        let reason = format!("timestamp {seconds}s {nanos}ns is out of range of datetime (years 1 to 9999)");
        PyValueError::new_err(reason)
    })
}

/// `micros` microseconds after the epoch as an aware UTC datetime.
pub fn utc_from_micros(py: Python<'_>, micros: u64) -> PyResult<Bound<'_, PyAny>> {
    let delta = TIMEDELTA.import(py, "datetime", "timedelta")?.call1((0, 0, micros))?;
    epoch(py)?.add(delta)
}
