//! Payload codec: Python values to msgpack written straight from the objects, and back
//! through a strict one-pass reader, so the bytes never pass through an intermediate Python
//! structure. Aware datetimes travel as msgpack timestamps.

mod containers;
mod copy;
mod decode;
mod decode_fn;
mod encode;
mod fail;
mod fallback;
mod hold;
mod keys;
mod output;
mod refs;
mod timestamp;
mod walk;
mod write;

pub use decode::decode;
pub use decode_fn::add_to as add_decode_payload;
pub use encode::encode_into;
pub use output::encode_bytes;
pub use timestamp::utc_from_micros;
