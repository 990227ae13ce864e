//! Payload codec: Python values to msgpack through serde and rmp-serde, and back through a
//! strict one-pass reader, so the bytes never pass through an intermediate Python
//! structure. Aware datetimes travel as msgpack timestamps.

mod decode;
mod encode;
mod fail;
mod keys;
mod timestamp;

pub use decode::decode;
pub use encode::encode;
pub use timestamp::utc_from_micros;
