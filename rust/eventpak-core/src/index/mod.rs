//! The in-memory index: where every event lives and the postings that drive queries.

mod causal;
mod checkpoint;
mod checkpoint_holes;
mod checkpoint_sections;
mod compacted;
mod holes;
mod interner;
mod newest;
mod query;
mod tag_filter;
mod tracking;
mod union;

pub use checkpoint::{load_checkpoint, write_checkpoint, CheckpointCover, INDEX_CHECKPOINT_FILE};
pub use holes::HOLE_SEGMENT;
pub use interner::Interner;
pub use tracking::{TrackedFrame, TrackingIndex};

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::event::Hash;
use crate::visibility::Visibility;

/// Where one event is and what it is, by global sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntryMeta {
    /// Position of its segment in the store's segment list.
    pub segment: u32,
    /// Byte offset of its frame.
    pub offset: u64,
    /// Frame length.
    pub len: u32,
    /// Interned entity id.
    pub entity: u32,
    /// Interned scope id.
    pub scope: u32,
    /// Interned kind id.
    pub kind: u32,
    /// Its per-entity clock.
    pub entity_sequence: u64,
    /// False while its fence is open, and for good once the fence is cancelled.
    pub visible: bool,
}

/// The per-entity chain head and postings.
#[derive(Debug, Default)]
pub struct EntityState {
    /// Global sequences of the entity's events; position `n` holds clock `n`.
    pub postings: Vec<u64>,
    /// Hash of the entity's newest event.
    pub last_hash: Hash,
}

/// A new event to index.
pub struct NewEntry<'a> {
    /// Where the frame is.
    pub segment: u32,
    /// Frame offset.
    pub offset: u64,
    /// Frame length.
    pub len: u32,
    /// Event id.
    pub event_id: [u8; 16],
    /// Entity.
    pub entity: &'a str,
    /// Scope.
    pub scope: &'a str,
    /// Kind.
    pub kind: &'a str,
    /// Entity clock.
    pub entity_sequence: u64,
    /// Chain hash.
    pub hash: Hash,
    /// Idempotency key.
    pub idempotency_key: Option<&'a [u8]>,
    /// Id of the causing event, if any (linked when it is an event of this store).
    pub causation_id: Option<[u8; 16]>,
    /// Correlation id (indexed when it is not the event's own id).
    pub correlation_id: [u8; 16],
    /// Visible now (false for events of an open or cancelled fence).
    pub visible: bool,
    /// Its tags (posted once it is visible).
    pub tags: Vec<&'a str>,
}

impl<'a> NewEntry<'a> {
    /// The entry of a stored frame (read at open, or followed from another process), found
    /// in segment position `segment` at `offset`.
    pub fn of_frame(
        frame: &'a crate::segment::FrameView<'a>,
        segment: u32,
        offset: u64,
        visible: bool,
    ) -> Self {
        let (entity, scope, kind) = frame.names();
        NewEntry {
            segment,
            offset,
            len: frame.len as u32,
            event_id: frame.event_id(),
            entity,
            scope,
            kind,
            entity_sequence: frame.entity_sequence(),
            hash: frame.hash(),
            idempotency_key: frame.idempotency_key(),
            causation_id: frame.causation_id(),
            correlation_id: frame.correlation_id(),
            visible,
            tags: frame.tags().collect(),
        }
    }
}

/// An event of the open fence, waiting to become visible at commit.
#[derive(Debug)]
pub(crate) struct Pending {
    seq: u64,
    hash: Hash,
    idempotency_key: Option<Box<[u8]>>,
    tags: Box<[u32]>,
}

/// The whole index. Sequences are dense, so per-event data is a vector by sequence.
#[derive(Default, Debug)]
pub struct Index {
    pub(crate) entries: Vec<EntryMeta>,
    /// Event ids by sequence; ids strictly increase, so lookup is a binary search.
    pub(crate) event_ids: Vec<u128>,
    pub(crate) entity_names: Interner,
    pub(crate) scope_names: Interner,
    pub(crate) kind_names: Interner,
    pub(crate) entities: Vec<EntityState>,
    pub(crate) entity_order: BTreeMap<Arc<str>, u32>,
    pub(crate) kind_order: BTreeMap<Arc<str>, u32>,
    pub(crate) scope_postings: Vec<Vec<u64>>,
    pub(crate) kind_postings: Vec<Vec<u64>>,
    pub(crate) idempotency: HashMap<Box<[u8]>, u64>,
    /// Cancelled ranges and the open fence, as persisted in `hidden.ranges`.
    pub(crate) visibility: Visibility,
    /// Events of the open fence.
    pub(crate) pending: Vec<Pending>,
    /// Entity heads as the open fence's own events moved them.
    pub(crate) fence_heads: HashMap<u32, (u64, Hash)>,
    /// Idempotency keys of the open fence's events (retries inside the fence see them).
    pub(crate) fence_keys: HashMap<Box<[u8]>, u64>,
    /// Causes, effects and correlations.
    pub(crate) causal: causal::CausalIndex,
    /// Every tag of a visible event, interned.
    pub(crate) tag_names: Interner,
    /// Sequences of the visible events carrying each tag, by tag id, in commit order.
    pub(crate) tag_postings: Vec<Vec<u64>>,
    /// Tracking records: the newest position per name, and where their frames are.
    pub(crate) tracking: TrackingIndex,
    /// Sequences without a frame (a replica's skipped numbers, or removed events).
    pub(crate) holes: u64,
    /// What compaction removed, as persisted in `compacted.ranges`.
    pub(crate) compacted: crate::compaction::Compacted,
}

