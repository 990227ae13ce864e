//! Interned names: each entity, scope, kind, tag and tracking name is stored once and
//! compared as an id.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::Arc;

/// Interns names so each entity, scope and kind is stored once and compared as an id.
///
/// The maps hash with foldhash, not the standard SipHash: every append looks up its
/// entity, scope and kind here, and SipHash was a large part of an append's cost. Names
/// come from callers, so the hashers stay seeded per map (`RandomState`): colliding
/// names cannot be computed ahead of time.
#[derive(Default, Debug)]
pub struct Interner {
    names: Vec<Arc<str>>,
    ids: ShardedIds,
    /// The id [`Interner::intern`] returned last: consecutive events mostly share their
    /// scope and kind, and comparing with one name is cheaper than hashing.
    last: u32,
}

/// Name -> id, split into [`SHARDS`] maps by a hash of the name. A map grows by rehashing
/// every entry it holds, under the index's write lock: one map of a million entity names
/// held every reader and writer for 150 ms when it grew, a shard holds 1/64th of them.
#[derive(Debug)]
struct ShardedIds {
    /// Picks a name's shard; seeded apart from the shards' own hashers, so that the names
    /// of one shard still spread over all of its buckets.
    pick: foldhash::fast::RandomState,
    shards: Box<[HashMap<Arc<str>, u32, foldhash::fast::RandomState>]>,
}

const SHARDS: usize = 64;

impl Default for ShardedIds {
    fn default() -> Self {
        ShardedIds { pick: Default::default(), shards: (0..SHARDS).map(|_| HashMap::default()).collect() }
    }
}

impl ShardedIds {
    fn shard(&self, name: &str) -> usize {
        (self.pick.hash_one(name) >> (64 - SHARDS.trailing_zeros())) as usize
    }

    fn get(&self, name: &str) -> Option<u32> {
        self.shards[self.shard(name)].get(name).copied()
    }

    fn insert(&mut self, name: Arc<str>, id: u32) {
        let shard = self.shard(&name);
        self.shards[shard].insert(name, id);
    }
}

impl Interner {
    /// The id of `name`, adding it when new.
    pub fn intern(&mut self, name: &str) -> u32 {
        if self.is(self.last, name) {
            return self.last;
        }
        let id = match self.ids.get(name) {
            Some(id) => id,
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
        self.ids.get(name)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_spread_over_the_shards_keep_their_ids() {
        let mut interner = Interner::default();
        let names: Vec<String> = (0..10_000).map(|i| format!("acct:{i}")).collect();
        for (i, name) in names.iter().enumerate() {
            assert_eq!(interner.intern(name), i as u32);
        }
        for (i, name) in names.iter().enumerate().rev() {
            assert_eq!(interner.intern(name), i as u32, "interning again gives the same id");
            assert_eq!(interner.get(name), Some(i as u32));
            assert_eq!(&**interner.name(i as u32), name.as_str());
        }
        assert_eq!(interner.get("acct:10000"), None);
        assert_eq!(interner.len(), names.len());
        let used = interner.ids.shards.iter().filter(|shard| !shard.is_empty()).count();
        assert_eq!(used, SHARDS, "ten thousand names leave no shard empty");
    }
}
