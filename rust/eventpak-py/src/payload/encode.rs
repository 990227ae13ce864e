//! Python values to msgpack, serialised straight through serde without an intermediate
//! structure. Values msgpack cannot carry go through the caller's `default`, if any.

use std::cell::RefCell;

use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use serde::ser::{self, Error as _, SerializeMap, SerializeSeq, SerializeTuple};

use super::timestamp;
use crate::args::type_name;
use crate::errors::PayloadNotSerializable;

/// Deepest nesting of lists and dicts accepted in a payload (guards the Rust stack). Each
/// call of `default` counts as a level, so a `default` that never returns something
/// encodable ends here too.
const MAX_DEPTH: u32 = 256;

/// State shared by one encoding: the `default` callable, and the Python error that stopped
/// the encoding (serde errors are strings; this keeps the exception itself).
struct Ctx<'a, 'py> {
    default: Option<&'a Bound<'py, PyAny>>,
    failure: RefCell<Option<(String, PyErr)>>,
}

struct Encode<'a, 'py> {
    obj: &'a Bound<'py, PyAny>,
    depth: u32,
    ctx: &'a Ctx<'a, 'py>,
}

/// An extension value: rmp-serde writes a newtype struct of this name, holding a
/// `(type, bytes)` tuple, as a msgpack ext.
struct Ext<'a>(i8, &'a [u8]);
struct Raw<'a>(&'a [u8]);

impl ser::Serialize for Raw<'_> {
    fn serialize<S: ser::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(self.0)
    }
}

impl ser::Serialize for Ext<'_> {
    fn serialize<S: ser::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut tuple = s.serialize_tuple(2)?;
        tuple.serialize_element(&self.0)?;
        tuple.serialize_element(&Raw(self.1))?;
        tuple.end()
    }
}

impl<'py> Encode<'_, 'py> {
    fn nested<'b>(&'b self, obj: &'b Bound<'py, PyAny>) -> Encode<'b, 'py> {
        Encode { obj, depth: self.depth + 1, ctx: self.ctx }
    }

    /// Stops the encoding on a Python exception, kept for `encode` to raise.
    fn fail<E: ser::Error>(&self, what: String, err: PyErr) -> E {
        self.ctx.failure.replace(Some((what, err)));
        E::custom("a Python exception")
    }

    /// A value msgpack cannot carry: hands it to `default` when there is one.
    fn unknown<S: ser::Serializer>(&self, s: S, why: String) -> Result<S::Ok, S::Error> {
        let Some(default) = self.ctx.default else { return Err(S::Error::custom(why)) };
        let shown = type_name(self.obj);
        match default.call1((self.obj,)) {
            Ok(value) if value.is(self.obj) => {
                Err(S::Error::custom(format!("default() returned the {shown} it was given")))
            }
            Ok(value) => ser::Serialize::serialize(&self.nested(&value), s),
            Err(err) => Err(self.fail(format!("default() raised on a {shown}"), err)),
        }
    }
}

impl ser::Serialize for Encode<'_, '_> {
    fn serialize<S: ser::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let obj = self.obj;
        if self.depth > MAX_DEPTH {
            return Err(S::Error::custom(format!("payload nests deeper than {MAX_DEPTH} levels")));
        }
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
                self.unknown(s, "int outside the 64-bit range msgpack can hold".into())
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
                seq.serialize_element(&self.nested(&item))?;
            }
            seq.end()
        } else if let Ok(tuple) = obj.downcast::<PyTuple>() {
            let mut seq = s.serialize_seq(Some(tuple.len()))?;
            for item in tuple.iter() {
                seq.serialize_element(&self.nested(&item))?;
            }
            seq.end()
        } else if let Ok(dict) = obj.downcast::<PyDict>() {
            let mut map = s.serialize_map(Some(dict.len()))?;
            for (key, value) in dict.iter() {
                // Keys never go through `default` (as in `json.dumps`): a key is looked up
                // by equality, and a converted key would not be the one that was stored.
                let Ok(key) = key.downcast::<PyString>() else {
                    return Err(S::Error::custom(format!("dict key {key} is not a str")));
                };
                map.serialize_entry(key.to_str().map_err(S::Error::custom)?, &self.nested(&value))?;
            }
            map.end()
        } else if timestamp::is_datetime(obj).map_err(|e| self.fail("isinstance() raised".into(), e))? {
            match timestamp::unix_parts(obj) {
                Ok(Some((seconds, nanos))) => {
                    let data = timestamp::ext_data(seconds, nanos);
                    s.serialize_newtype_struct(
                        rmp_serde::MSGPACK_EXT_STRUCT_NAME,
                        &Ext(timestamp::EXT_TYPE, &data),
                    )
                }
                Ok(None) => self.unknown(s, "a naive datetime (without tzinfo) names no instant".into()),
                Err(err) => Err(self.fail("reading the datetime's UTC offset raised".into(), err)),
            }
        } else {
            self.unknown(s, format!("{} is not msgpack-serializable", type_name(obj)))
        }
    }
}

/// Encodes a payload. A value msgpack cannot carry is passed to `default` when given (as
/// `json.dumps` does), and its result encoded in its place; without `default`, or when
/// `default` raises, `ep.PayloadNotSerializable` (a `TypeError`) is raised, with the
/// exception `default` raised as its `__cause__`. An exception that is not an `Exception`
/// (`KeyboardInterrupt`, `SystemExit`), or a `PayloadNotSerializable`, is raised as it is.
pub fn encode(obj: &Bound<'_, PyAny>, default: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<u8>> {
    let ctx = Ctx { default: default.filter(|d| !d.is_none()), failure: RefCell::new(None) };
    let result = rmp_serde::to_vec(&Encode { obj, depth: 0, ctx: &ctx });
    let error = match result {
        Ok(bytes) => return Ok(bytes),
        Err(error) => error,
    };
    let py = obj.py();
    let Some((what, cause)) = ctx.failure.into_inner() else {
        return Err(PayloadNotSerializable::new_err((format!("payload is not serializable: {error}"),)));
    };
    if !cause.is_instance_of::<PyException>(py) || cause.is_instance_of::<PayloadNotSerializable>(py) {
        return Err(cause);
    }
    let shown = cause.value(py).get_type().name().map(|n| n.to_string()).unwrap_or_default();
    let reason = format!("payload is not serializable: {what}: {shown}: {}", cause.value(py));
    let wrapped = PayloadNotSerializable::new_err((reason,));
    wrapped.set_cause(py, Some(cause));
    Err(wrapped)
}
