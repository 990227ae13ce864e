//! The message format of `eventpak.nats` in native code (pure formatting, no I/O): the NATS
//! `HPUB` commands for a batch of events, and a message's headers read back into the tuple
//! `_apply_replicated` takes. The format is the one `eventpak.nats._wire` documents and
//! builds in Python; doing it here keeps the per-message work of the publisher's and the
//! replica's loops out of the interpreter.

use std::fmt::Write;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyString, PyTuple};

use crate::event::Event;

mod json;

use json::{hex, json_str, json_string, json_string_list, unhex};

fn uuid_text(id: [u8; 16]) -> uuid::fmt::Hyphenated {
    uuid::Uuid::from_bytes(id).hyphenated()
}

/// The NATS protocol bytes publishing `events` in order on `subject`, and how many of them
/// it holds: one `HPUB` per event, its stored payload as the body and its fields in
/// `Eventpak-*` headers, until the bytes reach `max_bytes` (at least one event). Each message
/// names its predecessor in `Nats-Expected-Last-Msg-Id` (the first names `follows`, or
/// nothing when it is `None`); only the last carries the reply subject `reply` (none when
/// empty). A message (headers and payload) over `max_message` bytes, the server's
/// `max_payload`, ends the run before it; first in the run, it raises `ValueError` naming the
/// event (the server would close the connection rather than refuse it).
#[pyfunction]
#[pyo3(signature = (events, store_id, subject, follows, reply, max_bytes, max_message))]
#[allow(clippy::too_many_arguments)] // the fields of one HPUB run, passed as the publisher holds them
pub fn nats_publish_commands<'py>(
    py: Python<'py>,
    events: Vec<PyRef<'py, Event>>,
    store_id: &[u8],
    subject: &str,
    follows: Option<String>,
    reply: &str,
    max_bytes: usize,
    max_message: usize,
) -> PyResult<(Bytes<'py>, usize)> {
    let mut out: Vec<u8> = Vec::with_capacity(events.len().min(1024) * 1024);
    let mut h = String::with_capacity(1024);
    let mut follows = follows;
    let mut count = 0;
    let mut reply_at = 0; // where the last message's reply subject would go
    for event in events.iter() {
        let stored = event.stored();
        let v = stored.view();
        let id = uuid_text(v.event_id()).to_string();
        let (entity, scope, kind) = v.names();
        h.clear();
        let _ = write!(h, "NATS/1.0\r\nNats-Msg-Id: {id}\r\nEventpak-store_id: ");
        hex(&mut h, store_id);
        let _ = write!(h, "\r\nEventpak-global_sequence: {}\r\nEventpak-entity: ", stored.global_sequence());
        json_str(&mut h, entity);
        h.push_str("\r\nEventpak-scope: ");
        json_str(&mut h, scope);
        h.push_str("\r\nEventpak-kind: ");
        json_str(&mut h, kind);
        let _ = write!(
            h,
            "\r\nEventpak-entity_sequence: {}\r\nEventpak-timestamp_us: {}\r\nEventpak-event_id: {id}\
             \r\nEventpak-correlation_id: {}\r\nEventpak-prev_hash: ",
            v.entity_sequence(),
            v.timestamp_us(),
            uuid_text(v.correlation_id()),
        );
        hex(&mut h, &v.prev_hash());
        h.push_str("\r\nEventpak-hash: ");
        hex(&mut h, &v.hash());
        let _ = write!(h, "\r\nEventpak-payload_version: {}\r\nEventpak-tags: [", v.payload_version());
        for (n, tag) in v.tags().enumerate() {
            if n > 0 {
                h.push_str(", ");
            }
            json_str(&mut h, tag);
        }
        h.push_str("]\r\n");
        if let Some(cause) = v.causation_id() {
            let _ = write!(h, "Eventpak-causation_id: {}\r\n", uuid_text(cause));
        }
        if let Some(prev) = &follows {
            let _ = write!(h, "Nats-Expected-Last-Msg-Id: {prev}\r\n");
        }
        h.push_str("\r\n");
        let payload = v.payload();
        let total = h.len() + payload.len();
        if total > max_message && count > 0 {
            // The events before it go (the last of them now asks for the ack); the next
            // call starts with this one, and refuses it.
            if !reply.is_empty() {
                out.splice(reply_at..reply_at, format!(" {reply}").into_bytes());
            }
            break;
        }
        if total > max_message {
            return Err(PyValueError::new_err(format!(
                "event {} is a NATS message of {total} bytes, over the server's max_payload of {max_message}",
                stored.global_sequence()
            )));
        }
        count += 1;
        let last = count == events.len() || out.len() + total + 64 >= max_bytes;
        let sep = if last && !reply.is_empty() { " " } else { "" };
        let to = if sep.is_empty() { "" } else { reply };
        reply_at = out.len() + "HPUB ".len() + subject.len();
        out.extend_from_slice(format!("HPUB {subject}{sep}{to} {} {total}\r\n", h.len()).as_bytes());
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(payload);
        out.extend_from_slice(b"\r\n");
        if last {
            break;
        }
        follows = Some(id);
    }
    Ok((PyBytes::new(py, &out), count))
}

