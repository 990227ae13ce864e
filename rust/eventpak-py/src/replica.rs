//! The replica side of replication: making a data dir a replica, and applying events that
//! another store committed, verbatim (used by `eventpak.nats.Replica`).

use std::sync::Arc;

use eventpak_core::{Error, EventRecord};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyTuple};

use crate::args::int_arg;
use crate::errors::InvalidArgument;
use crate::store::NativeStore;

/// One replicated event as Python hands it over: a tuple `(event_id, global_sequence,
/// entity, scope, kind, entity_sequence, timestamp_us, causation_id, correlation_id,
/// prev_hash, hash, payload_version, payload, tags)`, ids and hashes as bytes.
struct ReplicatedItem(EventRecord);

const ITEM_FIELDS: usize = 14;

fn fixed<const N: usize>(bytes: &[u8], what: &str) -> PyResult<[u8; N]> {
    let wrong =
        || InvalidArgument::new_err((what.to_owned(), format!("must be {N} bytes, not {}", bytes.len())));
    bytes.try_into().map_err(|_| wrong())
}

impl<'py> FromPyObject<'py> for ReplicatedItem {
    fn extract_bound(item: &Bound<'py, PyAny>) -> PyResult<Self> {
        let t = item.downcast::<PyTuple>()?;
        if t.len() != ITEM_FIELDS {
            let reason = format!("a replicated event is a tuple of {ITEM_FIELDS} fields, not {}", t.len());
            return Err(InvalidArgument::new_err(("events".to_owned(), reason)));
        }
        let bytes = |i: usize, what: &str| -> PyResult<Vec<u8>> {
            let field = t.get_item(i)?;
            let field = field
                .downcast::<PyBytes>()
                .map_err(|_| InvalidArgument::new_err((what.to_owned(), "must be bytes")))?;
            Ok(field.as_bytes().to_vec())
        };
        let text = |i: usize| -> PyResult<Arc<str>> { Ok(Arc::from(t.get_item(i)?.extract::<String>()?)) };
        let cause = t.get_item(7)?;
        let causation_id =
            if cause.is_none() { None } else { Some(fixed(&bytes(7, "causation_id")?, "causation_id")?) };
        Ok(ReplicatedItem(EventRecord {
            event_id: fixed(&bytes(0, "event_id")?, "event_id")?,
            global_sequence: int_arg(&t.get_item(1)?, "global_sequence")?,
            entity: text(2)?,
            scope: text(3)?,
            kind: text(4)?,
            entity_sequence: int_arg(&t.get_item(5)?, "entity_sequence")?,
            timestamp_us: int_arg(&t.get_item(6)?, "timestamp_us")?,
            causation_id,
            correlation_id: fixed(&bytes(8, "correlation_id")?, "correlation_id")?,
            prev_hash: fixed(&bytes(9, "prev_hash")?, "prev_hash")?,
            hash: fixed(&bytes(10, "hash")?, "hash")?,
            idempotency_key: None,
            payload_version: int_arg(&t.get_item(11)?, "payload_version")?,
            payload: bytes(12, "payload")?,
            tags: t.get_item(13)?.extract()?,
        }))
    }
}

#[pymethods]
impl NativeStore {
    /// Makes this (empty) store and its data dir a replica of `stream`: from now on only
    /// `_apply_replicated` writes to it, in this and every later open.
    #[pyo3(name = "_become_replica")]
    fn become_replica(&self, py: Python<'_>, stream: String) -> PyResult<()> {
        self.run(py, |store| store.become_replica(&stream))
    }

    /// `(stream, origin store id or None)` for a replica, `None` for an ordinary store.
    #[pyo3(name = "_replica_origin")]
    fn replica_origin(&self) -> Option<(String, Option<Vec<u8>>)> {
        let origin = self.engine().replica_origin()?;
        Some((origin.stream, origin.origin_store_id.map(|id| id.to_vec())))
    }

    /// Applies events of origin `origin_store_id` in order, verbatim, then fsyncs; returns
    /// `(applied, already_present)`. The first event that does not continue the log raises
    /// `ReplicationRefused`; those before it are applied and durable.
    #[pyo3(name = "_apply_replicated")]
    fn apply_replicated(
        &self,
        py: Python<'_>,
        origin_store_id: Vec<u8>,
        events: Vec<ReplicatedItem>,
    ) -> PyResult<(usize, usize)> {
        let origin = fixed::<16>(&origin_store_id, "origin_store_id")?;
        let records = events.into_iter().map(|item| item.0).collect();
        let outcome = self.run(py, move |store| store.apply_replicated(origin, records))?;
        match outcome.refused {
            Some(refusal @ Error::ReplicationRefused { .. }) => {
                Err(crate::errors::to_py(refusal, self.shown_path()))
            }
            Some(other) => Err(crate::errors::to_py(other, self.shown_path())),
            None => Ok((outcome.applied, outcome.present)),
        }
    }
}
