//! Turning Python append arguments into engine requests (with the GIL held: payloads are
//! encoded here, before the engine is called without it).

use eventpak_core::AppendRequest as CoreRequest;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString, PyTuple};

use crate::args::{opt_int_arg, type_name};
use crate::causation;
use crate::errors::InvalidIdempotencyKey;
use crate::event::from_uuid;
use crate::names::{tag_list, utf8_text, KindName};
use crate::payload;
use crate::types::coordinate_parts;

/// One event for `append_batch`, with the same options as `append`.
#[pyclass(frozen, module = "eventpak._native")]
pub struct AppendRequest {
    #[pyo3(get)]
    coord: Py<PyAny>,
    #[pyo3(get)]
    kind: Py<PyAny>,
    #[pyo3(get)]
    payload: Py<PyAny>,
    #[pyo3(get)]
    idempotency_key: Option<Py<PyAny>>,
    #[pyo3(get)]
    expected_sequence: Option<u64>,
    #[pyo3(get)]
    causation_id: Option<Py<PyAny>>,
    #[pyo3(get)]
    correlation_id: Option<Py<PyAny>>,
    #[pyo3(get)]
    caused_by: Option<Py<PyAny>>,
    #[pyo3(get)]
    payload_version: Option<u32>,
    #[pyo3(get)]
    tags: Option<Py<PyAny>>,
}

#[pymethods]
impl AppendRequest {
    #[new]
    #[pyo3(signature = (coord, kind, payload, *, idempotency_key=None, expected_sequence=None, causation_id=None, correlation_id=None, caused_by=None, payload_version=None, tags=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        coord: Py<PyAny>,
        kind: Py<PyAny>,
        payload: Py<PyAny>,
        idempotency_key: Option<Py<PyAny>>,
        expected_sequence: Option<&Bound<'_, PyAny>>,
        causation_id: Option<Py<PyAny>>,
        correlation_id: Option<Py<PyAny>>,
        caused_by: Option<Py<PyAny>>,
        payload_version: Option<&Bound<'_, PyAny>>,
        tags: Option<Py<PyAny>>,
    ) -> PyResult<Self> {
        Ok(AppendRequest {
            coord,
            kind,
            payload,
            idempotency_key,
            expected_sequence: opt_int_arg(expected_sequence, "expected_sequence")?,
            causation_id,
            correlation_id,
            caused_by,
            payload_version: opt_int_arg(payload_version, "payload_version")?,
            tags,
        })
    }
}

/// Optional append arguments, as Python objects.
#[derive(Default)]
pub struct Options<'a, 'py> {
    pub idempotency_key: Option<&'a Bound<'py, PyAny>>,
    pub expected_sequence: Option<u64>,
    pub causation_id: Option<&'a Bound<'py, PyAny>>,
    pub correlation_id: Option<&'a Bound<'py, PyAny>>,
    pub caused_by: Option<&'a Bound<'py, PyAny>>,
    pub payload_version: u32,
    pub tags: Option<&'a Bound<'py, PyAny>>,
}

fn key_bytes(key: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    if let Ok(text) = key.downcast::<PyString>() {
        // A str that is not valid UTF-8 (a lone surrogate) has no bytes to key by.
        let text = utf8_text(text).map_err(|reason| InvalidIdempotencyKey::new_err((reason,)))?;
        return Ok(text.as_bytes().to_vec());
    }
    if let Ok(bytes) = key.downcast::<PyBytes>() {
        return Ok(bytes.as_bytes().to_vec());
    }
    let shown = type_name(key);
    Err(PyTypeError::new_err(format!("idempotency_key must be a str or bytes, not {shown}")))
}

/// Reads optional event id argument `name` (`None` stays `None`).
fn opt_id(id: Option<&Bound<'_, PyAny>>, name: &str) -> PyResult<Option<[u8; 16]>> {
    id.filter(|c| !c.is_none()).map(|c| from_uuid(c, name)).transpose()
}

/// Encodes `value`: into `scratch` when a batch shares one buffer (so no payload is grown step
/// by step in a fresh vector), then an exact-size copy; else into a vector of its own.
fn encoded(
    value: &Bound<'_, PyAny>,
    default: Option<&Bound<'_, PyAny>>,
    scratch: Option<&mut Vec<u8>>,
) -> PyResult<Vec<u8>> {
    let Some(scratch) = scratch else {
        let mut own = Vec::new();
        payload::encode_into(value, default, &mut own)?;
        return Ok(own);
    };
    scratch.clear();
    payload::encode_into(value, default, scratch)?;
    Ok(scratch.as_slice().to_vec())
}

