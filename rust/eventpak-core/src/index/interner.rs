//! Interned names: each entity, scope, kind, tag and tracking name is stored once and
//! compared as an id.

use std::collections::HashMap;
use std::sync::Arc;

/// Interns names so each entity, scope and kind is stored once and compared as an id.
///
/// The map hashes with foldhash, not the standard SipHash: every append looks up its
/// entity, scope and kind here, and SipHash was a large part of an append's cost. Names
/// come from callers, so the hasher stays seeded per map (`RandomState`): colliding
/// names cannot be computed ahead of time.
#[derive(Default, Debug)]
pub struct Interner {
    names: Vec<Arc<str>>,
    ids: HashMap<Arc<str>, u32, foldhash::fast::RandomState>,
    /// The id [`Interner::intern`] returned last: consecutive events mostly share their
    /// scope and kind, and comparing with one name is cheaper than hashing.
    last: u32,
}

impl Interner {
    /// The id of `name`, adding it when new.
    pub fn intern(&mut self, name: &str) -> u32 {
        if self.is(self.last, name) {
            return self.last;
        }
        let id = match self.ids.get(name) {
            Some(&id) => id,
            None => {
                let id = self.names.len() as u32;
                let name: Arc<str> = name.into();
                self.names.push(name.clone());
                self.ids.insert(name, id);
                id
            }
        };
        self.last = id;
        id
    }

    /// True when `id` is the id of `name`.
    pub fn is(&self, id: u32, name: &str) -> bool {
        self.names.get(id as usize).is_some_and(|known| **known == *name)
    }

    /// The id of `name`, if known.
    pub fn get(&self, name: &str) -> Option<u32> {
        self.ids.get(name).copied()
    }

    /// The name with id `id`.
    pub fn name(&self, id: u32) -> &Arc<str> {
        &self.names[id as usize]
    }

    /// Number of names.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// All names in id order.
    pub fn names(&self) -> &[Arc<str>] {
        &self.names
    }
}