impl Index {
    /// Number of indexed events (= the next global sequence).
    pub fn len(&self) -> u64 {
        self.entries.len() as u64
    }

    /// True when nothing is indexed.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Adds the next event; its sequence is `self.len()`. A visible event is posted at
    /// once; an invisible one waits in the open fence (see [`Index::publish_fence`]).
    pub fn insert(&mut self, e: NewEntry<'_>) {
        self.insert_known(e, None);
    }

    /// [`Index::insert`], given the entity's id as [`Index::entity_id`] answered earlier
    /// (an append looks its entity up before writing): the id is checked against the name
    /// instead of hashing the name again.
    pub fn insert_known(&mut self, e: NewEntry<'_>, entity_id: Option<u32>) {
        let seq = self.len();
        let entity = match entity_id {
            Some(id) if self.entity_names.is(id, e.entity) => id,
            _ => self.entity_names.intern(e.entity),
        };
        if entity as usize == self.entities.len() {
            self.entities.push(EntityState::default());
            self.entity_order.insert(self.entity_names.name(entity).clone(), entity);
        }
        let scope = self.scope_names.intern(e.scope);
        if scope as usize == self.scope_postings.len() {
            self.scope_postings.push(Vec::new());
        }
        let kind = self.kind_names.intern(e.kind);
        if kind as usize == self.kind_postings.len() {
            self.kind_postings.push(Vec::new());
            self.kind_order.insert(self.kind_names.name(kind).clone(), kind);
        }
        let tags = self.intern_tags(&e.tags);
        self.event_ids.push(u128::from_be_bytes(e.event_id));
        self.link_causal(seq, e.causation_id, e.correlation_id);
        self.entries.push(EntryMeta {
            segment: e.segment,
            offset: e.offset,
            len: e.len,
            entity,
            scope,
            kind,
            entity_sequence: e.entity_sequence,
            visible: e.visible,
        });
        if e.visible {
            self.post(seq, e.hash, e.idempotency_key, &tags);
        } else if self.visibility.open_fence.is_some_and(|start| seq >= start) {
            self.fence_heads.insert(entity, (e.entity_sequence + 1, e.hash));
            let idempotency_key: Option<Box<[u8]>> = e.idempotency_key.map(Box::from);
            if let Some(key) = &idempotency_key {
                self.fence_keys.insert(key.clone(), seq);
            }
            self.pending.push(Pending { seq, hash: e.hash, idempotency_key, tags: tags.into() });
        }
    }

    /// Makes a visible event findable: entity, scope, kind and tag postings and its key.
    fn post(&mut self, seq: u64, hash: Hash, idempotency_key: Option<&[u8]>, tags: &[u32]) {
        let meta = self.entries[seq as usize];
        let state = &mut self.entities[meta.entity as usize];
        state.postings.push(seq);
        state.last_hash = hash;
        self.scope_postings[meta.scope as usize].push(seq);
        self.kind_postings[meta.kind as usize].push(seq);
        for &tag in tags {
            self.tag_postings[tag as usize].push(seq);
        }
        if let Some(key) = idempotency_key {
            self.idempotency.insert(key.into(), seq);
        }
    }

    /// Commits the open fence: its events become visible, in order.
    pub fn publish_fence(&mut self) {
        for p in std::mem::take(&mut self.pending) {
            self.entries[p.seq as usize].visible = true;
            self.post(p.seq, p.hash, p.idempotency_key.as_deref(), &p.tags);
        }
        self.fence_heads.clear();
        self.fence_keys.clear();
    }

    /// Cancels the open fence: its events stay hidden, entity heads fall back.
    pub fn drop_fence(&mut self) {
        self.pending.clear();
        self.fence_heads.clear();
        self.fence_keys.clear();
    }

