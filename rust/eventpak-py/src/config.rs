//! Store options: the engine's `StoreConfig` is the one place that holds their defaults
//! and validates them; Python reads the defaults from here and hands the options back.

use eventpak_core::{EncryptionKey, SigningKeySeed, StoreConfig, SyncMode};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyInt, PyList, PyString, PyTuple};

use crate::args::type_name;
use crate::errors::{to_py, InvalidConfig};

fn type_error(name: &str, wanted: &str, value: &Bound<'_, PyAny>) -> PyErr {
    InvalidConfig::new_err((format!("{name} must be {wanted}, not {}", type_name(value)),))
}

fn int<T: TryFrom<u64>>(name: &str, value: &Bound<'_, PyAny>) -> PyResult<T> {
    // `True` is an int to Python, never a size or a count to a user.
    if value.is_instance_of::<PyBool>() || !value.is_instance_of::<PyInt>() {
        return Err(type_error(name, "an int", value));
    }
    let out_of_range = || InvalidConfig::new_err((format!("{name} is out of range: {value}"),));
    let wide: u64 = value.extract().map_err(|_| out_of_range())?;
    T::try_from(wide).map_err(|_| out_of_range())
}

fn flag(name: &str, value: &Bound<'_, PyAny>) -> PyResult<bool> {
    value.downcast::<PyBool>().map(|b| b.is_true()).map_err(|_| type_error(name, "a bool", value))
}

fn key_bytes(name: &str, value: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    value.downcast::<PyBytes>().map(|b| b.as_bytes().to_vec()).map_err(|_| type_error(name, "bytes", value))
}

/// A list or tuple of public keys (a bare `bytes` is refused: it would read as 32 ints).
fn key_list(name: &str, value: &Bound<'_, PyAny>) -> PyResult<Vec<Vec<u8>>> {
    if !value.is_instance_of::<PyList>() && !value.is_instance_of::<PyTuple>() {
        return Err(type_error(name, "a list of bytes", value));
    }
    value.try_iter()?.enumerate().map(|(i, key)| key_bytes(&format!("{name}[{i}]"), &key?)).collect()
}

/// Builds and validates a `StoreConfig` from keyword options; missing ones keep their
/// defaults, unknown ones raise `ep.InvalidConfig`.
pub fn from_options(options: Option<&Bound<'_, PyDict>>) -> PyResult<StoreConfig> {
    let mut c = StoreConfig::default();
    for (key, value) in options.into_iter().flat_map(|o| o.iter()) {
        let name = key.downcast::<PyString>()?.to_str()?.to_owned();
        let v = &value;
        match name.as_str() {
            "sync" => {
                let mode = v.downcast::<PyString>().map_err(|_| type_error(&name, "a str", v))?;
                c.sync = SyncMode::parse(mode.to_str()?).map_err(|e| to_py(e, ""))?;
            }
            "sync_every_n_events" => c.sync_every_n_events = int(&name, v)?,
            "sync_interval_ms" => c.sync_interval_ms = int(&name, v)?,
            "segment_max_bytes" => c.segment_max_bytes = int(&name, v)?,
            "max_event_bytes" => c.max_event_bytes = int(&name, v)?,
            "max_batch_events" => c.max_batch_events = int(&name, v)?,
            "max_batch_bytes" => c.max_batch_bytes = int(&name, v)?,
            "enable_index_checkpoint" => c.enable_index_checkpoint = flag(&name, v)?,
            "create" => c.create = flag(&name, v)?,
            "read_only" => c.read_only = flag(&name, v)?,
            "shared" => c.shared = flag(&name, v)?,
            "fence_wait_ms" => c.fence_wait_ms = int(&name, v)?,
            "signing_key" if v.is_none() => c.signing_key = None,
            "signing_key" => c.signing_key = Some(SigningKeySeed(key_bytes(&name, v)?)),
            "verify_keys" => c.verify_keys = key_list(&name, v)?,
            "encryption_key" if v.is_none() => c.encryption_key = None,
            "encryption_key" => c.encryption_key = Some(EncryptionKey(key_bytes(&name, v)?)),
            _ => return Err(InvalidConfig::new_err((format!("unknown store option {name:?}"),))),
        }
    }
    c.validate().map_err(|e| to_py(e, ""))?;
    Ok(c)
}

/// The default of every engine option, by name.
#[pyfunction]
pub fn store_defaults(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let c = StoreConfig::default();
    let d = PyDict::new(py);
    d.set_item("sync", c.sync.name())?;
    d.set_item("sync_every_n_events", c.sync_every_n_events)?;
    d.set_item("sync_interval_ms", c.sync_interval_ms)?;
    d.set_item("segment_max_bytes", c.segment_max_bytes)?;
    d.set_item("max_event_bytes", c.max_event_bytes)?;
    d.set_item("max_batch_events", c.max_batch_events)?;
    d.set_item("max_batch_bytes", c.max_batch_bytes)?;
    d.set_item("enable_index_checkpoint", c.enable_index_checkpoint)?;
    d.set_item("create", c.create)?;
    d.set_item("read_only", c.read_only)?;
    d.set_item("shared", c.shared)?;
    d.set_item("fence_wait_ms", c.fence_wait_ms)?;
    d.set_item("signing_key", c.signing_key.map(|seed| PyBytes::new(py, &seed.0)))?;
    d.set_item("encryption_key", py.None())?;
    d.set_item("verify_keys", PyTuple::new(py, c.verify_keys.iter().map(|k| PyBytes::new(py, k)))?)?;
    Ok(d)
}

/// Raises `ep.InvalidConfig` unless `options` would open a store.
#[pyfunction]
#[pyo3(signature = (**options))]
pub fn check_store_options(options: Option<&Bound<'_, PyDict>>) -> PyResult<()> {
    from_options(options).map(drop)
}
