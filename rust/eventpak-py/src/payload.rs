//! Payload codec: Python values to msgpack and back, through serde and rmp-serde, so the
//! bytes never pass through an intermediate Python structure. Aware datetimes travel as
//! msgpack timestamps.

mod decode;
mod encode;
mod timestamp;

pub use decode::decode;
pub use encode::encode;
pub use timestamp::utc_from_micros;
