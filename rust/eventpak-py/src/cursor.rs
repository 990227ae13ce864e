//! `Cursor`: pull delivery with wake-on-commit, gap recording and durable checkpoints.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use eventpak_core::{
    validate_checkpoint_id, wait_for_events, Cursor as CoreCursor, CursorCheckpoint as CoreCheckpoint,
};
use parking_lot::Mutex;
use pyo3::prelude::*;

use crate::args::{int_arg, timeout_arg, BoolArg};
use crate::cursor_values::{CursorCheckpoint, CursorGapConfig};
use crate::errors::to_py;
use crate::event::Event;
use crate::gap_observation::GapObservation;
use crate::gil::detached;
use crate::names::CheckpointId;
use crate::store::NativeStore;
use crate::types::Region;

/// Ordered, at-least-once pull delivery of the visible events of a region.
///
/// The position lives behind a lock that is only held for one poll, never across a wait:
/// getters called with the GIL held must not queue behind a sleeping `pull_batch`.
#[pyclass(frozen, module = "eventpak._native")]
pub struct Cursor {
    store: Py<NativeStore>,
    state: Mutex<CoreCursor>,
    interrupted: Arc<AtomicBool>,
}

impl Cursor {
    pub fn new(store: Py<NativeStore>, region: &Region, after: Option<u64>) -> Self {
        let mut cursor = CoreCursor::new(region.inner.clone());
        if let Some(after) = after {
            cursor.seek(after, true);
        }
        let state = Mutex::new(cursor);
        Cursor { store, state, interrupted: Arc::new(AtomicBool::new(false)) }
    }

    fn events(&self, py: Python<'_>, max: usize, wait: Option<Duration>) -> PyResult<Vec<Py<Event>>> {
        let native = self.store.get();
        let engine = native.engine();
        let poll = || self.state.lock().poll_batch(engine, max);
        let Some(wait) = wait else { return native.events(py, detached(py, native.shown_path(), poll)?) };
        // On the main thread `detached` lets the engine's wait run pending signal handlers
        // (Ctrl-C) between slices; elsewhere it sleeps in one piece.
        let interrupted = || self.interrupted.swap(false, Ordering::AcqRel);
        let batch =
            detached(py, native.shown_path(), || wait_for_events(engine, max, wait, &interrupted, poll))?;
        native.events(py, batch)
    }
}

#[pymethods]
impl Cursor {
    /// The next matching event, or `None` when there is none yet.
    fn poll(&self, py: Python<'_>) -> PyResult<Option<Py<Event>>> {
        Ok(self.events(py, 1, None)?.pop())
    }

    /// Up to `max` matching events, without waiting.
    fn poll_batch(&self, py: Python<'_>, max: &Bound<'_, PyAny>) -> PyResult<Vec<Py<Event>>> {
        self.events(py, int_arg(max, "max")?, None)
    }

    /// Up to `max` events, waiting (GIL released) up to `timeout` seconds for the first;
    /// a commit or `interrupt()` ends the wait at once.
    fn pull_batch(&self, py: Python<'_>, max: &Bound<'_, PyAny>, timeout: f64) -> PyResult<Vec<Py<Event>>> {
        let max = int_arg(max, "max")?;
        let timeout = timeout_arg(timeout, "timeout")?;
        self.events(py, max, Some(timeout))
    }

    /// Moves the cursor to durable checkpoint `checkpoint_id` of its store: `True` when
    /// one was found, `False` (and no move) when there is none. Raises
    /// `ep.CursorCheckpointRegionMismatch` for a checkpoint of another region and
    /// `ep.CursorCheckpointCorrupt` for a damaged one.
    fn resume(&self, py: Python<'_>, checkpoint_id: CheckpointId) -> PyResult<bool> {
        self.store.get().run(py, |s| self.state.lock().resume(s, &checkpoint_id.0))
    }

    /// Saves the position as durable checkpoint `checkpoint_id`, bound to the cursor's
    /// region: events through the position are fsynced first, then the file is replaced
    /// atomically. One call per committed batch.
    fn commit(&self, py: Python<'_>, checkpoint_id: CheckpointId) -> PyResult<()> {
        let checkpoint = self.state.lock().checkpoint();
        self.store.get().run(py, |s| s.commit_cursor_checkpoint(&checkpoint_id.0, &checkpoint))
    }

    /// Makes a `pull_batch` blocked in another thread return (empty) now.
    fn interrupt(&self) {
        self.interrupted.store(true, Ordering::Release);
        self.store.get().engine().wake_waiters();
    }

    /// Moves the cursor: the next delivery is the first match after `position` (or at
    /// it, when `started` is False).
    fn seek(&self, position: &Bound<'_, PyAny>, started: BoolArg) -> PyResult<()> {
        let position = int_arg(position, "position")?;
        self.state.lock().seek(position, started.0);
        Ok(())
    }

    /// A copy of this cursor (same position) recording gaps as `config` says.
    fn with_gap_config(&self, py: Python<'_>, config: &CursorGapConfig) -> Cursor {
        let mut state = self.state.lock().clone();
        state.set_gap_capacity(config.capacity);
        Cursor { store: self.store.clone_ref(py), state: Mutex::new(state), interrupted: Arc::default() }
    }

    /// Drains the recorded gap observations, oldest first.
    fn take_gaps(&self) -> Vec<GapObservation> {
        self.state.lock().take_gaps().into_iter().map(GapObservation::from).collect()
    }

    /// Last delivered global sequence (0 before the first delivery).
    #[getter]
    fn position(&self) -> u64 {
        self.state.lock().position()
    }

    /// False until the first delivery.
    #[getter]
    fn started(&self) -> bool {
        self.state.lock().started()
    }

    /// The cursor's region.
    #[getter]
    fn region(&self) -> Region {
        Region { inner: self.state.lock().region().clone() }
    }

    /// Loads checkpoint `checkpoint_id` of `data_dir`; `None` when there is none.
    #[staticmethod]
    fn load_checkpoint(
        py: Python<'_>,
        data_dir: PathBuf,
        checkpoint_id: CheckpointId,
    ) -> PyResult<Option<CursorCheckpoint>> {
        let shown = data_dir.display().to_string();
        let loaded = detached(py, &shown, || CoreCheckpoint::load(&data_dir, &checkpoint_id.0))?;
        Ok(loaded.map(CursorCheckpoint::from))
    }

    /// Saves `checkpoint` as `checkpoint_id` atomically (temp, fsync, rename, dir fsync).
    #[staticmethod]
    fn save_checkpoint(
        py: Python<'_>,
        data_dir: PathBuf,
        checkpoint_id: CheckpointId,
        checkpoint: &CursorCheckpoint,
    ) -> PyResult<()> {
        let shown = data_dir.display().to_string();
        let core = CoreCheckpoint::from(checkpoint);
        detached(py, &shown, || core.save(&data_dir, &checkpoint_id.0))
    }

    /// Raises `ep.InvalidCheckpointId` unless `checkpoint_id` can name a checkpoint.
    #[staticmethod]
    fn validate_checkpoint_id(checkpoint_id: CheckpointId) -> PyResult<()> {
        validate_checkpoint_id(&checkpoint_id.0).map_err(|e| to_py(e, ""))
    }
}
