//! The payload of an encrypted store's event, opened with the store's data keys.

use std::borrow::Cow;

use eventpak_core::{PayloadBinding, PayloadKeys, StoredEvent};
use pyo3::prelude::*;

use crate::errors::to_py;

/// The msgpack bytes of `stored`'s payload: as stored for a clear store (`keys` is
/// `None`), opened for an encrypted one (`ep.PayloadForgotten` once its entity was
/// forgotten, `ep.CorruptSegment` when it does not open with its key).
pub fn opened<'a>(stored: &'a StoredEvent, keys: Option<&PayloadKeys>) -> PyResult<Cow<'a, [u8]>> {
    let view = stored.view();
    let Some(keys) = keys else { return Ok(Cow::Borrowed(view.payload())) };
    let at = PayloadBinding {
        entity: view.entity(),
        event_id: view.event_id(),
        entity_sequence: view.entity_sequence(),
    };
    keys.open(&at, view.global_sequence, view.payload()).map(Cow::Owned).map_err(|e| to_py(e, ""))
}

/// `read` of the msgpack bytes [`opened`] returns, without copying them for a clear store
/// or allocating for a small payload of an encrypted one: for a read that decodes them.
/// Inlined: it is the whole of `Event.payload`'s path for a clear store.
#[inline]
pub fn read_opened<T>(
    stored: &StoredEvent,
    keys: Option<&PayloadKeys>,
    read: impl FnOnce(&[u8]) -> PyResult<T>,
) -> PyResult<T> {
    let view = stored.view();
    let Some(keys) = keys else { return read(view.payload()) };
    let at = PayloadBinding {
        entity: view.entity(),
        event_id: view.event_id(),
        entity_sequence: view.entity_sequence(),
    };
    keys.open_with(&at, view.global_sequence, view.payload(), read).map_err(|e| to_py(e, ""))?
}