    /// The entity's next clock value and chain head (`0` and zeros for a new entity).
    pub fn entity_head(&self, entity: &str) -> (u64, Hash) {
        self.entity_head_of(self.entity_id(entity))
    }

    /// The interned id of `entity`, if it has an event.
    pub fn entity_id(&self, entity: &str) -> Option<u32> {
        self.entity_names.get(entity)
    }

    /// [`Index::entity_head`] of the entity with id `entity_id` (`None`: a new entity).
    pub fn entity_head_of(&self, entity_id: Option<u32>) -> (u64, Hash) {
        let Some(id) = entity_id else { return (0, [0; 32]) };
        if let Some(&head) = self.fence_heads.get(&id) {
            return head;
        }
        let state = &self.entities[id as usize];
        (state.postings.len() as u64, state.last_hash)
    }

    /// Location and names of the event at `seq`.
    pub fn entry(&self, seq: u64) -> Option<&EntryMeta> {
        self.entries.get(seq as usize)
    }

    /// Sequence of the visible event with this id.
    pub fn sequence_of(&self, event_id: &[u8; 16]) -> Option<u64> {
        self.sequence_of_any(event_id).filter(|&seq| self.entries[seq as usize].visible)
    }

    /// Sequence of the event with this id, visible or not.
    pub fn sequence_of_any(&self, event_id: &[u8; 16]) -> Option<u64> {
        // The first of equal ids: a hole repeats the id of the event before it.
        let id = u128::from_be_bytes(*event_id);
        let i = self.event_ids.partition_point(|&known| known < id);
        (self.event_ids.get(i) == Some(&id)).then_some(i as u64)
    }

    /// Cancelled ranges clipped to `[from, to)`.
    pub fn cancelled_within(&self, from: u64, to: u64) -> Vec<(u64, u64)> {
        self.visibility.cancelled_within(from, to)
    }

    /// Ranges removed by compaction clipped to `[from, to)`.
    pub fn compacted_within(&self, from: u64, to: u64) -> Vec<(u64, u64)> {
        self.compacted.within(from, to)
    }

    /// The compaction record.
    pub fn compacted(&self) -> &crate::compaction::Compacted {
        &self.compacted
    }

    /// Sequence of the event appended with this idempotency key.
    pub fn sequence_of_key(&self, key: &[u8]) -> Option<u64> {
        self.idempotency.get(key).or_else(|| self.fence_keys.get(key)).copied()
    }

    /// The entity's event at clock `clock`.
    pub fn entity_event_at(&self, entity: u32, clock: u64) -> Option<u64> {
        self.entities.get(entity as usize)?.postings.get(clock as usize).copied()
    }

    /// The newest event id, as a number.
    pub fn last_event_id(&self) -> u128 {
        self.event_ids.last().copied().unwrap_or(0)
    }

    /// Counts of distinct entities, scopes and kinds.
    pub fn cardinalities(&self) -> (usize, usize, usize) {
        (self.entity_names.len(), self.scope_names.len(), self.kind_names.len())
    }

    /// Ids of `tags`, interning new ones (with an empty postings list).
    fn intern_tags(&mut self, tags: &[&str]) -> Vec<u32> {
        tags.iter()
            .map(|tag| {
                let id = self.tag_names.intern(tag);
                if id as usize == self.tag_postings.len() {
                    self.tag_postings.push(Vec::new());
                }
                id
            })
            .collect()
    }

    /// The visible events carrying `tag`, in commit order.
    pub fn tag_postings(&self, tag: &str) -> &[u64] {
        self.tag_names.get(tag).map_or(&[], |id| &self.tag_postings[id as usize])
    }

    /// Adds a tracking frame found in segment position `segment` at `offset`.
    pub fn record_tracking(&mut self, frame: &crate::segment::TrackingView<'_>, segment: u32, offset: u64) {
        let place = (segment, offset, frame.len as u32);
        self.tracking.record(frame.name(), frame.position(), place, frame.global_sequence);
    }

    /// Every tracking record of the log.
    pub fn tracking(&self) -> &TrackingIndex {
        &self.tracking
    }

    /// The position recorded for tracking name `name`, if any.
    pub fn tracking_position(&self, name: &str) -> Option<u64> {
        self.tracking.position(name)
    }

    /// The end of the newest frame indexed (event or tracking record): `(segment position,
    /// offset)`, or `None` while the log holds none.
    pub fn log_end(&self) -> Option<(u32, u64)> {
        let event = self.entries.last().map(|e| (e.segment, e.offset + e.len as u64));
        let tracking = self.tracking.frames.last().map(|f| (f.segment, f.offset + f.len as u64));
        event.max(tracking)
    }
}
