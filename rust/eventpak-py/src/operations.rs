//! The operations figures of `NativeStore`: durable checkpoints with their lag, and the lag
//! of a region at a cursor position (what `store.checkpoints()`, `store.metrics()` and
//! `handle.lag` are built from).

use eventpak_core::Lag;
use pyo3::prelude::*;

use crate::args::int_arg;
use crate::store::NativeStore;
use crate::types::Region;

/// A lag as Python receives it: `(events, oldest_timestamp_us)`.
type LagTuple = (u64, Option<u64>);

/// One checkpoint as Python receives it: `(checkpoint_id, region_identity, position,
/// started, saved_at_us, lag)`.
type CheckpointTuple = (String, Option<String>, u64, bool, u64, Option<LagTuple>);

fn lag_tuple(lag: Lag) -> LagTuple {
    (lag.events, lag.oldest_timestamp_us)
}

#[pymethods]
impl NativeStore {
    /// The ids of the durable cursor checkpoints of the data dir, sorted.
    fn checkpoint_ids(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        self.run(py, |s| s.checkpoint_ids())
    }

    /// Checkpoint `checkpoint_id` as `(checkpoint_id, region_identity, position, started,
    /// saved_at_us, lag)`, or `None` when there is none; `lag` is `(events,
    /// oldest_timestamp_us)`, or `None` when the region identity cannot be read back.
    fn checkpoint_status(&self, py: Python<'_>, checkpoint_id: &str) -> PyResult<Option<CheckpointTuple>> {
        let status = self.run(py, |s| s.checkpoint_status(checkpoint_id))?;
        Ok(status.map(|c| {
            let ckpt = c.checkpoint;
            (c.id, ckpt.region_identity, ckpt.position, ckpt.started, c.saved_at_us, c.lag.map(lag_tuple))
        }))
    }

    /// `(events, oldest_timestamp_us)`: the visible events of `region` after cursor position
    /// `position` (at it, when `started` is False), and the timestamp of the first of them.
    fn region_lag(
        &self,
        py: Python<'_>,
        region: &Region,
        position: &Bound<'_, PyAny>,
        started: bool,
    ) -> PyResult<LagTuple> {
        let position = int_arg(position, "position")?;
        self.run(py, |s| s.region_lag(&region.inner, position, started)).map(lag_tuple)
    }
}
