//! Walking the causal graph: causes up to the root, direct and transitive effects, and
//! everything sharing a correlation id. Effects and correlations come from the index;
//! only the events returned are read from segments.

use super::read::{decode_all, uuid_text};
use super::Store;
use crate::error::{Error, Result};
use crate::segment::StoredEvent;

impl Store {
    fn visible_sequence(&self, index: &crate::index::Index, event_id: &[u8; 16]) -> Result<u64> {
        index.sequence_of(event_id).ok_or_else(|| Error::EventNotFound(uuid_text(event_id)))
    }

    /// The event, its cause, that cause's cause, and so on up to the root, at most `limit`
    /// events. The walk stops at a cause that is not a visible event of this store (a
    /// reaction to another store's event, or a hidden one).
    pub fn causes(&self, event_id: &[u8; 16], limit: Option<usize>) -> Result<Vec<StoredEvent>> {
        self.check_open()?;
        let limit = limit.unwrap_or(usize::MAX);
        let index = self.index()?;
        let mut seq = self.visible_sequence(&index, event_id)?;
        let mut out = Vec::new();
        while out.len() < limit {
            let event = decode_all(&self.shared.segments, Self::locate(&index, &[seq]))?.remove(0);
            let cause = event.view().causation_id();
            out.push(event);
            match cause.and_then(|id| index.sequence_of(&id)) {
                // Causes precede their effects; anything else would loop on forged data.
                Some(cause_seq) if cause_seq < seq => seq = cause_seq,
                _ => break,
            }
        }
        Ok(out)
    }

    /// The direct effects of the event (events whose causation id is its id), in commit order.
    pub fn effects(&self, event_id: &[u8; 16]) -> Result<Vec<StoredEvent>> {
        self.check_open()?;
        let index = self.index()?;
        let seq = self.visible_sequence(&index, event_id)?;
        decode_all(&self.shared.segments, Self::locate(&index, &index.effects_of(seq)))
    }

    /// Every event the event caused, directly or not, breadth first, at most `max_depth`
    /// levels down; the event itself is not included.
    pub fn descendants(&self, event_id: &[u8; 16], max_depth: Option<u64>) -> Result<Vec<StoredEvent>> {
        self.check_open()?;
        let index = self.index()?;
        let seq = self.visible_sequence(&index, event_id)?;
        decode_all(&self.shared.segments, Self::locate(&index, &index.descendants_of(seq, max_depth)))
    }

    /// The events whose correlation id is `correlation_id`, in commit order, strictly after
    /// global sequence `after`, at most `limit`. An id no event carries gives an empty list.
    pub fn correlated(
        &self,
        correlation_id: &[u8; 16],
        after: Option<u64>,
        limit: Option<usize>,
    ) -> Result<Vec<StoredEvent>> {
        self.check_open()?;
        let index = self.index()?;
        // The event named by the id is in its own correlation unless it was given another.
        let root = match index.sequence_of(correlation_id) {
            Some(seq) => {
                let event = decode_all(&self.shared.segments, Self::locate(&index, &[seq]))?;
                (event[0].view().correlation_id() == *correlation_id).then_some(seq)
            }
            None => None,
        };
        let correlation = u128::from_be_bytes(*correlation_id);
        let seqs = index.correlated_with(correlation, root, after, limit.unwrap_or(usize::MAX));
        decode_all(&self.shared.segments, Self::locate(&index, &seqs))
    }
}
