//! msgpack to Python values, visited straight from the stored bytes.

use std::sync::Mutex;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString};
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

use super::timestamp;

struct Decode<'py>(Python<'py>);

impl<'de, 'py> DeserializeSeed<'de> for Decode<'py> {
    type Value = Bound<'py, PyAny>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

fn py_err<E: de::Error>(e: PyErr) -> E {
    E::custom(e.to_string())
}

impl<'de, 'py> Visitor<'de> for Decode<'py> {
    type Value = Bound<'py, PyAny>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a msgpack value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(self.0.None().into_bound(self.0))
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        self.visit_unit()
    }
    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(PyBool::new(self.0, v).to_owned().into_any())
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(PyInt::new(self.0, v).into_any())
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(PyInt::new(self.0, v).into_any())
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(PyFloat::new(self.0, v).into_any())
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(PyString::new(self.0, v).into_any())
    }
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Self::Value, E> {
        Ok(PyBytes::new(self.0, v).into_any())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let list = PyList::empty(self.0);
        while let Some(item) = seq.next_element_seed(Decode(self.0))? {
            list.append(item).map_err(py_err)?;
        }
        Ok(list.into_any())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let dict = PyDict::new(self.0);
        while let Some(key) = map.next_key_seed(Key(self.0))? {
            let value = map.next_value_seed(Decode(self.0))?;
            dict.set_item(key, value).map_err(py_err)?;
        }
        Ok(dict.into_any())
    }
    /// rmp-serde hands a msgpack extension over as a newtype struct holding `(type, data)`.
    fn visit_newtype_struct<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(Ext(self.0))
    }
}

/// A msgpack extension value; only timestamps (type -1) are known.
struct Ext<'py>(Python<'py>);

impl<'de, 'py> Visitor<'de> for Ext<'py> {
    type Value = Bound<'py, PyAny>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a msgpack extension")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let tag: i8 = seq.next_element()?.ok_or_else(|| de::Error::custom("extension without a type"))?;
        let data =
            seq.next_element_seed(ExtData)?.ok_or_else(|| de::Error::custom("extension without data"))?;
        if tag != timestamp::EXT_TYPE {
            return Err(de::Error::custom(format!("msgpack extension type {tag} is not supported")));
        }
        let (seconds, nanos) = timestamp::parse_ext(&data).map_err(de::Error::custom)?;
        timestamp::to_datetime(self.0, seconds, nanos).map_err(py_err)
    }
}

/// The data bytes of an extension.
struct ExtData;

impl<'de> DeserializeSeed<'de> for ExtData {
    type Value = Vec<u8>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_bytes(self)
    }
}

impl<'de> Visitor<'de> for ExtData {
    type Value = Vec<u8>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("extension data")
    }
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Self::Value, E> {
        Ok(v.to_vec())
    }
}

/// Dict keys repeat across events ("amount", "currency", ...): short ones are kept in a
/// small direct-mapped cache so decoding reuses one string object, with its hash already
/// computed, instead of allocating and hashing a new one per event.
const KEY_CACHE_SLOTS: usize = 1024;
const MAX_CACHED_KEY: usize = 32;
/// Each slot keeps the key's text beside its string object, so a hit is compared in Rust
/// without asking Python for the string's UTF-8.
static KEY_CACHE: Mutex<Vec<Option<CachedKey>>> = Mutex::new(Vec::new());
type CachedKey = (Box<str>, Py<PyString>);

fn cached_key<'py>(py: Python<'py>, key: &str) -> Bound<'py, PyString> {
    if key.len() > MAX_CACHED_KEY {
        return PyString::new(py, key);
    }
    // FNV-1a: cheap and good enough to spread short keys over the slots.
    let hash =
        key.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3));
    let slot = hash as usize % KEY_CACHE_SLOTS;
    let mut cache = KEY_CACHE.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if cache.is_empty() {
        cache.resize_with(KEY_CACHE_SLOTS, || None);
    }
    if let Some((text, hit)) = &cache[slot] {
        if &**text == key {
            return hit.bind(py).clone();
        }
    }
    let fresh = PyString::intern(py, key);
    cache[slot] = Some((key.into(), fresh.clone().unbind()));
    fresh
}

struct Key<'py>(Python<'py>);

impl<'de, 'py> DeserializeSeed<'de> for Key<'py> {
    type Value = Bound<'py, PyAny>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, 'py> Visitor<'de> for Key<'py> {
    type Value = Bound<'py, PyAny>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a dict key")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(cached_key(self.0, v).into_any())
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Decode(self.0).visit_i64(v)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Decode(self.0).visit_u64(v)
    }
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Self::Value, E> {
        Decode(self.0).visit_bytes(v)
    }
}

/// Decodes stored msgpack bytes into Python values.
pub fn decode<'py>(py: Python<'py>, bytes: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    let mut de = rmp_serde::Deserializer::from_read_ref(bytes);
    Decode(py)
        .deserialize(&mut de)
        .map_err(|e| PyValueError::new_err(format!("stored payload is not valid msgpack: {e}")))
}
