//! What an append checks before it locks or writes anything: names, tags, keys, sizes
//! and batch limits. A refused append writes nothing.

use super::Store;
use crate::error::{Error, Result};
use crate::event::AppendRequest;
use crate::names::{validate_coordinate_part, validate_kind_as};
use crate::segment::{frame_len_of, payload_version_len, tags_section_len};
use crate::tags::validate_tags;

/// Longest idempotency key in bytes.
pub const MAX_IDEMPOTENCY_KEY_BYTES: usize = 64;

/// Encoded size of the event a request would store (what `max_event_bytes` limits).
pub fn encoded_event_size(r: &AppendRequest) -> usize {
    let key = r.idempotency_key.as_ref().map_or(0, Vec::len);
    let version = payload_version_len(r.payload_version);
    let tags = tags_section_len(&r.tags);
    frame_len_of([r.entity.len(), r.scope.len(), r.kind.len(), key, version, r.payload.len(), tags])
}

impl Store {
    /// Refuses bad input before anything is locked or written.
    pub(super) fn validate(
        &self,
        requests: &[AppendRequest],
        is_batch: bool,
        store_written: bool,
    ) -> Result<()> {
        let config = &self.shared.config;
        let mut total = 0usize;
        for (i, r) in requests.iter().enumerate() {
            if let Some(k) = r.causation_item {
                if k as usize >= i {
                    return Err(Error::InvalidCausation(format!(
                        "item {i} names item {k} as its cause; a cause must be an earlier item of the batch"
                    )));
                }
            }
            // A name equal to the previous item's passed the same check a moment ago: batches
            // often repeat their scope and kind, and the entity of one aggregate's events.
            let previous = i.checked_sub(1).map(|p| &requests[p]);
            if previous.is_none_or(|p| p.entity != r.entity) {
                validate_coordinate_part("entity", &r.entity)?;
            }
            if previous.is_none_or(|p| p.scope != r.scope) {
                validate_coordinate_part("scope", &r.scope)?;
            }
            if previous.is_none_or(|p| p.kind != r.kind) {
                validate_kind_as(&r.kind, store_written)?;
            }
            validate_tags(&r.tags)?;
            if let Some(key) = &r.idempotency_key {
                if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY_BYTES {
                    return Err(Error::InvalidIdempotencyKey(format!(
                        "key of {} bytes; keys hold 1 to {MAX_IDEMPOTENCY_KEY_BYTES} bytes",
                        key.len()
                    )));
                }
            }
            let size = encoded_event_size(r);
            if size > config.max_event_bytes {
                return Err(Error::EventTooLarge { size, max: config.max_event_bytes });
            }
            total += size;
        }
        if !is_batch {
            return Ok(());
        }
        if requests.len() > config.max_batch_events {
            let msg = format!("{} events, max_batch_events={}", requests.len(), config.max_batch_events);
            return Err(Error::BatchTooLarge(msg));
        }
        if total > config.max_batch_bytes {
            return Err(Error::BatchTooLarge(format!(
                "{total} bytes, max_batch_bytes={}",
                config.max_batch_bytes
            )));
        }
        let keyed = requests.iter().filter(|r| r.idempotency_key.is_some()).count();
        if keyed != 0 && keyed != requests.len() {
            return Err(Error::InvalidIdempotencyKey(
                "in a batch, either every event has a key or none has".into(),
            ));
        }
        let mut seen = std::collections::HashSet::new();
        if requests.iter().filter_map(|r| r.idempotency_key.as_deref()).any(|k| !seen.insert(k)) {
            return Err(Error::InvalidIdempotencyKey("the same key appears twice in one batch".into()));
        }
        Ok(())
    }
}
