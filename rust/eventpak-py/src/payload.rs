//! Payload codec: Python values to msgpack through serde and rmp-serde, and back through a
//! strict one-pass reader, so the bytes never pass through an intermediate Python
//! structure. Aware datetimes travel as msgpack timestamps.

mod decode;
mod encode;
mod fail;
mod keys;
mod refs;
mod timestamp;

pub use decode::decode;
pub use encode::encode;

/// Appends the msgpack of `obj` to `out` (see [`encode`]).
pub fn encode_into(
    obj: &Bound<'_, PyAny>,
    default: Option<&Bound<'_, PyAny>>,
    out: &mut Vec<u8>,
) -> PyResult<()> {
    out.extend_from_slice(&encode(obj, default)?);
    Ok(())
}
use pyo3::prelude::*;
pub use timestamp::utc_from_micros;
