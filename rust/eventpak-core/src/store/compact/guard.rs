//! The compaction lock, and refusing calls made from inside a compaction's own callbacks.
//!
//! `verify`, `backup` and `close` wait for a running compaction. Called from its predicate
//! or its progress callback (on the compacting thread), waiting would never end, so they
//! are refused instead.

use std::cell::Cell;
use std::sync::Arc;

use parking_lot::MutexGuard;

use super::super::{Shared, Store};
use crate::error::{Error, Result};

thread_local! {
    /// The store this thread is compacting (its `Shared` address), 0 when none.
    static COMPACTING: Cell<usize> = const { Cell::new(0) };
}

/// Marks the current thread as compacting a store until dropped.
pub(super) struct Compacting(usize);

impl Compacting {
    pub(super) fn enter(shared: &Arc<Shared>) -> Self {
        let me = Arc::as_ptr(shared) as usize;
        Compacting(COMPACTING.with(|c| c.replace(me)))
    }
}

impl Drop for Compacting {
    fn drop(&mut self) {
        COMPACTING.with(|c| c.set(self.0));
    }
}

impl Store {
    /// Waits for a running compaction and holds it off; refused (rather than waiting for
    /// ever) when called from that compaction's own predicate or progress callback.
    pub(in crate::store) fn hold_off_compaction(&self, what: &str) -> Result<MutexGuard<'_, ()>> {
        self.refuse_inside_compaction(what)?;
        Ok(self.shared.compaction.lock())
    }

    /// Refuses a call made on the thread compacting this store (from its callbacks).
    pub(in crate::store) fn refuse_inside_compaction(&self, what: &str) -> Result<()> {
        if COMPACTING.with(Cell::get) == Arc::as_ptr(&self.shared) as usize {
            return Err(Error::InvalidConfig(format!(
                "{what} cannot run from inside this store's compaction (its predicate or progress callback)"
            )));
        }
        Ok(())
    }
}