/// Builds one engine request; `default` converts payload values msgpack cannot carry (see
/// [`payload::encode_into`]).
pub fn build(
    coord: &Bound<'_, PyAny>,
    kind: &Bound<'_, PyAny>,
    value: &Bound<'_, PyAny>,
    o: Options<'_, '_>,
    default: Option<&Bound<'_, PyAny>>,
) -> PyResult<CoreRequest> {
    build_with(coord, kind, value, o, default, None)
}

fn build_with(
    coord: &Bound<'_, PyAny>,
    kind: &Bound<'_, PyAny>,
    value: &Bound<'_, PyAny>,
    o: Options<'_, '_>,
    default: Option<&Bound<'_, PyAny>>,
    scratch: Option<&mut Vec<u8>>,
) -> PyResult<CoreRequest> {
    let (entity, scope) = coordinate_parts(coord)?;
    let mut request = CoreRequest {
        entity,
        scope,
        kind: KindName::named(kind, "kind")?.0,
        payload: encoded(value, default, scratch)?,
        idempotency_key: o.idempotency_key.filter(|k| !k.is_none()).map(key_bytes).transpose()?,
        expected_sequence: o.expected_sequence,
        correlation_id: opt_id(o.correlation_id, "correlation_id")?,
        payload_version: o.payload_version,
        tags: o.tags.filter(|t| !t.is_none()).map(|t| tag_list(t, "tags")).transpose()?.unwrap_or_default(),
        ..CoreRequest::default()
    };
    causation::apply(&mut request, o.causation_id, o.caused_by)?;
    Ok(request)
}

/// Builds a batch item: a `(coord, kind, payload)` tuple or an `AppendRequest`; `scratch` is
/// the encoding buffer shared by a batch's items.
pub fn build_item(
    item: &Bound<'_, PyAny>,
    default: Option<&Bound<'_, PyAny>>,
    scratch: &mut Vec<u8>,
) -> PyResult<CoreRequest> {
    if let Ok(tuple) = item.downcast::<PyTuple>() {
        if tuple.len() == 3 {
            // Borrowed: the tuple keeps its items alive, so no reference is taken per field.
            let field = |i| tuple.get_borrowed_item(i);
            let (coord, kind, value) = (field(0)?, field(1)?, field(2)?);
            return build_with(&coord, &kind, &value, Options::default(), default, Some(scratch));
        }
    }
    let py = item.py();
    let Ok(req) = item.downcast::<AppendRequest>() else {
        let shown = match item.downcast::<PyTuple>() {
            // Options are not tuple fields: say where they go.
            Ok(tuple) => format!(
                "a tuple of {} (options such as tags go in ep.AppendRequest(coord, kind, payload, ...))",
                tuple.len()
            ),
            Err(_) => type_name(item),
        };
        return Err(PyTypeError::new_err(format!(
            "batch items must be ep.AppendRequest or (coord, kind, payload) tuples, not {shown}"
        )));
    };
    let r = req.get();
    let bind = |o: &Option<Py<PyAny>>| o.as_ref().map(|v| v.bind(py).clone());
    let (key, cause, corr) = (bind(&r.idempotency_key), bind(&r.causation_id), bind(&r.correlation_id));
    let (caused_by, tags) = (bind(&r.caused_by), bind(&r.tags));
    let options = Options {
        idempotency_key: key.as_ref(),
        expected_sequence: r.expected_sequence,
        causation_id: cause.as_ref(),
        correlation_id: corr.as_ref(),
        caused_by: caused_by.as_ref(),
        payload_version: r.payload_version.unwrap_or(0),
        tags: tags.as_ref(),
    };
    build_with(r.coord.bind(py), r.kind.bind(py), r.payload.bind(py), options, default, Some(scratch))
}

/// Builds every item of an `append_batch` iterable, sharing one encoding buffer.
pub fn build_items(
    items: &Bound<'_, PyAny>,
    default: Option<&Bound<'_, PyAny>>,
) -> PyResult<Vec<CoreRequest>> {
    let mut scratch = Vec::with_capacity(512);
    if let Ok(list) = items.downcast_exact::<PyList>() {
        let mut requests = Vec::with_capacity(list.len());
        for item in list.iter() {
            requests.push(build_item(&item, default, &mut scratch)?);
        }
        return Ok(requests);
    }
    items.try_iter()?.map(|item| build_item(&item?, default, &mut scratch)).collect()
}
