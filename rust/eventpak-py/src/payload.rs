//! Payload codec: Python values to msgpack and back, through serde and rmp-serde, so the
//! bytes never pass through an intermediate Python structure.

use std::sync::Mutex;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::ser::{self, Error as _, SerializeMap, SerializeSeq};

use crate::errors::PayloadNotSerializable;

/// Deepest nesting of lists and dicts accepted in a payload (guards the Rust stack).
const MAX_DEPTH: u32 = 256;

struct Encode<'a, 'py> {
    obj: &'a Bound<'py, PyAny>,
    depth: u32,
}

impl ser::Serialize for Encode<'_, '_> {
    fn serialize<S: ser::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let obj = self.obj;
        if self.depth > MAX_DEPTH {
            return Err(S::Error::custom(format!("payload nests deeper than {MAX_DEPTH} levels")));
        }
        let depth = self.depth + 1;
        if obj.is_none() {
            s.serialize_unit()
        } else if let Ok(b) = obj.downcast::<PyBool>() {
            s.serialize_bool(b.is_true())
        } else if let Ok(i) = obj.downcast::<PyInt>() {
            if let Ok(v) = i.extract::<i64>() {
                s.serialize_i64(v)
            } else if let Ok(v) = i.extract::<u64>() {
                s.serialize_u64(v)
            } else {
                Err(S::Error::custom("int outside the 64-bit range msgpack can hold"))
            }
        } else if let Ok(f) = obj.downcast::<PyFloat>() {
            s.serialize_f64(f.value())
        } else if let Ok(text) = obj.downcast::<PyString>() {
            s.serialize_str(text.to_str().map_err(S::Error::custom)?)
        } else if let Ok(bytes) = obj.downcast::<PyBytes>() {
            s.serialize_bytes(bytes.as_bytes())
        } else if let Ok(list) = obj.downcast::<PyList>() {
            let mut seq = s.serialize_seq(Some(list.len()))?;
            for item in list.iter() {
                seq.serialize_element(&Encode { obj: &item, depth })?;
            }
            seq.end()
        } else if let Ok(tuple) = obj.downcast::<PyTuple>() {
            let mut seq = s.serialize_seq(Some(tuple.len()))?;
            for item in tuple.iter() {
                seq.serialize_element(&Encode { obj: &item, depth })?;
            }
            seq.end()
        } else if let Ok(dict) = obj.downcast::<PyDict>() {
            let mut map = s.serialize_map(Some(dict.len()))?;
            for (key, value) in dict.iter() {
                let Ok(key) = key.downcast::<PyString>() else {
                    return Err(S::Error::custom(format!("dict key {key} is not a str")));
                };
                map.serialize_entry(key.to_str().map_err(S::Error::custom)?, &Encode { obj: &value, depth })?;
            }
            map.end()
        } else {
            let name = obj.get_type().name().map(|n| n.to_string()).unwrap_or_default();
            Err(S::Error::custom(format!("{name} is not msgpack-serializable")))
        }
    }
}

/// Encodes a payload; anything not representable raises `ep.PayloadNotSerializable`.
pub fn encode(obj: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    rmp_serde::to_vec(&Encode { obj, depth: 0 })
        .map_err(|e| PayloadNotSerializable::new_err((format!("payload is not serializable: {e}"),)))
}

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
}

/// Dict keys repeat across events ("amount", "currency", ...): short ones are kept in a
/// small direct-mapped cache so decoding reuses one string object, with its hash already
/// computed, instead of allocating and hashing a new one per event.
const KEY_CACHE_SLOTS: usize = 1024;
const MAX_CACHED_KEY: usize = 32;
static KEY_CACHE: Mutex<Vec<Option<Py<PyString>>>> = Mutex::new(Vec::new());

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
    if let Some(hit) = &cache[slot] {
        let hit = hit.bind(py);
        if hit.to_str().is_ok_and(|s| s == key) {
            return hit.clone();
        }
    }
    let fresh = PyString::intern(py, key);
    cache[slot] = Some(fresh.clone().unbind());
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