type Bytes<'py> = Bound<'py, PyBytes>;

/// The event a message carries, from its `headers` (a dict, or `None`) and `payload`:
/// `(origin store id, the tuple _apply_replicated takes, event id text, global_sequence,
/// the id its Nats-Expected-Last-Msg-Id names or None)`. Raises `ValueError` naming the
/// header that is missing or malformed.
#[pyfunction]
#[pyo3(signature = (headers, payload))]
pub fn nats_decode<'py>(
    py: Python<'py>,
    headers: Option<&Bound<'py, PyDict>>,
    payload: Option<&[u8]>,
) -> PyResult<Bound<'py, PyTuple>> {
    let get = |key: &str| -> PyResult<Option<String>> {
        let Some(value) = headers.map(|h| h.get_item(key)).transpose()?.flatten() else { return Ok(None) };
        match value.downcast::<PyString>() {
            Ok(text) => Ok(Some(text.to_str()?.to_owned())),
            Err(_) => Err(PyValueError::new_err(format!("header {key} is not ASCII"))),
        }
    };
    let field = |name: &str| -> PyResult<String> {
        get(&format!("Eventpak-{name}"))?
            .ok_or_else(|| PyValueError::new_err(format!("header Eventpak-{name} is missing")))
    };
    let bad = |name: &str, what: &str| PyValueError::new_err(format!("header Eventpak-{name} is not {what}"));
    let number = |name: &str| -> PyResult<u64> {
        let text = field(name)?;
        let ok = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
        ok.then(|| text.parse().ok()).flatten().ok_or_else(|| bad(name, &format!("a number: {text:?}")))
    };
    let uid = |name: &str| -> PyResult<Bound<'py, PyBytes>> {
        let text = field(name)?;
        let id = uuid::Uuid::parse_str(&text).map_err(|_| bad(name, &format!("a UUID: {text:?}")))?;
        Ok(PyBytes::new(py, id.as_bytes()))
    };
    let name = |n: &str| json_string(&field(n)?).ok_or_else(|| bad(n, "a JSON string"));
    let digest = |n: &str| unhex::<32>(&field(n)?).ok_or_else(|| bad(n, "32 bytes of hex"));
    let tags = json_string_list(&field("tags")?).ok_or_else(|| bad("tags", "a JSON list of strings"))?;
    let event_id = uid("event_id")?;
    let causation = match get("Eventpak-causation_id")? {
        Some(_) => Some(uid("causation_id")?),
        None => None,
    };
    let global_sequence = number("global_sequence")?;
    let items: Vec<Bound<'py, PyAny>> = vec![
        event_id.clone().into_any(),
        global_sequence.into_pyobject(py)?.into_any(),
        PyString::new(py, &name("entity")?).into_any(),
        PyString::new(py, &name("scope")?).into_any(),
        PyString::new(py, &name("kind")?).into_any(),
        number("entity_sequence")?.into_pyobject(py)?.into_any(),
        number("timestamp_us")?.into_pyobject(py)?.into_any(),
        causation.map_or_else(|| py.None().into_bound(py), Bound::into_any),
        uid("correlation_id")?.into_any(),
        PyBytes::new(py, &digest("prev_hash")?).into_any(),
        PyBytes::new(py, &digest("hash")?).into_any(),
        number("payload_version")?.into_pyobject(py)?.into_any(),
        PyBytes::new(py, payload.unwrap_or_default()).into_any(),
        tags.into_pyobject(py)?.into_any(),
    ];
    let fields = PyTuple::new(py, items)?;
    let store_id = unhex::<16>(&field("store_id")?).ok_or_else(|| bad("store_id", "16 bytes of hex"))?;
    let id: [u8; 16] = event_id.as_bytes().try_into()?;
    let follows = get("Nats-Expected-Last-Msg-Id")?.filter(|f| !f.is_empty());
    (PyBytes::new(py, &store_id), fields, uuid_text(id).to_string(), global_sequence, follows)
        .into_pyobject(py)
}
