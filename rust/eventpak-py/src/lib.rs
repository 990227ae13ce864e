//! `eventpak._native`: the PyO3 binding of eventpak-core. Thin by design: argument
//! conversion, GIL release (`gil::detached`), error mapping and the classes below. The
//! public Python API lives in the `eventpak` package, which wraps these classes.

mod aio;
mod append;
mod args;
mod backup;
mod causal;
mod causation;
mod compact;
mod config;
mod crypt;
mod cursor;
mod cursor_values;
mod errors;
mod event;
mod exit;
mod fence;
mod gap_observation;
mod gil;
mod guards;
mod lease;
mod names;
mod nats_wire;
mod operations;
mod payload;
mod progress;
mod projection;
mod receipts;
mod replica;
mod request;
mod stats;
mod store;
mod types;
mod upcast;
mod verify;

use pyo3::prelude::*;

/// Rust's allocations in this extension (never Python objects, which CPython allocates) go
/// to mimalloc. A batch append holds a thousand small buffers at once and then frees them
/// together, which empties glibc's per-thread cache and sends every allocation down its
/// slow path; mimalloc's per-page free lists keep that at a few dozen instructions. Blocks
/// of 4 MiB and more get mappings of their own, so that the index's arrays grow
/// without being copied under its lock ([`eventpak_core::MappedLarge`]).
#[global_allocator]
static ALLOCATOR: eventpak_core::MappedLarge<mimalloc::MiMalloc> =
    eventpak_core::MappedLarge(mimalloc::MiMalloc);

#[pymodule]
mod _native {
    #[pymodule_export]
    use crate::aio::CommitNotifier;
    #[pymodule_export]
    use crate::causation::PriorItem;
    #[pymodule_export]
    use crate::config::{check_store_options, store_defaults};
    #[pymodule_export]
    use crate::crypt::generate_encryption_key;
    #[pymodule_export]
    use crate::cursor::Cursor;
    #[pymodule_export]
    use crate::cursor_values::{CursorCheckpoint, CursorGapConfig};
    #[pymodule_export]
    use crate::event::{AppendReceipt, Event};
    #[pymodule_export]
    use crate::exit::{mark_exit_started, mark_exiting};
    #[pymodule_export]
    use crate::fence::NativeFence;
    #[pymodule_export]
    use crate::gap_observation::GapObservation;
    #[pymodule_export]
    use crate::guards::{AppendCondition, Tracking};
    #[pymodule_export]
    use crate::lease::WorkerLease;
    #[pymodule_export]
    use crate::names::validate_kind;
    #[pymodule_export]
    use crate::nats_wire::{nats_decode, nats_publish_commands};
    #[pymodule_export]
    use crate::projection::{replay, replay_head, target_identity, CacheMeta, NativeCache};
    #[pymodule_export]
    use crate::receipts::{generate_signing_key, public_key, verify_receipt, verify_receipt_signature};
    #[pymodule_export]
    use crate::request::AppendRequest;
    #[pymodule_export]
    use crate::store::NativeStore;
    #[pymodule_export]
    use crate::types::{Coordinate, Region};

    use super::*;

    /// The package version, from Cargo (the one place it is written).
    #[pymodule_export]
    #[allow(non_upper_case_globals)]
    const __version__: &str = env!("CARGO_PKG_VERSION");

    /// Marks this process as a child just forked: stores opened before the fork become
    /// unusable here (registered with `os.register_at_fork` by the package).
    #[pyfunction]
    fn after_fork_in_child() {
        eventpak_core::note_fork_in_child();
        crate::exit::after_fork_in_child();
    }

    /// Encodes a payload to msgpack the way the store does (for tests and tools); values
    /// msgpack cannot carry go through `default`, as in `json.dumps`.
    #[pyfunction]
    #[pyo3(signature = (value, *, default=None))]
    fn encode_payload<'py>(
        value: &Bound<'py, PyAny>,
        default: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, pyo3::types::PyBytes>> {
        crate::payload::encode_bytes(value, default)
    }

    /// Adds what is not a `#[pyfunction]`: `decode_payload` (see `payload/decode_fn.rs`).
    #[pymodule_init]
    fn init(module: &Bound<'_, PyModule>) -> PyResult<()> {
        crate::payload::add_decode_payload(module)
    }

    /// Converts `append_batch` items into engine requests, as `append_batch` does before it
    /// appends, and returns how many there were; nothing is appended (for benchmarks: the
    /// cost of the Python boundary alone).
    #[pyfunction]
    #[pyo3(signature = (items, *, default=None))]
    fn _convert_items(items: &Bound<'_, PyAny>, default: Option<&Bound<'_, PyAny>>) -> PyResult<usize> {
        crate::request::build_items(items, default).map(|requests| requests.len())
    }
}
